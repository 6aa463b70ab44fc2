/**
 * Reads the headers of an uncompressed tar by offset, without reading member data: what lets an
 * image archive (and each uncompressed layer inside it) be used in place. tar-stream, used for
 * compressed streams, parses only sequentially and does not tell where a member's data lies, so
 * this small reader handles the formats image tools write: ustar (with prefix), pax extended
 * headers (`path`, `linkpath`, `size`, `mtime`, `uid`, `gid`) and GNU long names (`L`, `K`).
 */
import { ContainmentError, ErrorCodes } from '../../errors.js';

/** The subset of a tar header the layer logic uses; `type` uses tar-stream's names. */
export interface TarHeader {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname: string;
}

export interface TarMember extends TarHeader {
  /** Offset of the member's data from the start of the tar. */
  offset: number;
}

/** Reads `length` bytes at `offset`; returns fewer at the end of the data. */
export type ReadAt = (offset: number, length: number) => Buffer;

const BLOCK = 512;
/** Extended headers hold names and a few numbers; anything bigger is not one. */
const MAX_EXTENDED_BYTES = 1024 * 1024;
const TYPES: Record<string, string> = {
  '0': 'file',
  '\0': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  '7': 'contiguous-file',
};

function corrupt(what: string, message: string): ContainmentError {
  return new ContainmentError(
    ErrorCodes.ARCHIVE_CORRUPT,
    `${what} is not a readable tar archive: ${message}`,
  );
}

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

/** Octal, or GNU base-256 when the high bit of the first byte is set. */
function numeric(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if ((field[0] as number) & 0x80) {
    let value = (field[0] as number) & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] as number);
    return value;
  }
  const digits = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  return digits === '' ? 0 : parseInt(digits, 8);
}

function checksumOk(block: Buffer): boolean {
  let sum = 8 * 0x20; // the checksum field itself counts as spaces
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += block[i] as number;
  return sum === numeric(block, 148, 8);
}

function parsePax(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = parseInt(data.toString('latin1', at, space), 10);
    if (!(length > 0) || at + length > data.length) break;
    const record = data.toString('utf8', space + 1, at + length - 1); // drops the newline
    const eq = record.indexOf('=');
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return records;
}

/** Headers of small files lie close together: read them through a window, not one call each. */
function windowed(read: ReadAt): ReadAt {
  const WINDOW = 4096;
  let start = 0;
  let window: Buffer = Buffer.alloc(0);
  return (offset, length) => {
    if (offset >= start && offset + length <= start + window.length) {
      return window.subarray(offset - start, offset - start + length);
    }
    if (length > WINDOW) return read(offset, length);
    start = offset;
    window = read(offset, WINDOW);
    return window.subarray(0, Math.min(length, window.length));
  };
}

/**
 * Every member of the tar held in `[0, size)` of `read`, in order. Stops at the first zero block
 * or at the end. Throws ARCHIVE_CORRUPT (naming `what`) on a bad checksum or truncated data.
 */
export function indexTar(readAt: ReadAt, size: number, what: string): TarMember[] {
  const read = windowed(readAt);
  const members: TarMember[] = [];
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let at = 0;
  while (at + BLOCK <= size) {
    const block = read(at, BLOCK);
    if (block.length < BLOCK) throw corrupt(what, 'unexpected end of data');
    if (block[0] === 0 && block.every((b) => b === 0)) break;
    if (!checksumOk(block)) throw corrupt(what, `bad header checksum at offset ${at}`);
    const flag = String.fromCharCode(block[156] as number);
    let dataSize = numeric(block, 124, 12);
    const dataAt = at + BLOCK;
    const next = dataAt + Math.ceil(dataSize / BLOCK) * BLOCK;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (dataSize > MAX_EXTENDED_BYTES) throw corrupt(what, `extended header of ${dataSize} bytes`);
      const data = read(dataAt, dataSize);
      if (data.length < dataSize) throw corrupt(what, 'unexpected end of data');
      if (flag === 'x') pax = new Map([...pax, ...parsePax(data)]);
      else if (flag === 'L') longName = text(data, 0, data.length);
      else if (flag === 'K') longLink = text(data, 0, data.length);
      at = next; // 'g' (global) headers carry nothing the layer logic uses
      continue;
    }
    let name = text(block, 0, 100);
    if (block.toString('latin1', 257, 262) === 'ustar') {
      const prefix = text(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const paxSize = pax.get('size');
    if (paxSize !== undefined) dataSize = Number(paxSize);
    const member: TarMember = {
      name: pax.get('path') ?? longName ?? name,
      type: TYPES[flag] ?? `type ${JSON.stringify(flag)}`,
      mode: numeric(block, 100, 8),
      uid: pax.has('uid') ? Number(pax.get('uid')) : numeric(block, 108, 8),
      gid: pax.has('gid') ? Number(pax.get('gid')) : numeric(block, 116, 8),
      size: dataSize,
      mtime: pax.has('mtime') ? Number(pax.get('mtime')) : numeric(block, 136, 12),
      linkname: pax.get('linkpath') ?? longLink ?? text(block, 157, 100),
      offset: dataAt,
    };
    const hasData =
      member.type === 'file' || member.type === 'contiguous-file' || member.type.startsWith('type');
    const end = dataAt + (hasData ? dataSize : 0);
    if (!Number.isSafeInteger(dataSize) || dataSize < 0 || end > size) {
      throw corrupt(what, `member ${JSON.stringify(member.name)} runs past the end of the data`);
    }
    if (!hasData) member.size = 0;
    members.push(member);
    pax = new Map();
    longName = longLink = undefined;
    at = hasData ? dataAt + Math.ceil(dataSize / BLOCK) * BLOCK : next;
  }
  return members;
}
