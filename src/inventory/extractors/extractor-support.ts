/** Helpers shared by the package extractors: reading databases without ever looking clean by accident. */
import { StringDecoder } from 'node:string_decoder';
import { ErrorCodes, isContainmentError } from '../../errors.js';
import type { InventoryContext } from '../context.js';
import type { RootFsStat } from '../fs/root-fs.js';
import type { Package } from '../types.js';

/**
 * Reads a whole file through the safe RootFs, for formats that cannot be streamed (JSON, zip,
 * ELF). Over `maxBytes` is a `PACKAGE_DB_TOO_LARGE` gap; a path that exists but is not a regular
 * file, or cannot be read, is a gap too. Undefined in those cases and when the path is gone.
 */
export async function readFileOrNote(
  ctx: InventoryContext,
  extractor: string,
  path: string,
  maxBytes: number,
): Promise<Buffer | undefined> {
  try {
    const bytes = await ctx.fs.readFile(path, { maxBytes });
    if (bytes === undefined) await databaseExists(ctx, extractor, path);
    return bytes;
  } catch (e) {
    if (isContainmentError(e) && e.code === ErrorCodes.FILE_TOO_LARGE) {
      ctx.gap('PACKAGE_DB_TOO_LARGE', extractor, path, e.message);
      return undefined;
    }
    throw e;
  }
}

/**
 * Whether a regular file is at `path`. False when nothing is there; false with a gap when
 * something is there that is not a readable regular file (a FIFO, a device, a directory, a link
 * that leads nowhere): a database that exists but cannot be read must never look like no database.
 */
export async function databaseExists(
  ctx: InventoryContext,
  extractor: string,
  path: string,
): Promise<boolean> {
  const own = await ctx.fs.lstat(path);
  if (own === undefined) return false;
  const target = await ctx.fs.stat(path);
  if (target === undefined) {
    ctx.gap('PACKAGE_DB_UNREADABLE', extractor, path, 'a link that leads nowhere');
    return false;
  }
  if (target.type !== 'file') {
    reportNotAFile(ctx, extractor, path, target);
    return false;
  }
  return true;
}

/** Records a `PACKAGE_DB_NOT_A_FILE` gap for a database path holding something else. */
export function reportNotAFile(
  ctx: InventoryContext,
  extractor: string,
  path: string,
  stat: RootFsStat,
): void {
  const what = stat.type === 'directory' ? 'a directory' : 'a special file (FIFO, device or socket)';
  ctx.gap('PACKAGE_DB_NOT_A_FILE', extractor, path, `is ${what}, not a regular file; not read`);
}

export interface RecordStreamResult {
  /** Bytes read. */
  bytes: number;
  /** Records handed to `onRecord`. */
  records: number;
}

/** Per-record limit of the blank-line separated databases (dpkg, apk); a record past it is skipped. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

/**
 * Streams a database of blank-line separated records (dpkg status, apk installed) through
 * `onRecord`, one record's text at a time, so its size is bounded per record, not per file.
 * Records over `maxRecordBytes` are skipped with a `PACKAGE_RECORD_TOO_LARGE` gap; read failures
 * are gaps. A file that stops mid-line is `PACKAGE_DB_TRUNCATED` when its last record is then not
 * `complete` (test fixtures and hand edits often just lack the final newline; a cut record lacks
 * its fields). Undefined when there is no readable database at `path` (a gap says why when
 * something else is there).
 */
export async function streamRecords(
  ctx: InventoryContext,
  extractor: string,
  path: string,
  onRecord: (text: string) => void,
  complete: (lastRecord: string) => boolean,
  maxRecordBytes = MAX_RECORD_BYTES,
): Promise<RecordStreamResult | undefined> {
  if (!(await databaseExists(ctx, extractor, path))) return undefined;
  let last = '';
  const splitter = new RecordSplitter(maxRecordBytes, (text) => {
    last = text;
    onRecord(text);
  });
  try {
    for await (const chunk of ctx.fs.readChunks(path)) splitter.push(chunk);
  } catch (e) {
    if (!isContainmentError(e)) throw e;
    const code = e.code === ErrorCodes.FILE_NOT_REGULAR ? 'PACKAGE_DB_NOT_A_FILE' : 'PACKAGE_DB_UNREADABLE';
    ctx.gap(code, extractor, path, e.message);
    return undefined;
  }
  const { truncated, oversized } = splitter.end();
  if (oversized > 0) {
    ctx.gap(
      'PACKAGE_RECORD_TOO_LARGE',
      extractor,
      path,
      `${oversized} record(s) over the ${maxRecordBytes}-byte record limit skipped`,
    );
  }
  if (truncated && !complete(last)) {
    ctx.gap('PACKAGE_DB_TRUNCATED', extractor, path, 'ends in the middle of a record');
  }
  return { bytes: splitter.bytes, records: splitter.records };
}

/**
 * Splits a byte stream into blank-line separated records of `\n` (or `\r\n`) lines. Pure; memory
 * stays under about twice the record limit whatever the input.
 */
export class RecordSplitter {
  bytes = 0;
  records = 0;
  private readonly decoder = new StringDecoder('utf8');
  private carry = '';
  private lines: string[] = [];
  private size = 0;
  private overflow = false;
  private oversized = 0;

  constructor(
    private readonly maxRecordBytes: number,
    private readonly onRecord: (text: string) => void,
  ) {}

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    const text = this.carry + this.decoder.write(chunk);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      this.line(text.slice(start, nl));
      start = nl + 1;
    }
    this.carry = text.slice(start);
    if (this.carry.length > this.maxRecordBytes) {
      // One endless line: drop what we have; the record is skipped when it ends.
      this.overflow = true;
      this.lines = [];
      this.carry = '';
    }
  }

  /** Flushes the last record. `truncated`: the input did not end with a newline. */
  end(): { truncated: boolean; oversized: number } {
    const rest = this.carry + this.decoder.end();
    const truncated = rest !== '';
    if (rest !== '') this.line(rest);
    this.finishRecord();
    return { truncated, oversized: this.oversized };
  }

  private line(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      this.finishRecord();
      return;
    }
    if (this.overflow) return;
    this.size += line.length + 1;
    if (this.size > this.maxRecordBytes) {
      this.overflow = true;
      this.lines = [];
      return;
    }
    this.lines.push(line);
  }

  private finishRecord(): void {
    if (this.overflow) this.oversized += 1;
    else if (this.lines.length > 0) {
      this.records += 1;
      this.onRecord(this.lines.join('\n'));
    }
    this.lines = [];
    this.size = 0;
    this.overflow = false;
  }
}

/** Drops exact duplicates (same name, version and location), keeping the first. */
export function dedupePackages(packages: Package[]): Package[] {
  const seen = new Set<string>();
  return packages.filter((p) => {
    const key = `${p.name}\0${p.version}\0${p.location}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The message of an unknown thrown value, for notes. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
