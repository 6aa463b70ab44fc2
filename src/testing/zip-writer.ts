/**
 * Writing zip archives for tests and benchmarks (no zip writer is installed): OSV `all.zip`
 * stand-ins, Java archives, and hostile ones (a lying uncompressed size). `buildZip` makes a
 * small archive in memory; `ZipWriter` streams a large one to a file, with Zip64 end records past
 * 65,535 entries as an osv.dev-sized `all.zip` needs. Sizes and offsets stay 32-bit.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  data: string | Buffer;
  /** Deflate the data (default) or store it. */
  deflate?: boolean;
  /** Lie about the uncompressed size in the headers (hostile archives). */
  declaredSize?: number;
}

const UTF8_NAMES = 0x0800;
const DOS_DATE_1980 = 0x21; // fixed dates: the same entries give the same archive

/** The local header + name + body, and the central-directory record, of one entry at `offset`. */
function encodeEntry(entry: ZipEntry, offset: number): { local: Buffer[]; central: Buffer[] } {
  const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : entry.data;
  const deflate = entry.deflate ?? true;
  const body = deflate ? deflateRawSync(data) : data;
  const name = Buffer.from(entry.name, 'utf8');
  const fields = (h: Buffer, at: number): void => {
    h.writeUInt16LE(20, at); // version needed
    h.writeUInt16LE(UTF8_NAMES, at + 2);
    h.writeUInt16LE(deflate ? 8 : 0, at + 4);
    h.writeUInt16LE(0, at + 6); // time
    h.writeUInt16LE(DOS_DATE_1980, at + 8);
    h.writeUInt32LE(crc32(data), at + 10);
    h.writeUInt32LE(body.length, at + 14);
    h.writeUInt32LE(entry.declaredSize ?? data.length, at + 18);
    h.writeUInt16LE(name.length, at + 22);
  };
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  fields(local, 4);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4); // version made by
  fields(central, 6);
  central.writeUInt32LE(offset, 42);
  return { local: [local, name, body], central: [central, name] };
}

/** End records for `entries` entries whose central directory of `size` bytes starts at `offset`. */
function encodeEnd(entries: number, offset: number, size: number): Buffer[] {
  const out: Buffer[] = [];
  const zip64 = entries > 0xffff;
  if (zip64) {
    const end64 = Buffer.alloc(56);
    end64.writeUInt32LE(0x06064b50, 0);
    end64.writeBigUInt64LE(44n, 4);
    end64.writeUInt16LE(45, 12);
    end64.writeUInt16LE(45, 14);
    end64.writeBigUInt64LE(BigInt(entries), 24);
    end64.writeBigUInt64LE(BigInt(entries), 32);
    end64.writeBigUInt64LE(BigInt(size), 40);
    end64.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + size), 8);
    locator.writeUInt32LE(1, 16);
    out.push(end64, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(zip64 ? 0xffff : entries, 8);
  end.writeUInt16LE(zip64 ? 0xffff : entries, 10);
  end.writeUInt32LE(size, 12);
  end.writeUInt32LE(offset, 16);
  out.push(end);
  return out;
}

export function buildZip(entries: readonly ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const { local, central } = encodeEntry(entry, offset);
    locals.push(...local);
    centrals.push(...central);
    offset += local.reduce((n, b) => n + b.length, 0);
  }
  const directory = Buffer.concat(centrals);
  return Buffer.concat([...locals, directory, ...encodeEnd(entries.length, offset, directory.length)]);
}

/** Streams entries to a file; call `close()` to write the central directory. */
export class ZipWriter {
  private readonly fd: number;
  private offset = 0;
  private readonly central: Buffer[] = [];
  private entries = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  add(name: string, data: Buffer): void {
    const { local, central } = encodeEntry({ name, data }, this.offset);
    this.central.push(...central);
    this.entries++;
    this.write(local);
  }

  close(): void {
    const cdOffset = this.offset;
    this.write(this.central);
    if (this.offset > 0xfffffffe) throw new Error('zip archive over 4 GiB: not supported by this writer');
    this.write(encodeEnd(this.entries, cdOffset, this.offset - cdOffset));
    this.flush();
    closeSync(this.fd);
  }

  /** Buffers small writes: one syscall per entry would dominate for 100k small records. */
  private write(chunks: readonly Buffer[]): void {
    for (const chunk of chunks) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      this.offset += chunk.length;
    }
    if (this.pendingBytes > 4 * 1024 * 1024) this.flush();
  }

  private flush(): void {
    const data = Buffer.concat(this.pending);
    let written = 0;
    while (written < data.length) written += writeSync(this.fd, data, written);
    this.pending = [];
    this.pendingBytes = 0;
  }
}
