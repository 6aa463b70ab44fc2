/**
 * Incremental inventories of running containers from their overlay layers. A container's root is
 * its image's lower layers under its own writable upper layer (`/proc/<pid>/mountinfo`). The lower
 * layers are walked and inventoried once per layer set (their directories' identities, the image
 * configuration and INVENTORY_VERSION) and shared by every container of that image on the node;
 * each scan of a container then walks only its upper layer, which holds just what the container
 * changed:
 * - an upper layer unchanged since the container's last scan (its walk: paths, types, modes,
 *   owners, sizes, times and ctimes) gives the last inventory back: no extraction, no matching;
 * - otherwise the upper walk is merged over the lower one (`layer-merge.ts`: whiteouts, replaced
 *   types, opaque directories) and, when no changed path matters to the lower inventory
 *   (`inventory/dependencies.ts`: the extractors' file filters and the paths it read), the lower
 *   inventory is the container's; else the inventory is taken again from the merged walk, reading
 *   files through the container's real root (`/proc/<pid>/root`, the safe reader).
 * Several lower layers are merged by the kernel: a read-only overlay of them is mounted for the
 * lower scan, then unmounted. A container this cannot serve — a root that is not an overlay, a
 * volume or bind mount inside it (its files are in no layer), layers that cannot be read or do not
 * explain the merged view — gets `undefined` and a debug log line: the caller walks its merged
 * view as before.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { collectInventory, INVENTORY_VERSION } from '../inventory/collect.js';
import type { FileEntry, ImageConfig } from '../inventory/context.js';
import { affects, newDependencies } from '../inventory/dependencies.js';
import type { InventoryDependencies } from '../inventory/dependencies.js';
import { DirectoryRootFs, toStat } from '../inventory/fs/directory-root-fs.js';
import type { Inventory } from '../inventory/types.js';
import { rootOverlay } from '../linux/process-facts.js';
import type { MountPoint } from '../linux/process-facts.js';
import { changesBetween, indexLower, isWhiteout, mergeLayers, UnmergeableLayers } from './layer-merge.js';
import type { LayerState, LayerWalk, LowerIndex } from './layer-merge.js';

const run = promisify(execFile);

/** Mounts the engine makes inside every container that hold no image content. */
const RUNTIME_MOUNTS = new Set(['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/run/.containerenv']);
const PSEUDO = ['/proc', '/sys', '/dev'];

function runtimeMount(path: string): boolean {
  return RUNTIME_MOUNTS.has(path) || PSEUDO.some((p) => path === p || path.startsWith(`${p}/`));
}

/** Where Kubernetes projects a pod's service-account token (kubelet's, or a cloud's own, e.g. EKS). */
const SERVICE_ACCOUNT_MOUNT = /^\/(var\/)?run\/secrets\/[^/]+\/serviceaccount$/;
/** The keys of a projected service-account volume. */
const SERVICE_ACCOUNT_KEYS = new Set(['token', 'ca.crt', 'namespace']);
const EXECUTABLE_BITS = 0o111;

/**
 * A service-account token mount as the kubelet makes it: a read-only tmpfs holding its atomic
 * writer's layout and nothing else — links at the top, one `..<timestamp>` directory of the
 * volume's keys as small non-executable files. It holds no image content and nothing the
 * inventory reads, so the container's layers still explain it; a mount there with anything else
 * (a volume a pod spec put at that path) is a volume like any other.
 */
function serviceAccountMount(root: DirectoryRootFs, m: MountPoint): boolean {
  if (!SERVICE_ACCOUNT_MOUNT.test(m.path) || m.fsType !== 'tmpfs' || !m.readOnly) return false;
  for (const { path, stats } of root.walkStats(m.path, { links: true, maxDepth: 3 })) {
    const [top, inner, deeper] = path.slice(m.path.length + 1).split('/');
    if (deeper !== undefined) return false;
    if (inner === undefined) {
      if (!stats.isSymbolicLink() && !(stats.isDirectory() && top?.startsWith('..'))) return false;
    } else if (
      !stats.isFile() ||
      !SERVICE_ACCOUNT_KEYS.has(inner) ||
      (stats.mode & EXECUTABLE_BITS) !== 0 ||
      stats.size > 64 * 1024
    ) {
      return false;
    }
  }
  return true;
}

export interface ContainerRoot {
  /** The container's main process on this host. */
  pid: number;
  /** For log lines. */
  name: string;
  /** Its image configuration (the user it runs as matters to the checks). */
  image?: ImageConfig;
  /** The writable layer the engine reported, checked against the process's mounts when given. */
  upperDir?: string;
}

export interface LayeredInventory {
  inventory: Inventory;
  /** Equal for equal inventories of this container: its lower layers and what of its upper layer mattered. */
  signature: string;
}

export interface LayerScanStats {
  /** Lower layer sets walked and inventoried. */
  lowerScans: number;
  /** Scans that found their lower layers' inventory already taken (by this or another container). */
  lowerHits: number;
  /** Upper-layer walks. */
  upperWalks: number;
  /** Scans answered with the container's last inventory (its upper layer unchanged). */
  unchanged: number;
  /** Scans whose upper changes did not matter: the lower inventory stood. */
  lowerInventory: number;
  /** Scans whose upper layer changed since the last one in no way that mattered to its inventory. */
  unaffected: number;
  /** Inventories taken from the merged walk (upper changes that mattered). */
  extractions: number;
  /** Containers the layers could not serve (the caller walked the merged view). */
  fallbacks: number;
}

export interface LayerScansOptions {
  logger?: { debug(obj: object, msg: string): void };
  /** Lower layer sets kept (default 32); past it the least recently used go. */
  maxImages?: number;
  /** Containers whose last upper walk is kept (default 1,000). */
  maxContainers?: number;
}

interface LowerScan {
  key: string;
  index: LowerIndex;
  inventory: Inventory;
  deps: InventoryDependencies;
}

interface ContainerState extends LayerState {
  lowerKey: string;
  upperSignature: string;
  result: LayeredInventory;
  /** What `result`'s inventory depends on. */
  deps: InventoryDependencies;
}

/**
 * A walk of `dir` through the safe reader, links included, and its signature: every entry's path,
 * inode, mode, owner, size, mtime and ctime (which cannot be set back), as `scan()` signs a
 * directory.
 */
function walkLayer(dir: string): { walk: LayerWalk; signature: string; ids: Map<string, string> } {
  const fs = new DirectoryRootFs(dir);
  try {
    const hash = createHash('sha256');
    const ids = new Map<string, string>();
    const sign = (path: string, s: Stats): void => {
      ids.set(path, `${s.ino}:${s.ctimeMs}`);
      hash.update(
        `${path}\0${s.ino}\0${s.mode}\0${s.uid}\0${s.gid}\0${s.size}\0${s.mtimeMs}\0${s.ctimeMs}\0${s.rdev}\n`,
      );
    };
    const rootStats = statSync(dir);
    sign('/', rootStats);
    const entries: FileEntry[] = [];
    for (const { path, stats } of fs.walkStats('/', { links: true })) {
      sign(path, stats);
      entries.push({ path, stat: toStat(stats) });
    }
    return { walk: { root: toStat(rootStats), entries }, signature: hash.digest('hex'), ids };
  } finally {
    fs.close();
  }
}

/** The walk entries an extractor sees: no links (the walk follows none). */
const withoutLinks = (entries: readonly FileEntry[]): FileEntry[] =>
  entries.filter((e) => e.stat.type !== 'symlink');

class Unserved extends Error {}

export class LayerScans {
  readonly stats: LayerScanStats = {
    lowerScans: 0,
    lowerHits: 0,
    upperWalks: 0,
    unchanged: 0,
    lowerInventory: 0,
    unaffected: 0,
    extractions: 0,
    fallbacks: 0,
  };
  private readonly lowers = new Map<string, Promise<LowerScan>>();
  private readonly containers = new Map<string, ContainerState>();
  private readonly maxImages: number;
  private readonly maxContainers: number;

  constructor(private readonly options: LayerScansOptions = {}) {
    this.maxImages = options.maxImages ?? 32;
    this.maxContainers = options.maxContainers ?? 1_000;
  }

  /**
   * The container's inventory from its layers, or undefined (logged at debug) when they cannot
   * give it: the caller then walks `/proc/<pid>/root`.
   */
  async inventory(c: ContainerRoot): Promise<LayeredInventory | undefined> {
    try {
      return await this.fromLayers(c);
    } catch (e) {
      this.stats.fallbacks += 1;
      this.options.logger?.debug(
        { container: c.name, reason: (e as Error).message },
        'container layers not usable; walking its merged view',
      );
      return undefined;
    }
  }

  /** Drops what is kept about the container whose writable layer is `upperDir`. */
  forget(upperDir: string): void {
    this.containers.delete(upperDir);
  }

  private async fromLayers(c: ContainerRoot): Promise<LayeredInventory> {
    const overlay = rootOverlay(readFileSync(`/proc/${c.pid}/mountinfo`, 'utf8'));
    if (!overlay?.upperDir) throw new Unserved('its root is not an overlay with a writable layer');
    // Its options name layers in the mount namespace of whoever mounted it: only the runtime's own
    // root mount is trusted, not one a (privileged) container stacked over it.
    if (overlay.stacked) throw new Unserved('its root is mounted over another root');
    const { upperDir, lowerDirs } = overlay;
    if (lowerDirs.length === 0 || ![upperDir, ...lowerDirs].every((d) => d.startsWith('/'))) {
      throw new Unserved('its overlay names no lower layers by absolute path');
    }
    if (c.upperDir !== undefined && c.upperDir !== upperDir) {
      throw new Unserved(`its root's upper layer is not the engine's ${c.upperDir}`);
    }
    const merged = new DirectoryRootFs(`/proc/${c.pid}/root`, `container ${c.name}`);
    try {
      const mounted = overlay.mounts.find((m) => !runtimeMount(m.path) && !serviceAccountMount(merged, m));
      if (mounted !== undefined) {
        throw new Unserved(`${mounted.path} is mounted inside it (a volume or bind mount)`);
      }

      const lowerKey = this.lowerKey(lowerDirs, c.image);
      this.stats.upperWalks += 1;
      const upper = walkLayer(upperDir);
      const last = this.containers.get(upperDir);
      if (last?.lowerKey === lowerKey && last.upperSignature === upper.signature) {
        this.stats.unchanged += 1;
        return last.result;
      }
      const lower = await this.lower(lowerKey, lowerDirs, c.image);
      const layers = await mergeLayers(lower.index, upper.walk, async (dir) =>
        (await merged.readdir(dir)).map((e) => e.name),
      );
      const lowerKeyHash = createHash('sha256').update(lowerKey).digest('hex').slice(0, 16);
      const now: LayerState = { changes: new Map(layers.changes.map((ch) => [ch.path, ch])), ids: upper.ids };
      let result: LayeredInventory;
      let deps: InventoryDependencies;
      if (!layers.changes.some((change) => affects(lower.deps, change))) {
        this.stats.lowerInventory += 1;
        result = { inventory: lower.inventory, signature: `layers:${lowerKeyHash}:lower` };
        deps = lower.deps;
      } else if (
        last?.lowerKey === lowerKey &&
        !changesBetween(lower.index, last, now).some((change) => affects(last.deps, change))
      ) {
        // Changed since the last scan, but not where its inventory looked (a log file, say).
        this.stats.unaffected += 1;
        ({ result, deps } = last);
      } else {
        this.stats.extractions += 1;
        deps = newDependencies();
        const inventory = await collectInventory(merged, {
          files: withoutLinks(layers.entries),
          dependencies: deps,
          ...(c.image ? { image: c.image } : {}),
        });
        result = { inventory, signature: `layers:${lowerKeyHash}:${upper.signature}` };
      }
      this.remember(upperDir, { lowerKey, upperSignature: upper.signature, result, deps, ...now });
      return result;
    } catch (e) {
      if (e instanceof UnmergeableLayers) throw new Unserved(e.message);
      throw e;
    } finally {
      merged.close();
    }
  }

  private remember(upperDir: string, state: ContainerState): void {
    this.containers.delete(upperDir);
    if (this.containers.size >= this.maxContainers) {
      this.containers.delete(this.containers.keys().next().value as string);
    }
    this.containers.set(upperDir, state);
  }

  /** Layer directories are immutable once written: their identity (path, inode, ctime) names their content. */
  private lowerKey(lowerDirs: readonly string[], image: ImageConfig | undefined): string {
    const layers = lowerDirs.map((d) => {
      const s = statSync(d);
      return `${d}\0${s.dev}:${s.ino}:${s.ctimeMs}`;
    });
    return JSON.stringify([INVENTORY_VERSION, image ?? null, layers]);
  }

  private lower(
    key: string,
    lowerDirs: readonly string[],
    image: ImageConfig | undefined,
  ): Promise<LowerScan> {
    const cached = this.lowers.get(key);
    if (cached) {
      this.stats.lowerHits += 1;
      this.lowers.delete(key); // most recently used last
      this.lowers.set(key, cached);
      return cached;
    }
    this.stats.lowerScans += 1;
    const pending = scanLower(key, lowerDirs, image);
    this.lowers.set(key, pending);
    pending.catch(() => this.lowers.delete(key));
    if (this.lowers.size > this.maxImages) this.lowers.delete(this.lowers.keys().next().value as string);
    return pending;
  }
}

/** Walks and inventories the lower layers as one view (the kernel's overlay of them when several). */
async function scanLower(
  key: string,
  lowerDirs: readonly string[],
  image: ImageConfig | undefined,
): Promise<LowerScan> {
  const view = async (root: string, whiteoutsVisible: boolean): Promise<LowerScan> => {
    const { walk } = walkLayer(root);
    // A lone layer may carry whiteouts of nothing (mounted as the bottom layer, they hide nothing).
    const entries = whiteoutsVisible ? walk.entries.filter((e) => !isWhiteout(e.stat)) : walk.entries;
    const index = indexLower({ root: walk.root, entries });
    const deps = newDependencies();
    const fs = new DirectoryRootFs(root, 'image layers');
    try {
      const inventory = await collectInventory(fs, {
        files: withoutLinks(entries),
        dependencies: deps,
        ...(image ? { image } : {}),
      });
      return { key, index, inventory, deps };
    } finally {
      fs.close();
    }
  };
  if (lowerDirs.length === 1) return view(lowerDirs[0] as string, true);
  if (lowerDirs.some((d) => /[,:\\]/.test(d)))
    throw new Unserved('a layer path the mount options cannot carry');
  const at = mkdtempSync(join(tmpdir(), 'containment-layers-'));
  try {
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowerDirs.join(':')}`, at]);
  } catch (e) {
    rmdirSync(at);
    throw new Unserved(`cannot mount its lower layers (${(e as Error).message.split('\n')[0]})`);
  }
  try {
    return await view(at, false);
  } finally {
    // Lazily when busy: the scan is over, nothing of ours holds it.
    await run('umount', [at]).catch(() => run('umount', ['-l', at]).catch(() => undefined));
    try {
      rmdirSync(at);
    } catch {
      // Still mounted: the directory stays, empty to anyone but the kernel.
    }
  }
}
