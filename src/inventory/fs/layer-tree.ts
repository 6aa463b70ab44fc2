/**
 * The merged view of an image's layers, held in memory as a tree of metadata whose files point at
 * their bytes where they lie (a range of the archive file, a buffer kept while streaming a
 * compressed layer, or a way to stream that layer again). Nothing is written to disk.
 *
 * Layers are hostile by assumption, and `LayerTree.apply` keeps the guarantees the unpacker had:
 * every entry name is cleaned lexically and may not climb above the root (ARCHIVE_PATH_ESCAPE);
 * parent directories are resolved INSIDE the tree (an image link `etc -> /host` means the image's
 * own `/host`); an entry over a link replaces the link; hard links may only name files already in
 * the tree; whiteouts act only inside it; devices and FIFOs are noted and stand as empty directories.
 */
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { TarHeader } from './tar-index.js';

const MAX_LINKS = 40;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** Where a file's bytes are. */
export interface Content {
  /** Reads `length` bytes at `offset` of the file (fewer at its end). */
  read(offset: number, length: number): Promise<Buffer>;
}

export interface TreeNode {
  type: 'file' | 'directory' | 'symlink';
  /** Full st_mode (type bits included). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  linkname?: string;
  content?: Content;
  children?: Map<string, TreeNode>;
  /** The last layer that created or entered this node (opaque directories keep only those). */
  layer: number;
}

function corrupt(message: string): ContainmentError {
  return new ContainmentError(ErrorCodes.ARCHIVE_CORRUPT, message);
}

/**
 * Cleans an entry name lexically (as docker does): leading `/` and `.` components are dropped,
 * `..` removes the previous component and may not climb above the root.
 */
export function cleanEntryName(name: string): string[] {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) {
        throw new ContainmentError(
          ErrorCodes.ARCHIVE_PATH_ESCAPE,
          `archive entry ${JSON.stringify(name)} points outside the destination`,
        );
      }
      parts.pop();
    } else parts.push(part);
  }
  return parts;
}

function directory(mode: number, layer: number, mtimeMs = 0): TreeNode {
  return {
    type: 'directory',
    mode: S_IFDIR | mode,
    uid: 0,
    gid: 0,
    size: 4096,
    mtimeMs,
    children: new Map(),
    layer,
  };
}

export class LayerTree {
  readonly root: TreeNode = directory(0o755, -1);
  readonly skipped = new Map<string, string[]>();
  private layer = 0;

  startLayer(index: number): void {
    this.layer = index;
  }

  /**
   * Resolves a directory path inside the tree, following the image's links against the root,
   * creating missing directories when `create`. Undefined when missing and not creating.
   */
  private resolveDir(parts: readonly string[], create: boolean, entry: string): TreeNode | undefined {
    const pending = [...parts].reverse();
    const done: TreeNode[] = [this.root];
    let links = 0;
    while (pending.length > 0) {
      const part = pending.pop() as string;
      if (part === '..') {
        if (done.length > 1) done.pop();
        continue;
      }
      const parent = done.at(-1) as TreeNode;
      let node = parent.children?.get(part);
      if (node === undefined) {
        if (!create) return undefined;
        node = directory(0o755, this.layer);
        parent.children?.set(part, node);
      } else if (node.type === 'symlink') {
        if (++links > MAX_LINKS)
          throw corrupt(`archive entry ${JSON.stringify(entry)}: too many levels of links`);
        const target = node.linkname ?? '';
        if (target.startsWith('/')) done.length = 1;
        pending.push(
          ...target
            .split('/')
            .filter((c) => c !== '' && c !== '.')
            .reverse(),
        );
        continue;
      } else if (node.type !== 'directory') {
        throw corrupt(`archive entry ${JSON.stringify(entry)}: /${parts.join('/')} is not a directory`);
      }
      if (create) node.layer = this.layer;
      done.push(node);
    }
    return done.at(-1);
  }

  private note(kind: string, path: string): void {
    const list = this.skipped.get(kind) ?? [];
    list.push(path);
    this.skipped.set(kind, list);
  }

  /**
   * Applies one layer entry. `content` gives a regular file's bytes; `maxEntryBytes` bounds a
   * single file as the unpacker did.
   */
  apply(header: TarHeader, content: Content | undefined, maxEntryBytes: number): void {
    const entry = header.name;
    const parts = cleanEntryName(entry);
    const base = parts.at(-1);
    if (base === undefined) return; // the root directory itself
    const dirParts = parts.slice(0, -1);
    if (base.startsWith('.wh.')) return this.whiteout(dirParts, base, entry);

    const type = header.type;
    if (type === 'character-device' || type === 'block-device' || type === 'fifo') {
      this.note(type, '/' + parts.join('/'));
      // Not a file to read, but not absent either: an empty directory stands in for it, so a FIFO
      // or device where a package database belongs reads as "there, and not a file" (a gap of the
      // inventory), never as no database; like the node itself, it hides what lower layers had.
      const parent = this.resolveDir(dirParts, true, entry) as TreeNode;
      (parent.children as Map<string, TreeNode>).set(base, directory(0o700, this.layer));
      return;
    }
    if (!['file', 'contiguous-file', 'directory', 'symlink', 'link'].includes(type)) {
      this.note(type, '/' + parts.join('/'));
      return;
    }
    const dir = this.resolveDir(dirParts, true, entry) as TreeNode;
    const children = dir.children as Map<string, TreeNode>;
    const existing = children.get(base);
    const perms = header.mode & 0o7777;
    const meta = { uid: header.uid, gid: header.gid, mtimeMs: header.mtime * 1000, layer: this.layer };

    if (type === 'directory') {
      if (existing?.type === 'directory') Object.assign(existing, meta, { mode: S_IFDIR | perms });
      else children.set(base, { ...directory(perms, this.layer), ...meta });
      return;
    }
    if (type === 'symlink') {
      const linkname = header.linkname;
      children.set(base, {
        type: 'symlink',
        mode: S_IFLNK | 0o777,
        size: linkname.length,
        linkname,
        ...meta,
      });
      return;
    }
    if (type === 'link') {
      const linkParts = cleanEntryName(header.linkname);
      const linkBase = linkParts.at(-1);
      const linkDir = this.resolveDir(linkParts.slice(0, -1), false, entry);
      const source = linkDir && linkBase !== undefined ? linkDir.children?.get(linkBase) : undefined;
      if (!source || source.type !== 'file') {
        throw corrupt(
          `archive entry ${JSON.stringify(entry)}: hard link target ${JSON.stringify(header.linkname)} is not a file of the image`,
        );
      }
      children.set(base, { ...source, layer: this.layer }); // same bytes and metadata: one inode
      return;
    }
    if (header.size > maxEntryBytes) {
      throw new ContainmentError(
        ErrorCodes.FILE_TOO_LARGE,
        `archive entry ${JSON.stringify(entry)} is ${header.size} bytes, over the ${maxEntryBytes}-byte limit`,
      );
    }
    children.set(base, { type: 'file', mode: S_IFREG | perms, size: header.size, content, ...meta });
  }

  private whiteout(dirParts: string[], base: string, entry: string): void {
    const opaque = base === '.wh..wh..opq';
    if (!opaque && base.startsWith('.wh..wh.')) return; // aufs bookkeeping (`.wh..wh.plnk`, …), not content
    const name = base.slice('.wh.'.length);
    if (name === '' || name === '.' || name === '..') {
      throw corrupt(`archive entry ${JSON.stringify(entry)} is not a valid whiteout`);
    }
    const dir = this.resolveDir(dirParts, opaque, entry);
    if (dir === undefined) return; // nothing below to hide
    if (opaque) this.prune(dir);
    else dir.children?.delete(name);
  }

  /** Opaque directory: removes everything below `dir` that this layer did not put there. */
  private prune(dir: TreeNode): void {
    for (const [name, child] of dir.children ?? []) {
      if (child.layer !== this.layer) dir.children?.delete(name);
      else if (child.type === 'directory') this.prune(child);
    }
  }
}
