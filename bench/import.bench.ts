/**
 * `npm run bench:import`: `db import` of the 100k and 400k OSV record sets (prepare-data.ts) into
 * a fresh database, this checkout against an older commit (`BENCH_OLD_REF`, default e6917ec, the
 * last main before the import rework) side by side in one sitting: old and new alternate, each
 * run in a fresh process (bench/import-child.ts), on SQLite and, when reachable, PostgreSQL.
 * Prints medians (wall and CPU), the ratio new/old, peak RSS, database size and the load average.
 *
 * Knobs: BENCH_RUNS (default 3), BENCH_SIZES (default "100000,400000"), BENCH_ENGINES (default
 * "sqlite,postgres"), BENCH_OLD_REF.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { repoRoot } from '../src/testing/shared-data.js';
import { createSchema, createTestDatabase, postgresReachable } from '../src/testing/postgres.js';
import type { ImportRun } from './import-child.js';

const childScript = join(dirname(fileURLToPath(import.meta.url)), 'import-child.ts');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_SIZES ?? '100000,400000').split(',').map(Number);
const ENGINES = (process.env.BENCH_ENGINES ?? 'sqlite,postgres').split(',');
const OLD_REF = process.env.BENCH_OLD_REF ?? 'e6917ec';
const log = (line: string) => process.stderr.write(`${line}\n`);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

// The young-generation size `containment db import` restarts with (bin/containment.js), so the
// children's peak RSS is the user's; both trees get it, and the comparison stays one of their code.
const CHILD_FLAGS = ['--max-semi-space-size=16'];

function child<T>(args: string[], env: NodeJS.ProcessEnv = {}): T {
  const r = spawnSync(process.execPath, [...CHILD_FLAGS, '--import', 'tsx', childScript, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  const last = r.stdout?.trim().split('\n').pop();
  if (r.status !== 0 || !last) throw new Error(`import-child ${args[0]} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(last) as T;
}

/** The old commit's src/ in a temporary tree that resolves this checkout's node_modules. */
function oldTree(ref: string): string {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], {
    cwd: repoRoot,
    encoding: 'utf8',
  }).trim();
  const dir = join(tmpdir(), `containment-bench-old-${commit}`);
  if (!existsSync(join(dir, '.complete'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const tar = execFileSync('git', ['archive', commit, 'src', 'package.json', 'tsconfig.json'], {
      cwd: repoRoot,
      maxBuffer: 512 * 1024 * 1024,
    });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
    symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
    execFileSync('touch', [join(dir, '.complete')]);
  }
  return join(dir, 'src');
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;

async function main(): Promise<void> {
  const trees = { old: oldTree(OLD_REF), new: join(repoRoot, 'src') };
  const pgOk = ENGINES.includes('postgres') && (await postgresReachable());
  if (ENGINES.includes('postgres') && !pgOk) log('PostgreSQL not reachable: SQLite only');
  const engines = ENGINES.filter((e) => e === 'sqlite' || pgOk);
  const work = mkdtempSync(join(tmpdir(), 'containment-bench-import-'));
  const database = pgOk ? await createTestDatabase('bench_import') : undefined;
  const startLoad = load();
  const lines: string[] = [];
  let schemas = 0;
  try {
    for (const total of SIZES) {
      const records = child<{ allZip: string; total: number }>(['records'], { BENCH_RECORDS: String(total) });
      for (const engine of engines) {
        const runs: Record<'old' | 'new', ImportRun[]> = { old: [], new: [] };
        for (let i = 0; i < RUNS; i++) {
          // Alternate which goes first, so a load change hits both alike.
          const order = i % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const);
          for (const which of order) {
            log(`${engine} ${total} records, ${which}, run ${i + 1}/${RUNS} (load ${load()}) ...`);
            let target: string;
            if (engine === 'sqlite') target = join(work, `${which}-${total}-${i}.sqlite`);
            else target = await createSchema(database!.url, `b_${++schemas}`);
            runs[which].push(child<ImportRun>([engine, trees[which], records.allZip, target]));
            if (engine === 'sqlite')
              for (const s of ['', '-wal', '-shm']) rmSync(target + s, { force: true });
            else await dropSchema(target, schemas);
          }
        }
        const m = (which: 'old' | 'new', f: (r: ImportRun) => number) => median(runs[which].map(f));
        const row = (which: 'old' | 'new') =>
          `  ${which.padEnd(4)} ${seconds(m(which, (r) => r.ms)).padStart(9)}  cpu ${seconds(m(which, (r) => r.cpuMs)).padStart(9)}` +
          `  peak RSS ${String(Math.max(...runs[which].map((r) => r.maxRssMb))).padStart(4)} MB` +
          `  db ${mb(m(which, (r) => r.bytes)).padStart(8)}  added ${runs[which][0]?.added ?? 0}`;
        lines.push(
          `${engine}, ${total.toLocaleString('en')} records (median of ${RUNS}; wall, CPU):`,
          row('old'),
          row('new'),
          `  new/old wall ${(m('new', (r) => r.ms) / m('old', (r) => r.ms)).toFixed(2)}, cpu ${(m('new', (r) => r.cpuMs) / m('old', (r) => r.cpuMs)).toFixed(2)}; per record ${((m('new', (r) => r.ms) / total) * 1000).toFixed(0)} µs new`,
        );
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    await database?.drop();
  }
  console.log(`bench:import — old ${OLD_REF} vs this checkout, ${cpus().length} CPUs`);
  console.log(`load average at the start: ${startLoad}`);
  for (const line of lines) console.log(line);
  console.log(`load average at the end: ${load()}`);
}

async function dropSchema(url: string, n: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA b_${n} CASCADE`);
  } finally {
    await client.end();
  }
}

await main();
