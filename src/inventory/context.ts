import type { RootFs, RootFsStat } from './fs/root-fs.js';
import type { GapCode, InsecureConfiguration, OsInfo, Package, Severity } from './types.js';

export interface FileEntry {
  /** Absolute in-root path. */
  path: string;
  stat: RootFsStat;
}

/**
 * The `config` section of an OCI / Docker image configuration, when the target is an image
 * archive (or a container whose engine told us its image config).
 */
export interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  ExposedPorts?: Record<string, unknown>;
  Labels?: Record<string, string> | null;
}

/** What every extractor and configuration check receives. */
export interface InventoryContext {
  fs: RootFs;
  os?: OsInfo;
  /**
   * Every regular file and directory of the root from one shared walk (links are not followed,
   * `/proc`, `/sys`, `/dev` are not entered), in walk order (each directory followed by its contents, siblings by name). Extractors filter this list instead
   * of walking again.
   */
  files: readonly FileEntry[];
  /** Tell the user something about this scan (an unsupported database, a skipped file …). */
  note(message: string): void;
  /**
   * A database (or one of its records) exists but could not be read: packages may be missing.
   * Also a note (`[CODE] extractor: path: message`); makes the inventory `incomplete`.
   */
  gap(code: GapCode, extractor: string, path: string, message: string): void;
}

/** Finds installed packages of one kind. Registered by id in `extractors/index.ts`. */
export interface PackageExtractor {
  /** Stable id, also recorded on each package (`dpkg`, `apk`, `rpm`, `npm`, `python`, `go-binary`, `java`). */
  readonly id: string;
  extract(ctx: InventoryContext): Promise<Package[]>;
  /** Which entries of `ctx.files` it looks at; declared by those that read the walk (see FileFilter). */
  readonly relevant?: FileFilter;
}

/**
 * A superset of the walk entries an extractor or check looks at (by path and stat): an incremental
 * rescan (`dependencies.ts`) re-runs the inventory only when a changed entry passes one of them,
 * or touches a path the inventory read. One that reads `ctx.files` without declaring it makes
 * every change count.
 */
export type FileFilter = (entry: FileEntry) => boolean;

export interface ConfigCheckContext extends InventoryContext {
  packages: readonly Package[];
  /** Present for image archives (and containers when known). */
  image?: ImageConfig;
}

/** One insecure-configuration rule. Registered by id in `config/index.ts`. */
export interface ConfigCheck {
  /** Stable id, e.g. `remote_shell_installed`. */
  readonly id: string;
  readonly severity: Severity;
  readonly title: string;
  /** Returns the finding (with evidence paths) or undefined when the root is fine. */
  check(ctx: ConfigCheckContext): Promise<InsecureConfiguration | undefined>;
  /** As PackageExtractor.relevant. */
  readonly relevant?: FileFilter;
}
