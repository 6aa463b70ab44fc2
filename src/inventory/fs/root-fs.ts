/**
 * A read-only view of a container's filesystem. Every path is interpreted inside the root:
 * symbolic links (absolute or relative, `..` chains) are resolved against the root and can
 * never lead to a file of the host. Implementations: `DirectoryRootFs` (a directory on this
 * host, also used for `/proc/<pid>/root`) and `TreeRootFs` (an image archive read in place,
 * see `image-archive.ts`).
 */
export interface RootFsEntry {
  /** Name within its directory. */
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
}

export interface RootFsStat {
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  /** Full st_mode, including setuid/setgid/sticky and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  /** Device number of a character or block device (overlay whiteouts are character device 0/0). */
  rdev?: number;
}

export interface WalkOptions {
  /** Maximum directory depth below the start (default 64). */
  maxDepth?: number;
  /** Return true to not descend into this directory (absolute path inside the root). */
  skipDir?: (path: string) => boolean;
}

export interface RootFs {
  /** Human-readable description of what this is a view of. */
  readonly description: string;
  /**
   * Read a regular file, following links inside the root. Returns undefined when the path does
   * not exist or is not a regular file. Throws `FILE_TOO_LARGE` when larger than `maxBytes`
   * (default 64 MiB).
   */
  readFile(path: string, options?: { maxBytes?: number }): Promise<Buffer | undefined>;
  /**
   * Read up to `length` bytes at `offset` of a regular file (links followed inside the root), for
   * formats that need only their headers (ELF). Undefined when missing or not a regular file.
   */
  readRange(path: string, offset: number, length: number): Promise<Buffer | undefined>;
  /**
   * Streams a regular file in chunks (links followed inside the root) without ever holding it
   * whole: package databases of any size. Yields nothing when nothing exists at the path. Throws
   * `FILE_NOT_REGULAR` for a FIFO, device, socket or directory, which is never opened (so a FIFO
   * cannot block the scan), and `FILE_UNREADABLE` when the path exists but cannot be opened or
   * read, including a link that leads nowhere.
   */
  readChunks(path: string, options?: { chunkBytes?: number }): AsyncIterable<Buffer>;
  /** As readFile, decoded as UTF-8. */
  readText(path: string, options?: { maxBytes?: number }): Promise<string | undefined>;
  /** Stat, following links inside the root; undefined when missing or a link leads nowhere. */
  stat(path: string): Promise<RootFsStat | undefined>;
  /** Stat of the entry itself (a link is reported as a link). */
  lstat(path: string): Promise<RootFsStat | undefined>;
  /** Directory entries (links are not followed); empty when not a directory. */
  readdir(path: string): Promise<RootFsEntry[]>;
  /** The link's target text, as stored (not resolved). */
  readlink(path: string): Promise<string | undefined>;
  /** Resolve a path inside the root to its canonical absolute in-root form (links followed). */
  resolve(path: string): Promise<string | undefined>;
  /**
   * Depth-first walk of regular files and directories below `start` (default `/`) that does not
   * follow directory links (so it cannot loop). Yields absolute in-root paths.
   */
  walk(start?: string, options?: WalkOptions): AsyncIterable<{ path: string; stat: RootFsStat }>;
  /** Releases what the view holds open (descriptors kept for speed); it stays usable. */
  close(): void;
}
