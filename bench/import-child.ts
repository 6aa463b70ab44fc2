/**
 * One import in a fresh process (its own peak RSS), through the library of a given source tree,
 * so the same child measures this checkout and an older one. Prints one JSON line.
 *   sqlite <src> <records.zip> <db file>
 *   postgres <src> <records.zip> <postgres URL of an empty schema>
 *   records <n>    builds (once) or finds the n-record input; prints its paths
 */
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

export interface ImportRun {
  ms: number;
  cpuMs: number;
  maxRssMb: number;
  added: number;
  invalid: number;
  /** Database size after the import: SQLite file (+ WAL), or the schema's tables and indexes. */
  bytes: number;
}

interface Library {
  openSqliteAdvisoryStore(path: string, options: { create: boolean }): { close(): unknown };
  openPostgresAdvisoryStore(url: string, options: { create: boolean }): Promise<{ close(): unknown }>;
  importFromPath(store: unknown, path: string): Promise<{ added: number; invalid: number }>;
}

async function library(src: string): Promise<Library> {
  const sqlite = (await import(`${src}/vulndb/sqlite-store.js`)) as Library;
  const postgres = (await import(`${src}/vulndb/postgres-store.js`)) as Library;
  const sources = (await import(`${src}/vulndb/record-sources.js`)) as Library;
  return {
    openSqliteAdvisoryStore: sqlite.openSqliteAdvisoryStore,
    openPostgresAdvisoryStore: postgres.openPostgresAdvisoryStore,
    importFromPath: sources.importFromPath,
  };
}

const size = (path: string): number => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

async function main([mode, ...args]: string[]): Promise<unknown> {
  if (mode === 'records') {
    // prepare-data reads BENCH_RECORDS when loaded: the parent sets it per size.
    const { prepareRecords, prepareRoot } = await import('./prepare-data.js');
    const log = (line: string) => process.stderr.write(`${line}\n`);
    return prepareRecords(prepareRoot(log), log);
  }
  const [src, zip, target] = args as [string, string, string];
  const lib = await library(src);
  const store =
    mode === 'sqlite'
      ? lib.openSqliteAdvisoryStore(target, { create: true })
      : await lib.openPostgresAdvisoryStore(target, { create: true });
  const cpu = process.cpuUsage();
  const start = performance.now();
  const report = await lib.importFromPath(store, zip);
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  await store.close();
  let bytes: number;
  if (mode === 'sqlite') bytes = size(target) + size(`${target}-wal`);
  else {
    const client = new pg.Client({ connectionString: target });
    await client.connect();
    const { rows } = await client.query<{ bytes: string }>(
      `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS bytes FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relkind = 'r'`,
    );
    await client.end();
    bytes = Number(rows[0]?.bytes ?? 0);
  }
  const run: ImportRun = {
    ms,
    cpuMs: (used.user + used.system) / 1000,
    maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    added: report.added,
    invalid: report.invalid,
    bytes,
  };
  return run;
}

main(process.argv.slice(2)).then(
  (result) => console.log(JSON.stringify(result)),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
