/**
 * RPM packages from the SQLite rpm database (`rpmdb.sqlite`, rpm ≥ 4.16: RHEL 9, Fedora 33+,
 * Rocky/Alma 9, openSUSE …) in `/var/lib/rpm` or `/usr/lib/sysimage/rpm`. Berkeley DB
 * (`Packages`) and NDB (`Packages.db`) databases are reported as unsupported.
 *
 * The database is read through the root's safe reader into memory and deserialized there, so no
 * link inside the container can make SQLite open a host file, and nothing is ever written.
 * rpm keeps the file in WAL mode, which SQLite refuses to deserialize; the copy's header is
 * switched to rollback mode, which reads the same pages. Changes still in a `-wal` file (rpm
 * checkpoints when it exits) are not seen; a note says so when that file is not empty.
 *
 * Each `Packages.blob` is an rpm header without the lead: il and dl (big-endian u32), il index
 * entries of 16 bytes (tag, type, offset, count), then dl bytes of data. Every offset and count
 * read is checked against the blob: a malformed header becomes a note, never an out-of-range read.
 */
import { rpmEcosystems } from '../../versions/index.js';
import Database from 'better-sqlite3';
import type { InventoryContext, PackageExtractor } from '../context.js';
import type { OsInfo, Package } from '../types.js';
import { readFileOrNote } from './extractor-support.js';
import { distroQualifier, osPackageEcosystem, packageUrl } from './os-package.js';

const DB_DIRS = ['/var/lib/rpm', '/usr/lib/sysimage/rpm'];
/** rpm databases of large hosts reach a few hundred MiB; containers are far smaller. */
const MAX_DB_BYTES = 512 * 1024 * 1024;
/** rpm's own header limits (hdrchkTags / hdrchkData). */
const MAX_INDEX_ENTRIES = 0xffff;
const MAX_DATA_BYTES = 0x0fffffff;

const TAG = { NAME: 1000, VERSION: 1001, RELEASE: 1002, EPOCH: 1003, ARCH: 1022, SOURCERPM: 1044 } as const;
const TYPE = { INT32: 4, STRING: 6, STRING_ARRAY: 8, I18NSTRING: 9 } as const;

export interface RpmHeader {
  name: string;
  version: string;
  release?: string;
  epoch?: number;
  arch?: string;
  sourceRpm?: string;
}

export class RpmHeaderError extends Error {
  override readonly name = 'RpmHeaderError';
}

/** Parse the tags we need from one header blob (pure). Throws RpmHeaderError when malformed. */
export function parseRpmHeader(blob: Uint8Array): RpmHeader {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (blob.byteLength < 8) throw new RpmHeaderError(`header of ${blob.byteLength} bytes is truncated`);
  const il = view.getUint32(0);
  const dl = view.getUint32(4);
  if (il < 1 || il > MAX_INDEX_ENTRIES) throw new RpmHeaderError(`implausible index count ${il}`);
  if (dl > MAX_DATA_BYTES) throw new RpmHeaderError(`implausible data length ${dl}`);
  const dataStart = 8 + 16 * il;
  if (dataStart + dl > blob.byteLength) {
    throw new RpmHeaderError(`header claims ${dataStart + dl} bytes but has ${blob.byteLength}`);
  }
  const data = blob.subarray(dataStart, dataStart + dl);

  const entries = new Map<number, { type: number; offset: number; count: number }>();
  for (let i = 0; i < il; i++) {
    const at = 8 + 16 * i;
    const tag = view.getUint32(at);
    if (!entries.has(tag)) {
      entries.set(tag, {
        type: view.getUint32(at + 4),
        offset: view.getUint32(at + 8),
        count: view.getUint32(at + 12),
      });
    }
  }

  const string = (tag: number): string | undefined => {
    const e = entries.get(tag);
    if (!e) return undefined;
    if (e.type !== TYPE.STRING && e.type !== TYPE.STRING_ARRAY && e.type !== TYPE.I18NSTRING) {
      throw new RpmHeaderError(`tag ${tag} has type ${e.type}, expected a string`);
    }
    if (e.count < 1 || e.offset >= dl) throw new RpmHeaderError(`tag ${tag} points outside the header data`);
    const end = data.indexOf(0, e.offset);
    if (end === -1) throw new RpmHeaderError(`tag ${tag} string is not terminated inside the header data`);
    return Buffer.from(data.buffer, data.byteOffset + e.offset, end - e.offset).toString('utf8');
  };
  const int32 = (tag: number): number | undefined => {
    const e = entries.get(tag);
    if (!e) return undefined;
    if (e.type !== TYPE.INT32) throw new RpmHeaderError(`tag ${tag} has type ${e.type}, expected INT32`);
    if (e.count < 1 || e.offset > dl - 4)
      throw new RpmHeaderError(`tag ${tag} points outside the header data`);
    return view.getInt32(dataStart + e.offset);
  };

  const name = string(TAG.NAME);
  const version = string(TAG.VERSION);
  if (!name) throw new RpmHeaderError('no NAME tag');
  if (!version) throw new RpmHeaderError(`${name} has no VERSION tag`);
  const header: RpmHeader = { name, version };
  const release = string(TAG.RELEASE);
  if (release) header.release = release;
  const epoch = int32(TAG.EPOCH);
  if (epoch !== undefined) header.epoch = epoch;
  const arch = string(TAG.ARCH);
  if (arch) header.arch = arch;
  const sourceRpm = string(TAG.SOURCERPM);
  if (sourceRpm) header.sourceRpm = sourceRpm;
  return header;
}

/** `[epoch:]version[-release]`, the form the RPM comparator and OSV records use. */
export function rpmEvr(h: Pick<RpmHeader, 'epoch' | 'version' | 'release'>): string {
  const vr = h.release ? `${h.version}-${h.release}` : h.version;
  return h.epoch !== undefined ? `${h.epoch}:${vr}` : vr;
}

/**
 * `openssl-3.0.7-27.el9.src.rpm` → name `openssl`, version `3.0.7-27.el9`. The source rpm's
 * file name carries no epoch; it is built from the same spec as the binary, so the binary's
 * epoch is its epoch too.
 */
export function parseSourceRpm(
  file: string,
  epoch: number | undefined,
): { name: string; version: string } | undefined {
  const m = file.match(/^(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm$/);
  if (!m?.[1] || !m[2] || !m[3]) return undefined;
  return { name: m[1], version: rpmEvr({ epoch, version: m[2], release: m[3] }) };
}

/** A header as a Package (pure); undefined for `gpg-pubkey` pseudo-packages (imported keys). */
export function rpmHeaderToPackage(
  h: RpmHeader,
  location: string,
  ecosystem: string,
  os?: OsInfo,
): Package | undefined {
  if (h.name === 'gpg-pubkey') return undefined;
  const pkg: Package = { name: h.name, version: rpmEvr(h), ecosystem, location, extractor: 'rpm' };
  const vendor = os?.id === 'rhel' ? 'redhat' : os?.id;
  if (vendor) {
    pkg.purl = packageUrl('rpm', vendor, h.name, h.release ? `${h.version}-${h.release}` : h.version, {
      arch: h.arch,
      distro: distroQualifier(os),
      epoch: h.epoch !== undefined ? String(h.epoch) : undefined,
    });
  }
  const source = h.sourceRpm ? parseSourceRpm(h.sourceRpm, h.epoch) : undefined;
  if (source) pkg.source = source;
  return pkg;
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** The bytes are not a readable rpm SQLite database; `truncated` when they end before its last page. */
export class RpmDatabaseError extends Error {
  override readonly name = 'RpmDatabaseError';
  constructor(
    message: string,
    readonly truncated = false,
  ) {
    super(message);
  }
}

/** Page size and page count from the SQLite file header (offsets 16 and 28). */
function sqliteDeclaredBytes(bytes: Buffer): number {
  const raw = bytes.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  return pageSize * bytes.readUInt32BE(28);
}

/**
 * Headers of an rpmdb.sqlite image (pure: the bytes are deserialized in memory). Malformed
 * headers are returned as errors beside the good ones. Throws RpmDatabaseError when the bytes are
 * not an rpm SQLite database, or are cut short.
 */
export function readRpmSqlite(bytes: Buffer): { headers: RpmHeader[]; errors: string[] } {
  if (bytes.length < 100 || !bytes.subarray(0, 16).equals(SQLITE_MAGIC)) {
    throw new RpmDatabaseError('not an SQLite database');
  }
  const declared = sqliteDeclaredBytes(bytes);
  if (declared > bytes.length) {
    throw new RpmDatabaseError(`${bytes.length} bytes, but its header declares ${declared}`, true);
  }
  const copy = Buffer.from(bytes);
  // Header bytes 18/19 are the read/write format versions: 2 = WAL, 1 = rollback journal.
  copy[18] = 1;
  copy[19] = 1;
  let db: Database.Database;
  let rows: Array<{ hnum: number; blob: unknown }>;
  try {
    db = new Database(copy, { readonly: true });
  } catch (e) {
    throw new RpmDatabaseError(`cannot be opened (${(e as Error).message})`);
  }
  try {
    rows = db.prepare('SELECT hnum, blob FROM Packages ORDER BY hnum').all() as typeof rows;
  } catch (e) {
    // SQLite reports corruption (and a missing table) as errors; anything else is ours to see.
    if (!(e instanceof Database.SqliteError)) throw e;
    throw new RpmDatabaseError(`cannot be read (${e.message})`);
  } finally {
    db.close();
  }
  const headers: RpmHeader[] = [];
  const errors: string[] = [];
  for (const row of rows) {
    if (!(row.blob instanceof Uint8Array)) {
      errors.push(`header ${row.hnum}: not a blob`);
      continue;
    }
    try {
      headers.push(parseRpmHeader(row.blob));
    } catch (e) {
      if (!(e instanceof RpmHeaderError)) throw e;
      errors.push(`header ${row.hnum}: ${e.message}`);
    }
  }
  return { headers, errors };
}

async function extractSqlite(
  ctx: InventoryContext,
  path: string,
  ecosystem: () => string,
): Promise<Package[]> {
  const bytes = await readFileOrNote(ctx, 'rpm', path, MAX_DB_BYTES);
  if (bytes === undefined) return [];
  let result: { headers: RpmHeader[]; errors: string[] };
  try {
    result = readRpmSqlite(bytes);
  } catch (e) {
    if (!(e instanceof RpmDatabaseError)) throw e;
    ctx.gap(e.truncated ? 'PACKAGE_DB_TRUNCATED' : 'PACKAGE_DB_CORRUPT', 'rpm', path, e.message);
    return [];
  }
  if ((await ctx.fs.stat(`${path}-wal`))?.size) {
    ctx.note(`rpm: ${path}-wal holds changes not yet checkpointed; packages changed since are not seen`);
  }
  if (result.errors.length > 0) {
    ctx.gap(
      'PACKAGE_RECORD_INVALID',
      'rpm',
      path,
      `skipped ${result.errors.length} malformed package header(s) (first: ${result.errors[0]})`,
    );
  }
  const eco = result.headers.length > 0 ? ecosystem() : '';
  return result.headers.flatMap((h) => rpmHeaderToPackage(h, path, eco, ctx.os) ?? []);
}

export const rpmExtractor: PackageExtractor = {
  id: 'rpm',
  async extract(ctx) {
    let ecosystem: string | undefined;
    const lazyEcosystem = (): string =>
      (ecosystem ??= osPackageEcosystem(ctx, rpmEcosystems, 'Red Hat', 'rpm'));
    const seen = new Set<string>();
    const packages: Package[] = [];
    for (const dir of DB_DIRS) {
      const canonical = await ctx.fs.resolve(dir);
      if (canonical === undefined || seen.has(canonical)) continue;
      seen.add(canonical);
      if ((await ctx.fs.lstat(`${dir}/rpmdb.sqlite`)) !== undefined) {
        packages.push(...(await extractSqlite(ctx, `${dir}/rpmdb.sqlite`, lazyEcosystem)));
      } else if ((await ctx.fs.lstat(`${dir}/Packages`)) !== undefined) {
        ctx.gap(
          'PACKAGE_DB_UNSUPPORTED',
          'rpm',
          `${dir}/Packages`,
          'the rpm database in Berkeley DB format is not supported; its packages are not listed',
        );
      } else if ((await ctx.fs.lstat(`${dir}/Packages.db`)) !== undefined) {
        ctx.gap(
          'PACKAGE_DB_UNSUPPORTED',
          'rpm',
          `${dir}/Packages.db`,
          'the rpm database in NDB format is not supported; its packages are not listed',
        );
      }
    }
    return packages;
  },
};
