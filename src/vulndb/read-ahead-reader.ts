/**
 * A yauzl RandomAccessReader that serves small reads from a few 1 MiB read-ahead windows.
 * yauzl's own file reader issues two tiny reads per central-directory entry and one per local
 * header; with 100k-entry osv.dev archives those syscalls dominate the import. Two regions are
 * read sequentially and interleaved (central directory at the end, entry data from the start),
 * hence several windows with least-recently-used replacement.
 */
import { close, read } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';

const WINDOW_BYTES = 1024 * 1024;
const WINDOWS = 3;

interface Window {
  start: number;
  bytes: Buffer;
}

type ReadCallback = (err: Error | null, bytesRead?: number) => void;

export class ReadAheadReader extends yauzl.RandomAccessReader {
  /** Most recently used first. */
  private windows: Window[] = [];

  constructor(private readonly fd: number) {
    super();
  }

  override read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: ReadCallback,
  ): void {
    const hit = this.windows.find(
      (w) => position >= w.start && position + length <= w.start + w.bytes.length,
    );
    if (hit !== undefined) {
      this.windows = [hit, ...this.windows.filter((w) => w !== hit)];
      hit.bytes.copy(buffer, offset, position - hit.start, position - hit.start + length);
      process.nextTick(callback, null, length);
      return;
    }
    const chunk = Buffer.allocUnsafe(Math.max(length, WINDOW_BYTES));
    read(this.fd, chunk, 0, chunk.length, position, (err, bytesRead) => {
      if (err) return callback(err);
      this.windows = [{ start: position, bytes: chunk.subarray(0, bytesRead) }, ...this.windows].slice(
        0,
        WINDOWS,
      );
      const n = Math.min(length, bytesRead);
      chunk.copy(buffer, offset, 0, n);
      callback(null, n);
    });
  }

  /** `length` bytes at `position` (fewer at the end of the file), through the windows. */
  readRange(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    return new Promise((resolve, reject) => {
      this.read(buffer, 0, length, position, (err, bytesRead) => {
        if (err) reject(err);
        else resolve(buffer.subarray(0, bytesRead ?? 0));
      });
    });
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const stream = new PassThrough();
    const buffer = Buffer.allocUnsafe(end - start);
    this.read(buffer, 0, buffer.length, start, (err, bytesRead) => {
      if (err) stream.destroy(err);
      else stream.end(buffer.subarray(0, bytesRead));
    });
    return stream;
  }

  override close(callback: (err: Error | null) => void): void {
    close(this.fd, callback);
  }
}
