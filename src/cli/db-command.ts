/** `containment db import|update|status`: the vulnerability database (SQLite, or PostgreSQL with --database). */
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { AsyncAdvisoryStore, ImportReport } from '../vulndb/advisory-store.js';
import { downloadAndImport, DEFAULT_OSV_BASE_URL, DEFAULT_ECOSYSTEMS } from '../vulndb/download.js';
import { importFromPath } from '../vulndb/record-sources.js';
import { addDbOptions, configOf, databaseOption, dbPathOf } from './common.js';
import type { DbFlags } from './common.js';

interface OutputFlags extends DbFlags {
  format: 'table' | 'json';
  /** `--database`: PostgreSQL instead of the SQLite file. */
  database?: string;
}

/** Where the records go: the PostgreSQL URL (password hidden) or the SQLite file. */
async function databaseOf(flags: OutputFlags, command: Command): Promise<string> {
  if (flags.database === undefined) return dbPathOf(flags, await configOf(command));
  const shown = new URL(flags.database);
  if (shown.password !== '') shown.password = '***';
  return shown.toString();
}

async function withStore<T>(
  flags: OutputFlags,
  command: Command,
  create: boolean,
  work: (store: AsyncAdvisoryStore) => Promise<T>,
): Promise<T> {
  // The database drivers are loaded here, not at the top: every other command would pay for them.
  const store =
    flags.database === undefined
      ? (await import('../vulndb/sqlite-store.js')).openSqliteAdvisoryStore(
          dbPathOf(flags, await configOf(command)),
          {
            create,
          },
        )
      : await (
          await import('../vulndb/postgres-store.js')
        ).openPostgresAdvisoryStore(flags.database, { create });
  return work(store).finally(() => store.close());
}

function printReport(report: ImportReport, format: 'table' | 'json', dbPath: string): void {
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify({ database: dbPath, ...report }, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `imported into ${dbPath}: ${report.added} added, ${report.changed} changed, ${report.withdrawn} withdrawn, ` +
      `${report.unchanged} unchanged, ${report.duplicate} duplicate, ${report.invalid} invalid\n`,
  );
  for (const bad of report.invalidRecords.slice(0, 20))
    process.stdout.write(`  invalid: ${bad.origin}: ${bad.reason}\n`);
  if (report.invalidRecords.length > 20) {
    process.stdout.write(`  … and ${report.invalidRecords.length - 20} more invalid (use --format json)\n`);
  }
}

function progressBar(): { update(done: number, total: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: 'importing [{bar}] {value}/{total}', clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      }
      bar.setTotal(Math.max(total, done));
      bar.update(done);
    },
    stop: () => started && bar.stop(),
  };
}

const formatOption = (): Option =>
  new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('manage the local vulnerability database (OSV records)');

  addDbOptions(
    db
      .command('import')
      .description('import OSV records from a directory, a JSON file, or an osv.dev all.zip')
      .argument('<path>', 'directory of *.json records, one .json file (record or array), or an all.zip')
      .addOption(databaseOption())
      .addOption(formatOption()),
  ).action(async (path: string, flags: OutputFlags, command: Command) => {
    const dbPath = await databaseOf(flags, command);
    const bar = progressBar();
    const report = await withStore(flags, command, true, (store) =>
      importFromPath(store, path, { onProgress: (p) => bar.update(p.processed, p.total) }),
    ).finally(() => bar.stop());
    printReport(report, flags.format, dbPath);
  });

  addDbOptions(
    db
      .command('update')
      .description("download osv.dev's per-ecosystem all.zip files and import them")
      .option('--url <base>', `base URL of the per-ecosystem zips (default ${DEFAULT_OSV_BASE_URL})`)
      .option(
        '--ecosystem <name>',
        `ecosystem to download, repeatable (default: ${DEFAULT_ECOSYSTEMS.join(', ')})`,
        (v: string, prev: string[]) => [...prev, v],
        [] as string[],
      )
      .addOption(databaseOption())
      .addOption(formatOption()),
  ).action(async (flags: OutputFlags & { url?: string; ecosystem: string[] }, command: Command) => {
    const file = await configOf(command);
    const dbPath = await databaseOf(flags, command);
    const report = await withStore(flags, command, true, (store) =>
      downloadAndImport(store, {
        baseUrl: flags.url ?? process.env.CONTAINMENT_OSV_URL ?? file.osvBaseUrl ?? DEFAULT_OSV_BASE_URL,
        ecosystems: flags.ecosystem.length > 0 ? flags.ecosystem : (file.ecosystems ?? DEFAULT_ECOSYSTEMS),
      }),
    );
    printReport(report, flags.format, dbPath);
  });

  addDbOptions(
    db
      .command('status')
      .description('show what the database holds')
      .addOption(databaseOption())
      .addOption(formatOption()),
  ).action(async (flags: OutputFlags, command: Command) => {
    const dbPath = await databaseOf(flags, command);
    await withStore(flags, command, false, async (store) => {
      const status = {
        database: dbPath,
        ...(await store.count()),
        lastImport: (await store.lastImport()) ?? null,
      };
      if (flags.format === 'json') process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      else {
        process.stdout.write(
          `${dbPath}: ${status.records} records (${status.withdrawn} withdrawn); last import ` +
            `${status.lastImport ? `${status.lastImport.finishedAt} from ${status.lastImport.source ?? '?'}` : 'never'}\n`,
        );
      }
    });
  });
}
