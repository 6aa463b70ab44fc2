/**
 * Whether an image's latest scan passes the compliance thresholds, as the admission gate and
 * posture checks ask it. The judgement (`judgeImageScan`) is pure; `HttpImageVerdictSource` asks
 * the scanner's `GET /v1/images` (through the scanner client) and caches answers briefly, because a Deployment rollout sends
 * the same image to the webhook many times a second.
 */
import { z } from 'zod';
import { errorOf, fetchFailure } from '../clients/http.js';
import type { JsonResponse } from '../clients/http.js';
import { ScannerClient } from '../clients/scanner-client.js';
import { SEVERITIES } from '../inventory/types.js';
import type { Completeness, Severity } from '../inventory/types.js';
import type { ComplianceThresholds } from '../matching/types.js';
import { complianceVerdict, exceededThresholds } from '../matching/summary.js';
import { DEFAULT_THRESHOLDS } from '../matching/types.js';

/** One scan of an image, as `GET /v1/images` lists them (newest first). */
export interface ImageScanRecord {
  image: string;
  imageDigest?: string;
  scanId: string | number;
  scanTime: string;
  /** Vulnerabilities plus insecure configurations per severity: what the thresholds compare. */
  severityCounts: Record<Severity, number>;
  /** `incomplete`: a package database of the image could not be read (absent from older scanners = complete). */
  completeness?: Completeness;
}

export type ImageVerdict =
  | { status: 'pass'; image: string; scan: ImageScanRecord }
  | { status: 'fail'; image: string; scan: ImageScanRecord; reasons: string[] }
  /**
   * Never scanned (`unreachable` false, no `scan`), the latest scan is incomplete (`scan` set), or
   * the scanner could not be asked (`unreachable` true).
   */
  | { status: 'unknown'; image: string; unreachable: boolean; reason: string; scan?: ImageScanRecord };

export interface ImageVerdictSource {
  /** Never rejects: failures to ask become an `unknown` verdict that says why. */
  verdict(image: string, digest?: string): Promise<ImageVerdict>;
}

/**
 * The compliance rule of `summarize` applied to the scanner's per-severity totals: one reason per
 * exceeded threshold, e.g. `3 CRITICAL > 0 allowed`.
 */
export function thresholdViolations(
  counts: Readonly<Record<Severity, number>>,
  thresholds: ComplianceThresholds = DEFAULT_THRESHOLDS,
): string[] {
  return exceededThresholds(counts, thresholds).map(
    ({ severity, total, threshold }) => `${total} ${severity} > ${threshold} allowed`,
  );
}

export function judgeImageScan(
  image: string,
  scan: ImageScanRecord | undefined,
  thresholds: ComplianceThresholds = DEFAULT_THRESHOLDS,
): ImageVerdict {
  if (!scan) return { status: 'unknown', image, unreachable: false, reason: 'never scanned' };
  const exceeded = exceededThresholds(scan.severityCounts, thresholds);
  switch (complianceVerdict(exceeded, scan.completeness ?? 'complete')) {
    case 'pass':
      return { status: 'pass', image, scan };
    case 'fail':
      return { status: 'fail', image, scan, reasons: thresholdViolations(scan.severityCounts, thresholds) };
    case 'unknown':
      return {
        status: 'unknown',
        image,
        unreachable: false,
        scan,
        reason: `latest scan (${scan.scanTime}) is incomplete: a package database could not be read`,
      };
  }
}

const countSchema = z.number().int().min(0);
const imagesResponseSchema = z.object({
  images: z.array(
    z.object({
      image: z.string(),
      imageDigest: z.string().optional(),
      scanId: z.union([z.string(), z.number()]),
      scanTime: z.string(),
      severityCounts: z.object(
        Object.fromEntries(SEVERITIES.map((s) => [s, countSchema.default(0)])) as Record<
          Severity,
          z.ZodDefault<typeof countSchema>
        >,
      ),
      completeness: z.enum(['complete', 'incomplete']).optional(),
    }),
  ),
});

/** `repo@sha256:<hex>` → `sha256:<hex>`; undefined for a reference without a digest. */
export function digestOf(image: string): string | undefined {
  return /@(sha256:[a-f0-9]{64})$/.exec(image)?.[1];
}

export interface HttpImageVerdictSourceOptions {
  /** Scanner base URL, e.g. `https://scanner.containment-system:8080`. */
  server: string;
  /** Bearer token; a viewer token scoped to the namespaces whose scans count. */
  token: string;
  thresholds?: ComplianceThresholds;
  /** Per request to the scanner. Default 2 s: the API server waits for the webhook 10 s at most. */
  timeoutMs?: number;
  /** How long an answer is reused. Default 5 s; failures are never cached. */
  cacheTtlMs?: number;
  /** Most cached images; the oldest entry goes first. Default 10,000. */
  cacheSize?: number;
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch;
  now?: () => number;
}

interface CacheEntry {
  expires: number;
  verdict: Promise<ImageVerdict>;
}

export class HttpImageVerdictSource implements ImageVerdictSource {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly thresholds: ComplianceThresholds;
  private readonly timeoutMs: number;
  private readonly ttlMs: number;
  private readonly size: number;
  private readonly client: ScannerClient;
  private readonly now: () => number;

  constructor(options: HttpImageVerdictSourceOptions) {
    this.thresholds = options.thresholds ?? DEFAULT_THRESHOLDS;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.ttlMs = options.cacheTtlMs ?? 5000;
    this.size = options.cacheSize ?? 10_000;
    this.client = new ScannerClient({
      server: options.server,
      token: options.token,
      timeoutMs: this.timeoutMs,
      serverFlag: 'scanner',
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    });
    this.now = options.now ?? Date.now;
  }

  verdict(image: string, digest: string | undefined = digestOf(image)): Promise<ImageVerdict> {
    const key = `${image}\n${digest ?? ''}`;
    const now = this.now();
    const hit = this.cache.get(key);
    // A pending lookup is shared too, so a burst for one image asks the scanner once.
    if (hit && hit.expires > now) return hit.verdict;
    if (hit) this.cache.delete(key);
    const verdict = this.lookup(image, digest);
    this.cache.set(key, { expires: now + this.ttlMs, verdict });
    while (this.cache.size > this.size) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
    void verdict.then((v) => {
      if (v.status === 'unknown' && v.unreachable && this.cache.get(key)?.verdict === verdict)
        this.cache.delete(key);
    });
    return verdict;
  }

  private async lookup(image: string, digest: string | undefined): Promise<ImageVerdict> {
    // Newest first: the latest scan is all the verdict needs.
    const query = new URLSearchParams({ image, limit: '1' });
    if (digest) query.set('digest', digest);
    const unreachable = (why: string): ImageVerdict => ({
      status: 'unknown',
      image,
      unreachable: true,
      reason: `scanner unreachable (${why})`,
    });
    let response: JsonResponse;
    try {
      response = await this.client.images(query);
    } catch (e) {
      // SERVER_UNREACHABLE from the client: the fetch's own failure says why in a word.
      const cause = (e as { cause?: unknown }).cause;
      return unreachable(
        cause === undefined ? firstLine((e as Error).message) : fetchFailure(cause, this.timeoutMs),
      );
    }
    const { status, body } = response;
    if (status < 200 || status > 299) {
      const { code } = errorOf(response);
      return unreachable(`HTTP ${status}${code === undefined ? '' : ` ${code}`}`);
    }
    const parsed = imagesResponseSchema.safeParse(body);
    if (!parsed.success) return unreachable('unexpected answer from /v1/images');
    const [latest] = parsed.data.images;
    return judgeImageScan(
      image,
      latest && {
        image: latest.image,
        ...(latest.imageDigest === undefined ? {} : { imageDigest: latest.imageDigest }),
        scanId: latest.scanId,
        scanTime: latest.scanTime,
        severityCounts: latest.severityCounts,
        ...(latest.completeness === undefined ? {} : { completeness: latest.completeness }),
      },
      this.thresholds,
    );
  }
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? text;
}
