/**
 * Image archives: `docker save` / `podman save` (docker-archive: `manifest.json`) and OCI image
 * layout archives (`oci-layout` + `index.json`). The layers are applied in order into a fresh
 * temporary directory, honouring whiteouts, and the result is read through `DirectoryRootFs`.
 *
 * The archive is hostile by assumption. Every entry name is cleaned lexically and may not climb
 * above the root (ARCHIVE_PATH_ESCAPE); parent directories are then resolved INSIDE the destination
 * exactly as `DirectoryRootFs` reads them (an image link `etc -> /host` means the image's `/host`),
 * so a link planted by an earlier entry or layer can never make a later one write on the host.
 * Hard links may only name files of the tree; devices and FIFOs are not created (an empty directory
 * stands in for each); owners are not set.
 *
 * The outer archive is staged first (each entry to a numbered file) because manifests may come
 * after the layers they list and layers must be applied in manifest order.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  createReadStream,
  fchmodSync,
  futimesSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  chmodSync,
} from 'node:fs';
import type { Stats } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import type { Header } from 'tar-stream';
import { z } from 'zod';
import { ContainmentError, ErrorCodes, isContainmentError } from '../../errors.js';
import type { ImageConfig } from '../context.js';
import { DirectoryRootFs } from './directory-root-fs.js';

const GiB = 1024 * 1024 * 1024;
const MAX_LINKS = 40;
/** Manifests and configs are small; anything bigger is not one. */
const MAX_JSON_BYTES = 16 * 1024 * 1024;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

export interface ImageArchiveOptions {
  /** Where the temporary directory is made (default: the OS temp dir). */
  tmpDir?: string;
  /** Limit on the bytes staged plus the decompressed layer streams (default 8 GiB). */
  maxTotalBytes?: number;
  /** Limit on a single file in a layer (default 4 GiB). */
  maxEntryBytes?: number;
}

export interface ImageInfo {
  format: 'docker-archive' | 'oci-archive';
  /** The `config` section of the image configuration (User, Env, …). */
  config: ImageConfig;
  repoTags?: string[];
  /** Manifest digest (OCI layout only: docker-archive has no manifest blob). */
  digest?: string;
  /** Image id: sha256 of the configuration blob. */
  id: string;
  layers: number;
}

export interface ImageArchive {
  fs: DirectoryRootFs;
  image: ImageInfo;
  /** Things the user should know (skipped device nodes, …). */
  notes: string[];
  /** Removes the unpacked tree. */
  cleanup(): Promise<void>;
}

const ConfigSection = z
  .object({
    User: z.string().optional(),
    Env: z.array(z.string()).nullish(),
    Entrypoint: z.array(z.string()).nullish(),
    Cmd: z.array(z.string()).nullish(),
    WorkingDir: z.string().optional(),
    ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
    Labels: z.record(z.string(), z.string()).nullish(),
  })
  .loose();
const ImageConfigFile = z.object({ config: ConfigSection.nullish() }).loose();
const DockerManifest = z
  .array(
    z.object({
      Config: z.string(),
      RepoTags: z.array(z.string()).nullish(),
      Layers: z.array(z.string()),
    }),
  )
  .min(1);
const Descriptor = z.object({
  mediaType: z.string().optional(),
  digest: z.string().regex(DIGEST),
  annotations: z.record(z.string(), z.string()).nullish(),
  platform: z.object({ architecture: z.string(), os: z.string() }).loose().optional(),
});
const OciIndex = z.object({ mediaType: z.string().optional(), manifests: z.array(Descriptor).min(1) });
const OciManifest = z.object({
  mediaType: z.string().optional(),
  config: Descriptor,
  layers: z.array(Descriptor),
});

function corrupt(message: string): ContainmentError {
  return new ContainmentError(ErrorCodes.ARCHIVE_CORRUPT, message);
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] as string;
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

/** Counts bytes flowing through and fails the pipeline once `budget.left` is exhausted. */
function byteBudget(budget: { left: number; limit: number }, what: string): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      budget.left -= chunk.length;
      if (budget.left < 0) {
        callback(
          new ContainmentError(
            ErrorCodes.FILE_TOO_LARGE,
            `${what} expands to more than the ${budget.limit}-byte limit`,
          ),
        );
      } else callback(null, chunk);
    },
  });
}

type Compression = 'none' | 'gzip' | 'zstd';

function sniff(file: string): Compression {
  const fd = openSync(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    const n = readSync(fd, magic, 0, 4, 0);
    if (n >= 2 && magic[0] === 0x1f && magic[1] === 0x8b) return 'gzip';
    if (n === 4 && magic.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    closeSync(fd);
  }
}

/**
 * Streams the entries of a tar file (plain or gzip) to `onEntry`, in order. Errors of the
 * decompressor or the tar parser become ARCHIVE_CORRUPT naming `what`.
 */
async function forEachTarEntry(
  file: string,
  what: string,
  budget: { left: number; limit: number },
  onEntry: (header: Header, body: AsyncIterable<unknown>) => Promise<void>,
): Promise<void> {
  const compression = sniff(file);
  if (compression === 'zstd') {
    throw new ContainmentError(
      ErrorCodes.TARGET_UNSUPPORTED,
      `${what} is zstd-compressed, which is not supported yet (re-save the image with gzip or no compression)`,
    );
  }
  const extract = tar.extract();
  const stages: NodeJS.ReadWriteStream[] = compression === 'gzip' ? [createGunzip()] : [];
  let failure: unknown;
  // tar-stream's extractor is a streamx Writable; Node's pipeline drives it like any other.
  const sink = extract as unknown as NodeJS.WritableStream;
  const streams = [createReadStream(file), ...stages, byteBudget(budget, what)];
  const piped = pipeline([...streams, sink]).catch((e: unknown) => {
    failure ??= e;
  });
  try {
    for await (const entry of extract) {
      try {
        await onEntry(entry.header, entry);
        // An entry's body must be drained before the next header arrives; bodies the callback
        // did not read would otherwise stall a large archive once its buffers fill.
        entry.resume();
      } catch (e) {
        if (isContainmentError(e)) throw e;
        throw corrupt(`cannot unpack ${what}: entry ${JSON.stringify(entry.header.name)}: ${errorText(e)}`);
      }
    }
  } catch (e) {
    failure ??= e;
    extract.destroy();
  }
  await piped;
  if (failure === undefined) return;
  if (isContainmentError(failure)) throw failure;
  throw corrupt(`${what} is not a readable tar archive: ${errorText(failure)}`);
}

/** The outer archive's regular files staged under numbered names, plus its links as aliases. */
class Staging {
  private readonly files = new Map<string, string>();
  private readonly aliases = new Map<string, string>();
  private count = 0;

  constructor(private readonly dir: string) {}

  async load(archive: string, budget: { left: number; limit: number }): Promise<void> {
    await forEachTarEntry(archive, 'the archive', budget, async (header, body) => {
      const key = cleanEntryName(header.name).join('/');
      if (header.type === 'file' || header.type === 'contiguous-file') {
        const file = join(this.dir, String(this.count++));
        const fd = openSync(file, 'wx', 0o600);
        try {
          for await (const chunk of body) writeSync(fd, chunk as Buffer);
        } finally {
          closeSync(fd);
        }
        this.files.set(key, file);
      } else if (header.type === 'symlink' && header.linkname) {
        const dir = key.split('/').slice(0, -1).join('/');
        const target = header.linkname.startsWith('/') ? header.linkname : `${dir}/${header.linkname}`;
        this.aliases.set(key, cleanEntryName(target).join('/'));
      } else if (header.type === 'link' && header.linkname) {
        this.aliases.set(key, cleanEntryName(header.linkname).join('/'));
      }
    });
  }

  has(name: string): boolean {
    return this.find(name) !== undefined;
  }

  /** The staged file of an archive member (following the archive's own links), if any. */
  find(name: string): string | undefined {
    let key = cleanEntryName(name).join('/');
    for (let hops = 0; hops <= MAX_LINKS; hops++) {
      const file = this.files.get(key);
      if (file) return file;
      const next = this.aliases.get(key);
      if (next === undefined) return undefined;
      key = next;
    }
    return undefined;
  }

  file(name: string, what: string): string {
    const file = this.find(name);
    if (!file) throw corrupt(`${what} ${JSON.stringify(name)} is listed but missing from the archive`);
    return file;
  }

  json(name: string, what: string): { value: unknown; bytes: Buffer } {
    const file = this.file(name, what);
    if (statSync(file).size > MAX_JSON_BYTES) throw corrupt(`${what} ${name} is implausibly large`);
    const bytes = readFileSync(file);
    try {
      return { value: JSON.parse(bytes.toString('utf8')), bytes };
    } catch {
      throw corrupt(`${what} ${name} is not valid JSON`);
    }
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw corrupt(
      `${what} is invalid: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : ''}`,
    );
  }
  return result.data;
}

function sha256(bytes: Buffer): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

interface Plan {
  info: ImageInfo;
  layers: Array<{ file: string; name: string; digest?: string }>;
}

function dockerPlan(staging: Staging): Plan {
  const manifest = parse(DockerManifest, staging.json('manifest.json', 'manifest').value, 'manifest.json');
  const image = manifest[0] as z.infer<typeof DockerManifest>[number];
  const config = staging.json(image.Config, 'image config');
  const configFile = parse(ImageConfigFile, config.value, `image config ${image.Config}`);
  return {
    info: {
      format: 'docker-archive',
      config: (configFile.config ?? {}) as ImageConfig,
      ...(image.RepoTags?.length ? { repoTags: image.RepoTags } : {}),
      id: sha256(config.bytes),
      layers: image.Layers.length,
    },
    layers: image.Layers.map((name) => ({ file: staging.file(name, 'layer'), name })),
  };
}

function blobName(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}

function ociBlob(staging: Staging, digest: string, what: string): { value: unknown; bytes: Buffer } {
  const blob = staging.json(blobName(digest), what);
  if (sha256(blob.bytes) !== digest && digest.startsWith('sha256:')) {
    throw corrupt(`${what} ${digest} does not match its digest`);
  }
  return blob;
}

function ociPlan(staging: Staging): Plan {
  let index = parse(OciIndex, staging.json('index.json', 'OCI index').value, 'index.json');
  const tags: string[] = [];
  // Nested indexes (multi-platform images) are followed to the manifest for this platform.
  for (let depth = 0; ; depth++) {
    const arch = { x64: 'amd64', arm64: 'arm64', arm: 'arm' }[process.arch as string] ?? process.arch;
    const chosen =
      index.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch) ??
      (index.manifests[0] as z.infer<typeof Descriptor>);
    const ref =
      chosen.annotations?.['io.containerd.image.name'] ??
      chosen.annotations?.['org.opencontainers.image.ref.name'];
    if (ref) tags.push(ref);
    const blob = ociBlob(staging, chosen.digest, 'manifest');
    const type = (blob.value as { mediaType?: unknown } | null)?.mediaType ?? chosen.mediaType;
    if ((type === OCI_INDEX || type === DOCKER_LIST) && depth < 4) {
      index = parse(OciIndex, blob.value, `index ${chosen.digest}`);
      continue;
    }
    const manifest = parse(OciManifest, blob.value, `manifest ${chosen.digest}`);
    const config = ociBlob(staging, manifest.config.digest, 'image config');
    const configFile = parse(ImageConfigFile, config.value, `image config ${manifest.config.digest}`);
    for (const layer of manifest.layers) {
      if (layer.mediaType?.includes('zstd')) {
        throw new ContainmentError(
          ErrorCodes.TARGET_UNSUPPORTED,
          `layer ${layer.digest} is zstd-compressed (${layer.mediaType}), which is not supported yet`,
        );
      }
    }
    return {
      info: {
        format: 'oci-archive',
        config: (configFile.config ?? {}) as ImageConfig,
        ...(tags.length ? { repoTags: tags } : {}),
        digest: chosen.digest,
        id: manifest.config.digest,
        layers: manifest.layers.length,
      },
      layers: manifest.layers.map((l) => ({
        file: staging.file(blobName(l.digest), 'layer'),
        name: l.digest,
        digest: l.digest,
      })),
    };
  }
}

function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT';
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Applies layer entries to `root`, resolving every parent directory inside it. */
class LayerWriter {
  /** In-root paths (joined by `/`) this layer created or entered: an opaque dir keeps only those. */
  private layerPaths = new Set<string>();
  readonly skipped = new Map<string, string[]>();

  constructor(
    private readonly root: string,
    private readonly maxEntryBytes: number,
  ) {}

  startLayer(): void {
    this.layerPaths = new Set();
  }

  private host(parts: readonly string[]): string {
    return parts.length === 0 ? this.root : join(this.root, ...parts);
  }

  /**
   * Resolves a directory path inside the root, following the image's links against the root
   * (never the kernel's view), creating missing directories when `create`. Returns the canonical
   * component list, or undefined when missing and not creating.
   */
  private resolveDir(parts: readonly string[], create: boolean, entry: string): string[] | undefined {
    const pending = [...parts].reverse();
    const done: string[] = [];
    let links = 0;
    while (pending.length > 0) {
      const part = pending.pop() as string;
      if (part === '..') {
        done.pop();
        continue;
      }
      const candidate = [...done, part];
      const stats = lstatOrUndefined(this.host(candidate));
      if (stats === undefined) {
        if (!create) return undefined;
        mkdirSync(this.host(candidate), 0o755);
      } else if (stats.isSymbolicLink()) {
        if (++links > MAX_LINKS)
          throw corrupt(`archive entry ${JSON.stringify(entry)}: too many levels of links`);
        const target = readlinkSync(this.host(candidate));
        if (target.startsWith('/')) done.length = 0;
        pending.push(
          ...target
            .split('/')
            .filter((c) => c !== '' && c !== '.')
            .reverse(),
        );
        continue;
      } else if (!stats.isDirectory()) {
        throw corrupt(`archive entry ${JSON.stringify(entry)}: /${candidate.join('/')} is not a directory`);
      }
      done.push(part);
      if (create) this.layerPaths.add(done.join('/'));
    }
    return done;
  }

  /** Removes whatever is at `parts` (a link is removed, never followed). */
  private clear(parts: readonly string[], keepDirectory: boolean): void {
    const path = this.host(parts);
    const stats = lstatOrUndefined(path);
    if (!stats || (keepDirectory && stats.isDirectory())) return;
    if (stats.isDirectory()) rmSync(path, { recursive: true, force: true });
    else unlinkSync(path);
  }

  private note(kind: string, path: string): void {
    const list = this.skipped.get(kind) ?? [];
    list.push(path);
    this.skipped.set(kind, list);
  }

  async apply(header: Header, body: AsyncIterable<unknown>): Promise<void> {
    const entry = header.name;
    const parts = cleanEntryName(entry);
    const base = parts.at(-1);
    if (base === undefined) return; // the root directory itself
    const dirParts = parts.slice(0, -1);

    if (base.startsWith('.wh.')) return this.whiteout(dirParts, base, entry);

    const type = header.type ?? 'file';
    if (type === 'character-device' || type === 'block-device' || type === 'fifo') {
      this.note(type, '/' + parts.join('/'));
      // Not created, but not absent either: an empty directory stands in for it, so a FIFO or
      // device where a package database belongs reads as "there, and not a file" (a gap of the
      // inventory), never as no database; like the node itself, it hides what lower layers had.
      const target = [...(this.resolveDir(dirParts, true, entry) as string[]), base];
      this.layerPaths.add(target.join('/'));
      this.clear(target, false);
      mkdirSync(this.host(target), 0o700);
      return;
    }
    if (!['file', 'contiguous-file', 'directory', 'symlink', 'link'].includes(type)) {
      this.note(type, '/' + parts.join('/'));
      return;
    }
    const dir = this.resolveDir(dirParts, true, entry) as string[];
    const target = [...dir, base];
    this.layerPaths.add(target.join('/'));
    const path = this.host(target);
    const mode = (header.mode ?? 0o644) & 0o7777;

    if (type === 'directory') {
      this.clear(target, true);
      // Owner rwx is kept so that later entries and cleanup work without root.
      if (lstatOrUndefined(path) === undefined) mkdirSync(path, 0o700);
      chmodSync(path, mode | 0o700); // a real directory, just checked: chmod cannot follow a link here
      return;
    }
    if (type === 'symlink') {
      this.clear(target, false);
      symlinkSync(header.linkname ?? '', path);
      return;
    }
    if (type === 'link') {
      const linkParts = cleanEntryName(header.linkname ?? '');
      const linkBase = linkParts.at(-1);
      const linkDir = this.resolveDir(linkParts.slice(0, -1), false, entry);
      const source = linkDir && linkBase !== undefined ? [...linkDir, linkBase] : undefined;
      const stats = source ? lstatOrUndefined(this.host(source)) : undefined;
      if (!source || !stats || stats.isDirectory()) {
        throw corrupt(
          `archive entry ${JSON.stringify(entry)}: hard link target ${JSON.stringify(header.linkname)} is not a file of the image`,
        );
      }
      this.clear(target, false);
      linkSync(this.host(source), path); // link(2) does not follow a link named by its source
      return;
    }
    const size = header.size ?? 0;
    if (size > this.maxEntryBytes) {
      throw new ContainmentError(
        ErrorCodes.FILE_TOO_LARGE,
        `archive entry ${JSON.stringify(entry)} is ${size} bytes, over the ${this.maxEntryBytes}-byte limit`,
      );
    }
    this.clear(target, false);
    const fd = openSync(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      for await (const chunk of body) writeSync(fd, chunk as Buffer);
      fchmodSync(fd, mode);
      if (header.mtime) futimesSync(fd, header.mtime, header.mtime);
    } finally {
      closeSync(fd);
    }
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
    else this.clear([...dir, name], false);
  }

  /** Opaque directory: removes everything below `dir` that this layer did not put there. */
  private prune(dir: string[]): void {
    for (const name of readdirSync(this.host(dir))) {
      const child = [...dir, name];
      if (!this.layerPaths.has(child.join('/'))) this.clear(child, false);
      else if (lstatSync(this.host(child)).isDirectory()) this.prune(child);
    }
  }
}

/**
 * Opens an image archive: stages it, applies its layers into a temporary directory and returns a
 * RootFs on the result. The caller must call `cleanup()`; on failure nothing is left behind.
 */
export async function openImageArchive(
  path: string,
  options: ImageArchiveOptions = {},
): Promise<ImageArchive> {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (e) {
    throw new ContainmentError(ErrorCodes.TARGET_NOT_FOUND, `cannot read ${path}: ${errorText(e)}`);
  }
  if (!stats.isFile())
    throw new ContainmentError(ErrorCodes.TARGET_UNSUPPORTED, `${path} is not an image archive file`);

  const maxTotalBytes = options.maxTotalBytes ?? 8 * GiB;
  const budget = { left: maxTotalBytes, limit: maxTotalBytes };
  const work = mkdtempSync(join(options.tmpDir ?? tmpdir(), 'containment-image-'));
  const cleanup = (): Promise<void> => rm(work, { recursive: true, force: true });
  try {
    const stagingDir = join(work, 'staging');
    const rootDir = join(work, 'rootfs');
    mkdirSync(stagingDir, 0o700);
    mkdirSync(rootDir, 0o755);
    const staging = new Staging(stagingDir);
    await staging.load(path, budget);

    let plan: Plan;
    if (staging.has('manifest.json')) plan = dockerPlan(staging);
    else if (staging.has('oci-layout') && staging.has('index.json')) plan = ociPlan(staging);
    else throw corrupt(`${path} has neither manifest.json nor an OCI layout (oci-layout, index.json)`);

    const writer = new LayerWriter(rootDir, options.maxEntryBytes ?? 4 * GiB);
    for (const [i, layer] of plan.layers.entries()) {
      writer.startLayer();
      const what = `layer ${i + 1} (${layer.name})`;
      const hash = layer.digest?.startsWith('sha256:') ? createHash('sha256') : undefined;
      if (hash) {
        for await (const chunk of createReadStream(layer.file)) hash.update(chunk as Buffer);
        if ('sha256:' + hash.digest('hex') !== layer.digest)
          throw corrupt(`${what} does not match its digest`);
      }
      await forEachTarEntry(layer.file, what, budget, (header, body) => writer.apply(header, body));
    }
    rmSync(stagingDir, { recursive: true, force: true });

    const notes = [...writer.skipped].map(
      ([kind, paths]) =>
        `skipped ${paths.length} ${kind} entr${paths.length === 1 ? 'y' : 'ies'} (not created): ${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', …' : ''}`,
    );
    const fs = new DirectoryRootFs(rootDir, `image archive ${path}`);
    return { fs, image: plan.info, notes, cleanup };
  } catch (e) {
    await cleanup();
    if (isContainmentError(e)) throw e;
    throw corrupt(`cannot unpack ${path}: ${errorText(e)}`);
  }
}

/**
 * True when `path` is a regular file holding a tar (or gzip of a tar) with a top-level
 * `manifest.json` or `oci-layout`. Never throws.
 */
export async function isImageArchive(path: string): Promise<boolean> {
  try {
    if (!statSync(path).isFile()) return false;
    let found = false;
    const unlimited = { left: Number.MAX_SAFE_INTEGER, limit: Number.MAX_SAFE_INTEGER };
    await forEachTarEntry(path, 'the archive', unlimited, async (header) => {
      const name = cleanEntryName(header.name).join('/');
      if (name === 'manifest.json' || name === 'oci-layout') {
        found = true;
        throw new Error('found'); // stop reading: the answer is known
      }
    }).catch((e: unknown) => {
      if (!found) throw e;
    });
    return found;
  } catch {
    return false;
  }
}
