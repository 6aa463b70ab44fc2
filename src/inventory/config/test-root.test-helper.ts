/**
 * Test support: builds a real root filesystem in a temporary directory and the check context a
 * scan would give for it (a real DirectoryRootFs and a real walk). Used by the tests beside.
 */
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import type { ConfigCheckContext, FileEntry, ImageConfig } from '../context.js';
import { DirectoryRootFs } from '../fs/directory-root-fs.js';
import type { OsInfo, Package } from '../types.js';

export type RootSpec = Record<
  string,
  string | Buffer | { content?: string | Buffer; mode?: number; dir?: true; link?: string }
>;

/** A temporary directory removed after the test. */
export async function tempDir(t: TestContext, prefix = 'containment-config-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Creates the entries of `spec` (in-root paths) below `dir`; modes are set exactly (umask aside). */
export async function populate(dir: string, spec: RootSpec): Promise<void> {
  for (const [path, entry] of Object.entries(spec)) {
    const host = join(dir, path);
    const e = typeof entry === 'string' || Buffer.isBuffer(entry) ? { content: entry } : entry;
    await mkdir(dirname(host), { recursive: true });
    if (e.link !== undefined) {
      await symlink(e.link, host);
      continue;
    }
    if (e.dir) await mkdir(host, { recursive: true });
    else await writeFile(host, e.content ?? '');
    if (e.mode !== undefined) await chmod(host, e.mode);
  }
}

export async function makeRoot(t: TestContext, spec: RootSpec): Promise<string> {
  const dir = await tempDir(t);
  await populate(dir, spec);
  return dir;
}

export interface TestContextResult {
  ctx: ConfigCheckContext;
  notes: string[];
}

export async function contextFor(
  dir: string,
  options: { packages?: Package[]; image?: ImageConfig; os?: OsInfo } = {},
): Promise<TestContextResult> {
  const fs = new DirectoryRootFs(dir);
  const files: FileEntry[] = [];
  for await (const entry of fs.walk('/')) files.push(entry);
  const notes: string[] = [];
  const ctx: ConfigCheckContext = {
    fs,
    files,
    packages: options.packages ?? [],
    note: (m) => notes.push(m),
    gap: (code, extractor, path, message) => notes.push(`[${code}] ${extractor}: ${path}: ${message}`),
    ...(options.os ? { os: options.os } : {}),
    ...(options.image ? { image: options.image } : {}),
  };
  return { ctx, notes };
}

/** An OS package as the dpkg/apk extractors would report it. */
export function osPackage(name: string, extractor = 'dpkg', location = '/var/lib/dpkg/status'): Package {
  return { name, version: '1.0-1', ecosystem: 'Debian:12', location, extractor };
}
