/**
 * Go modules compiled into ELF executables, read from the build information the Go linker
 * embeds (Go ≥ 1.13): the `.go.buildinfo` section starts with a 32-byte header
 *
 *   0..13  magic `\xff Go buildinf:`
 *   14     pointer size (4 or 8)
 *   15     flags: bit 0 = big-endian pointers, bit 1 = strings stored inline (Go ≥ 1.18)
 *
 * Inline format: at offset 32 the toolchain version and the module info follow as strings
 * prefixed with an unsigned LEB128 length. Older format: at offset 16 two pointers (virtual
 * addresses) to Go string headers `{ data pointer, length }` for the version and the module info.
 * The module info is wrapped in 16-byte sentinels and holds tab-separated lines: `path`, `mod`,
 * `dep` and `=>` (a replacement of the module on the line before), and `build` settings.
 *
 * Parsing is pure (Buffers in, data out); malformed input throws an Error whose message the
 * extractor turns into a note.
 */
import type { FileFilter, InventoryContext, PackageExtractor } from '../context.js';
import type { Package } from '../types.js';
import { dedupePackages, errorMessage, readFileOrNote } from './extractor-support.js';

const ID = 'go-binary';
const MAX_BINARY_BYTES = 256 * 1024 * 1024;
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const BUILDINFO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const HEADER_SIZE = 32;
const SENTINEL_SIZE = 16;
const SHT_NOBITS = 8;
const PT_LOAD = 1;

export interface GoModule {
  path: string;
  /** As recorded: `v1.2.3`, a pseudo-version, `(devel)` or empty for a local directory. */
  version: string;
  sum?: string;
  replace?: GoModule;
}

export interface GoBuildInfo {
  /** Toolchain version as recorded, e.g. `go1.22.3`. */
  goVersion: string;
  /** Package path of the main package. */
  path?: string;
  main?: GoModule;
  deps: GoModule[];
}

/** The bytes are not a readable Go binary's build information. */
export class GoBuildInfoError extends Error {
  override readonly name = 'GoBuildInfoError';
}

class Elf {
  readonly is64: boolean;
  readonly le: boolean;

  constructor(readonly buf: Buffer) {
    if (buf.length < 52 || !buf.subarray(0, 4).equals(ELF_MAGIC))
      throw new GoBuildInfoError('not an ELF file');
    const cls = buf[4];
    const data = buf[5];
    if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2))
      throw new GoBuildInfoError('unknown ELF class or byte order');
    this.is64 = cls === 2;
    this.le = data === 1;
    if (this.is64 && buf.length < 64) throw new GoBuildInfoError('truncated ELF header');
  }

  u16(off: number): number {
    return this.le ? this.buf.readUInt16LE(off) : this.buf.readUInt16BE(off);
  }

  u32(off: number): number {
    return this.le ? this.buf.readUInt32LE(off) : this.buf.readUInt32BE(off);
  }

  /** An address or offset word of this ELF class. */
  word(off: number): number {
    return this.is64 ? uint64(this.buf, off, this.le) : this.u32(off);
  }

  /** Section name → { offset, size, type }. Empty when the section header table is missing. */
  sections(): Map<string, { offset: number; size: number; type: number }> {
    const [shoff, shentsize, shnum, shstrndx] = this.is64
      ? [this.word(0x28), this.u16(0x3a), this.u16(0x3c), this.u16(0x3e)]
      : [this.word(0x20), this.u16(0x2e), this.u16(0x30), this.u16(0x32)];
    const out = new Map<string, { offset: number; size: number; type: number }>();
    if (shoff === 0 || shnum === 0 || shstrndx >= shnum) return out;
    const header = (i: number) => {
      const at = shoff + i * shentsize;
      return this.is64
        ? {
            name: this.u32(at),
            type: this.u32(at + 4),
            offset: this.word(at + 0x18),
            size: this.word(at + 0x20),
          }
        : {
            name: this.u32(at),
            type: this.u32(at + 4),
            offset: this.word(at + 0x10),
            size: this.word(at + 0x14),
          };
    };
    const names = header(shstrndx);
    if (shoff + shnum * shentsize > this.buf.length || names.offset + names.size > this.buf.length) {
      throw new GoBuildInfoError('truncated: section table lies past the end of the file');
    }
    for (let i = 0; i < shnum; i++) {
      const s = header(i);
      const start = names.offset + s.name;
      const end = this.buf.indexOf(0, start);
      if (end === -1 || end >= names.offset + names.size) continue;
      out.set(this.buf.toString('latin1', start, end), { offset: s.offset, size: s.size, type: s.type });
    }
    return out;
  }

  /** File offset of a virtual address, through the loadable segments. */
  offsetOf(address: number): number {
    const [phoff, phentsize, phnum] = this.is64
      ? [this.word(0x20), this.u16(0x36), this.u16(0x38)]
      : [this.word(0x1c), this.u16(0x2a), this.u16(0x2c)];
    for (let i = 0; i < phnum; i++) {
      const at = phoff + i * phentsize;
      if (this.u32(at) !== PT_LOAD) continue;
      const [offset, vaddr, filesz] = this.is64
        ? [this.word(at + 0x08), this.word(at + 0x10), this.word(at + 0x20)]
        : [this.word(at + 0x04), this.word(at + 0x08), this.word(at + 0x10)];
      if (address >= vaddr && address < vaddr + filesz) return offset + (address - vaddr);
    }
    throw new GoBuildInfoError(`address 0x${address.toString(16)} is outside every loadable segment`);
  }
}

function uint64(buf: Buffer, off: number, le: boolean): number {
  const v = le ? buf.readBigUInt64LE(off) : buf.readBigUInt64BE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GoBuildInfoError('64-bit value out of range');
  return Number(v);
}

/** Offset of the build info header, or undefined when this ELF carries none. */
function findHeader(elf: Elf): number | undefined {
  const sections = elf.sections();
  if (sections.size > 0) {
    const s = sections.get('.go.buildinfo');
    if (!s || s.type === SHT_NOBITS) return undefined;
    if (s.offset + HEADER_SIZE > elf.buf.length)
      throw new GoBuildInfoError('truncated: .go.buildinfo lies past the end of the file');
    return elf.buf.subarray(s.offset, s.offset + BUILDINFO_MAGIC.length).equals(BUILDINFO_MAGIC)
      ? s.offset
      : undefined;
  }
  // Section table stripped (sstrip and similar): the header is 16-byte aligned in the data segment.
  for (let at = elf.buf.indexOf(BUILDINFO_MAGIC); at !== -1; at = elf.buf.indexOf(BUILDINFO_MAGIC, at + 1)) {
    if (at % 16 === 0 && at + HEADER_SIZE <= elf.buf.length) return at;
  }
  return undefined;
}

/** Reads an unsigned LEB128 length and that many bytes. */
function readVarintString(buf: Buffer, start: number): { value: string; next: number } {
  let length = 0;
  let at = start;
  for (let shift = 0; ; shift += 7) {
    const byte = buf[at++];
    if (byte === undefined || shift > 28) throw new GoBuildInfoError('malformed build info length');
    length += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) break;
  }
  if (at + length > buf.length) throw new GoBuildInfoError('build info string runs past the end of the file');
  return { value: buf.toString('utf8', at, at + length), next: at + length };
}

/** A pointer of the build info's own size and byte order (pre-1.18 format). */
function readPointer(buf: Buffer, off: number, ptrSize: number, le: boolean): number {
  if (ptrSize === 8) return uint64(buf, off, le);
  return le ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
}

/** A Go string header `{ data, len }` at a virtual address (pre-1.18 format). */
function readGoString(elf: Elf, address: number, ptrSize: number, le: boolean): string {
  const header = elf.offsetOf(address);
  const data = readPointer(elf.buf, header, ptrSize, le);
  const length = readPointer(elf.buf, header + ptrSize, ptrSize, le);
  if (length === 0) return '';
  const start = elf.offsetOf(data);
  if (start + length > elf.buf.length)
    throw new GoBuildInfoError('build info string runs past the end of the file');
  return elf.buf.toString('utf8', start, start + length);
}

/** Drops the 16-byte sentinels the linker puts around the module info. */
function stripSentinels(modinfo: string): string {
  if (modinfo.length >= 2 * SENTINEL_SIZE + 1 && modinfo[modinfo.length - SENTINEL_SIZE - 1] === '\n') {
    return modinfo.slice(SENTINEL_SIZE, -SENTINEL_SIZE);
  }
  return modinfo;
}

/** Parses the module info text (sentinels already removed). */
export function parseGoModInfo(text: string): Omit<GoBuildInfo, 'goVersion'> {
  const info: Omit<GoBuildInfo, 'goVersion'> = { deps: [] };
  let last: GoModule | undefined;
  for (const line of text.split('\n')) {
    const [kind, path = '', version = '', sum] = line.split('\t');
    const mod: GoModule = sum ? { path, version, sum } : { path, version };
    if (kind === 'path') info.path = path;
    else if (kind === 'mod') last = info.main = mod;
    else if (kind === 'dep') info.deps.push((last = mod));
    else if (kind === '=>' && last) {
      last.replace = mod;
      last = undefined;
    }
  }
  return info;
}

/**
 * The build info of an ELF executable; undefined when the file is not a Go binary (no ELF magic,
 * no `.go.buildinfo`). Throws on a truncated or malformed file.
 */
export function readGoBuildInfo(file: Buffer): GoBuildInfo | undefined {
  if (!file.subarray(0, 4).equals(ELF_MAGIC)) return undefined;
  try {
    const elf = new Elf(file);
    const at = findHeader(elf);
    if (at === undefined) return undefined;
    const ptrSize = file[at + 14] as number;
    const flags = file[at + 15] as number;
    let goVersion: string;
    let modinfo: string;
    if (flags & 2) {
      const version = readVarintString(file, at + HEADER_SIZE);
      goVersion = version.value;
      modinfo = readVarintString(file, version.next).value;
    } else {
      if (ptrSize !== 4 && ptrSize !== 8) throw new GoBuildInfoError(`unsupported pointer size ${ptrSize}`);
      const le = (flags & 1) === 0;
      goVersion = readGoString(elf, readPointer(file, at + 16, ptrSize, le), ptrSize, le);
      modinfo = readGoString(elf, readPointer(file, at + 16 + ptrSize, ptrSize, le), ptrSize, le);
    }
    if (goVersion === '') return undefined;
    return { goVersion, ...parseGoModInfo(stripSentinels(modinfo)) };
  } catch (e) {
    if (e instanceof RangeError)
      throw new GoBuildInfoError(`truncated or malformed ELF (${e.message})`, { cause: e });
    throw e;
  }
}

/**
 * `go1.22.3` → `1.22.3`, `go1.20` → `1.20.0`, `go1.21rc2` → `1.21.0-rc.2` (the Go vulnerability
 * database's spelling); undefined for development toolchains.
 */
export function goToolchainVersion(goVersion: string): string | undefined {
  const m = /^go(\d+)\.(\d+)(?:\.(\d+))?(?:(beta|rc)(\d+))?(?:$|[^\d.])/.exec(goVersion);
  if (!m) return undefined;
  const base = `${m[1]}.${m[2]}.${m[3] ?? '0'}`;
  return m[4] ? `${base}-${m[4]}.${m[5]}` : base;
}

export function golangPurl(path: string, version: string): string {
  return `pkg:golang/${path.split('/').map(encodeURIComponent).join('/')}@${encodeURIComponent(version)}`;
}

/**
 * Packages of one binary: the standard library as `stdlib`, the main module unless it is
 * `(devel)`, and every dependency. A replaced module is reported as its replacement (that is the
 * code compiled in); a replacement by a local directory has no version and is left out.
 */
export function goBuildInfoToPackages(info: GoBuildInfo, location: string): Package[] {
  const packages: Package[] = [];
  const add = (name: string, version: string, purl: string) =>
    packages.push({ name, version, ecosystem: 'Go', purl, location, extractor: ID });
  const stdlib = goToolchainVersion(info.goVersion);
  if (stdlib) add('stdlib', stdlib, golangPurl('stdlib', stdlib));
  for (const mod of [...(info.main ? [info.main] : []), ...info.deps]) {
    const used = mod.replace ?? mod;
    if (used.version === '' || used.version === '(devel)') continue;
    add(used.path, used.version.replace(/^v/, ''), golangPurl(used.path, used.version));
  }
  return packages;
}

/**
 * Whether an executable may carry Go build info, from three small reads (ELF header, the
 * section-name table's header, the names) instead of the whole file: most executables of a
 * distribution are ELF but not Go, and reading each in full dominated scan time. Files without a
 * section table (stripped of it) are read in full, as the magic must then be searched for.
 */
export async function mayCarryGoBuildInfo(
  read: (offset: number, length: number) => Promise<Buffer | undefined>,
): Promise<boolean> {
  const head = await read(0, 64);
  if (!head || head.length < 4 || !head.subarray(0, 4).equals(ELF_MAGIC)) return false;
  let elf: Elf;
  try {
    elf = new Elf(head);
  } catch {
    return true; // let the full parse explain what is wrong
  }
  const [shoff, shentsize, shnum, shstrndx] = elf.is64
    ? [elf.word(0x28), elf.u16(0x3a), elf.u16(0x3c), elf.u16(0x3e)]
    : [elf.word(0x20), elf.u16(0x2e), elf.u16(0x30), elf.u16(0x32)];
  if (shoff === 0 || shnum === 0 || shstrndx >= shnum) return true;
  const entry = await read(shoff + shstrndx * shentsize, shentsize);
  if (!entry || entry.length < (elf.is64 ? 0x28 : 0x18)) return true;
  const at = (off: number): number =>
    elf.is64 ? uint64(entry, off, elf.le) : elf.le ? entry.readUInt32LE(off) : entry.readUInt32BE(off);
  const namesSize = at(elf.is64 ? 0x20 : 0x14);
  const names = await read(at(elf.is64 ? 0x18 : 0x10), namesSize);
  // A short read means a truncated file: the full parse reports it.
  return !names || names.length < namesSize || names.includes(GO_BUILDINFO_NAME);
}

const GO_BUILDINFO_NAME = Buffer.from('.go.buildinfo\0', 'latin1');

/** An executable file big enough to hold an ELF header. */
const mayBeGoBinary: FileFilter = ({ stat }) =>
  stat.type === 'file' && (stat.mode & 0o111) !== 0 && stat.size >= 64;

export const goBinaryExtractor: PackageExtractor = {
  id: ID,
  relevant: mayBeGoBinary,
  async extract(ctx: InventoryContext): Promise<Package[]> {
    const packages: Package[] = [];
    for (const entry of ctx.files) {
      if (!mayBeGoBinary(entry)) continue;
      const { path } = entry;
      if (!(await mayCarryGoBuildInfo((offset, length) => ctx.fs.readRange(path, offset, length)))) continue;
      const file = await readFileOrNote(ctx, ID, path, MAX_BINARY_BYTES);
      if (!file) continue;
      try {
        const info = readGoBuildInfo(file);
        if (info) packages.push(...goBuildInfoToPackages(info, path));
      } catch (e) {
        ctx.gap('PACKAGE_DB_CORRUPT', ID, path, `build information unreadable: ${errorMessage(e)}`);
      }
    }
    return dedupePackages(packages);
  },
};
