/**
 * Entry of a policy bundled for Knative (see ../policy-bundle.ts): an HTTP server on `$PORT` (8080) that
 * takes CloudEvents in binary or structured mode (as a Knative Trigger delivers them), runs the
 * policy with the event as parameters — as the runtime's security-notices trigger gives it — and
 * answers 200 with the result (not a CloudEvent, so the Broker sends no reply event). A repeated
 * event (same source and id) is answered from memory without running the policy again.
 * Configuration comes from the environment (CONTAINMENT_*; tokens from a Secret).
 *
 * With `CONTAINMENT_WEBHOOK_SECRET` set (from the same Secret), every delivery must be signed as
 * Standard Webhooks (../../../events/delivery-check.ts): unsigned, stale, forged or binary-mode
 * deliveries are refused and a replayed id is answered 200 without running the policy; accepted
 * ids are kept in memory and, with `CONTAINMENT_REPLAY_FILE` (a file on a volume), across restarts.
 * A Knative Broker does not forward `webhook-*` headers: signed delivery is the scanner's
 * `cloudevents` trigger pointed at this Service's URL (docs/policies.md).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { CloudEvent, HTTP } from 'cloudevents';
// @ts-expect-error resolved by the bundler to the policy's source
import * as policy from 'containment:policy';
import { checkSignedDelivery, STRUCTURED_CONTENT_TYPE } from '../../../events/delivery-check.js';
import { FileReplayGuard } from '../../../events/file-replay-guard.js';
import { MemoryReplayGuard } from '../../../events/signature.js';
import type { ReplayGuard } from '../../../events/signature.js';
import { CONFIG_PARAM, bundledConfigSchema, runPolicy, useContextStore } from '../bundled-host.js';
import type { ActivationContext, BundledConfig } from '../bundled-host.js';

declare const __CONTAINMENT_POLICY_NAME__: string;
/** `event` or `namespace`, fixed when bundled (`policy deploy --enforcement-scope`). */
declare const __CONTAINMENT_ENFORCEMENT_SCOPE__: 'event' | 'namespace';

const BODY_LIMIT = 1024 * 1024;
const REMEMBERED = 1000;

export function configFromEnv(env: NodeJS.ProcessEnv): BundledConfig {
  const parsed = bundledConfigSchema.safeParse({
    scannerUrl: env.CONTAINMENT_SCANNER_URL,
    scannerToken: env.CONTAINMENT_SCANNER_TOKEN,
    actionsUrl: env.CONTAINMENT_ACTIONS_URL,
    enforcerToken: env.CONTAINMENT_ENFORCER_TOKEN,
    cluster: env.CONTAINMENT_CLUSTER || undefined,
    namespaces: (env.CONTAINMENT_NAMESPACES ?? '').split(',').filter((n) => n !== ''),
    dryRun: env.CONTAINMENT_DRY_RUN === 'true',
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`configuration: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_LIMIT) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export interface WebhookConfig {
  secret: string;
  guard: ReplayGuard;
  toleranceSeconds?: number;
}

export function webhookFromEnv(env: NodeJS.ProcessEnv): WebhookConfig | undefined {
  const secret = env.CONTAINMENT_WEBHOOK_SECRET?.trim();
  if (!secret) return undefined;
  const tolerance = env.CONTAINMENT_WEBHOOK_TOLERANCE_SECONDS;
  return {
    secret,
    guard: env.CONTAINMENT_REPLAY_FILE
      ? new FileReplayGuard(env.CONTAINMENT_REPLAY_FILE)
      : new MemoryReplayGuard(),
    ...(tolerance ? { toleranceSeconds: Number(tolerance) } : {}),
  };
}

export function startHandler(
  config: BundledConfig,
  port: number,
  host?: string,
  webhook?: WebhookConfig,
): Promise<Server> {
  const als = new AsyncLocalStorage<ActivationContext>();
  useContextStore({
    get: () => als.getStore(),
    async run(context, fn) {
      try {
        return await als.run(context, fn);
      } finally {
        context.ended = true;
      }
    },
  });
  const seen = new Map<string, unknown>();
  const server = createServer((req, res) => {
    void (async () => {
      if (req.method === 'GET' && (req.url === '/healthz' || req.url === '/'))
        return send(res, 200, { ok: true });
      if (req.method !== 'POST') return send(res, 405, { error: 'POST a CloudEvent' });
      const body = await readBody(req);
      if (body === undefined) return send(res, 413, { error: `body over ${BODY_LIMIT} bytes` });
      let deliveryId: string | undefined;
      if (webhook !== undefined) {
        const verdict = await checkSignedDelivery(body, req.headers, webhook.secret, webhook.guard, {
          ...(webhook.toleranceSeconds === undefined ? {} : { toleranceSeconds: webhook.toleranceSeconds }),
        });
        if (!verdict.ok) return send(res, verdict.status, { error: verdict.message, code: verdict.code });
        if (verdict.duplicate) return send(res, 200, { duplicate: true });
        deliveryId = verdict.id;
      }
      let event: Record<string, unknown>;
      try {
        // Signed: the event comes from the body alone, whatever ce-* headers came along.
        const headers =
          deliveryId === undefined
            ? (req.headers as Record<string, string>)
            : { 'content-type': STRUCTURED_CONTENT_TYPE };
        const received = HTTP.toEvent({ headers, body: body.toString('utf8') });
        if (Array.isArray(received)) throw new Error('batched events are not accepted');
        // toEvent does not validate; the strict constructor refuses an event without type or source.
        event = JSON.parse(JSON.stringify(new CloudEvent({ ...received }))) as Record<string, unknown>;
        delete event[CONFIG_PARAM];
      } catch (e) {
        if (deliveryId !== undefined) await webhook?.guard.release(deliveryId);
        return send(res, 400, { error: `not a CloudEvent: ${(e as Error).message.split('\n')[0]}` });
      }
      const key = `${String(event.source)}\n${String(event.id)}`;
      if (seen.has(key)) return send(res, 200, { duplicate: true, result: seen.get(key) });
      try {
        const result = await runPolicy(
          policy as object,
          __CONTAINMENT_POLICY_NAME__,
          randomUUID(),
          config,
          event,
          __CONTAINMENT_ENFORCEMENT_SCOPE__,
        );
        seen.set(key, result ?? {});
        if (seen.size > REMEMBERED) seen.delete(seen.keys().next().value as string);
        return send(res, 200, { result: result ?? {} });
      } catch (e) {
        // Not processed: the sender's retry of the same id must run, not count as a replay.
        if (deliveryId !== undefined) await webhook?.guard.release(deliveryId);
        // 5xx: Knative retries by the Trigger's delivery spec, then dead-letters.
        return send(res, 500, { error: (e as Error).message.split('\n')[0] });
      }
    })().catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { error: String(e) });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

// This file is only ever the entry of the bundle `node handler.cjs` runs; nothing imports it.
const port = Number(process.env.PORT ?? 8080);
Promise.resolve()
  // CONTAINMENT_LISTEN_HOST: e.g. 127.0.0.1 outside a cluster; Knative needs every interface.
  .then(() =>
    startHandler(
      configFromEnv(process.env),
      port,
      process.env.CONTAINMENT_LISTEN_HOST || undefined,
      webhookFromEnv(process.env),
    ),
  )
  .then(
    (server) => {
      const address = server.address();
      const actual = typeof address === 'object' && address !== null ? address.port : port;
      console.log(
        JSON.stringify({
          msg: 'policy handler listening',
          port: actual,
          policy: __CONTAINMENT_POLICY_NAME__,
        }),
      );
    },
    (e: unknown) => {
      console.error(`error: ${(e as Error).message}`);
      process.exit(1);
    },
  );
