/**
 * A pod container's files for its evidence bundle, read on the node without a container engine:
 * a tar of its writable layer (the overlay `upperdir` of its root mount) and a copy of the
 * kubelet's log files (`<pod logs dir>/<namespace>_<pod>_<uid>/<container>/*.log`).
 *
 * Both are read through `DirectoryRootFs`, whose lookups stay inside their root whatever the
 * container wrote: a link is archived as a link (never dereferenced), a log file or directory that
 * is a link is not followed at all. Sizes are capped; reaching a cap stops the collection and says
 * so (`truncated`) — a partial result is never passed off as complete.
 */
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Header, Pack } from 'tar-stream';
import { DirectoryRootFs } from '../../inventory/fs/directory-root-fs.js';
import type { RootFsStat } from '../../inventory/fs/root-fs.js';
import { writeHashed } from '../../linux/evidence.js';

/** Defaults of the caps, per container. */
export const DEFAULT_MAX_LAYER_BYTES = 256 * 1024 * 1024;
export const DEFAULT_MAX_LOG_BYTES = 64 * 1024 * 1024;
export const DEFAULT_POD_LOGS_DIR = '/var/log/pods';

const CHUNK = 1024 * 1024;
const BLOCK = 512;
/** The two zero blocks that end a tar. */
const TAR_END = 2 * BLOCK;
const MAX_DEPTH = 64;
/** Notes about skipped entries listed by name; the rest are counted. */
const MAX_LISTED = 10;
const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;

export interface CollectedFile {
  sha256: string;
  bytes: number;
  /** A cap was reached: this file holds less than there was. */
  truncated: boolean;
}

export interface LayerTarResult {
  /** Undefined when no tar was written (see notes). */
  file?: CollectedFile;
  notes: string[];
}

/** What was skipped, listed by name up to MAX_LISTED, then counted. */
class Skipped {
  private readonly names: string[] = [];
  private count = 0;
  constructor(private readonly what: string) {}
  add(name: string): void {
    if (this.names.length < MAX_LISTED) this.names.push(name);
    this.count++;
  }
  note(): string | undefined {
    if (this.count === 0) return undefined;
    const more = this.count > this.names.length ? ` and ${this.count - this.names.length} more` : '';
    return `${this.what}: ${this.names.join(', ')}${more}`;
  }
}

/** The size an entry adds to a tar: its header (two more for a long name, a pax header) and padded data. */
function tarCost(name: string, size: number): number {
  const header = name.length > 99 ? 3 * BLOCK : BLOCK;
  return header + Math.ceil(size / BLOCK) * BLOCK;
}

/**
 * Archives the writable layer at host path `upperDir` into `target`. Links are entries of type
 * symlink with their target text; overlay whiteouts (character device 0/0) become empty
 * `.wh.<name>` files as in OCI layers; other special files are skipped and named in a note. When
 * the next entry would take the tar over `maxBytes`, archiving stops there (the tar stays valid)
 * and the result is `truncated`.
 */
export async function tarWritableLayer(
  upperDir: string,
  target: string,
  maxBytes = DEFAULT_MAX_LAYER_BYTES,
): Promise<LayerTarResult> {
  let fs: DirectoryRootFs;
  try {
    fs = await DirectoryRootFs.open(upperDir, `writable layer ${upperDir}`);
  } catch (e) {
    return { notes: [`${(e as Error).message}: no filesystem-changes.tar`] };
  }
  const notes: string[] = [];
  const special = new Skipped('special files not archived');
  const changed = new Skipped('files that shrank while archived (zero-padded to the size first seen)');
  const pack = tar.pack();
  const written = writeHashed(target, pack as unknown as NodeJS.ReadableStream);
  let used = TAR_END;
  let truncated = false;

  const add = async (name: string, st: RootFsStat, extra: Partial<Header>): Promise<boolean> => {
    const size = extra.type === 'file' || extra.type === undefined ? (extra.size ?? 0) : 0;
    const cost = tarCost(name, size);
    if (used + cost > maxBytes) {
      truncated = true;
      notes.push(
        `the ${maxBytes}-byte cap was reached at ${name} (${size} bytes): archiving stopped there (truncated)`,
      );
      return false;
    }
    used += cost;
    const header = {
      name,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: new Date(st.mtimeMs),
      ...extra,
    };
    if (size === 0) {
      await entry(pack, header);
      return true;
    }
    await entry(pack, header, async (sink) => {
      let off = 0;
      while (off < size) {
        const chunk = await fs.readRange(`/${name}`, off, Math.min(CHUNK, size - off));
        if (!chunk || chunk.length === 0) break;
        off += chunk.length;
        if (!sink.write(chunk)) await once(sink, 'drain');
      }
      // The header already promised `size` bytes: a file that shrank meanwhile is padded.
      if (off < size) {
        changed.add(name);
        sink.write(Buffer.alloc(size - off));
      }
    });
    return true;
  };

  const walk = async (dir: string, depth: number): Promise<boolean> => {
    const entries = (await fs.readdir(dir)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
      const name = path.slice(1);
      const st = await fs.lstat(path);
      if (!st) continue; // gone meanwhile
      if (st.type === 'symlink') {
        const link = await fs.readlink(path);
        if (link !== undefined && !(await add(name, st, { type: 'symlink', linkname: link }))) return false;
      } else if (st.type === 'directory') {
        if (!(await add(`${name}/`, st, { type: 'directory' }))) return false;
        if (depth >= MAX_DEPTH) notes.push(`${name}: deeper than ${MAX_DEPTH} levels, contents not archived`);
        else if (!(await walk(path, depth + 1))) return false;
      } else if (st.type === 'file') {
        if (!(await add(name, st, { type: 'file', size: st.size }))) return false;
      } else if ((st.mode & S_IFMT) === S_IFCHR && st.rdev === 0) {
        const slash = name.lastIndexOf('/');
        const whiteout = `${name.slice(0, slash + 1)}.wh.${name.slice(slash + 1)}`;
        if (!(await add(whiteout, st, { type: 'file', size: 0, mode: 0 }))) return false;
      } else {
        special.add(name);
      }
    }
    return true;
  };

  try {
    await walk('/', 1);
    pack.finalize();
    const file = await written;
    for (const n of [special.note(), changed.note()]) if (n !== undefined) notes.push(n);
    return { file: { ...file, truncated }, notes };
  } catch (e) {
    pack.destroy(e as Error);
    await written.catch(() => undefined);
    throw e;
  } finally {
    fs.close();
  }
}

type Sink = ReturnType<Pack['entry']>;
type TarHeader = Partial<Header> & { name: string };

/** Adds one entry and waits until tar-stream has taken it (it takes one entry at a time). */
async function entry(pack: Pack, header: TarHeader, body?: (sink: Sink) => Promise<void>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
    if (!body) {
      pack.entry(header, Buffer.alloc(0), cb);
      return;
    }
    const sink = pack.entry(header, cb);
    body(sink).then(
      // streamx's end() wants an argument; undefined writes nothing more.
      () => sink.end(undefined),
      (e: unknown) => {
        sink.destroy(e as Error);
        reject(e as Error);
      },
    );
  });
}

export interface PodLogFile extends CollectedFile {
  container: string;
  /** Relative to the bundle. */
  path: string;
}

export interface PodLogsInput {
  podLogsDir: string;
  podUid: string;
  /** Where `logs/<container>/<file>` are written (the bundle being built). */
  bundleDir: string;
  maxBytes?: number;
}

/** A container name is a DNS label; a kubelet log file is `<n>.log`. Anything else is not ours. */
const CONTAINER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LOG_FILE = /^[0-9]{1,9}\.log$/;
const POD_UID = /^[A-Za-z0-9][-A-Za-z0-9]{0,127}$/;

/**
 * Copies the kubelet's log files of the pod with `podUid` (its directory found by the UID at the
 * end of its name) into `<bundleDir>/logs/<container>/<n>.log`. Links are not followed, whether
 * they are the pod's directory, a container's or a log file; each is named in a note.
 */
export async function copyPodLogs(input: PodLogsInput): Promise<{ files: PodLogFile[]; notes: string[] }> {
  const maxBytes = input.maxBytes ?? DEFAULT_MAX_LOG_BYTES;
  const notes: string[] = [];
  const files: PodLogFile[] = [];
  if (!POD_UID.test(input.podUid))
    return { files, notes: [`pod uid ${JSON.stringify(input.podUid)} is not valid: no logs`] };
  let fs: DirectoryRootFs;
  try {
    fs = await DirectoryRootFs.open(input.podLogsDir, `pod logs directory ${input.podLogsDir}`);
  } catch (e) {
    return { files, notes: [`${(e as Error).message}: no logs collected`] };
  }
  const links = new Skipped('links in the pod logs directory not followed');
  try {
    const podDirs = (await fs.readdir('/')).filter((e) => e.name.endsWith(`_${input.podUid}`));
    const dirs = podDirs.filter((e) => e.type === 'directory');
    for (const e of podDirs) if (e.type === 'symlink') links.add(e.name);
    if (dirs.length === 0) notes.push(`no log directory of pod ${input.podUid} in ${input.podLogsDir}`);
    let left = maxBytes;
    outer: for (const podDir of dirs) {
      const containers = (await fs.readdir(`/${podDir.name}`)).sort((a, b) => (a.name < b.name ? -1 : 1));
      for (const c of containers) {
        const cpath = `/${podDir.name}/${c.name}`;
        if (c.type === 'symlink') links.add(cpath.slice(1));
        if (c.type !== 'directory') continue;
        if (!CONTAINER_NAME.test(c.name)) {
          notes.push(`${cpath.slice(1)}: not a container name, skipped`);
          continue;
        }
        const logs = (await fs.readdir(cpath))
          .filter((l) => LOG_FILE.test(l.name))
          .sort((a, b) => Number.parseInt(a.name, 10) - Number.parseInt(b.name, 10));
        for (const l of logs) {
          const path = `${cpath}/${l.name}`;
          const st = await fs.lstat(path);
          if (st?.type === 'symlink') links.add(path.slice(1));
          if (st?.type !== 'file') continue;
          const rel = `logs/${c.name}/${l.name}`;
          await mkdir(join(input.bundleDir, 'logs', c.name), { recursive: true, mode: 0o700 });
          const size = Math.min(st.size, left);
          const out = await copyRange(fs, path, size, join(input.bundleDir, rel));
          const truncated = st.size > left;
          left -= out.bytes;
          files.push({ container: c.name, path: rel, ...out, truncated });
          if (truncated) {
            notes.push(
              `the ${maxBytes}-byte log cap was reached in ${path.slice(1)} (${st.size} bytes, first ${size} kept): log copying stopped there (truncated)`,
            );
            break outer;
          }
        }
      }
    }
  } finally {
    fs.close();
  }
  const linkNote = links.note();
  if (linkNote !== undefined) notes.push(linkNote);
  return { files, notes };
}

/** Copies the first `size` bytes (or fewer, if the file shrank) of an in-root file to a new host file. */
async function copyRange(
  fs: DirectoryRootFs,
  path: string,
  size: number,
  target: string,
): Promise<{ sha256: string; bytes: number }> {
  async function* chunks(): AsyncGenerator<Buffer> {
    let off = 0;
    while (off < size) {
      const chunk = await fs.readRange(path, off, Math.min(CHUNK, size - off));
      if (!chunk || chunk.length === 0) return;
      off += chunk.length;
      yield chunk;
    }
  }
  return writeHashed(target, Readable.from(chunks()));
}
