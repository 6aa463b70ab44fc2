/**
 * One inventory of a root filesystem: detect the OS, walk the tree once, run every package
 * extractor over that walk, then every insecure-configuration check.
 */
import { isContainmentError } from '../errors.js';
import { runConfigChecks } from './config/index.js';
import type { FileEntry, ImageConfig, InventoryContext } from './context.js';
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
}

export async function collectInventory(fs: RootFs, options: CollectOptions = {}): Promise<Inventory> {
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
      packages.push(...(await extractor.extract(ctx)));
    } catch (e) {
      // One broken database must not hide what the other extractors found; the note says so.
      if (!isContainmentError(e)) throw e;
      gap('EXTRACTOR_FAILED', extractor.id, '/', e.message);
    }
  }

  options.onPhase?.('configuration');
  const insecureConfigurations = await runConfigChecks({ ...ctx, packages, image: options.image });
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
