/**
 * The admission webhook's HTTPS server (Fastify): `POST /validate` takes an AdmissionReview and
 * answers with the gate's decision; `GET /healthz` for probes. A review that is not a valid
 * `admission.k8s.io/v1` AdmissionReview gets 400 `{ error: { code, message } }`, which the API
 * server treats as a webhook failure (its `failurePolicy` decides).
 */
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify';
import { ErrorCodes } from '../errors.js';
import type { ImageVerdictSource } from '../posture/image-scan-verdict.js';
import { decideAdmission } from './admission-policy.js';
import type { AdmissionPolicy } from './admission-policy.js';
import { admissionResponse, admissionReviewSchema } from './admission-review.js';

/** Requests carry the object and, on UPDATE, the old one: up to ~3 MB each. */
export const ADMISSION_BODY_LIMIT = 8 * 1024 * 1024;

export interface AdmissionAppOptions {
  policy: AdmissionPolicy;
  /** The scanner's verdicts on images; without one, scans are not checked. */
  images?: ImageVerdictSource;
  /** PEM certificate chain and key; plain HTTP without them (tests through `inject` only). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  logger?: FastifyBaseLogger | false;
  bodyLimit?: number;
}

const errorBody = (code: string, message: string): { error: { code: string; message: string } } => ({
  error: { code, message },
});

export async function buildAdmissionApp(options: AdmissionAppOptions): Promise<FastifyInstance> {
  const { policy, images } = options;
  const app = Fastify({
    bodyLimit: options.bodyLimit ?? ADMISSION_BODY_LIMIT,
    ...(options.tls
      ? { https: { cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' } }
      : {}),
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
  }) as unknown as FastifyInstance;

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply.status(status).send(errorBody(ErrorCodes.ADMISSION_REVIEW_INVALID, error.message));
    }
    request.log.error({ err: error }, 'admission request failed');
    return reply.status(500).send(errorBody('INTERNAL', 'internal error'));
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send(errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.post('/validate', async (request, reply) => {
    const parsed = admissionReviewSchema.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      return reply
        .status(400)
        .send(
          errorBody(
            ErrorCodes.ADMISSION_REVIEW_INVALID,
            `not an admission.k8s.io/v1 AdmissionReview: ${where}${issue?.message ?? 'invalid'}`,
          ),
        );
    }
    const { request: review } = parsed.data;
    const decision = await decideAdmission(review, policy, images);
    // Denials and warnings are the audit trail; plain admissions only at debug (100s per second).
    const level = decision.allowed && decision.warnings.length === 0 ? 'debug' : 'info';
    request.log[level](
      {
        uid: review.uid,
        kind: review.kind.kind,
        namespace: review.namespace,
        name: review.name,
        operation: review.operation,
        allowed: decision.allowed,
        reasons: decision.reasons,
        warnings: decision.warnings.length,
      },
      'admission decision',
    );
    return admissionResponse(review.uid, decision);
  });

  return app;
}
