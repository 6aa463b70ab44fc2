/**
 * Delivery signatures as Standard Webhooks (standardwebhooks.com): `webhook-id` (the CloudEvent id,
 * so retries of one event share it), `webhook-timestamp` (unix seconds) and `webhook-signature`
 * (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, space-separated when several secrets sign
 * during a rotation). The HMAC is the reference `standardwebhooks` package's; this module adds the
 * configurable timestamp tolerance, rotation and typed errors around it.
 *
 * Secrets are `whsec_<base64>`. A secret without that prefix (triggers created before this format)
 * is used as raw bytes, on both ends alike. A trigger or receiver holding several secrets keeps
 * them in one string separated by white space.
 *
 * The older `containment-signature: sha256=<hex HMAC of the body>` carried neither id nor time and
 * could be replayed; it is kept for one release behind an explicit, deprecated receiver flag.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { ContainmentError, ErrorCodes } from '../errors.js';

export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';
/** The reference library's tolerance, and ours by default. */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;
const SECRET_PREFIX = 'whsec_';

/** A new `whsec_` secret of 32 random bytes. */
export function newWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

/** The secrets held in one configured string (white-space separated during a rotation). */
export function splitSecrets(secrets: string | readonly string[]): string[] {
  const list = (typeof secrets === 'string' ? secrets.split(/\s+/) : secrets).filter((s) => s !== '');
  if (list.length === 0) throw new ContainmentError(ErrorCodes.CONFIG_INVALID, 'webhook secret is empty');
  return list;
}

function webhook(secret: string): Webhook {
  try {
    return secret.startsWith(SECRET_PREFIX) ? new Webhook(secret) : new Webhook(secret, { format: 'raw' });
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `webhook secret is not valid: ${(e as Error).message}`,
    );
  }
}

/** The three headers for one delivery of `body` (the exact bytes sent). */
export function signDelivery(
  body: string | Uint8Array,
  secrets: string | readonly string[],
  id: string,
  now: Date = new Date(),
): Record<string, string> {
  const seconds = Math.floor(now.getTime() / 1000);
  const at = new Date(seconds * 1000);
  const signatures = splitSecrets(secrets).map((s) => webhook(s).sign(id, at, toBytes(body)));
  return {
    [WEBHOOK_ID_HEADER]: id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(seconds),
    [WEBHOOK_SIGNATURE_HEADER]: signatures.join(' '),
  };
}

export interface VerifiedDelivery {
  id: string;
  /** Unix seconds. */
  timestamp: number;
}

export interface VerifyOptions {
  toleranceSeconds?: number;
  now?: Date;
}

type HeaderBag = Record<string, string | string[] | undefined>;

function headerOf(headers: HeaderBag, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

/** True when the request carries Standard Webhooks headers at all (for choosing a scheme). */
export function hasWebhookHeaders(headers: HeaderBag): boolean {
  return headerOf(headers, WEBHOOK_SIGNATURE_HEADER) !== undefined;
}

/**
 * Checks a delivery: the headers are present, the timestamp is within the tolerance either way, and
 * one of the given signatures is an HMAC of exactly `id.timestamp.body` under one of `secrets`.
 * Throws SIGNATURE_INVALID or DELIVERY_STALE; says nothing about replays (see ReplayGuard).
 */
export function verifyDelivery(
  body: string | Uint8Array,
  headers: HeaderBag,
  secrets: string | readonly string[],
  options: VerifyOptions = {},
): VerifiedDelivery {
  const id = headerOf(headers, WEBHOOK_ID_HEADER);
  const stamp = headerOf(headers, WEBHOOK_TIMESTAMP_HEADER);
  const given = headerOf(headers, WEBHOOK_SIGNATURE_HEADER);
  if (!id || !stamp || !given)
    throw new ContainmentError(
      ErrorCodes.SIGNATURE_INVALID,
      'webhook-id, webhook-timestamp and webhook-signature are required',
    );
  if (!/^\d{1,12}$/.test(stamp))
    throw new ContainmentError(ErrorCodes.SIGNATURE_INVALID, 'webhook-timestamp is not unix seconds');
  const timestamp = Number(stamp);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - timestamp) > tolerance)
    throw new ContainmentError(
      ErrorCodes.DELIVERY_STALE,
      `webhook-timestamp is ${now - timestamp} s from now, outside the ${tolerance} s tolerance`,
    );
  const bytes = toBytes(body);
  const at = new Date(timestamp * 1000);
  const offered = given.split(' ').filter((s) => s !== '');
  for (const secret of splitSecrets(secrets)) {
    const expected = Buffer.from(webhook(secret).sign(id, at, bytes));
    if (offered.some((s) => sameBytes(Buffer.from(s), expected))) return { id, timestamp };
  }
  throw new ContainmentError(ErrorCodes.SIGNATURE_INVALID, 'no webhook-signature matches a known secret');
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function toBytes(body: string | Uint8Array): Uint8Array {
  return typeof body === 'string' ? Buffer.from(body) : body;
}

/**
 * Remembers accepted delivery ids for longer than the timestamp tolerance, so a replay inside the
 * window is recognised; outside it the timestamp check refuses it. `claim` is atomic: it returns
 * false when the id was already claimed. `release` undoes a claim whose processing failed, so the
 * sender's retry of the same id is processed instead of being taken for a duplicate.
 */
export interface ReplayGuard {
  claim(id: string, now?: Date): boolean | Promise<boolean>;
  release(id: string): void | Promise<void>;
}

/** How long an id is kept: twice the tolerance, since a timestamp may be skewed either way. */
export function replayRetentionMs(toleranceSeconds = DEFAULT_TOLERANCE_SECONDS): number {
  return 2 * toleranceSeconds * 1000 + 60_000;
}

/** An in-memory ReplayGuard (one process, e.g. a warm OpenWhisk container); bounded in size. */
export class MemoryReplayGuard implements ReplayGuard {
  private readonly seen = new Map<string, number>();
  constructor(
    private readonly retentionMs = replayRetentionMs(),
    private readonly maxEntries = 100_000,
  ) {}

  claim(id: string, now: Date = new Date()): boolean {
    const t = now.getTime();
    const expiry = this.seen.get(id);
    if (expiry !== undefined && expiry > t) return false;
    this.seen.delete(id);
    this.seen.set(id, t + this.retentionMs);
    this.prune(t);
    return true;
  }

  release(id: string): void {
    this.seen.delete(id);
  }

  private prune(t: number): void {
    // Insertion order is expiry order (one retention for all), so expired ids are at the front.
    for (const [key, expiry] of this.seen) {
      if (expiry > t && this.seen.size <= this.maxEntries) break;
      this.seen.delete(key);
    }
  }
}

// ---- Deprecated: the pre-Standard-Webhooks scheme, accepted only behind an explicit flag. ----

/** @deprecated `containment-signature`, replayable; kept one release behind `--accept-legacy-signature`. */
export const LEGACY_SIGNATURE_HEADER = 'containment-signature';

const LEGACY_FORMAT = /^sha256=([0-9a-f]{64})$/;

function legacyHmac(body: string | Uint8Array, secret: string): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

/** @deprecated The legacy header value for `body`. */
export function legacySign(body: string | Uint8Array, secret: string): string {
  return `sha256=${legacyHmac(body, secret).toString('hex')}`;
}

/** @deprecated True when `header` is a legacy signature of exactly `body` under one of `secrets`. */
export function verifyLegacySignature(
  body: string | Uint8Array,
  secrets: string | readonly string[],
  header: string | undefined,
): boolean {
  const match = LEGACY_FORMAT.exec(header?.trim().toLowerCase() ?? '');
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1], 'hex');
  return splitSecrets(secrets).some((s) => sameBytes(given, legacyHmac(body, s)));
}
