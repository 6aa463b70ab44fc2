/**
 * OpenWhisk web actions: `/api/v1/web/{ns}/{package|default}/{action}[.json|.http][/path]` runs an
 * action annotated `web-export: true` for an HTTP caller without an API key. In front of the action,
 * in this order:
 * - `require-whisk-auth` (OpenWhisk's: `true` → Basic auth with the namespace's key; a string → the
 *   `X-Require-Whisk-Auth` header must equal it);
 * - `containment.dev/auth: jwt` → a Bearer JWT from the namespace's issuer with the action's
 *   `containment.dev/required-roles` (web-auth.ts; 401 UNAUTHENTICATED / 403 FORBIDDEN);
 * - `containment.dev/input-threats: report|block` → parameters and body checked (input-threats.ts;
 *   `block` answers 400 INPUT_THREAT);
 * then the action runs with the query and body as parameters (plus `__ow_method`, `__ow_headers`
 * without credentials, `__ow_path`, `__ow_user`), never able to name a triggering event, so an
 * event-scoped policy acts on nothing. Every refusal is in the security-event log. The result is
 * sent as JSON (`.json`), or as `{ statusCode, headers, body }` when it has that shape.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes } from '../../errors.js';
import { annotationsOf, toObject } from '../entities.js';
import type { PackageDoc, StoredAction } from '../entities.js';
import { INPUT_THREATS_ANNOTATION, inputThreatMode, scanInput } from '../input-threats.js';
import { WhiskError, WhiskMessages } from '../runtime.js';
import type { FunctionRuntime } from '../runtime.js';
import type { JsonObject, JsonValue } from '../sandbox/sandbox.js';
import type { SecurityEventKind, SecurityEventLog } from '../security-events.js';
import type { FunctionStore } from '../store.js';
import { REQUIRED_ROLES_ANNOTATION, requiredRoles, WEB_AUTH_ANNOTATION } from '../web-auth.js';
import type { WebAuthenticator } from '../web-auth.js';

export interface WebActionContext {
  runtime: FunctionRuntime;
  store: FunctionStore;
  securityEvents: SecurityEventLog;
  authenticator: WebAuthenticator;
  bodyLimit: number;
}

/** Headers the action never sees: the caller's credentials stay out of activation records. */
const HIDDEN_HEADERS = new Set(['authorization', 'cookie', 'x-require-whisk-auth']);

function sameText(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The request's parameters: query, then a JSON object or form body; other bodies as `__ow_body`. */
function requestParams(request: FastifyRequest): { params: JsonObject; body: JsonValue | undefined } {
  // No prototype: a `__proto__` key in a body is then just a key, never the object's prototype.
  const params: JsonObject = Object.assign(Object.create(null) as JsonObject, request.query);
  const raw = typeof request.body === 'string' ? request.body : '';
  if (raw === '') return { params, body: undefined };
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/json' || type.endsWith('+json')) {
    let body: JsonValue;
    try {
      body = JSON.parse(raw) as JsonValue;
    } catch {
      throw new WhiskError(400, WhiskMessages.malformed('the body is not valid JSON'));
    }
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) Object.assign(params, body);
    else params.__ow_body = body;
    return { params, body };
  }
  if (type === 'application/x-www-form-urlencoded') {
    const form = Object.fromEntries(new URLSearchParams(raw));
    Object.assign(params, form);
    return { params, body: form };
  }
  params.__ow_body = raw;
  return { params, body: raw };
}

function send(reply: FastifyReply, result: JsonValue, asJson: boolean): FastifyReply {
  const shaped =
    !asJson &&
    typeof result === 'object' &&
    result !== null &&
    !Array.isArray(result) &&
    ('statusCode' in result || 'headers' in result || 'body' in result);
  if (!shaped) return reply.code(200).send(result);
  const { statusCode, headers, body } = result as { statusCode?: unknown; headers?: unknown; body?: unknown };
  const status = typeof statusCode === 'number' && statusCode >= 200 && statusCode <= 599 ? statusCode : 200;
  if (typeof headers === 'object' && headers !== null)
    for (const [k, v] of Object.entries(headers))
      if (typeof v === 'string' || typeof v === 'number') void reply.header(k, String(v));
  if (typeof body === 'string' && !reply.hasHeader('content-type'))
    void reply.type('text/html; charset=utf-8');
  return reply.code(status).send(body ?? '');
}

// Over 120 lines: one scoped plugin (raw-body parser, the route, its `authenticate` step) over one context.
export function registerWebActionRoutes(app: FastifyInstance, context: WebActionContext): void {
  const { runtime, store, securityEvents, authenticator } = context;
  void app.register(async (scope) => {
    // Raw text, whatever the content type: the input checks see what was sent, then it is parsed.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: context.bodyLimit }, (_r, body, done) =>
      done(null, body),
    );
    scope.route({
      method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      url: '/api/v1/web/:ns/*',
      handler: async (request, reply) => {
        const { ns, '*': rest } = request.params as { ns: string; '*': string };
        const record = (kind: SecurityEventKind, reason: string): void =>
          securityEvents.record({
            namespace: ns,
            kind,
            endpoint: request.url.split('?')[0] ?? '',
            source: request.ip,
            reason,
          });
        const [pkg, file, ...extra] = rest.split('/');
        const ext = /\.(json|http)$/.exec(file ?? '')?.[1];
        const name = ext === undefined ? file : file?.slice(0, -(ext.length + 1));
        if (!store.hasNamespace(ns) || !pkg || !name) throw new WhiskError(404, WhiskMessages.notFound);
        const path = pkg === 'default' ? name : `${pkg}/${name}`;
        const stored = store.getEntity<StoredAction>(ns, 'actions', path);
        const pkgDoc = pkg === 'default' ? undefined : store.getEntity<PackageDoc>(ns, 'packages', pkg);
        const annotations = annotationsOf(pkgDoc?.annotations ?? [], stored?.doc.annotations ?? []);
        if (stored === undefined || annotations['web-export'] !== true)
          throw new WhiskError(404, WhiskMessages.notFound);

        const user = await authenticate(request, ns, annotations, record);
        const { params, body } = requestParams(request);
        const mode = inputThreatMode(annotations[INPUT_THREATS_ANNOTATION]);
        if (mode !== 'off') {
          const matches = [
            ...scanInput(request.query, 'query'),
            ...(body === undefined ? [] : scanInput(body, 'body')),
            ...scanInput(extra.join('/'), 'path'),
          ];
          if (matches.length > 0) {
            const shown = matches.slice(0, 5).map((m) => `${m.kind} (${m.rule}) in ${m.field}: ${m.excerpt}`);
            record('input-threat', `${mode}: ${shown.join('; ')}${matches.length > 5 ? '; …' : ''}`);
            if (mode === 'block')
              throw new WhiskError(
                400,
                `The request was refused: its input matches a ${matches[0]?.kind} pattern.`,
                ErrorCodes.INPUT_THREAT,
              );
          }
        }
        // What the caller may set: not the runtime's `__ow_*`, nor a `final` action's defaults.
        const fixed =
          annotations.final === true
            ? { ...toObject(pkgDoc?.parameters ?? []), ...toObject(stored.doc.parameters) }
            : {};
        const payload = Object.create(null) as JsonObject;
        for (const [k, v] of Object.entries(params))
          if ((!k.startsWith('__ow_') || k === '__ow_body') && !(k in fixed)) payload[k] = v;
        const headers: JsonObject = {};
        for (const [k, v] of Object.entries(request.headers))
          if (!HIDDEN_HEADERS.has(k) && v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        Object.assign(payload, {
          __ow_method: request.method.toLowerCase(),
          __ow_headers: headers,
          __ow_path: extra.length > 0 ? `/${extra.join('/')}` : '',
          ...(user === undefined ? {} : { __ow_user: user }),
        });
        const outcome = await runtime.invoke(ns, path, payload, {
          blocking: true,
          source: request.ip,
          untrusted: true,
        });
        reply.header('x-openwhisk-activation-id', outcome.activationId);
        const activation = outcome.activation;
        if (activation === undefined) return reply.code(202).send({ activationId: outcome.activationId });
        if (!activation.response.success) {
          const result = activation.response.result as { error?: unknown };
          return reply
            .code(502)
            .send({ error: result.error ?? activation.response.status, code: request.id });
        }
        return send(reply, activation.response.result, ext === 'json');
      },
    });
  });

  /** The caller's identity when the action requires one (its `sub`, or the namespace); throws 401/403. */
  async function authenticate(
    request: FastifyRequest,
    ns: string,
    annotations: JsonObject,
    record: (kind: SecurityEventKind, reason: string) => void,
  ): Promise<string | undefined> {
    let user: string | undefined;
    const whiskAuth = annotations['require-whisk-auth'];
    if (whiskAuth === true) {
      const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(request.headers.authorization ?? '');
      const decoded = match ? Buffer.from(match[1] as string, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      const owner =
        colon > 0 ? store.authenticate(decoded.slice(0, colon), decoded.slice(colon + 1)) : undefined;
      if (owner !== ns) {
        record('authentication-failed', "web action: not the namespace's key");
        throw new WhiskError(401, WhiskMessages.unauthorized, ErrorCodes.UNAUTHENTICATED);
      }
      user = ns;
    } else if (typeof whiskAuth === 'string' || typeof whiskAuth === 'number') {
      const given = request.headers['x-require-whisk-auth'];
      if (typeof given !== 'string' || !sameText(given, String(whiskAuth))) {
        record('authentication-failed', 'web action: X-Require-Whisk-Auth missing or wrong');
        throw new WhiskError(401, WhiskMessages.unauthorized, ErrorCodes.UNAUTHENTICATED);
      }
    }
    const auth = annotations[WEB_AUTH_ANNOTATION];
    if (auth === undefined) return user;
    // Anything but `jwt` was refused when the action was stored; refuse here too rather than run open.
    const outcome =
      auth === 'jwt'
        ? await authenticator.authenticate(
            ns,
            request.headers.authorization,
            requiredRoles(annotations[REQUIRED_ROLES_ANNOTATION]),
          )
        : ({
            ok: false,
            status: 401,
            code: ErrorCodes.UNAUTHENTICATED,
            reason: `unknown auth ${String(auth)}`,
          } as const);
    if (!outcome.ok) {
      record(
        outcome.status === 401 ? 'authentication-failed' : 'access-denied',
        `web action JWT: ${outcome.reason}`,
      );
      throw new WhiskError(
        outcome.status,
        outcome.status === 401 ? WhiskMessages.unauthorized : WhiskMessages.forbidden,
        outcome.code,
      );
    }
    return typeof outcome.claims.sub === 'string' ? outcome.claims.sub : user;
  }
}
