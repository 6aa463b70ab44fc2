/**
 * One inventory of a root filesystem: detect the OS, walk the tree once, run every package
 * extractor over that walk, then every insecure-configuration check.
 */
import { isContainmentError } from '../errors.js';
import { runConfigChecks } from './config/index.js';
import type { FileEntry, ImageConfig, InventoryContext } from './context.js';
import { recordingRootFs, trackedContext } from './dependencies.js';
import type { InventoryDependencies } from './dependencies.js';
import { packageExtractors } from './extractors/index.js';
import type { RootFs } from './fs/root-fs.js';
import { detectOs } from './os-release.js';
import type { Inventory, InventoryGap } from './types.js';

export type InventoryPhase = 'walk' | 'extract' | 'configuration';

export interface CollectOptions {
  /** Image configuration, when known (enables image-only checks such as `runs_as_root`). */
  image?: ImageConfig;
  /** Extractor ids to run (default: all). */
  extractors?: readonly string[];
  onPhase?: (phase: InventoryPhase, detail?: string) => void;
  /** The walk of `/`, when the caller already took it (an incremental rescan signs it first). */
  files?: FileEntry[];
  /** Filled with what the inventory depends on (see `dependencies.ts`); needs `files`. */
  dependencies?: InventoryDependencies;
}

/**
 * Bumped whenever an extractor or check may report differently for the same files: part of the
 * key of anything kept across scans (a container's image layers, `scan/container-layers.ts`).
 */
export const INVENTORY_VERSION = 1;

export async function collectInventory(root: RootFs, options: CollectOptions = {}): Promise<Inventory> {
  const deps = options.dependencies;
  const fs =
    deps && options.files ? recordingRootFs(root, deps, new Set(options.files.map((f) => f.path))) : root;
  if (deps && !options.files) deps.unfiltered.push('a walk of the root filesystem');
  const notes: string[] = [];
  const gaps: InventoryGap[] = [];
  const note = (message: string): void => {
    if (!notes.includes(message)) notes.push(message);
  };
  const gap: InventoryContext['gap'] = (code, extractor, path, message) => {
    gaps.push({ code, extractor, path, message });
    note(gapNote({ code, extractor, path, message }));
  };
  const os = await detectOs(fs);
  if (!os) note('no /etc/os-release: operating system unknown, OS packages are matched without a release');

  options.onPhase?.('walk');
  const files: FileEntry[] = options.files ?? [];
  if (!options.files) for await (const entry of fs.walk('/')) files.push(entry);

  const ctx: InventoryContext = { fs, os, files, note, gap };
  const selected = options.extractors
    ? packageExtractors.filter((e) => options.extractors?.includes(e.id))
    : packageExtractors;
  const packages = [];
  for (const extractor of selected) {
    options.onPhase?.('extract', extractor.id);
    try {
      packages.push(...(await extractor.extract(deps ? trackedContext(ctx, extractor, deps) : ctx)));
    } catch (e) {
      // One broken database must not hide what the other extractors found; the note says so.
      if (!isContainmentError(e)) throw e;
      gap('EXTRACTOR_FAILED', extractor.id, '/', e.message);
    }
  }

  options.onPhase?.('configuration');
  const checkContext = { ...ctx, packages, image: options.image };
  const insecureConfigurations = await runConfigChecks(checkContext, (check) =>
    deps ? trackedContext(checkContext, check, deps) : checkContext,
  );
  return {
    os,
    packages,
    insecureConfigurations,
    notes,
    completeness: gaps.length > 0 ? 'incomplete' : 'complete',
    gaps,
  };
}

/** `[PACKAGE_DB_NOT_A_FILE] dpkg: /var/lib/dpkg/status: is a special file …`: how a gap reads as a note. */
export function gapNote(g: InventoryGap): string {
  return `[${g.code}] ${g.extractor}: ${g.path}: ${g.message}`;
}
