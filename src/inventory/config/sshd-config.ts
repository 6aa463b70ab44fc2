/**
 * A reader for OpenSSH's sshd_config that follows sshd's own rules closely enough to tell the
 * effective value of a keyword:
 * - keywords are case-insensitive, `Keyword value`, `Keyword=value` and quoted values are accepted;
 * - for each keyword the FIRST value obtained wins;
 * - `Include` is processed where it appears; relative paths are relative to /etc/ssh, glob
 *   patterns expand in sorted order, and nesting stops at sshd's own depth limit (16);
 * - settings inside `Match` blocks only apply to some connections. They are kept apart
 *   (`conditional`) with their criteria; `Match all` blocks apply to every connection. A Match
 *   block ends at the next `Match` or at the end of the file it started in (an included file
 *   cannot leave its includer inside its own Match block), and an included file inherits the
 *   Match block its `Include` line sits in.
 *
 * All paths stay inside the scanned root: `..` is resolved lexically against the in-root path
 * (and the root's `/..` is `/`), and reading goes through the safe root view.
 */
import { posix } from 'node:path';

export interface SshdSetting {
  /** Lower-cased keyword. */
  keyword: string;
  /** First argument with quotes removed, as written. */
  value: string;
  file: string;
  line: number;
  /** The Match criteria (as written) when the setting is inside a Match block. */
  match?: string;
}

export interface SshdConfig {
  /** Effective unconditional settings: the first value of each keyword outside Match blocks. */
  global: Map<string, SshdSetting>;
  /** The first value of each keyword in each Match block, in file order. */
  conditional: SshdSetting[];
  /** Every configuration file read, in order. */
  files: string[];
}

/** What the parser needs from the root: text of an in-root file and names in an in-root directory. */
export interface SshdConfigSource {
  readText(path: string): Promise<string | undefined>;
  listDir(path: string): Promise<string[]>;
}

export const SSHD_CONFIG_PATH = '/etc/ssh/sshd_config';
const SSH_DIR = '/etc/ssh';
/** sshd's READCONF_MAX_DEPTH. */
const MAX_INCLUDE_DEPTH = 16;

/** Splits a line into arguments the way sshd's argv_split does for the cases that matter here. */
export function splitArgs(line: string): string[] {
  const args: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|([^\s"']+)/g;
  for (const m of line.matchAll(re)) args.push(m[1] ?? m[2] ?? m[3] ?? '');
  return args;
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) source += '\\[';
      else {
        const body = pattern
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        source += `[${body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** Expands an Include argument to in-root paths, sorted as glob(3) sorts them. */
async function expandInclude(src: SshdConfigSource, arg: string): Promise<string[]> {
  const absolute = posix.normalize(arg.startsWith('/') ? arg : `${SSH_DIR}/${arg}`);
  let paths = ['/'];
  for (const part of absolute.split('/').filter((p) => p !== '')) {
    const next: string[] = [];
    for (const dir of paths) {
      const prefix = dir === '/' ? '' : dir;
      if (!/[*?[]/.test(part)) {
        next.push(`${prefix}/${part}`);
        continue;
      }
      const re = globToRegExp(part);
      const names = (await src.listDir(dir)).filter(
        (n) => re.test(n) && (!n.startsWith('.') || part.startsWith('.')),
      );
      next.push(...names.sort().map((n) => `${prefix}/${n}`));
    }
    paths = next;
  }
  return paths;
}

/** Reads the sshd configuration starting at `main`; undefined when the file is absent. */
export async function readSshdConfig(
  src: SshdConfigSource,
  main = SSHD_CONFIG_PATH,
): Promise<SshdConfig | undefined> {
  const config: SshdConfig = { global: new Map(), conditional: [], files: [] };
  const seenInBlock = new Set<string>(); // `${blockId}\0${keyword}` already set in a Match block
  let blockId = 0;

  async function parseFile(path: string, match: { criteria: string; id: number } | undefined, depth: number) {
    const text = await src.readText(path);
    if (text === undefined) return false;
    config.files.push(path);
    let current = match;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const trimmed = (lines[i] as string).trim();
      if (trimmed === '' || trimmed.startsWith('#')) continue;
      // `Keyword value`, `Keyword=value` or `Keyword = value`.
      const m = /^([^\s=]+)(?:\s*=\s*|\s+|$)(.*)$/.exec(trimmed);
      if (!m) continue;
      const keyword = (m[1] as string).toLowerCase();
      const args = splitArgs(m[2] as string);
      if (keyword === 'match') {
        current = { criteria: args.join(' '), id: ++blockId };
        continue;
      }
      if (keyword === 'include') {
        if (depth + 1 > MAX_INCLUDE_DEPTH) continue;
        for (const arg of args) {
          for (const included of await expandInclude(src, arg)) await parseFile(included, current, depth + 1);
        }
        continue;
      }
      const setting: SshdSetting = { keyword, value: args[0] ?? '', file: path, line: i + 1 };
      if (current) {
        const key = `${current.id}\0${keyword}`;
        if (seenInBlock.has(key)) continue;
        seenInBlock.add(key);
        config.conditional.push({ ...setting, match: current.criteria });
      } else if (!config.global.has(keyword)) {
        config.global.set(keyword, setting);
      }
    }
    return true;
  }

  return (await parseFile(main, undefined, 0)) ? config : undefined;
}

/**
 * The value a connection matching no Match criteria except `all` gets: the first `Match all`
 * setting overrides the global one (sshd applies matching blocks over the global options).
 */
export function effectiveSetting(config: SshdConfig, keyword: string): SshdSetting | undefined {
  const all = config.conditional.find((s) => s.keyword === keyword && s.match?.toLowerCase() === 'all');
  return all ?? config.global.get(keyword);
}
