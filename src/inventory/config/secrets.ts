/**
 * `private_key_present` and `cloud_credentials_present`. Both look at the same files (see
 * `secret-file-rules.ts`), which are read once per scan and shared through a memo keyed by the
 * walk result. Nothing secret leaves this module: findings carry paths, key types and masked ids.
 */
import { ErrorCodes, isContainmentError } from '../../errors.js';
import type { ConfigCheck, ConfigCheckContext, FileEntry, FileFilter } from '../context.js';
import { basename, finding, isUnder } from './common.js';
import type { CheckInfo } from './common.js';
import {
  AWS_EXAMPLE_KEY_IDS,
  AWS_EXAMPLE_SECRET_MARK,
  KEY_FILE_NAME,
  LOCAL_TREES,
  MAX_SECRET_FILE_BYTES,
  PACKAGE_TREE_FRAGMENTS,
  PACKAGE_TREE_NAMES,
  SSH_HOST_KEY_PATH,
  SYSTEM_TREES,
  VENDOR_TREES,
} from './secret-file-rules.js';

export interface KeyHit {
  path: string;
  /** `RSA`, `OPENSSH`, `EC`, `PKCS#8`, `PGP`, `PuTTY` … */
  types: string[];
  encrypted: boolean;
  hostKey: boolean;
}

export interface CredentialHit {
  path: string;
  /** What was found, with identifiers masked (`AWS access key AKIA…WXYZ with its secret`). */
  what: string[];
}

interface SecretScan {
  keys: KeyHit[];
  credentials: CredentialHit[];
}

/** Whether the file-selection rule reads this file (size aside). */
export function isSecretCandidate(path: string): boolean {
  const dirs = path.split('/').slice(1, -1);
  if (dirs.some((d) => PACKAGE_TREE_NAMES.has(d))) return false;
  if (PACKAGE_TREE_FRAGMENTS.some((f) => path.includes(f))) return false;
  // The longest matching tree decides: /usr/local/go (system) within /usr/local (local) within /usr.
  let best = { length: 0, system: false };
  for (const [trees, system] of [
    [SYSTEM_TREES, true],
    [LOCAL_TREES, false],
  ] as const) {
    for (const t of trees)
      if (isUnder(path, t) && t.length > best.length) best = { length: t.length, system };
  }
  if (!best.system) return true;
  return KEY_FILE_NAME.test(basename(path)) && !VENDOR_TREES.some((t) => isUnder(path, t));
}

/** Captures the label and the start of the body (headers such as `Proc-Type`, OpenSSH's magic). */
const PEM_PRIVATE_KEY = /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY(?: BLOCK)?-----([\s\S]{0,120})/g;
const PUTTY_KEY = /^PuTTY-User-Key-File-\d+: *(\S+)[\s\S]*?^Encryption: *(\S+)/m;
/** Base64 of `openssh-key-v1\0` + cipher `none`: an unencrypted OpenSSH key starts with it. */
const OPENSSH_UNENCRYPTED = 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmU';

export function findPrivateKeys(text: string): { types: string[]; encrypted: boolean } | undefined {
  const types = new Set<string>();
  let encrypted = false;
  for (const m of text.matchAll(PEM_PRIVATE_KEY)) {
    const label = (m[1] as string).trim();
    const body = (m[2] as string).replace(/\s/g, '');
    if (label === 'ENCRYPTED') encrypted = true;
    if (label === 'OPENSSH' && !body.startsWith(OPENSSH_UNENCRYPTED)) encrypted = true;
    if (/Proc-Type:4,ENCRYPTED/.test(body)) encrypted = true;
    types.add(label === '' || label === 'ENCRYPTED' ? 'PKCS#8' : label);
  }
  const putty = PUTTY_KEY.exec(text);
  if (putty) {
    types.add(`PuTTY ${putty[1] as string}`);
    if (putty[2] !== 'none') encrypted = true;
  }
  return types.size > 0 ? { types: [...types], encrypted } : undefined;
}

const AWS_KEY_ID = /(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])/g;
const AWS_SECRET_ASSIGNMENT =
  /secret_?access_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/gi;
const BASE64_40 = /(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g;
/** How far from an access key id a bare 40-character secret may sit (a line or two of config). */
const AWS_NEAR = 300;
const GCP_SERVICE_ACCOUNT = /"type"\s*:\s*"service_account"/;
const GCP_PRIVATE_KEY = /"private_key"\s*:\s*"-----BEGIN/;
const AZURE_STORAGE_KEY = /AccountKey=[A-Za-z0-9+/]{86}==/;

/** `AKIAIOSFODNN7EXAMPLE` → `AKIA…MPLE`: enough to find the key in the cloud console, not to use it. */
export function maskKeyId(id: string): string {
  return `${id.slice(0, 4)}…${id.slice(-4)}`;
}

/** A random base64 secret has both cases; a hex digest or a word does not. */
function looksRandom(token: string): boolean {
  return /[A-Z]/.test(token) && /[a-z]/.test(token) && !token.includes(AWS_EXAMPLE_SECRET_MARK);
}

export function findCloudCredentials(text: string): string[] {
  const what: string[] = [];
  const secrets = [...text.matchAll(AWS_SECRET_ASSIGNMENT)].filter((m) => looksRandom(m[1] as string));
  const ids = [...text.matchAll(AWS_KEY_ID)].filter((m) => !AWS_EXAMPLE_KEY_IDS.has(m[0]));
  const paired = new Set<string>();
  for (const id of ids) {
    const start = Math.max(0, (id.index ?? 0) - AWS_NEAR);
    const around = text.slice(start, (id.index ?? 0) + id[0].length + AWS_NEAR);
    const near = [...around.matchAll(BASE64_40)].some((m) => looksRandom(m[0]));
    if (near || secrets.length > 0) paired.add(maskKeyId(id[0]));
  }
  for (const id of paired) what.push(`AWS access key ${id} with its secret access key`);
  if (paired.size === 0 && secrets.length > 0) what.push('an AWS secret access key (value not shown)');
  if (GCP_SERVICE_ACCOUNT.test(text) && GCP_PRIVATE_KEY.test(text)) what.push('a GCP service-account key');
  if (AZURE_STORAGE_KEY.test(text)) what.push('an Azure storage account key');
  return what;
}

async function scan(ctx: ConfigCheckContext): Promise<SecretScan> {
  const result: SecretScan = { keys: [], credentials: [] };
  for (const entry of ctx.files) {
    if (!mayHoldSecret(entry)) continue;
    const { path, stat } = entry;
    if (stat.size > MAX_SECRET_FILE_BYTES) {
      // Large `.pem` files are certificate bundles (certifi's cacert.pem): not worth a note.
      if (KEY_FILE_NAME.test(basename(path)) && !path.endsWith('.pem')) {
        ctx.note(
          `secret checks skipped ${path}: ${stat.size} bytes, over the ${MAX_SECRET_FILE_BYTES}-byte limit`,
        );
      }
      continue;
    }
    let data: Buffer | undefined;
    try {
      data = await ctx.fs.readFile(path, { maxBytes: MAX_SECRET_FILE_BYTES });
    } catch (e) {
      if (isContainmentError(e) && e.code === ErrorCodes.FILE_TOO_LARGE) continue; // grew since the walk
      throw e;
    }
    if (data === undefined) continue;
    const text = data.toString('latin1'); // byte-preserving: the patterns are ASCII
    const key = findPrivateKeys(text);
    if (key) result.keys.push({ path, ...key, hostKey: SSH_HOST_KEY_PATH.test(path) });
    const what = findCloudCredentials(text);
    if (what.length > 0) result.credentials.push({ path, what });
  }
  return result;
}

/** A non-empty file whose name or place may hold a key or credentials. */
const mayHoldSecret: FileFilter = ({ path, stat }) =>
  stat.type === 'file' && stat.size > 0 && isSecretCandidate(path);

const scans = new WeakMap<readonly FileEntry[], Promise<SecretScan>>();

/** One scan per walk result, shared by both checks. */
export function scanSecrets(ctx: ConfigCheckContext): Promise<SecretScan> {
  let pending = scans.get(ctx.files);
  if (!pending) {
    pending = scan(ctx);
    scans.set(ctx.files, pending);
  }
  return pending;
}

const PRIVATE_KEY: CheckInfo = {
  id: 'private_key_present',
  severity: 'HIGH',
  title: 'Private keys are stored in the filesystem',
};

/**
 * HIGH for a usable (unencrypted) key other than SSH host keys; MEDIUM when only host keys or
 * passphrase-protected keys are found. Fixed SSH host keys are still reported: every container
 * started from the image presents the same host identity, so one leaked image lets anyone
 * impersonate all of them.
 */
export const privateKeyPresent: ConfigCheck = {
  ...PRIVATE_KEY,
  relevant: mayHoldSecret,
  async check(ctx) {
    const { keys } = await scanSecrets(ctx);
    if (keys.length === 0) return undefined;
    const describe = (k: KeyHit) => `${k.path} (${k.types.join(', ')}${k.encrypted ? ', encrypted' : ''})`;
    const host = keys.filter((k) => k.hostKey);
    const other = keys.filter((k) => !k.hostKey);
    const parts: string[] = [];
    if (other.length > 0) parts.push(`private keys: ${other.map(describe).join(', ')}`);
    if (host.length > 0) {
      parts.push(
        `SSH host keys fixed in the image (shared by every container from it): ${host.map(describe).join(', ')}`,
      );
    }
    const usable = other.some((k) => !k.encrypted);
    return finding(
      PRIVATE_KEY,
      [...other, ...host].map((k) => k.path),
      parts.join('; '),
      usable ? 'HIGH' : 'MEDIUM',
    );
  },
};

const CLOUD: CheckInfo = {
  id: 'cloud_credentials_present',
  severity: 'CRITICAL',
  title: 'Cloud credentials are stored in the filesystem',
};

/** AWS key pairs, GCP service-account keys and Azure storage keys; values are never reported. */
export const cloudCredentialsPresent: ConfigCheck = {
  ...CLOUD,
  relevant: mayHoldSecret,
  async check(ctx) {
    const { credentials } = await scanSecrets(ctx);
    if (credentials.length === 0) return undefined;
    return finding(
      CLOUD,
      credentials.map((c) => c.path),
      credentials.map((c) => `${c.path}: ${c.what.join(', ')}`).join('; '),
    );
  },
};
