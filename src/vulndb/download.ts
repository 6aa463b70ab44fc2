/**
 * `containment db update`: download osv.dev's per-ecosystem `all.zip` archives to a temporary
 * directory, then import them all as one import (so a failed download changes nothing).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { AsyncAdvisoryStore, ImportItem, ImportReport } from './advisory-store.js';
import { openRecordSource } from './record-sources.js';
import type { RecordSource } from './record-sources.js';

/** osv.dev's public bucket: `<base>/<ecosystem>/all.zip`. */
export const DEFAULT_OSV_BASE_URL = 'https://osv-vulnerabilities.storage.googleapis.com';

/** Ecosystems of the packages Containment's inventory extracts. */
export const DEFAULT_ECOSYSTEMS: readonly string[] = [
  'Debian',
  'Ubuntu',
  'Alpine',
  'Red Hat',
  'PyPI',
  'npm',
  'Go',
  'Maven',
  'RubyGems',
  'NuGet',
  'crates.io',
  'Packagist',
];

const OFFLINE_HINT = 'to update offline, fetch all.zip elsewhere and run `containment db import <path>`';

export type UpdateProgress =
  | { phase: 'download'; ecosystem: string; bytes: number; totalBytes: number | undefined }
  | { phase: 'import'; processed: number; total: number };

export interface UpdateOptions {
  baseUrl?: string;
  ecosystems?: readonly string[];
  fetchImpl?: typeof fetch;
  onProgress?: (progress: UpdateProgress) => void;
}

export interface DownloadedArchive {
  ecosystem: string;
  url: string;
  bytes: number;
}

export interface UpdateReport extends ImportReport {
  downloads: DownloadedArchive[];
}

export function ecosystemArchiveUrl(baseUrl: string, ecosystem: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(ecosystem)}/all.zip`;
}

export async function downloadAndImport(
  store: AsyncAdvisoryStore,
  options: UpdateOptions = {},
): Promise<UpdateReport> {
  const {
    baseUrl = DEFAULT_OSV_BASE_URL,
    ecosystems = DEFAULT_ECOSYSTEMS,
    fetchImpl = fetch,
    onProgress,
  } = options;
  if (ecosystems.length === 0) throw new ContainmentError(ErrorCodes.USAGE, 'no ecosystems to download');
  const dir = await mkdtemp(join(tmpdir(), 'containment-osv-'));
  try {
    const downloads: DownloadedArchive[] = [];
    const sources: RecordSource[] = [];
    for (const [i, ecosystem] of ecosystems.entries()) {
      const url = ecosystemArchiveUrl(baseUrl, ecosystem);
      const file = join(dir, `${i}.zip`);
      const bytes = await download(fetchImpl, url, file, (done, totalBytes) =>
        onProgress?.({ phase: 'download', ecosystem, bytes: done, totalBytes }),
      );
      downloads.push({ ecosystem, url, bytes });
      sources.push(await openRecordSource(file));
    }
    const total = () => sources.reduce((sum, s) => sum + s.total, 0);
    const report = await store.importRecords(concat(sources), {
      source: downloads.map((d) => d.url).join(' '),
      onProgress: onProgress && ((processed) => onProgress({ phase: 'import', processed, total: total() })),
    });
    return { ...report, downloads };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function* concat(sources: RecordSource[]): AsyncGenerator<ImportItem> {
  for (const source of sources) yield* source.items;
}

async function download(
  fetchImpl: typeof fetch,
  url: string,
  file: string,
  progress: (bytes: number, totalBytes: number | undefined) => void,
): Promise<number> {
  const failed = (e: unknown) =>
    new ContainmentError(
      ErrorCodes.DB_DOWNLOAD_FAILED,
      `cannot download ${url}: ${describe(e)}; ${OFFLINE_HINT}`,
      {
        cause: e,
      },
    );
  const response = await fetchImpl(url).catch((e: unknown) => {
    throw failed(e);
  });
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new ContainmentError(
      ErrorCodes.DB_DOWNLOAD_FAILED,
      `cannot download ${url}: HTTP ${response.status} ${response.statusText}; ${OFFLINE_HINT}`,
    );
  }
  const length = Number(response.headers.get('content-length'));
  const totalBytes = Number.isFinite(length) && length > 0 ? length : undefined;
  let bytes = 0;
  await pipeline(
    Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        bytes += chunk.length;
        progress(bytes, totalBytes);
        yield chunk;
      }
    },
    createWriteStream(file),
  ).catch((e: unknown) => {
    throw failed(e);
  });
  if (totalBytes !== undefined && bytes !== totalBytes) {
    throw failed(new Error(`received ${bytes} of ${totalBytes} bytes`));
  }
  return bytes;
}

/** fetch() hides the reason (ECONNREFUSED, ENOTFOUND …) in `cause`. */
function describe(e: unknown): string {
  const cause = (e as { cause?: unknown } | null)?.cause;
  const inner = (cause instanceof Error ? cause : e) as { message?: unknown; code?: unknown };
  // Happy-eyeballs connection failures arrive as an AggregateError with an empty message.
  const text = typeof inner.message === 'string' && inner.message !== '' ? inner.message : inner.code;
  return String(text ?? e).replace(/\s*\n\s*/g, ' ');
}
