/**
 * A container's filesystem as overlayfs builds it — its image's (lower) layers under its writable
 * (upper) layer — computed from the lower walk, kept, and the upper walk, which is small: the
 * merged walk an extractor would have got from the whole root, and the paths that differ from the
 * lower view. Pure: no I/O; what only the kernel knows (whether an upper directory is opaque) is
 * asked through `listMerged`, a listing of the container's real merged view.
 *
 * Upper-layer rules (overlayfs): a character device 0/0 is a whiteout (the lower entry and what is
 * below it are deleted); an entry of another type than the lower one replaces it and hides what
 * the lower one had below it; an opaque directory hides the lower directory's contents. Opacity is
 * an extended attribute Node cannot read, so each upper directory over a lower one is checked
 * against the kernel's listing; anything the rules cannot explain (a renamed directory with
 * `redirect_dir`, a change racing the scan) makes the merge give up, and the caller walks the
 * merged view instead.
 */
import type { FileEntry } from '../inventory/context.js';
import type { PathChange } from '../inventory/dependencies.js';
import type { RootFsStat } from '../inventory/fs/root-fs.js';

/** A walk of one view, links included, in walk order (pre-order, siblings by name). */
export interface LayerWalk {
  root: RootFsStat;
  entries: FileEntry[];
}

/** A merged view as its differences from the lower view, and its upper entries' identities. */
export interface LayerState {
  changes: ReadonlyMap<string, PathChange>;
  /** Inode and ctime of each upper entry (`/` included): a rewrite keeping size and mtime changes them. */
  ids: ReadonlyMap<string, string>;
}

/** The lower view's walk with what the merge needs to find its way in it. */
export interface LowerIndex extends LayerWalk {
  /** Position of each path in `entries`: a directory's subtree follows it contiguously. */
  at: Map<string, number>;
  /** Names inside each directory. */
  children: Map<string, string[]>;
}

export interface MergedLayers {
  /** The merged walk, links included, in walk order. */
  entries: FileEntry[];
  /** Every path whose entry differs from the lower view's (the root's attributes included). */
  changes: PathChange[];
}

export class UnmergeableLayers extends Error {}

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;

function parentOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '/' : path.slice(0, at);
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function isWhiteout(stat: RootFsStat): boolean {
  return (stat.mode & S_IFMT) === S_IFCHR && stat.rdev === 0;
}

/** Walk order of two in-root paths: an ancestor first, siblings by name (UTF-16 units, as the walk sorts). */
export function walkOrder(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === 47) return -1; // `/`: a's component ended first, so it sorts first
    if (y === 47) return 1;
    return x - y;
  }
  return a.length - b.length;
}

export function indexLower(walk: LayerWalk): LowerIndex {
  const at = new Map<string, number>();
  const children = new Map<string, string[]>();
  walk.entries.forEach(({ path }, i) => {
    at.set(path, i);
    const parent = parentOf(path);
    const list = children.get(parent);
    if (list) list.push(nameOf(path));
    else children.set(parent, [nameOf(path)]);
  });
  return { ...walk, at, children };
}

/** Index range [from, to) of the lower entries strictly below the directory at `i`. */
function subtree(lower: LowerIndex, i: number): [number, number] {
  const prefix = `${(lower.entries[i] as FileEntry).path}/`;
  let end = i + 1;
  while (end < lower.entries.length && (lower.entries[end] as FileEntry).path.startsWith(prefix)) end++;
  return [i + 1, end];
}

/** Directories a walk does not enter (pseudo filesystems of a running container). */
const NOT_ENTERED = new Set(['/proc', '/sys', '/dev']);

/**
 * Merges the upper walk over the lower view. `listMerged(dir)` lists a directory of the
 * container's merged view (names), for the opacity check of upper directories over lower ones.
 * Throws UnmergeableLayers when the merged view is not what the layers explain.
 */
export async function mergeLayers(
  lower: LowerIndex,
  upper: LayerWalk,
  listMerged: (dir: string) => Promise<string[]>,
): Promise<MergedLayers> {
  const changes: PathChange[] = [{ path: '/', before: lower.root, after: upper.root }];
  /** Lower entries the upper layer hides (whiteouts, replaced types, opaque directories). */
  const hidden = new Uint8Array(lower.entries.length);
  const upperStat = new Map<string, RootFsStat>();
  const upperChildren = new Map<string, string[]>();
  for (const { path, stat } of upper.entries) {
    upperStat.set(path, stat);
    const list = upperChildren.get(parentOf(path));
    if (list) list.push(nameOf(path));
    else upperChildren.set(parentOf(path), [nameOf(path)]);
  }
  /** Hides the lower subtree below directory `i`; what the upper layer does not replace is deleted. */
  const hideBelow = (i: number): void => {
    const [from, to] = subtree(lower, i);
    for (let j = from; j < to; j++) {
      const e = lower.entries[j] as FileEntry;
      if (!hidden[j] && !upperStat.has(e.path)) changes.push({ path: e.path, before: e.stat });
      hidden[j] = 1;
    }
  };
  const same = (a: Set<string>, b: Set<string>): boolean =>
    a.size === b.size && [...a].every((n) => b.has(n));

  // In walk order: a directory's hiding is settled before its entries are looked at.
  for (const { path, stat } of upper.entries) {
    const i = lower.at.get(path);
    const before = i === undefined ? undefined : (lower.entries[i] as FileEntry).stat;
    const whiteout = isWhiteout(stat);
    if (before || !whiteout)
      changes.push({ path, ...(before ? { before } : {}), ...(whiteout ? {} : { after: stat }) });
    if (i === undefined || hidden[i] || !before) continue;
    if (whiteout || before.type !== 'directory' || stat.type !== 'directory') {
      hidden[i] = 1;
      if (before.type === 'directory') hideBelow(i);
      continue;
    }
    if (NOT_ENTERED.has(path)) continue;
    // A directory over a lower one: merged, unless opaque. Only the kernel knows: ask its listing.
    const names = upperChildren.get(path) ?? [];
    const child = (n: string): string => (path === '/' ? `/${n}` : `${path}/${n}`);
    const whitedOut = new Set(names.filter((n) => isWhiteout(upperStat.get(child(n)) as RootFsStat)));
    const visibleUpper = new Set(names.filter((n) => !whitedOut.has(n)));
    const lowerNames = (lower.children.get(path) ?? []).filter((n) => !whitedOut.has(n));
    const merged = new Set(await listMerged(path));
    if (same(merged, new Set([...visibleUpper, ...lowerNames]))) continue;
    if (!same(merged, visibleUpper)) {
      throw new UnmergeableLayers(`${path}: the merged listing is not what the layers explain`);
    }
    hideBelow(i);
  }

  // The merged walk: both walks are in walk order; an upper entry replaces the lower one.
  const entries: FileEntry[] = [];
  let li = 0;
  const takeLowerUpTo = (path: string): void => {
    for (; li < lower.entries.length; li++) {
      const l = lower.entries[li] as FileEntry;
      const order = walkOrder(l.path, path);
      if (order > 0) return;
      if (order === 0) {
        li++;
        return;
      }
      if (!hidden[li]) entries.push(l);
    }
  };
  for (const u of upper.entries) {
    takeLowerUpTo(u.path);
    if (!isWhiteout(u.stat)) entries.push(u);
  }
  for (; li < lower.entries.length; li++) if (!hidden[li]) entries.push(lower.entries[li] as FileEntry);
  return { entries, changes };
}

function sameStat(a: RootFsStat | undefined, b: RootFsStat | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.rdev === b.rdev
  );
}

/**
 * What differs between two merged views over the same lower layers: only paths that differ from
 * the lower view in either can, so this costs in proportion to the writable layers.
 */
export function changesBetween(lower: LowerIndex, was: LayerState, now: LayerState): PathChange[] {
  const inLower = (path: string): RootFsStat | undefined => {
    if (path === '/') return lower.root;
    const i = lower.at.get(path);
    return i === undefined ? undefined : (lower.entries[i] as FileEntry).stat;
  };
  const stateIn = (view: LayerState, path: string): RootFsStat | undefined => {
    const change = view.changes.get(path);
    return change ? change.after : inLower(path);
  };
  const out: PathChange[] = [];
  for (const path of new Set([...was.changes.keys(), ...now.changes.keys()])) {
    const before = stateIn(was, path);
    const after = stateIn(now, path);
    if (sameStat(before, after) && was.ids.get(path) === now.ids.get(path)) continue;
    out.push({ path, ...(before ? { before } : {}), ...(after ? { after } : {}) });
  }
  return out;
}
