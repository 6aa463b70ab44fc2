/** Pieces every subcommand shares: exit codes, the version, database and data-dir flags. */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { ConfigFile } from '../config/config.js';
import { resolveDataDir, resolveDbPath } from '../config/paths.js';
import { dataDirOption } from './help.js';

/** Exit status for every error (bad input, unreadable database …). */
export const EXIT_ERROR = 2;

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface DbFlags {
  db?: string;
  dataDir?: string;
}

/** `--db <file>` and `--data-dir <dir>`: the same two flags on every command that touches the database. */
export function addDbOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--db <file>', 'vulnerability database file (default: <data dir>/vulndb.sqlite)'))
    .addOption(dataDirOption());
}

/**
 * The config file named by the root command's `--config` (or CONTAINMENT_CONFIG). Its schema
 * (zod) loads here, on use, not when a command is declared: `--help` stays fast.
 */
export async function configOf(cmd: Command): Promise<ConfigFile> {
  let root: Command = cmd;
  while (root.parent) root = root.parent;
  const { loadConfigFile } = await import('../config/config.js');
  return loadConfigFile((root.opts() as { config?: string }).config);
}

/** Flags > environment > config file, for the data directory. */
function dataDirSetting(flags: DbFlags, file: ConfigFile, env: NodeJS.ProcessEnv): string | undefined {
  return flags.dataDir ?? env.CONTAINMENT_DATA_DIR ?? file.dataDir;
}

export function dbPathOf(flags: DbFlags, file: ConfigFile, env: NodeJS.ProcessEnv = process.env): string {
  const dataDir = dataDirSetting(flags, file, env);
  // An explicit data dir (flag or env) outranks a database path that only the file names.
  const db = flags.db ?? (flags.dataDir || env.CONTAINMENT_DATA_DIR ? undefined : file.db);
  return resolveDbPath({ db, dataDir, env });
}

export function dataDirOf(flags: DbFlags, file: ConfigFile, env: NodeJS.ProcessEnv = process.env): string {
  return resolveDataDir({ dataDir: dataDirSetting(flags, file, env), env });
}

/**
 * `--database <url>` (or `CONTAINMENT_DATABASE`): a PostgreSQL database instead of the SQLite
 * files, for the scanner service's replicas and the advisories they share.
 */
export function databaseOption(): Option {
  return new Option('--database <url>', 'PostgreSQL database (postgres://…) instead of the SQLite files')
    .env('CONTAINMENT_DATABASE')
    .argParser((value: string) => {
      const protocol = URL.canParse(value) ? new URL(value).protocol : '';
      if (protocol !== 'postgres:' && protocol !== 'postgresql:')
        throw new InvalidArgumentError('expected a postgres:// or postgresql:// URL');
      return value;
    });
}

/**
 * Resolves with the first SIGINT or SIGTERM, then stops listening: long-running commands await
 * it and close what they started. Call it before starting, so a signal during start-up counts.
 */
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      // Removed after this signal's other handlers ran: the runtime sensor's handler exits the
      // process when it sees itself alone, which would cut the clean stop short.
      setImmediate(() => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      });
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/**
 * The one logger a long-running command injects into what it starts: JSON lines on stderr at
 * `CONTAINMENT_LOG_LEVEL`, else the command's default level. pino loads here, on use.
 */
export async function commandLogger(defaultLevel: 'info' | 'warn'): Promise<Logger> {
  const { default: pino } = await import('pino');
  return pino({ level: process.env.CONTAINMENT_LOG_LEVEL ?? defaultLevel }, pino.destination(2));
}
