/**
 * A RootFs over a merged layer tree (`layer-tree.ts`): an image read in place. Links are resolved
 * component by component against the tree's root, exactly as `DirectoryRootFs` does against a
 * directory, so no link can lead outside the image; there is no host path to reach at all.
 */
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { TreeNode } from './layer-tree.js';
import type { RootFs, RootFsEntry, RootFsStat, WalkOptions } from './root-fs.js';

const MAX_LINKS = 40;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const PSEUDO_DIRS = new Set(['/proc', '/sys', '/dev']);

interface Resolved {
  path: string;
  node: TreeNode;
}

function toStat(node: TreeNode): RootFsStat {
  return {
    type: node.type,
    size: node.size,
    mode: node.mode,
    uid: node.uid,
    gid: node.gid,
    mtimeMs: node.mtimeMs,
  };
}

function splitPath(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

export class TreeRootFs implements RootFs {
  constructor(
    private readonly root: TreeNode,
    readonly description: string,
    private readonly onClose: () => void = () => {},
  ) {}

  private lookup(path: string, followLast: boolean): Resolved | undefined {
    const pending = splitPath(path).reverse();
    const done: Array<[string, TreeNode]> = [];
    let links = 0;
    const current = (): TreeNode => done.at(-1)?.[1] ?? this.root;
    while (pending.length > 0) {
      const part = pending.pop() as string;
      if (part === '..') {
        done.pop(); // `..` at the root stays at the root
        continue;
      }
      const dir = current();
      if (dir.type !== 'directory') return undefined;
      const node = dir.children?.get(part);
      if (!node) return undefined;
      if (node.type === 'symlink' && (pending.length > 0 || followLast)) {
        if (++links > MAX_LINKS) return undefined;
        const target = node.linkname ?? '';
        if (target.startsWith('/')) done.length = 0;
        pending.push(...splitPath(target).reverse());
        continue;
      }
      done.push([part, node]);
    }
    return { path: '/' + done.map(([name]) => name).join('/'), node: current() };
  }

  async resolve(path: string): Promise<string | undefined> {
    return this.lookup(path, true)?.path;
  }

  async stat(path: string): Promise<RootFsStat | undefined> {
    const r = this.lookup(path, true);
    return r ? toStat(r.node) : undefined;
  }

  async lstat(path: string): Promise<RootFsStat | undefined> {
    const r = this.lookup(path, false);
    return r ? toStat(r.node) : undefined;
  }

  async readlink(path: string): Promise<string | undefined> {
    const r = this.lookup(path, false);
    return r?.node.type === 'symlink' ? r.node.linkname : undefined;
  }

  async readFile(path: string, options?: { maxBytes?: number }): Promise<Buffer | undefined> {
    const maxBytes = options?.maxBytes ?? DEFAULT_MAX_BYTES;
    const r = this.lookup(path, true);
    if (!r || r.node.type !== 'file') return undefined;
    if (r.node.size > maxBytes) {
      throw new ContainmentError(
        ErrorCodes.FILE_TOO_LARGE,
        `${r.path} is ${r.node.size} bytes, over the ${maxBytes}-byte read limit`,
      );
    }
    if (!r.node.content || r.node.size === 0) return Buffer.alloc(0);
    return r.node.content.read(0, r.node.size);
  }

  async readRange(path: string, offset: number, length: number): Promise<Buffer | undefined> {
    const r = this.lookup(path, true);
    if (!r || r.node.type !== 'file' || offset < 0 || length < 0) return undefined;
    const n = Math.max(0, Math.min(length, r.node.size - offset));
    if (!r.node.content || n === 0) return Buffer.alloc(0);
    return r.node.content.read(offset, n);
  }

  async *readChunks(path: string, options?: { chunkBytes?: number }): AsyncIterable<Buffer> {
    const chunkBytes = options?.chunkBytes ?? 1024 * 1024;
    const r = this.lookup(path, true);
    if (!r) {
      // Missing, or an entry resolution cannot follow (a link to nowhere, a loop): the latter exists.
      if (this.lookup(path, false) === undefined) return;
      throw new ContainmentError(ErrorCodes.FILE_UNREADABLE, `${path} is a link that leads nowhere`);
    }
    if (r.node.type !== 'file')
      throw new ContainmentError(ErrorCodes.FILE_NOT_REGULAR, `${r.path} is a ${r.node.type}, not a file`);
    const { content, size } = r.node;
    if (!content) return;
    for (let offset = 0; offset < size; offset += chunkBytes)
      yield await content.read(offset, Math.min(chunkBytes, size - offset));
  }

  async readText(path: string, options?: { maxBytes?: number }): Promise<string | undefined> {
    return (await this.readFile(path, options))?.toString('utf8');
  }

  async readdir(path: string): Promise<RootFsEntry[]> {
    const r = this.lookup(path, true);
    if (!r || r.node.type !== 'directory') return [];
    return [...(r.node.children ?? [])]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, node]) => ({ name, type: node.type }));
  }

  async *walk(start = '/', options?: WalkOptions): AsyncIterable<{ path: string; stat: RootFsStat }> {
    const maxDepth = options?.maxDepth ?? 64;
    const first = this.lookup(start, true);
    if (!first || first.node.type !== 'directory') return;
    // Pre-order, siblings in name order, links never followed: as DirectoryRootFs walks.
    const pending: Array<Resolved & { depth: number }> = [];
    const push = (dir: Resolved, depth: number): void => {
      const children = [...(dir.node.children ?? [])].sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0));
      for (const [name, node] of children) {
        if (node.type === 'symlink') continue;
        pending.push({ path: dir.path === '/' ? `/${name}` : `${dir.path}/${name}`, node, depth });
      }
    };
    push(first, 1);
    while (pending.length > 0) {
      const entry = pending.pop() as Resolved & { depth: number };
      yield { path: entry.path, stat: toStat(entry.node) };
      if (entry.node.type !== 'directory' || entry.depth + 1 > maxDepth) continue;
      if (PSEUDO_DIRS.has(entry.path) || options?.skipDir?.(entry.path)) continue;
      push(entry, entry.depth + 1);
    }
  }

  close(): void {
    this.onClose();
  }
}
