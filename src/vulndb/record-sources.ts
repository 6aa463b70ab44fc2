/**
 * Reads OSV records from what a user points `containment db import` at: a directory (recursive,
 * `*.json`), one JSON file (a record or an array of records), or an osv.dev `all.zip`. Zips are
 * streamed entry by entry with yauzl (Debian's is hundreds of MB); entries are only read, never
 * written anywhere, so their names need no sanitising.
 */
import { closeSync, fstatSync, open as openCallback } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import yauzl from 'yauzl';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { ReadAheadReader } from './read-ahead-reader.js';
import type { AsyncAdvisoryStore, ImportItem, ImportReport } from './advisory-store.js';

const openFd = promisify(openCallback);

/**
 * No single OSV record comes close (the largest real ones are a few MiB); a larger file or zip
 * entry is reported invalid, per record, before a byte of it is read: a 100 MB `details` must not
 * be parsed into memory. A `.json` file holding an array counts as one record here.
 */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

export interface RecordSource {
  kind: 'directory' | 'json' | 'zip';
  /** Items expected; exact for zips and files, grows when a directory file holds an array. */
  total: number;
  items: AsyncIterable<ImportItem> | Iterable<ImportItem>;
}

export interface ImportProgress {
  processed: number;
  total: number;
}

/** Detects what `path` is and imports everything in it as one import. */
export async function importFromPath(
  store: AsyncAdvisoryStore,
  path: string,
  options: { onProgress?: (progress: ImportProgress) => void } = {},
): Promise<ImportReport> {
  const source = await openRecordSource(path);
  const { onProgress } = options;
  return store.importRecords(source.items, {
    source: path,
    onProgress: onProgress && ((processed) => onProgress({ processed, total: source.total })),
  });
}

export async function openRecordSource(path: string): Promise<RecordSource> {
  const info = await stat(path).catch((e: unknown) => {
    throw notReadable(path, e);
  });
  if (info.isDirectory()) return directorySource(path);
  if (!info.isFile()) {
    throw new ContainmentError(ErrorCodes.TARGET_UNSUPPORTED, `${path} is not a regular file or directory`);
  }
  if (path.endsWith('.zip') || (!path.endsWith('.json') && (await startsWithZipMagic(path)))) {
    return zipSource(path);
  }
  if (path.endsWith('.json')) {
    if (info.size > MAX_RECORD_BYTES) {
      return { kind: 'json', total: 1, items: [tooLarge(path, info.size)] };
    }
    const text = await readFile(path, 'utf8').catch((e: unknown) => {
      throw notReadable(path, e);
    });
    const items = parseJsonItems(text, path);
    return { kind: 'json', total: items.length, items };
  }
  throw new ContainmentError(
    ErrorCodes.TARGET_UNSUPPORTED,
    `${path} is neither a directory, a .json file nor a .zip archive of OSV records`,
  );
}

async function directorySource(dir: string): Promise<RecordSource> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((e: unknown) => {
    throw notReadable(dir, e);
  });
  const files = entries
    .filter((e) => e.name.endsWith('.json') && (e.isFile() || e.isSymbolicLink()))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  const source: RecordSource = { kind: 'directory', total: files.length, items: [] };
  source.items = (async function* () {
    for (const file of files) {
      const items = await readRecordFile(file);
      source.total += items.length - 1;
      yield* items;
    }
  })();
  return source;
}

/** A directory's file as import items; an unreadable or oversized one is one invalid item. */
async function readRecordFile(file: string): Promise<ImportItem[]> {
  const cannot = (e: unknown): ImportItem[] => [
    { record: undefined, origin: file, error: `cannot read: ${errorText(e)}` },
  ];
  try {
    const size = (await stat(file)).size;
    if (size > MAX_RECORD_BYTES) return [tooLarge(file, size)];
    return parseJsonItems(await readFile(file, 'utf8'), file);
  } catch (e) {
    return cannot(e);
  }
}

function tooLarge(origin: string, size: number): ImportItem {
  return {
    record: undefined,
    origin,
    error: `${size} bytes, over the ${MAX_RECORD_BYTES}-byte record limit; not read`,
  };
}

/** A file holds one record, or an array of records (each reported as `file[i]`). */
function parseJsonItems(text: string, origin: string): ImportItem[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return [{ record: undefined, origin, error: `not valid JSON: ${errorText(e)}` }];
  }
  if (Array.isArray(value)) return value.map((record, i) => ({ record, origin: `${origin}[${i}]` }));
  return [{ record: value, origin }];
}

async function zipSource(path: string): Promise<RecordSource> {
  // Opened once up front to fail early on a corrupt archive and learn the entry count, then
  // again when iterated, so a source that is never iterated holds no file open.
  const { zip: probe } = await openZip(path);
  probe.close();
  const source: RecordSource = { kind: 'zip', total: probe.entryCount, items: [] };
  source.items = (async function* () {
    const { zip, reader } = await openZip(path);
    try {
      for await (const entry of zip.eachEntry()) {
        const name = yauzl.getFileNameLowLevel(
          entry.generalPurposeBitFlag,
          entry.fileNameRaw,
          entry.extraFields,
          false,
        );
        const origin = `${path}!${name}`;
        if (!name.endsWith('.json')) {
          source.total--;
          continue;
        }
        if (Math.max(entry.uncompressedSize, entry.compressedSize) > MAX_RECORD_BYTES) {
          yield tooLarge(origin, Math.max(entry.uncompressedSize, entry.compressedSize));
          continue;
        }
        const text = await readEntryText(reader, entry).catch((e: unknown) => {
          throw corrupt(origin, e);
        });
        yield* parseJsonItems(text, origin);
      }
    } catch (e) {
      throw e instanceof ContainmentError ? e : corrupt(path, e);
    } finally {
      zip.close();
    }
  })();
  return source;
}

async function openZip(path: string): Promise<{ zip: yauzl.ZipFile; reader: ReadAheadReader }> {
  // A raw descriptor, not a FileHandle: the reader closes it when the zip is closed.
  const fd = await openFd(path, 'r').catch((e: unknown) => {
    throw notReadable(path, e);
  });
  // Names are decoded by hand (see zipSource): yauzl's own decoding rejects the whole archive
  // over one odd entry name, and names do not matter here. Not closed after the last entry:
  // entry data is read here (readEntryText), after yauzl has handed the entry out.
  const options = { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true };
  const reader = new ReadAheadReader(fd);
  const zip = await yauzl
    .fromRandomAccessReaderPromise(reader, fstatSync(fd).size, options)
    .catch((e: unknown) => {
      closeSync(fd);
      throw corrupt(path, e);
    });
  return { zip, reader };
}

const LOCAL_HEADER = 0x04034b50;

/**
 * An entry's text, read and inflated in one piece: yauzl's per-entry stream pipeline (read
 * stream, byte counter, asynchronous inflate) cost more than everything else in a 100k-record
 * import. The same checks: no encryption, a local header, deflate or stored only, and exactly
 * the declared size (the caller has already refused sizes over MAX_RECORD_BYTES, and inflation
 * stops at the declared size, so a lying entry cannot inflate further).
 */
async function readEntryText(reader: ReadAheadReader, entry: yauzl.Entry): Promise<string> {
  if ((entry.generalPurposeBitFlag & 0x1) !== 0) throw new Error('encrypted entries are not supported');
  const at = entry.relativeOffsetOfLocalHeader;
  const header = await reader.readRange(at, 30);
  if (header.length < 30 || header.readUInt32LE(0) !== LOCAL_HEADER)
    throw new Error(`invalid local file header signature at ${at}`);
  const start = at + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  const stored = await reader.readRange(start, entry.compressedSize);
  if (stored.length < entry.compressedSize) throw new Error('entry data runs past the end of the archive');
  let data: Buffer;
  if (entry.compressionMethod === 0) data = stored;
  else if (entry.compressionMethod === 8)
    data = inflateRawSync(stored, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
  else throw new Error(`unsupported compression method ${entry.compressionMethod}`);
  if (data.length !== entry.uncompressedSize)
    throw new Error(`entry inflated to ${data.length} bytes, declared ${entry.uncompressedSize}`);
  return data.toString('utf8');
}

async function startsWithZipMagic(path: string): Promise<boolean> {
  const handle = await open(path, 'r').catch((e: unknown) => {
    throw notReadable(path, e);
  });
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    return bytesRead === 4 && buffer.readUInt32LE(0) === 0x04034b50;
  } finally {
    await handle.close();
  }
}

function notReadable(path: string, e: unknown): ContainmentError {
  return new ContainmentError(ErrorCodes.TARGET_NOT_FOUND, `cannot read ${path}: ${errorText(e)}`, {
    cause: e,
  });
}

function corrupt(where: string, e: unknown): ContainmentError {
  return new ContainmentError(ErrorCodes.ARCHIVE_CORRUPT, `${where}: corrupt zip archive: ${errorText(e)}`, {
    cause: e,
  });
}

function errorText(e: unknown): string {
  const message = (e as { message?: unknown } | null)?.message;
  const text = typeof message === 'string' ? message : String(e);
  return text.replace(/\s*\n\s*/g, ' ');
}
