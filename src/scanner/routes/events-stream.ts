/**
 * `GET /v1/events/stream`: live updates for the dashboard as Server-Sent Events.
 *
 * - `event: scan` — each new scan the caller may see (id, workload, time, kind, summary).
 * - `event: detection` — a runtime detection aggregate that is new or was seen again (its count or
 *   last-seen time grew), in the caller's namespaces: the `GET /v1/detections` item.
 * - `event: action` — when the enforcer's action API is mounted here (`containment up`): a
 *   SecurityAction that was created or changed phase, in namespaces the caller has `actions:read`
 *   for: the `GET /v1/actions/{id}` body.
 *
 * Every source is polled every `pollMs` through the same store calls and visibility as its list
 * route, so a viewer of `web` never hears of another namespace; polling the shared store (rather
 * than an in-process emitter) is what lets a stream on one of several scanner replicas hear of
 * what another replica stored. Each poll looks at the newest `WINDOW` items and remembers what it
 * sent, so rows committed out of id order are still sent once.
 *
 * Ids and resume: every frame's `id:` is the stream's whole cursor after that frame,
 * `s<scan id>-d<detection id>-t<detection last-seen ms>-a<action change ms>` (the highest of each
 * sent so far). A browser reconnecting sends the last one as `Last-Event-ID`; the new stream then
 * first sends, per kind, what is newer than its cursor (scans with a higher id, detections with a
 * higher id or a later last-seen, actions with a later transition), within the window. The opening
 * frame carries the cursor too, so a stream that sent nothing still resumes from where it began.
 * Without a valid `Last-Event-ID` nothing earlier is replayed. A stream ends after `maxAgeMs` and the
 * EventSource reconnects, authenticating again: a revoked token or an expired session stops
 * receiving within that time.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { namespaceFilter, roleAllows } from '../../auth/principal.js';
import type { Principal } from '../../auth/principal.js';
import type { SecurityAction } from '../../enforcement/security-action.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { ScannerStore, Visibility } from '../scanner-store.js';

export interface EventStreamOptions {
  pollMs?: number;
  maxAgeMs?: number;
}

/** The enforcer's actions, when its action API is mounted on this server. */
export interface ActionSource {
  cluster: string;
  list(filter: { namespaces: readonly string[] | '*'; limit: number }): SecurityAction[];
}

/** Items looked at per poll and kind (newest first); a burst larger than this between polls is cut. */
const WINDOW = 200;

interface Cursor {
  scan: number;
  detection: number;
  seenMs: number;
  actionMs: number;
}

const CURSOR = /^s(\d{1,15})-d(\d{1,15})-t(\d{1,15})-a(\d{1,15})$/;

/** The `Last-Event-ID` cursor, or undefined for none or a malformed one (then nothing is replayed). */
export function parseCursor(header: string | string[] | undefined): Cursor | undefined {
  const m = typeof header === 'string' ? CURSOR.exec(header) : null;
  if (!m) return undefined;
  return { scan: Number(m[1]), detection: Number(m[2]), seenMs: Number(m[3]), actionMs: Number(m[4]) };
}

const formatCursor = (c: Cursor): string => `s${c.scan}-d${c.detection}-t${c.seenMs}-a${c.actionMs}`;

/** When an action last changed: its latest transition, start or completion (0 while none). */
function changedMs(action: SecurityAction): number {
  const s = action.status;
  if (!s) return 0;
  const times = [s.startedAt, s.completedAt, ...s.conditions.map((c) => c.lastTransitionTime)];
  return Math.max(0, ...times.map((t) => (t === undefined ? 0 : Date.parse(t) || 0)));
}

// Over 120 lines: one stream's state (cursor, what was sent, the polls) lives in its handler's closure.
export function registerEventStream(
  v1: FastifyInstance,
  store: ScannerStore,
  principalOf: (request: FastifyRequest) => Principal,
  visibilityFor: (p: Principal, q: { cluster?: string; namespace?: string }) => Visibility | undefined,
  options: EventStreamOptions = {},
  actions?: ActionSource,
): void {
  const pollMs = options.pollMs ?? 2000;
  const maxAgeMs = options.maxAgeMs ?? 5 * 60_000;

  v1.get('/events/stream', async (request, reply) => {
    const principal = principalOf(request);
    if (!roleAllows(principal.role, 'findings:read'))
      throw new ContainmentError(ErrorCodes.FORBIDDEN, `role ${principal.role} may not findings:read`);
    const visibility = visibilityFor(principal, {});
    const page = { limit: WINDOW, offset: 0 };
    const newestScans = async () => (visibility ? await store.listScans(visibility, {}, page) : []);
    const newestDetections = async () =>
      visibility ? await store.detections.list(visibility, {}, page) : [];
    // Actions: only with actions:read, only the namespaces it covers in the enforcer's cluster.
    const actionNamespaces =
      actions && roleAllows(principal.role, 'actions:read')
        ? namespaceFilter(principal, actions.cluster)
        : 'none';
    const newestActions = (): SecurityAction[] =>
      actions && actionNamespaces !== 'none'
        ? actions.list({ namespaces: actionNamespaces, limit: WINDOW })
        : [];

    // What each item looked like when last sent (or when the stream began, for what is not replayed).
    const resume = parseCursor(request.headers['last-event-id']);
    const cursor: Cursor = resume ?? { scan: 0, detection: 0, seenMs: 0, actionMs: 0 };
    const scans = new Set<number>();
    const detections = new Map<number, string>();
    const actionStates = new Map<string, string>();
    const detectionState = (d: { count: number; lastSeen: string }): string => `${d.count}|${d.lastSeen}`;
    const actionState = (a: SecurityAction): string => `${a.status?.phase ?? 'Pending'}|${changedMs(a)}`;
    const scanFloor = resume ? resume.scan : Infinity;
    for (const s of await newestScans()) {
      if (s.id <= scanFloor) scans.add(s.id);
      if (!resume) cursor.scan = Math.max(cursor.scan, s.id);
    }
    for (const d of await newestDetections()) {
      const seenMs = Date.parse(d.lastSeen);
      if (!resume || (d.id <= resume.detection && seenMs <= resume.seenMs))
        detections.set(d.id, detectionState(d));
      if (!resume) {
        cursor.detection = Math.max(cursor.detection, d.id);
        cursor.seenMs = Math.max(cursor.seenMs, seenMs);
      }
    }
    for (const a of newestActions()) {
      const ms = changedMs(a);
      // An action without a status yet has no time: replayed on resume (a duplicate is harmless).
      if (!resume || (ms !== 0 && ms <= resume.actionMs)) actionStates.set(a.metadata.name, actionState(a));
      if (!resume) cursor.actionMs = Math.max(cursor.actionMs, ms);
    }

    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    // The cursor goes out at once, so a stream that ends before anything happened still resumes
    // from here: what arrives while the browser reconnects is not lost.
    out.write(`retry: ${pollMs}\nid: ${formatCursor(cursor)}\n: connected\n\n`);

    let closed = false;
    const send = (event: string, data: unknown): void => {
      out.write(`id: ${formatCursor(cursor)}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const poll = async (): Promise<void> => {
      let sent = 0;
      const freshScans = (await newestScans()).filter((s) => !scans.has(s.id)).reverse();
      for (const scan of freshScans) {
        scans.add(scan.id);
        cursor.scan = Math.max(cursor.scan, scan.id);
        const { id, workload, scanTime, kind, summary } = scan;
        send('scan', { id, workload, scanTime, kind, summary });
        sent++;
      }
      const freshDetections = (await newestDetections())
        .filter((d) => detections.get(d.id) !== detectionState(d))
        .reverse();
      for (const d of freshDetections) {
        detections.set(d.id, detectionState(d));
        cursor.detection = Math.max(cursor.detection, d.id);
        cursor.seenMs = Math.max(cursor.seenMs, Date.parse(d.lastSeen));
        send('detection', d);
        sent++;
      }
      const freshActions = newestActions()
        .filter((a) => actionStates.get(a.metadata.name) !== actionState(a))
        .reverse();
      for (const a of freshActions) {
        actionStates.set(a.metadata.name, actionState(a));
        cursor.actionMs = Math.max(cursor.actionMs, changedMs(a));
        send('action', a);
        sent++;
      }
      if (sent === 0) out.write(': keep-alive\n\n');
    };
    const timer = setInterval(() => {
      if (!closed)
        poll().catch((e: unknown) => {
          request.log.warn({ err: e }, 'event stream poll failed');
          stop();
        });
    }, pollMs);
    const lifetime = setTimeout(() => stop(), maxAgeMs);
    const stop = (): void => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      clearTimeout(lifetime);
      out.end();
    };
    request.raw.on('close', stop);
  });
}
