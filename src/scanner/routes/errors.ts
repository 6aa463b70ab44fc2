/**
 * The one place where the scanner API turns errors into HTTP answers `{ error: { code, message } }`:
 * its own `ScannerApiError`s, the shared `ContainmentError`s (store domain errors included:
 * not found → 404, conflict → 409), Fastify's body errors, and anything else as a logged 500.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { isContainmentError } from '../../errors.js';
import { ApiErrorCodes, ScannerApiError, httpStatusOf } from '../api-error.js';

export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

const FASTIFY_ERRORS: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, ApiErrorCodes.PAYLOAD_TOO_LARGE],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, ApiErrorCodes.UNSUPPORTED_MEDIA_TYPE],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, ApiErrorCodes.INVALID_JSON],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, ApiErrorCodes.INVALID_JSON],
};

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | Error, request, reply: FastifyReply) => {
    if (error instanceof ScannerApiError) {
      return reply.status(error.status).send(errorBody(error.code, error.message));
    }
    if (isContainmentError(error)) {
      const status = httpStatusOf(error);
      if (status === 401) {
        void reply.header('www-authenticate', 'Bearer realm="containment", error="invalid_token"');
      }
      return reply.status(status).send(errorBody(error.code, error.message));
    }
    const code = (error as FastifyError).code;
    const known = code === undefined ? undefined : FASTIFY_ERRORS[code];
    if (known) return reply.status(known[0]).send(errorBody(known[1], error.message));
    const status = (error as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return reply.status(status).send(errorBody(ApiErrorCodes.REQUEST_INVALID, error.message));
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send(errorBody(ApiErrorCodes.INTERNAL, 'internal error'));
  });

  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send(errorBody(ApiErrorCodes.NOT_FOUND, `no route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
