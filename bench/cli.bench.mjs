#!/usr/bin/env node
// `npm run bench:cli`: how long `containment --version` and `containment scan --help` take from a
// shell: bin/containment.js with a current dist/, against the TypeScript sources through tsx (how
// every start in a checkout worked before dist/ was used, and still the development path while
// dist/ is stale). Medians of wall and CPU time; hyperfine when installed, else a loop of spawns
// (with `perf stat` for the CPU time when it works).
// Plain JavaScript so that measuring needs no build and no tsx. Note the machine's load: the
// figures scale with it. Targets (issue 10): --version < 150 ms, scan --help < 300 ms.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { distIsCurrent } from '../bin/source-stamp.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'containment.js');
const runs = Number(process.env.BENCH_RUNS ?? 15);
const cases = [
  { name: '--version', args: ['--version'], target: 150 },
  { name: 'scan --help', args: ['scan', '--help'], target: 300 },
];
const work = mkdtempSync(join(tmpdir(), 'containment-bench-cli-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
// The start-up before: the sources through tsx on every run, no shortcut for --version.
const tsxRunner = join(work, 'tsx-runner.mjs');
writeFileSync(
  tsxRunner,
  `const { main } = await import(${JSON.stringify(pathToFileURL(join(root, 'src', 'cli', 'main.ts')).href)});\n` +
    'process.exitCode = await main(process.argv.slice(2));\n',
);
const modes = [
  { name: 'dist', command: [process.execPath, bin] },
  { name: 'tsx (sources)', command: [process.execPath, '--import', 'tsx', tsxRunner] },
];
// BENCH_AGAINST=<another checkout with a built dist/>: its bin/ measured in the same run, e.g. the
// commit before a start-up change, so that old and new are compared side by side.
if (process.env.BENCH_AGAINST)
  modes.splice(1, 0, {
    name: 'against',
    command: [process.execPath, join(process.env.BENCH_AGAINST, 'bin', 'containment.js')],
  });

if (!distIsCurrent(root)) {
  console.log('dist/ is missing or stale: building it first (npm run build)');
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const hasPerf =
  spawnSync('perf', ['stat', '-x,', '-e', 'task-clock', 'true'], { stdio: 'ignore' }).status === 0;

function hasHyperfine() {
  return spawnSync('hyperfine', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Wall-time samples in ms, and the CPU time (hyperfine's mean, or perf's median), which load disturbs less. */
function measure([cmd, ...cmdArgs]) {
  if (hasHyperfine()) {
    const out = join(work, 'out.json');
    const line = [cmd, ...cmdArgs].map((a) => `'${a}'`).join(' ');
    execFileSync('hyperfine', ['-N', '--warmup', '2', '--runs', String(runs), '--export-json', out, line], {
      cwd: root,
      stdio: 'ignore',
    });
    const [result] = JSON.parse(readFileSync(out, 'utf8')).results;
    return { wall: result.times.map((s) => s * 1000), cpu: (result.user + result.system) * 1000 };
  }
  const times = [];
  const cpuTimes = [];
  for (let i = 0; i < runs + 2; i++) {
    const t0 = performance.now();
    // CPU time through `perf stat` when present: on a loaded machine wall time mostly measures
    // the wait for a core, CPU time what the start-up itself costs.
    const r = hasPerf
      ? spawnSync('perf', ['stat', '-x,', '-e', 'task-clock', '--', cmd, ...cmdArgs], {
          cwd: root,
          stdio: ['ignore', 'ignore', 'pipe'],
          encoding: 'utf8',
        })
      : spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'ignore' });
    const elapsed = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${cmdArgs.join(' ')} exited with ${r.status}`);
    if (i < 2) continue; // two warm-up runs
    times.push(elapsed);
    if (hasPerf) cpuTimes.push(Number(/^([\d.]+),/m.exec(r.stderr)?.[1]));
  }
  return { wall: times, cpu: hasPerf ? median(cpuTimes) : undefined };
}

const nodeAlone = measure([process.execPath, '-e', '0']);

console.log(
  `containment CLI start-up, median of ${runs} runs (${hasHyperfine() ? 'hyperfine' : 'spawn loop'}); ` +
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(
        ' ',
      )} on ${cpus().length} CPUs; node -e 0 alone: ${median(nodeAlone.wall).toFixed(0)} ms${nodeAlone.cpu === undefined ? '' : ` (cpu ${nodeAlone.cpu.toFixed(0)} ms)`}`,
);
for (const c of cases) {
  const row = [];
  for (const mode of modes) {
    const { wall, cpu } = measure([...mode.command, ...c.args]);
    row.push(
      `${mode.name} ${median(wall).toFixed(0)} ms${cpu === undefined ? '' : ` (cpu ${cpu.toFixed(0)} ms)`}`,
    );
  }
  console.log(`  containment ${c.name.padEnd(12)} ${row.join(' · ')}   (target < ${c.target} ms with dist)`);
}
