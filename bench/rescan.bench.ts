/**
 * The rescan benchmark (`npm run bench:rescan`): what a long-lived process pays to rescan what did
 * not change, and what memory it holds. On the bench's Debian 12 root (`prepare-data.ts`) against
 * 100k and 400k OSV records: warm rescans with a ScanCache (medians, RSS after each of
 * BENCH_RESCANS rescans), a cold scan's peak RSS (library, fresh process), and a node agent's
 * unchanged rescan of a real container (podman). With BENCH_OLD_TREE=<checkout of an older
 * commit>, each measurement runs in both trees, alternating, in the same sitting, and the ratios
 * are printed. Figures, not a test. See bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { prepareDatabase, prepareImageArchive, prepareRecords, prepareRoot } from './prepare-data.js';
import type {
  AgentMeasurement,
  ColdMeasurement,
  LayersMeasurement,
  RescanMeasurement,
} from './rescan-child.js';

const RESCANS = Number(process.env.BENCH_RESCANS ?? 100);
const COLD_RUNS = Number(process.env.BENCH_RUNS ?? 3);
const AGENT_RESCANS = Number(process.env.BENCH_AGENT_RESCANS ?? 30);
/**
 * Node flags for the measuring processes, e.g. `--max-semi-space-size=16`: V8 sizes its young
 * generation from the machine's memory (128 MB of semi-spaces on a 24 GB machine), which is most
 * of a long-lived process's RSS above its live heap.
 */
const CHILD_FLAGS = (process.env.BENCH_CHILD_FLAGS ?? '').split(' ').filter((f) => f !== '');
const SIZES = (process.env.BENCH_SIZES ?? '100000,400000').split(',').map(Number);
const TARGET = { rescanMs: { 100000: 200, 400000: 300 } as Record<number, number>, agentMs: 20 };

const benchDir = dirname(fileURLToPath(import.meta.url));
const newTree = join(benchDir, '..');
const oldTree = process.env.BENCH_OLD_TREE;
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

const median = (values: readonly number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const fmt = (ms: number) =>
  ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(ms < 20 ? 1 : 0)} ms`;

interface Tree {
  name: string;
  dir: string;
}
const trees: Tree[] = [{ name: 'new', dir: newTree }];
if (oldTree) {
  // The child uses only entry points both trees have: run the same file in the old one, with the
  // test-scanner helper it starts its scanner through when that tree predates it.
  copyFileSync(join(benchDir, 'rescan-child.ts'), join(oldTree, 'bench', 'rescan-child.ts'));
  const helper = join('src', 'testing', 'scanner.ts');
  if (!existsSync(join(oldTree, helper))) copyFileSync(join(newTree, helper), join(oldTree, helper));
  trees.unshift({ name: 'old', dir: oldTree });
}

function child<T>(tree: Tree, args: string[]): T {
  const r = spawnSync(
    process.execPath,
    [...CHILD_FLAGS, '--import', 'tsx', join(tree.dir, 'bench', 'rescan-child.ts'), ...args],
    {
      cwd: tree.dir,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const last = r.stdout?.trim().split('\n').pop();
  if (r.status !== 0 || !last)
    throw new Error(`rescan-child ${args[0]} in ${tree.name} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(last) as T;
}

function podmanImage(archive: string): string | undefined {
  const image = 'localhost/bench-bookworm:500';
  if (spawnSync('podman', ['image', 'exists', image]).status === 0) return image;
  log(`podman load of ${archive} (once) ...`);
  const r = spawnSync('podman', ['load', '--quiet', '-i', archive], { encoding: 'utf8' });
  return r.status === 0 ? image : undefined;
}

async function main(): Promise<void> {
  const wall = performance.now();
  const out: string[] = [];
  const startLoad = load();
  const root = prepareRoot(log);
  out.push('', `Containment rescan benchmark — ${new Date().toISOString()}`);
  out.push(
    `root: ${root.path} — ${root.packages} installed dpkg packages; trees: ${trees.map((t) => `${t.name} ${t.dir}`).join(', ')}`,
  );
  out.push(
    `load average at start ${startLoad}; node flags of the measuring processes: ${CHILD_FLAGS.join(' ') || 'none'}`,
  );
  const digests = new Set<string>();
  for (const size of SIZES) {
    const db = prepareDatabase(prepareRecords(root, log, size), log);
    const rows: string[] = [];
    const rescans = new Map<string, RescanMeasurement>();
    const colds = new Map<string, ColdMeasurement[]>();
    // Alternate the trees, so that load drifting during the run hits both alike.
    for (let i = 0; i < COLD_RUNS; i++) {
      for (const tree of trees) {
        log(`${size / 1000}k: cold scan ${i + 1}/${COLD_RUNS} (${tree.name}) ...`);
        const m = child<ColdMeasurement>(tree, ['cold', root.path, db]);
        digests.add(`${size}:${m.digest}`);
        colds.set(tree.name, [...(colds.get(tree.name) ?? []), m]);
      }
    }
    for (const tree of trees) {
      log(`${size / 1000}k: ${RESCANS} rescans (${tree.name}) at load ${load()} ...`);
      const m = child<RescanMeasurement>(tree, ['rescan', root.path, db, String(RESCANS)]);
      digests.add(`${size}:${m.digest}`);
      rescans.set(tree.name, m);
    }
    for (const tree of trees) {
      const r = rescans.get(tree.name) as RescanMeasurement;
      const c = colds.get(tree.name) as ColdMeasurement[];
      const curve = r.rssCurveMb.filter(
        (_, i) => i % Math.max(1, Math.floor(r.rssCurveMb.length / 10)) === 0,
      );
      curve.push(r.rssCurveMb.at(-1) as number);
      rows.push(
        `  ${tree.name}: cold scan ${fmt(median(c.map((m) => m.ms)))}, peak RSS ${Math.max(...c.map((m) => m.maxRssMb))} MB (target < 300 MB); ` +
          `${c[0]?.packages} packages, ${c[0]?.findings} findings`,
        `  ${tree.name}: warm rescan, unchanged, median ${fmt(median(r.rescanMs))} (min ${fmt(Math.min(...r.rescanMs))}, ` +
          `max ${fmt(Math.max(...r.rescanMs))}; target < ${TARGET.rescanMs[size] ?? '?'} ms), CPU median ${fmt(median(r.rescanCpuMs))}; ` +
          `first scan ${fmt(r.firstMs)}`,
        `  ${tree.name}: RSS after rescans 1..${r.rssCurveMb.length} (MB, sampled): ${curve.join(' ')}; process peak ${r.maxRssMb} MB (target < 400 MB)`,
      );
    }
    if (oldTree) {
      const o = rescans.get('old') as RescanMeasurement;
      const n = rescans.get('new') as RescanMeasurement;
      rows.push(
        `  ratio old/new warm rescan median: wall ${(median(o.rescanMs) / median(n.rescanMs)).toFixed(1)}×, ` +
          `CPU ${(median(o.rescanCpuMs) / median(n.rescanCpuMs)).toFixed(1)}×`,
      );
    }
    out.push('', `${size / 1000}k records (load at the end: ${load()}):`, ...rows);
  }
  const archive = prepareImageArchive(root, log);
  const image = spawnSync('podman', ['--version']).status === 0 ? podmanImage(archive) : undefined;
  if (image) {
    const agents = new Map<string, AgentMeasurement>();
    for (const tree of trees) {
      log(`agent: ${AGENT_RESCANS} unchanged rescans (${tree.name}) at load ${load()} ...`);
      agents.set(tree.name, child<AgentMeasurement>(tree, ['agent', image, String(AGENT_RESCANS)]));
    }
    out.push(
      '',
      `agent, unchanged rescan without a walk of a running ${image} container (scan + check-in round trip; ms resolution of the scan part):`,
    );
    for (const [name, m] of agents) {
      out.push(
        `  ${name}: median ${fmt(median(m.rescanMs))} (min ${fmt(Math.min(...m.rescanMs))}, max ${fmt(Math.max(...m.rescanMs))}; target < ${TARGET.agentMs} ms), ` +
          `CPU (agent + in-process server) median ${fmt(median(m.rescanCpuMs))}; ${m.checkIns} check-ins, ${m.walks} walk(s)`,
      );
      if (m.walkRescanMs.length > 0)
        out.push(
          `  ${name}: periodic rescan that takes the inventory afresh (whole root, or the writable layer only): median ` +
            `${fmt(median(m.walkRescanMs))}, CPU median ${fmt(median(m.walkRescanCpuMs))} (${m.walkRescanMs.length} of them)`,
        );
    }
    log(`container layers (new tree) at load ${load()} ...`);
    const l = child<LayersMeasurement>(trees.at(-1) as Tree, ['layers', image, '20']);
    out.push(
      '',
      `container inventories of ${image}, CPU ms (new tree; the old one walks the root every time):`,
      `  walk of the merged root + inventory (what every inventory cost before): ${fmt(l.mergedWalkCpuMs)} (${l.packages.walked} packages)`,
      `  from the layers: first container ${fmt(l.firstContainerCpuMs)} (${l.packages.layered} packages), second container of the image ${fmt(l.secondContainerCpuMs)}, ` +
        `unchanged rescan ${fmt(l.unchangedCpuMs)}, after a file written under /usr/share/doc ${fmt(l.unaffectedChangeCpuMs)}, ` +
        `after a package.json written ${fmt(l.packageAddedCpuMs)} (${l.packages.added} packages)`,
      `  layer scan counters: ${JSON.stringify(l.stats)}`,
    );
  } else out.push('', '*** agent rescan SKIPPED: podman or the image is not available ***');
  const perSize = new Map<string, Set<string>>();
  for (const d of digests) {
    const [size, hash] = d.split(':') as [string, string];
    perSize.set(size, (perSize.get(size) ?? new Set()).add(hash));
  }
  for (const [size, hashes] of perSize) {
    out.push(
      `${Number(size) / 1000}k: ${hashes.size === 1 ? 'same findings in every run and tree' : `FINDINGS DIFFER (${[...hashes].join(', ')})`}`,
    );
  }
  out.push(`load average at the end: ${load()}; bench wall time ${fmt(performance.now() - wall)}`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (!existsSync(root.path)) throw new Error('root vanished');
}

await main();
