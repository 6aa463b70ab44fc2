/**
 * Where Containment keeps its data, resolved the same way for every command (pure: the
 * environment is passed in). `--db` wins; otherwise `<data dir>/vulndb.sqlite`, where the data
 * dir is `--data-dir`, else $CONTAINMENT_DATA_DIR, else the XDG user data directory.
 */
import { isAbsolute, join } from 'node:path';
import { ContainmentError, ErrorCodes } from '../errors.js';

export const DB_FILE_NAME = 'vulndb.sqlite';

export type Env = Readonly<Record<string, string | undefined>>;

export interface DataDirOptions {
  dataDir?: string | undefined;
  env: Env;
}

export interface DbPathOptions extends DataDirOptions {
  db?: string | undefined;
}

export function resolveDataDir({ dataDir, env }: DataDirOptions): string {
  const explicit = nonEmpty(dataDir) ?? nonEmpty(env.CONTAINMENT_DATA_DIR);
  if (explicit !== undefined) return explicit;
  // The XDG spec says a relative $XDG_DATA_HOME is invalid and must be ignored.
  const xdg = nonEmpty(env.XDG_DATA_HOME);
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'containment');
  const home = nonEmpty(env.HOME);
  if (home === undefined) {
    throw new ContainmentError(
      ErrorCodes.USAGE,
      'cannot choose a data directory: HOME is not set; pass --data-dir or set CONTAINMENT_DATA_DIR',
    );
  }
  return join(home, '.local', 'share', 'containment');
}

export function resolveDbPath({ db, dataDir, env }: DbPathOptions): string {
  return nonEmpty(db) ?? join(resolveDataDir({ dataDir, env }), DB_FILE_NAME);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
