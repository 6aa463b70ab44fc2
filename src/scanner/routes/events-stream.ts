/**
 * `GET /v1/events/stream`: live updates for the dashboard as Server-Sent Events. Each new scan the
 * caller may see is sent as `event: scan` with its id, workload, time, kind and summary. The
 * stream reads through the same store call and visibility as `GET /v1/scans` (it polls the newest
 * scans every `pollMs`), so a viewer of `web` never hears of another namespace. A stream ends after
 * `maxAgeMs` and the browser's EventSource reconnects, authenticating again: a revoked token or an
 * expired session stops receiving within that time.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { roleAllows } from '../../auth/principal.js';
import type { Principal } from '../../auth/principal.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { ScannerStore, Visibility } from '../store/scanner-store.js';

export interface EventStreamOptions {
  pollMs?: number;
  maxAgeMs?: number;
}

/** Scans looked at per poll (newest by scan time); a burst larger than this between polls is cut. */
const WINDOW = 200;

export function registerEventStream(
  v1: FastifyInstance,
  store: ScannerStore,
  principalOf: (request: FastifyRequest) => Principal,
  visibilityFor: (p: Principal, q: { cluster?: string; namespace?: string }) => Visibility | undefined,
  options: EventStreamOptions = {},
): void {
  const pollMs = options.pollMs ?? 2000;
  const maxAgeMs = options.maxAgeMs ?? 5 * 60_000;

  v1.get('/events/stream', async (request, reply) => {
    const principal = principalOf(request);
    if (!roleAllows(principal.role, 'findings:read'))
      throw new ContainmentError(ErrorCodes.FORBIDDEN, `role ${principal.role} may not findings:read`);
    const visibility = visibilityFor(principal, {});
    const newest = async () =>
      visibility ? await store.listScans(visibility, {}, { limit: WINDOW, offset: 0 }) : [];
    const seen = new Set((await newest()).map((s) => s.id));
    const floor = Math.max(0, ...seen);

    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    out.write(`retry: ${pollMs}\n: connected\n\n`);

    let closed = false;
    const poll = async (): Promise<void> => {
      const fresh = (await newest()).filter((s) => s.id > floor && !seen.has(s.id)).reverse();
      for (const scan of fresh) {
        seen.add(scan.id);
        const data = {
          id: scan.id,
          workload: scan.workload,
          scanTime: scan.scanTime,
          kind: scan.kind,
          summary: scan.summary,
        };
        out.write(`id: ${scan.id}\nevent: scan\ndata: ${JSON.stringify(data)}\n\n`);
      }
      if (fresh.length === 0) out.write(': keep-alive\n\n');
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
