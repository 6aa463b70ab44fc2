/**
 * Evidence bundles: `<evidence dir>/<action id>/` with what a responder needs after the container
 * is gone — the engine's inspect data, logs, the list of changed paths, a tar of the writable
 * layer (when the engine shows where it is), an export of the whole filesystem, and the
 * processes and sockets read from /proc — plus `manifest.json` with the SHA-256 and size of every
 * file. The bundle is built in a temporary sibling directory and renamed into place, so a bundle
 * is either complete or absent; an existing bundle is never replaced.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import type { ContainerEngine, ContainerInfo } from '../engine/container-engine.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { EvidenceItem } from '../enforcement/security-action.js';
import { validateActionId } from '../enforcement/security-action.js';
import { assertPidInContainer, containerProcesses, containerSockets } from './proc-inspect.js';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'containment.evidence/v1';

export type EvidenceKind =
  'inspect' | 'logs' | 'changes' | 'filesystem-diff' | 'filesystem-export' | 'processes' | 'sockets';

export interface EvidenceFile {
  kind: EvidenceKind;
  /** Relative to the bundle directory. */
  path: string;
  sha256: string;
  bytes: number;
}

export interface EvidenceManifest {
  format: typeof MANIFEST_FORMAT;
  actionId: string;
  createdAt: string;
  container: Pick<ContainerInfo, 'id' | 'name' | 'image' | 'imageId' | 'pid' | 'running'>;
  files: EvidenceFile[];
  /** What could not be collected, and why. */
  notes: string[];
}

export interface EvidenceBundle {
  dir: string;
  manifest: EvidenceManifest;
  manifestSha256: string;
  manifestBytes: number;
}

export interface SnapshotOptions {
  /** Parent directory of all bundles (created when missing). */
  evidenceDir: string;
  actionId: string;
  /** Include the engine's export of the whole filesystem (default true; large for big images). */
  exportFilesystem?: boolean;
  now?: () => Date;
  /** GNU tar, used for the writable layer (default `tar` on PATH). */
  tarPath?: string;
}

type Source = Buffer | string | NodeJS.ReadableStream;

/** Collects a bundle for the container; EVIDENCE_EXISTS when one exists for this action id. */
export async function takeSnapshot(
  engine: ContainerEngine,
  nameOrId: string,
  options: SnapshotOptions,
): Promise<EvidenceBundle> {
  const actionId = validateActionId(options.actionId);
  const parent = resolve(options.evidenceDir);
  const dir = join(parent, actionId);
  await mkdir(parent, { recursive: true, mode: 0o700 });
  if (await exists(dir)) throw bundleExists(dir);

  const tmp = await mkdtemp(join(parent, `.partial-${actionId}-`));
  try {
    const manifest = await collect(engine, nameOrId, tmp, actionId, options);
    return { dir, manifest, ...(await sealBundle(tmp, dir, manifest)) };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Writes the manifest into the bundle being collected in `tmp` and moves it to `dir` in one
 * rename: a bundle is complete or absent, and one that appeared meanwhile is never overwritten
 * (EVIDENCE_EXISTS). The caller removes `tmp` when this throws.
 */
export async function sealBundle(
  tmp: string,
  dir: string,
  manifest: unknown,
): Promise<{ manifestSha256: string; manifestBytes: number }> {
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  await writeFile(join(tmp, MANIFEST_FILE), text, { flag: 'wx', mode: 0o600 });
  try {
    // rename(2) fails on a non-empty target, so a bundle that appeared meanwhile survives.
    await rename(tmp, dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') throw bundleExists(dir);
    throw e;
  }
  return {
    manifestSha256: createHash('sha256').update(text).digest('hex'),
    manifestBytes: Buffer.byteLength(text),
  };
}

/** The bundle as SecurityAction status evidence: the manifest first, then every file. */
export function evidenceItems(bundle: EvidenceBundle): EvidenceItem[] {
  const uri = (path: string): string => pathToFileURL(join(bundle.dir, path)).href;
  return [
    { kind: 'manifest', uri: uri(MANIFEST_FILE), sha256: bundle.manifestSha256, bytes: bundle.manifestBytes },
    ...bundle.manifest.files.map((f) => ({
      kind: f.kind,
      uri: uri(f.path),
      sha256: f.sha256,
      bytes: f.bytes,
    })),
  ];
}

/** Re-hashes every file the manifest lists; returns the problems found (empty: intact). */
export async function verifyBundle(dir: string): Promise<string[]> {
  const manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as EvidenceManifest;
  const problems: string[] = [];
  for (const f of manifest.files) {
    // A manifest is data: never let it point outside its bundle.
    if (isAbsolute(f.path) || f.path.split('/').some((p) => p === '..' || p === '')) {
      problems.push(`${f.path}: path outside the bundle`);
      continue;
    }
    const path = join(dir, f.path);
    try {
      const actual = await hashFile(path);
      if (actual.sha256 !== f.sha256) problems.push(`${f.path}: sha256 mismatch`);
      if (actual.bytes !== f.bytes)
        problems.push(`${f.path}: size ${actual.bytes}, manifest says ${f.bytes}`);
    } catch {
      problems.push(`${f.path}: missing`);
    }
  }
  return problems;
}

async function collect(
  engine: ContainerEngine,
  nameOrId: string,
  dir: string,
  actionId: string,
  options: SnapshotOptions,
): Promise<EvidenceManifest> {
  const info = await engine.inspect(nameOrId);
  const id = info.id;
  const files: EvidenceFile[] = [];
  const notes: string[] = [];
  const add = async (kind: EvidenceKind, path: string, source: Source): Promise<void> => {
    files.push({ kind, path, ...(await writeHashed(join(dir, path), source)) });
  };
  const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

  await add('inspect', 'inspect.json', json(await engine.inspectRaw(id)));
  // Processes and sockets first: they are what changes fastest.
  if (info.running && info.pid) {
    try {
      await assertPidInContainer(info.pid, id);
      const processes = await containerProcesses(info.pid);
      const sockets = await containerSockets(info.pid, processes);
      await add('processes', 'processes.json', json(processes));
      await add('sockets', 'sockets.json', json(sockets));
    } catch (e) {
      notes.push(`processes and sockets not collected: ${(e as Error).message}`);
    }
  } else {
    notes.push('container not running: no processes or sockets to collect');
  }
  const logs = await engine.logs(id);
  await mkdir(join(dir, 'logs'));
  await add('logs', 'logs/stdout.log', logs.stdout);
  await add('logs', 'logs/stderr.log', logs.stderr);
  await add('changes', 'changes.json', json(await engine.changes(id)));
  if (info.upperDir !== undefined) {
    const diff = await tarDirectory(info.upperDir, join(dir, 'filesystem-diff.tar'), options.tarPath);
    if (diff.written) files.push({ kind: 'filesystem-diff', path: 'filesystem-diff.tar', ...diff.written });
    if (diff.note !== undefined) notes.push(diff.note);
  } else {
    notes.push('the engine does not expose the writable layer: no filesystem-diff.tar (see changes.json)');
  }
  if (options.exportFilesystem ?? true) {
    await add('filesystem-export', 'filesystem.tar', await engine.exportFilesystem(id));
  }
  return {
    format: MANIFEST_FORMAT,
    actionId,
    createdAt: (options.now?.() ?? new Date()).toISOString(),
    container: {
      id,
      name: info.name,
      image: info.image,
      imageId: info.imageId,
      pid: info.pid,
      running: info.running,
    },
    files,
    notes,
  };
}

/**
 * Archives the writable layer with GNU tar (links archived as links, never followed; overlay
 * whiteouts kept as the character devices they are). The note says when it is incomplete.
 */
async function tarDirectory(
  source: string,
  target: string,
  tarPath = 'tar',
): Promise<{ written?: { sha256: string; bytes: number }; note?: string }> {
  if (!isAbsolute(source) || !(await stat(source).catch(() => undefined))?.isDirectory()) {
    return {
      note: `writable layer ${source} is not a readable directory on this host: no filesystem-diff.tar`,
    };
  }
  const child = spawn(tarPath, ['--numeric-owner', '--one-file-system', '-C', source, '-cf', '-', '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res, rej) => {
    child.on('error', rej);
    child.on('close', res);
  });
  const written = await writeHashed(target, child.stdout);
  const code = await exited;
  const why = err.trim().split('\n')[0] ?? '';
  // GNU tar exits 1 when files changed while it read them: the archive is still usable.
  if (code === 1) return { written, note: `writable layer changed while it was archived: ${why}` };
  if (code === 0) return { written };
  await rm(target, { force: true });
  return { note: `archiving the writable layer failed (exit ${code}): ${why}` };
}

/** Writes `source` to a new file (never replacing one) and returns its SHA-256 and size. */
export async function writeHashed(path: string, source: Source): Promise<{ sha256: string; bytes: number }> {
  if (typeof source === 'string' || Buffer.isBuffer(source)) {
    await writeFile(path, source, { flag: 'wx', mode: 0o600 });
    return { sha256: createHash('sha256').update(source).digest('hex'), bytes: Buffer.byteLength(source) };
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  await pipeline(source, tap, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
  return { sha256: hash.digest('hex'), bytes };
}

async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined)) !== undefined;
}

function bundleExists(dir: string): ContainmentError {
  return new ContainmentError(
    ErrorCodes.EVIDENCE_EXISTS,
    `an evidence bundle already exists at ${dir}; bundles are never overwritten`,
  );
}
