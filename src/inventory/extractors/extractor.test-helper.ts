/** Test helper: an InventoryContext over a temporary directory, as the inventory builds it. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { gapNote } from '../collect.js';
import type { FileEntry, InventoryContext } from '../context.js';
import { DirectoryRootFs } from '../fs/directory-root-fs.js';
import type { InventoryGap, OsInfo } from '../types.js';

export interface TestInventoryContext extends InventoryContext {
  notes: string[];
  gaps: InventoryGap[];
}

/** The walk result and a note collector for `dir`, read through the safe DirectoryRootFs. */
export async function contextFor(dir: string, os?: OsInfo): Promise<TestInventoryContext> {
  const fs = new DirectoryRootFs(dir);
  const files: FileEntry[] = [];
  for await (const e of fs.walk('/')) files.push(e);
  const notes: string[] = [];
  const gaps: InventoryGap[] = [];
  return {
    fs,
    os,
    files,
    notes,
    gaps,
    note: (m) => notes.push(m),
    gap: (code, extractor, path, message) => {
      gaps.push({ code, extractor, path, message });
      notes.push(gapNote({ code, extractor, path, message }));
    },
  };
}

/** A fresh temporary directory removed after the test. */
export function tempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `containment-${prefix}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
