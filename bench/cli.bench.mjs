#!/usr/bin/env node
// `npm run bench:cli`: how long `containment --version` and `containment scan --help` take from a
// shell: bin/containment.js with a current dist/, against the TypeScript sources through tsx (how
// every start in a checkout worked before dist/ was used, and still the development path while
// dist/ is stale). Medians of wall time; hyperfine when installed, else a loop of spawns.
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

if (!distIsCurrent(root)) {
  console.log('dist/ is missing or stale: building it first (npm run build)');
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function hasHyperfine() {
  return spawnSync('hyperfine', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Wall-time samples in ms, and (hyperfine only) the mean CPU time, which load disturbs less. */
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
  for (let i = 0; i < runs + 2; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${cmdArgs.join(' ')} exited with ${r.status}`);
    if (i >= 2) times.push(performance.now() - t0); // two warm-up runs
  }
  return { wall: times, cpu: undefined };
}

const nodeAlone = (() => {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    times.push(performance.now() - t0);
  }
  return median(times);
})();

console.log(
  `containment CLI start-up, median of ${runs} runs (${hasHyperfine() ? 'hyperfine' : 'spawn loop'}); ` +
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${cpus().length} CPUs; node -e 0 alone: ${nodeAlone.toFixed(0)} ms`,
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
