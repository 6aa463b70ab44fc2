/**
 * SecurityActions as the action API serves them (`/v1/actions`, mounted by the scanner under
 * `containment up`), and the verified evidence download.
 */
import { ApiError } from './api';

export const ACTION_KINDS = ['Quarantine', 'Release', 'Snapshot', 'TerminateGraceful', 'Terminate'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];
export const ACTION_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed'] as const;
export type ActionPhase = (typeof ACTION_PHASES)[number];

export interface EvidenceItem {
  kind: string;
  uri: string;
  sha256: string;
  bytes: number;
}

export interface SecurityAction {
  metadata: { name: string };
  spec: {
    target: { namespace: string; pod: string; container?: string; uid?: string };
    action: ActionKind;
    gracePeriodSeconds: number;
    reason: string;
    requestedBy?: string;
    dryRun: boolean;
  };
  status?: {
    phase: ActionPhase;
    node?: string;
    startedAt?: string;
    completedAt?: string;
    message?: string;
    evidence: EvidenceItem[];
    conditions: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export interface ActionPreview {
  action: SecurityAction;
  target: { id: string; name: string; image: string; running: boolean };
  plan: string;
  dryRun: boolean;
}

/** Roles whose tokens may submit actions (the server checks again: this only hides the buttons). */
export const ACTING_ROLES: ReadonlySet<string> = new Set(['admin', 'analyst', 'policy']);

export const KIND_LABELS: Record<ActionKind, string> = {
  Quarantine: 'Quarantine',
  Release: 'Release',
  Snapshot: 'Snapshot',
  TerminateGraceful: 'Terminate (graceful)',
  Terminate: 'Terminate (abrupt)',
};

/** The file's path inside its bundle (`inspect.json`, `logs/stdout.log`): its `file:` URI after `/<action id>/`. */
export function evidenceFileName(actionId: string, item: EvidenceItem): string {
  const marker = `/${actionId}/`;
  const path = decodeURIComponent(new URL(item.uri).pathname);
  const at = path.lastIndexOf(marker);
  return at < 0 ? path.slice(path.lastIndexOf('/') + 1) : path.slice(at + marker.length);
}

/** `2026-12-07 13:20:51` (UTC) for tables; the page shows the full ISO time on hover. */
export function shortTime(iso: string | undefined): string {
  return iso === undefined ? '' : iso.replace('T', ' ').slice(0, 19);
}

export function duration(action: SecurityAction): string {
  const s = action.status;
  if (!s?.startedAt || !s.completedAt) return '';
  const ms = Date.parse(s.completedAt) - Date.parse(s.startedAt);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const hex = (bytes: ArrayBuffer): string =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');

/**
 * Downloads one evidence file and checks it in the browser before offering it: the SHA-256 of the
 * bytes received (WebCrypto) must equal the one the enforcer recorded at capture (the action's
 * status). A mismatch or an unverifiable download never reaches the user as a file.
 */
export async function verifiedEvidence(
  actionId: string,
  item: EvidenceItem,
): Promise<{ blob: Blob; sha256: string }> {
  if (globalThis.crypto?.subtle === undefined)
    throw new ApiError(
      0,
      'UNVERIFIABLE',
      'this page is not a secure context (HTTPS or localhost): cannot compute SHA-256',
    );
  const name = evidenceFileName(actionId, item);
  const response = await fetch(
    `/v1/actions/${encodeURIComponent(actionId)}/evidence/${name.split('/').map(encodeURIComponent).join('/')}`,
    { credentials: 'same-origin' },
  );
  if (!response.ok) {
    const body = (await response.json().catch(() => undefined)) as
      { error?: { code?: string; message?: string } } | undefined;
    throw new ApiError(
      response.status,
      body?.error?.code ?? `HTTP_${response.status}`,
      body?.error?.message ?? response.statusText,
    );
  }
  const bytes = await response.arrayBuffer();
  const sha256 = hex(await crypto.subtle.digest('SHA-256', bytes));
  if (sha256 !== item.sha256)
    throw new ApiError(
      0,
      'CHECKSUM_MISMATCH',
      `${name}: received SHA-256 ${sha256}, recorded ${item.sha256}`,
    );
  return { blob: new Blob([bytes], { type: 'application/octet-stream' }), sha256 };
}

/** An id for an action asked for from the dashboard (no secure context needed, unlike randomUUID). */
export function newActionId(kind: ActionKind): string {
  const random = [...crypto.getRandomValues(new Uint8Array(6))].map((b) => b.toString(16).padStart(2, '0'));
  return `ui-${kind.toLowerCase()}-${Date.now().toString(36)}-${random.join('')}`;
}
