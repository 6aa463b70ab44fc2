/**
 * Image archives: `docker save` / `podman save` (docker-archive: `manifest.json`) and OCI image
 * layout archives (`oci-layout` + `index.json`), read in place: nothing is written to disk.
 *
 * The outer archive is indexed by its tar headers (`tar-index.ts`); an uncompressed layer inside
 * it is indexed the same way, and its files are read later by offset from the archive file. A
 * gzip or zstd layer is decompressed once while indexing: small files are kept in memory then
 * (within a budget), executables keep their first and last bytes (enough for the ELF headers the
 * Go extractor checks), and any other read streams that layer again. The layers are merged in
 * memory (`layer-tree.ts`: whiteouts, opaque directories, links resolved inside the image) and
 * read through `TreeRootFs`. A compressed outer archive (`docker save | gzip`) is streamed: once
 * for its manifests, once for its layers.
 *
 * The archive is hostile by assumption: see `layer-tree.ts` for the guarantees on entry names and
 * links; sizes are bounded per file and in total for what decompression produces.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import tar from 'tar-stream';
import type { Header } from 'tar-stream';
import { z } from 'zod';
import { ContainmentError, ErrorCodes, isContainmentError } from '../../errors.js';
import type { ImageConfig } from '../context.js';
import { cleanEntryName, LayerTree } from './layer-tree.js';
import type { Content } from './layer-tree.js';
import type { RootFs } from './root-fs.js';
import { indexTar } from './tar-index.js';
import type { TarHeader, TarMember } from './tar-index.js';
import { TreeRootFs } from './tree-root-fs.js';

export { cleanEntryName } from './layer-tree.js';

const GiB = 1024 * 1024 * 1024;
const MAX_LINKS = 40;
/** Manifests and configs are small; anything bigger is not one. */
const MAX_JSON_BYTES = 16 * 1024 * 1024;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

export interface ImageArchiveOptions {
  /** Unused: archives are read in place (kept for callers that pass it). */
  tmpDir?: string;
  /** Limit on the bytes decompression produces, all streams together (default 8 GiB). */
  maxTotalBytes?: number;
  /** Limit on a single file in a layer (default 4 GiB). */
  maxEntryBytes?: number;
  /** Memory for files kept while indexing compressed layers (default 256 MiB). */
  keepBytes?: number;
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
  fs: RootFs;
  image: ImageInfo;
  /** Things the user should know (skipped device nodes, …). */
  notes: string[];
  /** Releases the archive (nothing was unpacked). */
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

/** Files of a compressed layer up to this size are kept in memory while it is indexed. */
const KEEP_WHOLE_BYTES = 256 * 1024;
/** Bytes kept from the start and the end of a larger executable of a compressed layer. */
const KEEP_HEAD_BYTES = 4096;
const KEEP_TAIL_BYTES = 16 * 1024;
/** Total memory for kept bytes of compressed layers; past it, reads stream the layer again. */
const DEFAULT_KEEP_BUDGET = 256 * 1024 * 1024;

function corrupt(message: string): ContainmentError {
  return new ContainmentError(ErrorCodes.ARCHIVE_CORRUPT, message);
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] as string;
}

interface Budget {
  left: number;
  limit: number;
}

/** Counts bytes flowing through and fails the pipeline once `budget.left` is exhausted. */
function byteBudget(budget: Budget, what: string): Transform {
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

function sniff(magic: Buffer): Compression {
  if (magic.length >= 2 && magic[0] === 0x1f && magic[1] === 0x8b) return 'gzip';
  if (magic.length >= 4 && magic.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

function decompressor(compression: Compression): Transform[] {
  if (compression === 'gzip') return [createGunzip()];
  if (compression === 'zstd') return [createZstdDecompress()];
  return [];
}

/** The archive file, read by offset through one descriptor opened on demand. */
class ArchiveFile {
  private fd: number | undefined;
  constructor(
    readonly path: string,
    readonly size: number,
  ) {}

  read(offset: number, length: number): Buffer {
    this.fd ??= openSync(this.path, 'r');
    // Unsafe is fine: only the bytes read are returned.
    const buffer = Buffer.allocUnsafe(Math.max(0, Math.min(length, this.size - offset)));
    let done = 0;
    while (done < buffer.length) {
      const n = readSync(this.fd, buffer, done, buffer.length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buffer.subarray(0, done);
  }

  stream(offset: number, length: number): Readable {
    return length === 0
      ? Readable.from([])
      : createReadStream(this.path, { start: offset, end: offset + length - 1 });
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function toTarHeader(header: Header): TarHeader {
  return {
    name: header.name,
    type: header.type ?? 'file',
    mode: header.mode ?? 0o644,
    uid: header.uid ?? 0,
    gid: header.gid ?? 0,
    size: header.size ?? 0,
    mtime: header.mtime ? Math.floor(header.mtime.getTime() / 1000) : 0,
    linkname: header.linkname ?? '',
  };
}

/**
 * Streams the entries of a tar (plain, gzip or zstd, told by its first bytes) to `onEntry`, in
 * order. `hash`, when given, sees the bytes before decompression. Errors of the decompressor or
 * the tar parser become ARCHIVE_CORRUPT naming `what`.
 */
async function forEachTarEntry(
  bytes: Readable,
  what: string,
  budget: Budget,
  onEntry: (header: Header, body: AsyncIterable<Buffer>) => Promise<void>,
  hash?: ReturnType<typeof createHash>,
): Promise<void> {
  const source = await peeked(bytes);
  const extract = tar.extract();
  const hashing = hash
    ? [
        new Transform({
          transform(chunk: Buffer, _enc, callback) {
            hash.update(chunk);
            callback(null, chunk);
          },
        }),
      ]
    : [];
  let failure: unknown;
  // tar-stream's extractor is a streamx Writable; Node's pipeline drives it like any other.
  const sink = extract as unknown as NodeJS.WritableStream;
  const streams = [source.stream, ...hashing, ...decompressor(source.compression), byteBudget(budget, what)];
  const piped = pipeline([...streams, sink]).catch((e: unknown) => {
    failure ??= e;
  });
  try {
    for await (const entry of extract) {
      try {
        await onEntry(entry.header, entry as AsyncIterable<Buffer>);
        // An entry's body must be drained before the next header arrives.
        entry.resume();
      } catch (e) {
        if (isContainmentError(e)) throw e;
        throw corrupt(`cannot read ${what}: entry ${JSON.stringify(entry.header.name)}: ${errorText(e)}`);
      }
    }
  } catch (e) {
    failure ??= e;
    extract.destroy();
    source.stream.destroy();
  }
  await piped;
  if (failure === undefined) return;
  if (isContainmentError(failure)) throw failure;
  throw corrupt(`${what} is not a readable tar archive: ${errorText(failure)}`);
}

/** Reads the first chunk to tell the compression, and gives back a stream of all the bytes. */
async function peeked(bytes: Readable): Promise<{ compression: Compression; stream: Readable }> {
  const iterator = bytes[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await iterator.next();
  const head = first.done ? Buffer.alloc(0) : first.value;
  async function* all(): AsyncIterable<Buffer> {
    if (head.length > 0) yield head;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  }
  return { compression: sniff(head), stream: Readable.from(all(), { objectMode: false }) };
}

/** Where a layer blob is, and how to get its bytes. */
interface LayerBlob {
  name: string;
  digest?: string;
  /** Set when the blob lies uncompressed in the archive file: indexed and read in place. */
  inPlace?: { offset: number; size: number };
  bytes(): Readable;
}

/** What the plan needs of the outer archive: its small JSON members and its layer blobs. */
interface Blobs {
  has(name: string): boolean;
  json(name: string, what: string): { value: unknown; bytes: Buffer };
  layer(name: string, digest?: string): LayerBlob;
}

/** Archive members by cleaned name, with the archive's own links followed. */
class MemberNames<T> {
  readonly files = new Map<string, T>();
  readonly aliases = new Map<string, string>();

  add(header: { name: string; type: string; linkname: string }, value: T): void {
    const key = cleanEntryName(header.name).join('/');
    if (header.type === 'file' || header.type === 'contiguous-file') this.files.set(key, value);
    else if (header.type === 'symlink' && header.linkname) {
      const dir = key.split('/').slice(0, -1).join('/');
      const target = header.linkname.startsWith('/') ? header.linkname : `${dir}/${header.linkname}`;
      this.aliases.set(key, cleanEntryName(target).join('/'));
    } else if (header.type === 'link' && header.linkname) {
      this.aliases.set(key, cleanEntryName(header.linkname).join('/'));
    }
  }

  /** The canonical member name and its value, following the archive's links. */
  find(name: string): [string, T] | undefined {
    let key = cleanEntryName(name).join('/');
    for (let hops = 0; hops <= MAX_LINKS; hops++) {
      const value = this.files.get(key);
      if (value !== undefined) return [key, value];
      const next = this.aliases.get(key);
      if (next === undefined) return undefined;
      key = next;
    }
    return undefined;
  }
}

function parseJson(bytes: Buffer, name: string, what: string): { value: unknown; bytes: Buffer } {
  try {
    return { value: JSON.parse(bytes.toString('utf8')), bytes };
  } catch {
    throw corrupt(`${what} ${name} is not valid JSON`);
  }
}

function missing(name: string, what: string): ContainmentError {
  return corrupt(`${what} ${JSON.stringify(name)} is listed but missing from the archive`);
}

/** An uncompressed outer archive: members indexed by header, read by offset. */
function inPlaceBlobs(file: ArchiveFile): Blobs {
  const names = new MemberNames<TarMember>();
  for (const member of indexTar((o, l) => file.read(o, l), file.size, 'the archive')) {
    names.add(member, member);
  }
  return {
    has: (name) => names.find(name) !== undefined,
    json(name, what) {
      const member = names.find(name)?.[1];
      if (!member) throw missing(name, what);
      if (member.size > MAX_JSON_BYTES) throw corrupt(`${what} ${name} is implausibly large`);
      return parseJson(file.read(member.offset, member.size), name, what);
    },
    layer(name, digest) {
      const member = names.find(name)?.[1];
      if (!member) throw missing(name, 'layer');
      const compressed = sniff(file.read(member.offset, 4)) !== 'none';
      return {
        name,
        ...(digest ? { digest } : {}),
        ...(compressed ? {} : { inPlace: { offset: member.offset, size: member.size } }),
        bytes: () => file.stream(member.offset, member.size),
      };
    },
  };
}

/** A compressed outer archive: small members kept from one streaming pass, layers streamed. */
async function streamedBlobs(path: string, budget: Budget): Promise<Blobs> {
  const names = new MemberNames<Buffer | number>();
  await forEachTarEntry(createReadStream(path), 'the archive', budget, async (header, body) => {
    const h = toTarHeader(header);
    if (h.type !== 'file' && h.type !== 'contiguous-file') return names.add(h, 0);
    if (h.size > MAX_JSON_BYTES) return names.add(h, h.size); // a layer: streamed again when needed
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk);
    names.add(h, Buffer.concat(chunks));
  });
  return {
    has: (name) => names.find(name) !== undefined,
    json(name, what) {
      const found = names.find(name);
      if (!found) throw missing(name, what);
      if (typeof found[1] === 'number') throw corrupt(`${what} ${name} is implausibly large`);
      return parseJson(found[1], name, what);
    },
    layer(name, digest) {
      const found = names.find(name);
      if (!found) throw missing(name, 'layer');
      const [key, value] = found;
      return {
        name,
        ...(digest ? { digest } : {}),
        bytes: () => (typeof value === 'number' ? outerMember(path, key, budget) : Readable.from([value])),
      };
    },
  };
}

/** Ends a streaming pass early (identity-compared, so never mistaken for a real error). */
const STOP = new ContainmentError(ErrorCodes.ARCHIVE_CORRUPT, 'stop');

/** The bytes of one member of a compressed outer archive, streamed up to and through it. */
function outerMember(path: string, key: string, budget: Budget): Readable {
  const out = new PassThrough();
  forEachTarEntry(createReadStream(path), 'the archive', budget, async (header, body) => {
    if (cleanEntryName(header.name).join('/') !== key) return;
    for await (const chunk of body) {
      if (out.destroyed) break;
      if (!out.write(chunk))
        await new Promise((resolve) => out.once('drain', resolve).once('close', resolve));
    }
    throw STOP;
  }).then(
    () => out.destroy(corrupt(`layer ${key} is missing from the archive`)),
    (e: unknown) => (e === STOP ? out.end() : out.destroy(e as Error)),
  );
  return out;
}

/** Memory kept for compressed layers, shared by all layers of one archive. */
interface Keep {
  left: number;
}

/** Bytes of a file of a compressed layer: what was kept, or else that layer streamed again. */
class StreamedContent implements Content {
  constructor(
    private readonly refetch: () => Promise<Buffer>,
    private readonly size: number,
    private readonly head?: Buffer,
    private readonly tail?: Buffer,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    const end = offset + length;
    if (this.head && end <= this.head.length) return this.head.subarray(offset, end);
    if (this.tail && offset >= this.size - this.tail.length) {
      const base = this.size - this.tail.length;
      return this.tail.subarray(offset - base, end - base);
    }
    return (await this.refetch()).subarray(offset, end);
  }
}

/** Content of a file lying uncompressed in the archive file. */
function inPlaceContent(file: ArchiveFile, offset: number): Content {
  return { read: async (at, length) => file.read(offset + at, length) };
}

/** Indexes an uncompressed layer lying in the archive file: headers only, data left in place. */
function indexInPlace(
  file: ArchiveFile,
  blob: LayerBlob & { inPlace: { offset: number; size: number } },
  what: string,
): Array<{ header: TarHeader; content?: Content }> {
  const base = blob.inPlace.offset;
  return indexTar((o, l) => file.read(base + o, l), blob.inPlace.size, what).map((member) => ({
    header: member,
    ...(member.type === 'file' || member.type === 'contiguous-file'
      ? { content: inPlaceContent(file, base + member.offset) }
      : {}),
  }));
}

/**
 * Indexes a compressed layer in one streaming pass, keeping small files and the ends of
 * executables in memory (see KEEP_*); other bytes are fetched by streaming the layer again.
 */
async function indexStreamed(
  blob: LayerBlob,
  what: string,
  budget: Budget,
  keep: Keep,
  hash?: ReturnType<typeof createHash>,
): Promise<Array<{ header: TarHeader; content?: Content }>> {
  const entries: Array<{ header: TarHeader; content?: Content }> = [];
  let cached: { ordinal: number; data: Buffer } | undefined;
  const refetch = (ordinal: number) => async (): Promise<Buffer> => {
    if (cached?.ordinal === ordinal) return cached.data;
    let data: Buffer | undefined;
    let seen = 0;
    const unlimited = { left: Number.MAX_SAFE_INTEGER, limit: Number.MAX_SAFE_INTEGER };
    await forEachTarEntry(blob.bytes(), what, unlimited, async (_header, body) => {
      if (seen++ !== ordinal) return;
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk);
      data = Buffer.concat(chunks);
      throw STOP;
    }).catch((e: unknown) => {
      if (e !== STOP) throw e;
    });
    if (!data) throw corrupt(`${what} changed while being read`);
    cached = { ordinal, data };
    return data;
  };
  await forEachTarEntry(
    blob.bytes(),
    what,
    budget,
    async (raw, body) => {
      const header = toTarHeader(raw);
      const ordinal = entries.length;
      if (header.type !== 'file' && header.type !== 'contiguous-file') return void entries.push({ header });
      const whole = header.size <= KEEP_WHOLE_BYTES && keep.left >= header.size;
      const ends = !whole && (header.mode & 0o111) !== 0 && keep.left >= KEEP_HEAD_BYTES + KEEP_TAIL_BYTES;
      if (!whole && !ends)
        return void entries.push({ header, content: new StreamedContent(refetch(ordinal), header.size) });
      const chunks: Buffer[] = [];
      let head = Buffer.alloc(0);
      let tail = Buffer.alloc(0);
      for await (const chunk of body) {
        if (whole) chunks.push(chunk);
        else {
          if (head.length < KEEP_HEAD_BYTES)
            head = Buffer.concat([head, chunk.subarray(0, KEEP_HEAD_BYTES - head.length)]);
          tail = Buffer.concat([tail, chunk]);
          if (tail.length > KEEP_TAIL_BYTES) tail = Buffer.from(tail.subarray(tail.length - KEEP_TAIL_BYTES));
        }
      }
      if (whole) {
        const data = Buffer.concat(chunks);
        keep.left -= data.length;
        entries.push({ header, content: { read: async (o, l) => data.subarray(o, o + l) } });
      } else {
        keep.left -= head.length + tail.length;
        entries.push({ header, content: new StreamedContent(refetch(ordinal), header.size, head, tail) });
      }
    },
    hash,
  );
  return entries;
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
  layers: LayerBlob[];
}

function dockerPlan(staging: Blobs): Plan {
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
    layers: image.Layers.map((name) => staging.layer(name)),
  };
}

function blobName(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}

function ociBlob(staging: Blobs, digest: string, what: string): { value: unknown; bytes: Buffer } {
  const blob = staging.json(blobName(digest), what);
  if (sha256(blob.bytes) !== digest && digest.startsWith('sha256:')) {
    throw corrupt(`${what} ${digest} does not match its digest`);
  }
  return blob;
}

function ociPlan(staging: Blobs): Plan {
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
    return {
      info: {
        format: 'oci-archive',
        config: (configFile.config ?? {}) as ImageConfig,
        ...(tags.length ? { repoTags: tags } : {}),
        digest: chosen.digest,
        id: manifest.config.digest,
        layers: manifest.layers.length,
      },
      layers: manifest.layers.map((l) => staging.layer(blobName(l.digest), l.digest)),
    };
  }
}

/** The archive's outer compression, from its first bytes. */
function outerCompression(path: string): Compression {
  const file = new ArchiveFile(path, 4);
  try {
    return sniff(file.read(0, 4));
  } finally {
    file.close();
  }
}

/** Indexes every layer and merges them in manifest order. */
async function mergeLayers(
  plan: Plan,
  file: ArchiveFile,
  options: ImageArchiveOptions,
  budget: Budget,
): Promise<LayerTree> {
  const tree = new LayerTree();
  const keep: Keep = { left: options.keepBytes ?? DEFAULT_KEEP_BUDGET };
  const maxEntryBytes = options.maxEntryBytes ?? 4 * GiB;
  for (const [i, layer] of plan.layers.entries()) {
    const what = `layer ${i + 1} (${layer.digest ?? layer.name})`;
    const hash = layer.digest?.startsWith('sha256:') ? createHash('sha256') : undefined;
    let entries: Array<{ header: TarHeader; content?: Content }>;
    if (layer.inPlace) {
      const inPlace = layer.inPlace;
      entries = indexInPlace(file, { ...layer, inPlace }, what);
      if (hash) for await (const chunk of layer.bytes()) hash.update(chunk as Buffer);
    } else {
      entries = await indexStreamed(layer, what, budget, keep, hash);
    }
    if (hash && 'sha256:' + hash.digest('hex') !== layer.digest)
      throw corrupt(`${what} does not match its digest`);
    tree.startLayer(i);
    for (const { header, content } of entries) tree.apply(header, content, maxEntryBytes);
  }
  return tree;
}

/**
 * Opens an image archive in place: indexes it and its layers and returns a RootFs over the merged
 * view. Nothing is written to disk; `cleanup()` releases the archive's descriptor.
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
  const file = new ArchiveFile(path, stats.size);
  try {
    const blobs = outerCompression(path) === 'none' ? inPlaceBlobs(file) : await streamedBlobs(path, budget);
    let plan: Plan;
    if (blobs.has('manifest.json')) plan = dockerPlan(blobs);
    else if (blobs.has('oci-layout') && blobs.has('index.json')) plan = ociPlan(blobs);
    else throw corrupt(`${path} has neither manifest.json nor an OCI layout (oci-layout, index.json)`);

    const tree = await mergeLayers(plan, file, options, budget);
    const notes = [...tree.skipped].map(
      ([kind, paths]) =>
        `skipped ${paths.length} ${kind} entr${paths.length === 1 ? 'y' : 'ies'} (not created): ${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', …' : ''}`,
    );
    const fs = new TreeRootFs(tree.root, `image archive ${path}`, () => file.close());
    return { fs, image: plan.info, notes, cleanup: async () => file.close() };
  } catch (e) {
    file.close();
    if (isContainmentError(e)) throw e;
    throw corrupt(`cannot read ${path}: ${errorText(e)}`);
  }
}

/**
 * True when `path` is a regular file holding a tar (or gzip of a tar) with a top-level
 * `manifest.json` or `oci-layout`. Never throws.
 */
export async function isImageArchive(path: string): Promise<boolean> {
  const isMarker = (name: string): boolean => {
    const key = cleanEntryName(name).join('/');
    return key === 'manifest.json' || key === 'oci-layout';
  };
  try {
    const stats = statSync(path);
    if (!stats.isFile()) return false;
    if (outerCompression(path) === 'none') {
      const file = new ArchiveFile(path, stats.size);
      try {
        return indexTar((o, l) => file.read(o, l), file.size, 'the archive').some((m) => isMarker(m.name));
      } finally {
        file.close();
      }
    }
    let found = false;
    const unlimited = { left: Number.MAX_SAFE_INTEGER, limit: Number.MAX_SAFE_INTEGER };
    await forEachTarEntry(createReadStream(path), 'the archive', unlimited, async (header) => {
      if (isMarker(header.name)) {
        found = true;
        throw STOP; // the answer is known
      }
    }).catch((e: unknown) => {
      if (!found) throw e;
    });
    return found;
  } catch {
    return false;
  }
}
