/**
 * Falco alerts in: Falco's JSON alert and falcosidekick's webhook payload → runtime detections.
 * Pure (zod and hashing only); validated once, all or nothing.
 *
 * Where the shapes come from:
 * - Falco's JSON output (`json_output: true`; the body `http_output` posts, one alert per
 *   request): `{output, priority, rule, time, output_fields, source, tags, hostname}` — Falco's
 *   outputs documentation (falco.org/docs/outputs), `output` only with
 *   `json_include_output_property`, `tags` with `json_include_tags_property`, `time` RFC 3339 in
 *   nanoseconds, `priority` capitalised ("Critical", "Warning", "Informational").
 * - falcosidekick's Webhook output posts its `types.FalcoPayload` (falcosecurity/falcosidekick
 *   types/types.go): the same fields plus `uuid`, priorities lower-case ("critical"), and its
 *   `customfields` merged into `output_fields`.
 * A body is one alert or an array of them (at most MAX_ALERTS).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { RuntimeDetectionSchema } from '../contracts.js';
import type { DetectionSeverity, RuntimeDetection } from '../contracts.js';
import { maskArgv, maskText } from '../rules/mask.js';

export const MAX_ALERTS = 1000;
const MAX_EVIDENCE_FIELDS = 32;
const MAX_EVIDENCE_LENGTH = 512;

/** Falco priority (either spelling) → detection severity. */
const SEVERITY: Readonly<Record<string, DetectionSeverity>> = {
  emergency: 'CRITICAL',
  alert: 'CRITICAL',
  critical: 'CRITICAL',
  error: 'HIGH',
  warning: 'MEDIUM',
  notice: 'LOW',
  informational: 'LOW',
  info: 'LOW',
  debug: 'LOW',
};

const FieldValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const FalcoAlertSchema = z.object({
  uuid: z.string().max(128).optional(),
  output: z.string().max(65_536).optional(),
  priority: z
    .string()
    .transform((p) => p.toLowerCase())
    .refine((p) => p in SEVERITY, { message: `not a Falco priority (${Object.keys(SEVERITY).join(', ')})` }),
  rule: z.string().min(1).max(512),
  time: z.string().refine((t) => /^\d{4}-\d\d-\d\dT/.test(t) && !Number.isNaN(Date.parse(t)), {
    message: 'not an RFC 3339 time',
  }),
  output_fields: z.record(z.string(), z.union([FieldValue, z.array(FieldValue)])),
  source: z.string().max(128).optional(),
  tags: z.array(z.string().max(128)).max(64).optional(),
  hostname: z.string().max(253).optional(),
});
export type FalcoAlert = z.infer<typeof FalcoAlertSchema>;

const BodySchema = z.union([FalcoAlertSchema, z.array(FalcoAlertSchema).min(1).max(MAX_ALERTS)]);

export interface FalcoMappingContext {
  /** The cluster the sender is authenticated for (from its token, never from the payload). */
  cluster: string;
  /** The node when the alert names no hostname. */
  node?: string;
}

export interface FalcoMapping {
  detections: RuntimeDetection[];
  /** Alerts about no container (host processes): not workload detections. */
  skipped: { rule: string; reason: string }[];
}

/** "Terminal shell in container" → `falco:terminal_shell_in_container`. */
export function falcoRuleId(rule: string): string {
  const slug = rule
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 120);
  return `falco:${slug || 'unnamed'}`;
}

/** A field's value when Falco knew it (`<NA>` and null mean it did not). */
function field(fields: FalcoAlert['output_fields'], name: string): string | undefined {
  const v = fields[name];
  if (v === null || v === undefined || Array.isArray(v)) return undefined;
  const s = String(v);
  return s === '' || s === '<NA>' ? undefined : s;
}

function intField(fields: FalcoAlert['output_fields'], name: string): number | undefined {
  const n = Number(field(fields, name));
  return Number.isSafeInteger(n) ? n : undefined;
}

function kindOf(tags: readonly string[]): RuntimeDetection['kind'] {
  const has = (t: string): boolean => tags.some((x) => x.toLowerCase() === t);
  if (has('container_drift') || has('drift')) return 'drift';
  if (has('mitre_privilege_escalation') || has('privilege_escalation')) return 'privilege';
  if (has('network')) return 'socket';
  if (has('filesystem')) return 'file';
  return 'process';
}

function imageOf(f: FalcoAlert['output_fields']): string {
  const repo = field(f, 'container.image.repository');
  const tag = field(f, 'container.image.tag');
  if (repo) return tag ? `${repo}:${tag}` : repo;
  return field(f, 'container.image') ?? 'unknown';
}

const MAPPED = new Set(['proc.cmdline', 'proc.args', 'evt.time', 'evt.time.iso8601']);

/**
 * Evidence fields, masked and cut. Falco's `output` repeats the command line, where a secret
 * given as `--password x` is only recognisable as argv: it is replaced by the masked argv.
 */
function evidenceOf(
  alert: FalcoAlert,
  cmdline: string | undefined,
  maskedCmdline: string,
): Record<string, string | number | boolean> {
  const cut = (s: string): string =>
    maskText(cmdline ? s.split(cmdline).join(maskedCmdline) : s).slice(0, MAX_EVIDENCE_LENGTH);
  const out: Record<string, string | number | boolean> = { priority: alert.priority };
  if (alert.output !== undefined) out.output = cut(alert.output);
  if (alert.source !== undefined) out.source = alert.source;
  if (alert.tags?.length) out.tags = alert.tags.join(',');
  for (const [k, v] of Object.entries(alert.output_fields)) {
    if (Object.keys(out).length >= MAX_EVIDENCE_FIELDS) break;
    if (MAPPED.has(k) || v === null) continue;
    const value = Array.isArray(v) ? v.filter((x) => x !== null).join(',') : v;
    out[k] = typeof value === 'string' ? cut(value) : value;
  }
  return out;
}

/** One validated alert → a detection, or why it is not one. */
function mapAlert(alert: FalcoAlert, ctx: FalcoMappingContext): RuntimeDetection | string {
  const f = alert.output_fields;
  const containerId = field(f, 'container.full_id') ?? field(f, 'container.id');
  if (containerId === undefined || containerId === 'host')
    return 'not in a container (container.id host or absent)';
  const ruleId = falcoRuleId(alert.rule);
  const at = new Date(Date.parse(alert.time)).toISOString();
  const name = field(f, 'proc.name') ?? 'unknown';
  const exe = field(f, 'proc.exepath') ?? field(f, 'proc.exe');
  const cmdline = field(f, 'proc.cmdline');
  // Falco's proc.cmdline is the name followed by the arguments, space-joined.
  const argv = cmdline === undefined ? [] : cmdline.split(/\s+/).filter((a) => a !== '');
  const maskedArgv = maskArgv(argv);
  const namespace = field(f, 'k8s.ns.name');
  const pod = field(f, 'k8s.pod.name');
  const containerName = field(f, 'container.name');
  const ppid = intField(f, 'proc.ppid');
  const digest = field(f, 'container.image.digest');
  const podUid = field(f, 'k8s.pod.uid');
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([ruleId, containerId, exe ?? name, maskedArgv]))
    .digest('hex')
    .slice(0, 32);
  return {
    workload: {
      cluster: ctx.cluster,
      // A container outside Kubernetes: the same identity the node sensor gives it.
      namespace: namespace ?? 'local',
      pod: pod ?? containerName ?? containerId.slice(0, 12),
      ...(containerName ? { container: containerName } : {}),
      node: alert.hostname || ctx.node || 'unknown',
      image: imageOf(f),
      ...(digest ? { imageDigest: digest } : {}),
      containerId,
      ...(podUid ? { podUid } : {}),
    },
    ruleId,
    kind: kindOf(alert.tags ?? []),
    severity: SEVERITY[alert.priority] as DetectionSeverity,
    title: alert.rule.slice(0, 512),
    detectedAt: at,
    process: {
      pid: intField(f, 'proc.pid') ?? -1,
      ...(ppid === undefined ? {} : { ppid }),
      // -1: Falco's output carried no user.uid.
      uid: intField(f, 'user.uid') ?? -1,
      name,
      ...(exe ? { exe } : {}),
      argv: maskedArgv,
    },
    evidence: evidenceOf(alert, cmdline, maskedArgv.join(' ')),
    baseline: { state: 'none' },
    count: 1,
    firstSeen: at,
    lastSeen: at,
    fingerprint,
    source: 'falco',
  };
}

function invalid(message: string): ContainmentError {
  return new ContainmentError(ErrorCodes.FALCO_ALERT_INVALID, message.replace(/\s+/g, ' ').slice(0, 300));
}

/** The whole body or nothing: any invalid alert fails the lot with a one-line message. */
export function mapFalcoAlerts(body: unknown, ctx: FalcoMappingContext): FalcoMapping {
  const parsed = BodySchema.safeParse(body);
  if (!parsed.success) {
    // Report the first issue of the alert that failed, not the union's summary.
    const alerts = Array.isArray(body) ? body : [body];
    for (const [i, a] of alerts.entries()) {
      const r = FalcoAlertSchema.safeParse(a);
      if (r.success) continue;
      const issue = r.error.issues[0];
      const where = `${Array.isArray(body) ? `alert ${i}: ` : ''}${issue?.path.join('.') || '(root)'}`;
      throw invalid(`not a Falco alert: ${where}: ${issue?.message ?? 'invalid'}`);
    }
    throw invalid(
      Array.isArray(body)
        ? `expected 1 to ${MAX_ALERTS} Falco alerts, got ${body.length}`
        : 'not a Falco alert',
    );
  }
  const alerts = Array.isArray(parsed.data) ? parsed.data : [parsed.data];
  const out: FalcoMapping = { detections: [], skipped: [] };
  for (const [i, alert] of alerts.entries()) {
    const d = mapAlert(alert, ctx);
    if (typeof d === 'string') {
      out.skipped.push({ rule: alert.rule, reason: d });
      continue;
    }
    const checked = RuntimeDetectionSchema.safeParse(d);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      throw invalid(
        `${alerts.length > 1 ? `alert ${i}: ` : ''}cannot be a detection: ${issue?.path.join('.')}: ${issue?.message}`,
      );
    }
    out.detections.push(checked.data);
  }
  return out;
}

/** The entry point the scanner service wires: detections only (host alerts are dropped). */
export function falcoAlertsToDetections(body: unknown, ctx: FalcoMappingContext): RuntimeDetection[] {
  return mapFalcoAlerts(body, ctx).detections;
}
