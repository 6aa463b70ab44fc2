/**
 * What an inventory depends on, recorded while it is taken, so that a later change to a few paths
 * (a container's writable layer over its image's layers) can be judged without taking it again.
 * An inventory reads two things: the shared walk (`ctx.files`), through which extractors and checks
 * find their files by a filter they declare (`relevant`), and fixed paths through the RootFs
 * (`/var/lib/dpkg/status`, `/etc/os-release`, `/etc/passwd` …), which the recording view below
 * notes component by component, links and missing ends included. A change that passes no filter
 * and touches no recorded path cannot change the inventory. Safe by default: an extractor or
 * check that reads the walk without declaring a filter, or walks the RootFs itself, makes every
 * change count.
 */
import type { FileEntry, FileFilter } from './context.js';
import type { RootFs, RootFsEntry, RootFsStat, WalkOptions } from './fs/root-fs.js';

export interface InventoryDependencies {
  /** In-root paths a lookup ended on or followed a link at (or would have, past a missing directory). */
  visited: Set<string>;
  /** Directories a lookup passed through (or would have): only their turning into something else matters. */
  traversed: Set<string>;
  /** Directories whose listing was read. */
  listed: Set<string>;
  /** The filters of the extractors and checks that read the walk. */
  filters: FileFilter[];
  /** Extractors or checks that read the walk without a filter, or walked the RootFs themselves. */
  unfiltered: string[];
}

export function newDependencies(): InventoryDependencies {
  return { visited: new Set(), traversed: new Set(), listed: new Set(), filters: [], unfiltered: [] };
}

/** One path of the recorded view changed: its entry before and after (undefined: absent). */
export interface PathChange {
  path: string;
  before?: RootFsStat;
  after?: RootFsStat;
}

function parentOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '/' : path.slice(0, at);
}

/** Whether `change` may change the inventory these dependencies were recorded for. */
export function affects(deps: InventoryDependencies, change: PathChange): boolean {
  const { path, before, after } = change;
  // A directory that stays one, with the same owner and permissions: what changed inside it comes
  // as changes of its own entries (its times and size only say that something did).
  const sameDirectory =
    before?.type === 'directory' &&
    after?.type === 'directory' &&
    before.mode === after.mode &&
    before.uid === after.uid &&
    before.gid === after.gid;
  if (sameDirectory) return false;
  if (deps.unfiltered.length > 0) return true;
  // The root's own attributes are judged by the filters (world-writable root), not as a visited path.
  if (path !== '/' && deps.visited.has(path)) return true;
  // A directory where a lookup passes changes nothing by itself (what it holds comes as changes).
  const passable = after === undefined ? false : after.type === 'directory' && before?.type !== 'symlink';
  if (path !== '/' && deps.traversed.has(path) && !passable) return true;
  if (path !== '/' && deps.listed.has(parentOf(path))) return true;
  for (const filter of deps.filters) {
    if (before && filter({ path, stat: before })) return true;
    if (after && filter({ path, stat: after })) return true;
  }
  return false;
}

const MAX_LINKS = 40;

function splitPath(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * `inner`, noting in `deps` every path its lookups look at. `walked` holds the paths of the walk
 * (canonical: the walk follows no link), which need no tracing of their own.
 */
export function recordingRootFs(
  inner: RootFs,
  deps: InventoryDependencies,
  walked: ReadonlySet<string>,
): RootFs {
  const { visited, traversed } = deps;
  /** Notes the paths a lookup of `pending` (a stack) from `done` would look at, were they there. */
  const wouldVisit = (done: string[], pending: string[]): void => {
    while (pending.length > 0) {
      const part = pending.pop() as string;
      if (part === '..') done.pop();
      else done.push(part);
      if (pending.length > 0) traversed.add(`/${done.join('/')}`);
    }
    visited.add(`/${done.join('/')}`);
  };
  /** Follows `path` as a lookup does, noting each path looked at; the canonical path, if it exists. */
  const trace = async (path: string, followLast = true): Promise<string | undefined> => {
    if (walked.has(path)) {
      visited.add(path);
      return path;
    }
    const pending = splitPath(path).reverse();
    const done: string[] = [];
    let links = 0;
    while (pending.length > 0) {
      const part = pending.pop() as string;
      if (part === '..') {
        done.pop();
        continue;
      }
      const at = `/${[...done, part].join('/')}`;
      const s = await inner.lstat(at);
      if (!s) {
        pending.push(part);
        wouldVisit(done, pending);
        return undefined;
      }
      if (s.type === 'symlink' && (pending.length > 0 || followLast)) {
        visited.add(at); // its target text matters
        if (++links > MAX_LINKS) return undefined;
        const target = (await inner.readlink(at)) ?? '';
        if (target.startsWith('/')) done.length = 0;
        pending.push(...splitPath(target).reverse());
        continue;
      }
      (pending.length > 0 ? traversed : visited).add(at);
      done.push(part);
    }
    return `/${done.join('/')}`;
  };
  return {
    description: inner.description,
    async readFile(path, options) {
      await trace(path);
      return inner.readFile(path, options);
    },
    async readRange(path, offset, length) {
      await trace(path);
      return inner.readRange(path, offset, length);
    },
    async *readChunks(path, options) {
      await trace(path);
      yield* inner.readChunks(path, options);
    },
    async readText(path, options) {
      await trace(path);
      return inner.readText(path, options);
    },
    async stat(path) {
      await trace(path);
      return inner.stat(path);
    },
    async lstat(path) {
      await trace(path, false);
      return inner.lstat(path);
    },
    async readdir(path): Promise<RootFsEntry[]> {
      const canonical = await trace(path);
      deps.listed.add(canonical ?? path);
      return inner.readdir(path);
    },
    async readlink(path) {
      await trace(path, false);
      return inner.readlink(path);
    },
    async resolve(path) {
      await trace(path);
      return inner.resolve(path);
    },
    walk(start?: string, options?: WalkOptions): AsyncIterable<{ path: string; stat: RootFsStat }> {
      deps.unfiltered.push('a walk of the root filesystem');
      return inner.walk(start, options);
    },
    close: () => inner.close(),
  };
}

/**
 * `ctx` for one extractor or check: its filter is noted; without one, reading `files` marks the
 * dependencies unfiltered.
 */
export function trackedContext<C extends { files: readonly FileEntry[] }>(
  ctx: C,
  owner: { id: string; relevant?: FileFilter },
  deps: InventoryDependencies,
): C {
  if (owner.relevant) {
    deps.filters.push(owner.relevant);
    return ctx;
  }
  const { files } = ctx;
  return Object.defineProperty({ ...ctx }, 'files', {
    get() {
      if (!deps.unfiltered.includes(owner.id)) deps.unfiltered.push(owner.id);
      return files;
    },
  });
}
