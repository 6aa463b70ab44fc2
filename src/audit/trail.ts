/**
 * The audit trail of a workload: for each SecurityAction on it, the chain scan or runtime
 * detection → CloudEvent → trigger → policy activation (with its logs) → action. The one join, used by `containment up`'s
 * action API (`GET /v1/audit`) and by the scanner's (`GET /v1/audit`, the dashboard's audit page).
 * Records are looked up through `AuditLookups`: the parts' own HTTP APIs (the scanner's
 * `GET /v1/scans/{id}` and `GET /v1/detections/{id}`, the runtime's `GET …/activations/{id}`;
 * `httpAuditLookups`), or the scanner's visibility-checked read of its own records — never another
 * part's storage.
 *
 * The links: the action's `requestedBy` is `policy/<action>@<activationId>`; that activation's
 * `cause` is the trigger activation whose result holds the CloudEvent it was fired with (its `id`,
 * `type`, and `data.scanId` or `data.detectionId`); the action's `findingsRef` is `scan/<scanId>` or
 * `detection/<detectionId>`. A link that cannot be followed (a manual action, a record not written
 * yet, an API that failed, an event about another scan or detection) is named in `gaps`.
 */
import { z } from 'zod';
import { ApiError } from '../clients/http.js';
import { ScannerClient } from '../clients/scanner-client.js';
import { WhiskClient } from '../clients/whisk-client.js';
import type { SecurityAction } from '../enforcement/security-action.js';

/** How the join reads a scan and an activation; a throw (e.g. ApiError 404) becomes a gap. */
export interface AuditLookups {
  scan(id: string): Promise<unknown>;
  activation(id: string): Promise<unknown>;
  /** The scanner's stored runtime detection (`findingsRef: detection/<id>`). */
  detection(id: string): Promise<unknown>;
}

export interface AuditSources {
  /** The scanner's base URL and a token that may read the namespace's scans. */
  scanner: { url: string; token: string };
  /** The policy runtime's base URL, the namespace holding the policies and its `uuid:key`. */
  functions: { url: string; namespace: string; auth: string };
  timeoutMs?: number;
}

export interface AuditLink {
  action: {
    id: string;
    action: string;
    phase?: string;
    reason: string;
    requestedBy?: string;
    findingsRef?: string;
    startedAt?: string;
    completedAt?: string;
    message?: string;
  };
  activation?: {
    id: string;
    action: string;
    status: string;
    start: number;
    end: number;
    cause?: string;
    /** What the policy logged while it ran. */
    logs: string[];
    result?: unknown;
  };
  event?: {
    id: string;
    type: string;
    time?: string;
    subject?: string;
    reason?: string;
    scanId?: number;
    /** The trigger activation that carried the event to the policy. */
    triggerActivationId: string;
    /** The trigger's name (the trigger activation's). */
    trigger: string;
    /** When the trigger fired (ms since the epoch). */
    firedAt: number;
    /** A runtime detection event's detection (the scanner's id). */
    detectionId?: number;
  };
  scan?: { id: number; kind: string; scanTime: string; receivedAt: string };
  /** For an action on a runtime detection (`findingsRef: detection/<id>`), instead of `scan`. */
  detection?: {
    id: number;
    ruleId: string;
    severity: string;
    title: string;
    count: number;
    firstSeen: string;
    lastSeen: string;
  };
  /** True when every link above was found and agrees with the next. */
  complete: boolean;
  gaps: string[];
}

const REQUESTED_BY = /^policy\/(.+)@([0-9a-f]{32})$/;
const FINDINGS_REF = /^(scan|detection)\/(\d+)$/;

const activationSchema = z.looseObject({
  activationId: z.string(),
  name: z.string(),
  start: z.number(),
  end: z.number(),
  cause: z.string().optional(),
  logs: z.array(z.string()).optional(),
  response: z.looseObject({ status: z.string(), result: z.unknown() }),
});

const eventSchema = z.looseObject({
  id: z.string(),
  type: z.string(),
  time: z.string().optional(),
  subject: z.string().optional(),
  data: z
    .looseObject({
      reason: z.string().optional(),
      scanId: z.number().int().optional(),
      detectionId: z.number().int().optional(),
    })
    .optional(),
});

const detectionSchema = z.looseObject({
  id: z.number().int(),
  ruleId: z.string(),
  severity: z.string(),
  title: z.string(),
  count: z.number().int(),
  firstSeen: z.string(),
  lastSeen: z.string(),
});

const scanSchema = z.looseObject({
  id: z.number().int(),
  kind: z.string(),
  scanTime: z.string(),
  receivedAt: z.string(),
});

type Fetched<T> = { ok: true; value: T } | { ok: false; why: string };

/** One record through a client, checked against `schema`; why not, when it could not be had. */
async function fetched<T>(get: () => Promise<unknown>, schema: z.ZodType<T>): Promise<Fetched<T>> {
  try {
    const parsed = schema.safeParse(await get());
    return parsed.success ? { ok: true, value: parsed.data } : { ok: false, why: 'unexpected answer' };
  } catch (e) {
    return { ok: false, why: e instanceof ApiError ? `HTTP ${e.status}` : (e as Error).message };
  }
}

/** Lookups through the scanner's and the runtime's HTTP APIs. */
export function httpAuditLookups(sources: AuditSources): AuditLookups {
  const timeoutMs = sources.timeoutMs ?? 10_000;
  const scanner = new ScannerClient({ server: sources.scanner.url, token: sources.scanner.token, timeoutMs });
  const whisk = new WhiskClient(
    { apihost: sources.functions.url, auth: sources.functions.auth, namespace: sources.functions.namespace },
    timeoutMs,
  );
  return {
    scan: (id) => scanner.scan(id),
    activation: (id) => whisk.activation(id),
    detection: (id) => scanner.detection(id),
  };
}

/** Follows each action's links; actions in the order given (the action API's: newest first). */
export async function auditTrail(lookups: AuditLookups, actions: SecurityAction[]): Promise<AuditLink[]> {
  const activation = (id: string) => fetched(() => lookups.activation(id), activationSchema);
  return Promise.all(
    actions.map(async ({ metadata, spec, status }): Promise<AuditLink> => {
      const gaps: string[] = [];
      const link: AuditLink = {
        action: {
          id: metadata.name,
          action: spec.action,
          reason: spec.reason,
          ...(status?.phase === undefined ? {} : { phase: status.phase }),
          ...(spec.requestedBy === undefined ? {} : { requestedBy: spec.requestedBy }),
          ...(spec.findingsRef === undefined ? {} : { findingsRef: spec.findingsRef }),
          ...(status?.startedAt === undefined ? {} : { startedAt: status.startedAt }),
          ...(status?.completedAt === undefined ? {} : { completedAt: status.completedAt }),
          ...(status?.message === undefined ? {} : { message: status.message }),
        },
        complete: false,
        gaps,
      };

      const requested = REQUESTED_BY.exec(spec.requestedBy ?? '');
      if (!requested)
        gaps.push(`requestedBy ${JSON.stringify(spec.requestedBy ?? '')} names no policy activation`);
      else {
        const got = await activation(requested[2] as string);
        if (!got.ok) gaps.push(`activation ${requested[2]}: ${got.why}`);
        else {
          const a = got.value;
          link.activation = {
            id: a.activationId,
            action: a.name,
            status: a.response.status,
            start: a.start,
            end: a.end,
            ...(a.cause === undefined ? {} : { cause: a.cause }),
            logs: a.logs ?? [],
            ...(a.response.result === undefined ? {} : { result: a.response.result }),
          };
          if (a.cause === undefined) gaps.push(`activation ${a.activationId} was not caused by a trigger`);
          else {
            const trigger = await activation(a.cause);
            const event = trigger.ok ? eventSchema.safeParse(trigger.value.response.result) : undefined;
            if (!trigger.ok) gaps.push(`trigger activation ${a.cause}: ${trigger.why}`);
            else if (!event?.success) gaps.push(`trigger activation ${a.cause} carries no CloudEvent`);
            else {
              const e = event.data;
              link.event = {
                id: e.id,
                type: e.type,
                triggerActivationId: a.cause,
                trigger: trigger.value.name,
                firedAt: trigger.value.start,
                ...(e.time === undefined ? {} : { time: e.time }),
                ...(e.subject === undefined ? {} : { subject: e.subject }),
                ...(e.data?.reason === undefined ? {} : { reason: e.data.reason }),
                ...(e.data?.scanId === undefined ? {} : { scanId: e.data.scanId }),
                ...(e.data?.detectionId === undefined ? {} : { detectionId: e.data.detectionId }),
              };
            }
          }
        }
      }

      const ref = FINDINGS_REF.exec(spec.findingsRef ?? '');
      if (!ref) gaps.push(`findingsRef ${JSON.stringify(spec.findingsRef ?? '')} names no scan or detection`);
      else if (ref[1] === 'scan') {
        const got = await fetched(() => lookups.scan(ref[2] as string), scanSchema);
        if (!got.ok) gaps.push(`scan ${ref[2]}: ${got.why}`);
        else {
          const { id, kind, scanTime, receivedAt } = got.value;
          link.scan = { id, kind, scanTime, receivedAt };
        }
      } else {
        const got = await fetched(() => lookups.detection(ref[2] as string), detectionSchema);
        if (!got.ok) gaps.push(`detection ${ref[2]}: ${got.why}`);
        else {
          const { id, ruleId, severity, title, count, firstSeen, lastSeen } = got.value;
          link.detection = { id, ruleId, severity, title, count, firstSeen, lastSeen };
        }
      }
      if (link.event && link.scan && link.event.scanId !== link.scan.id)
        gaps.push(
          `event ${link.event.id} is about scan ${link.event.scanId ?? '?'}, the action cites scan ${link.scan.id}`,
        );
      if (link.event && link.detection && link.event.detectionId !== link.detection.id)
        gaps.push(
          `event ${link.event.id} is about detection ${link.event.detectionId ?? '?'}, the action cites detection ${link.detection.id}`,
        );
      link.complete = gaps.length === 0;
      return link;
    }),
  );
}
