/**
 * The Falco ingestion endpoint as a Fastify plugin the scanner service registers: Falco's
 * `http_output` and falcosidekick's Webhook output post here. The caller supplies how a request is
 * authenticated (the same hook as agents' routes) and the cluster it belongs to, and the sink
 * (the detection store / outbox). A malformed body is a 400 `FALCO_ALERT_INVALID` and nothing is
 * handed to the sink.
 */
import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify';
import { isContainmentError } from '../../errors.js';
import type { RuntimeDetection } from '../contracts.js';
import { mapFalcoAlerts } from './falco-alert.js';

export const FALCO_ALERTS_PATH = '/v1/falco/alerts';

export interface FalcoRouteOptions {
  /** Default `/v1/falco/alerts`. */
  path?: string;
  /** Authenticates the sender (agent tokens); runs before the body is mapped. */
  preHandler?: preHandlerHookHandler;
  /** The sender's cluster (from its credentials, never from the payload). */
  clusterOf: (request: FastifyRequest) => string;
  /** Stores the detections (and queues their CloudEvents); all of one request at once. */
  sink: (detections: RuntimeDetection[]) => Promise<void>;
  /** Bytes; default 1 MiB. */
  bodyLimit?: number;
}

export function registerFalcoRoute(app: FastifyInstance, options: FalcoRouteOptions): void {
  app.post(
    options.path ?? FALCO_ALERTS_PATH,
    {
      bodyLimit: options.bodyLimit ?? 1024 * 1024,
      ...(options.preHandler ? { preHandler: options.preHandler } : {}),
    },
    async (request, reply) => {
      let mapping;
      try {
        mapping = mapFalcoAlerts(request.body, { cluster: options.clusterOf(request) });
      } catch (e) {
        if (!isContainmentError(e)) throw e;
        return reply.code(400).send({ error: { code: e.code, message: e.message } });
      }
      if (mapping.detections.length > 0) await options.sink(mapping.detections);
      return reply.code(202).send({ accepted: mapping.detections.length, skipped: mapping.skipped });
    },
  );
}
