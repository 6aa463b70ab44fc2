/**
 * The enforcer's local action API (single-machine mode, issue 5): SecurityActions in over HTTP,
 * their state out. Policies reach it through the SDK host's HTTP EnforcementClient; `containment up`
 * also mounts it in the scanner service, so the dashboard reaches it on its own origin.
 *
 * - `POST /v1/actions[?wait=true]` — body: a SecurityAction. Default: 202 with the Pending/Running
 *   state (the work goes on); `wait=true`: 200 with the final state. A known id answers 200 with
 *   what is stored (the work is done once); the same id with another spec is 409.
 * - `POST /v1/actions/preview` — the same body and checks; 200 with what would be done to which
 *   container, without storing or doing anything (the dashboard's dry-run preview).
 * - `GET /v1/actions/{id}` — 404 when missing or outside the caller's namespaces (they look alike).
 * - `GET /v1/actions/{id}/evidence/{path}` — one file of the action's evidence bundle (when an
 *   `evidenceDir` is configured), with the SHA-256 recorded at capture as `Repr-Digest`.
 * - `GET /v1/actions[?namespace=&phase=&limit=]` — newest first, only the caller's namespaces.
 * - `GET /v1/audit?namespace=&pod=` — when an `audit` is configured (`containment up`): each action
 *   on the pod with the scan, event and policy activation that led to it.
 *
 * An action without `spec.requestedBy` is recorded as requested by the caller (its subject, e.g.
 * `token:<id>`).
 *
 * Auth: a bearer token — one configured here (`containment up` hands its own to the policy runtime)
 * or an API token verified by the scanner's verifier — whose scope covers the enforcer's cluster
 * and the target namespace. Reading needs `actions:read` (admin, analyst, viewer, policy);
 * submitting and previewing need `actions:write` (admin, analyst, policy).
 * Errors are `{ error: { code, message } }`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type {
  FastifyBaseLogger,
  FastifyError,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
} from 'fastify';
import { z } from 'zod';
import type { ApiTokens } from '../auth/api-tokens.js';
import { authenticate } from '../auth/authenticate.js';
import type { OidcVerifier } from '../auth/oidc.js';
import { can, namespaceFilter, roleAllows } from '../auth/principal.js';
import type { Principal, Role } from '../auth/principal.js';
import { ContainmentError, ErrorCodes, isContainmentError } from '../errors.js';
import type { Enforcer } from './local-enforcer.js';
import { workloadNameSchema } from '../workload-names.js';
import { ACTION_PHASES, actionIdSchema, parseSecurityAction } from './security-action.js';
import type { SecurityAction } from './security-action.js';

/** A bearer token this API accepts without a token service, and who holds it. */
export interface ConfiguredToken {
  token: string;
  /** Shown as the principal's subject (`configured:<name>`). */
  name: string;
  role: Role;
  namespaces: readonly string[] | '*';
}

export interface ActionApiOptions {
  enforcer: Pick<Enforcer, 'submit' | 'preview' | 'get' | 'list'>;
  /** The enforcer's cluster (default `local`): callers' scopes must cover it. */
  cluster?: string;
  tokens?: readonly ConfiguredToken[];
  /** The scanner's API-token verifier, for `ctm_…` tokens. */
  verifier?: Pick<ApiTokens, 'verify'>;
  oidc?: OidcVerifier;
  /** Called when an action submitted without `wait` fails unexpectedly after the response went out. */
  onBackgroundError?: (error: unknown, id: string) => void;
  /** Joins the pod's actions (newest first) with what caused them; enables `GET /v1/audit`. */
  audit?: (actions: SecurityAction[]) => Promise<unknown[]>;
  /** Where the enforcer writes evidence bundles; enables `GET /v1/actions/{id}/evidence/{file}`. */
  evidenceDir?: string;
}

export const ActionApiErrorCodes = {
  REQUEST_INVALID: 'REQUEST_INVALID',
  NOT_FOUND: 'NOT_FOUND',
  /** The action id is already used for a different request. */
  CONFLICT: 'CONFLICT',
  INTERNAL: 'INTERNAL',
} as const;

const MAX_BODY_BYTES = 64 * 1024;
const FINAL_PHASES: ReadonlySet<string> = new Set(['Succeeded', 'Failed']);

export const postQuerySchema = z.strictObject({ wait: z.enum(['true', 'false']).default('false') });
export const listQuerySchema = z.strictObject({
  namespace: workloadNameSchema.optional(),
  phase: z.enum(ACTION_PHASES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
// A path inside the bundle (`inspect.json`, `logs/stdout.log`): every segment starts with a letter
// or digit, so never `.`, `..`, an empty segment or an absolute path.
const SEGMENT = '[A-Za-z0-9][A-Za-z0-9_.-]{0,127}';
const evidenceFileSchema = z.string().regex(new RegExp(`^${SEGMENT}(?:/${SEGMENT})?$`));

export const auditQuerySchema = z.strictObject({
  namespace: workloadNameSchema,
  pod: workloadNameSchema,
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function query<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new HttpError(
    400,
    ActionApiErrorCodes.REQUEST_INVALID,
    `${where}${issue?.message ?? 'invalid query'}`,
  );
}

function statusOf(code: string): number {
  switch (code) {
    case ErrorCodes.UNAUTHENTICATED:
      return 401;
    // TARGET_NOT_MANAGED: the caller may act in the namespace, but this enforcer may not act on that container.
    case ErrorCodes.FORBIDDEN:
    case ErrorCodes.TARGET_NOT_MANAGED:
      return 403;
    case ErrorCodes.ENGINE_UNAVAILABLE:
      return 503;
    default:
      return 400;
  }
}

const digest = (token: string): Buffer => createHash('sha256').update(token).digest();

/** An API-token verifier that knows no token: `ctm_…` tokens fail when none is configured. */
const noVerifier: Pick<ApiTokens, 'verify'> = {
  verify: () => Promise.reject(new ContainmentError(ErrorCodes.UNAUTHENTICATED, 'unknown bearer token')),
};

const BEARER = /^bearer +(\S+) *$/i;

/** Who sends a request: a token from the configuration, else the API tokens and OIDC. */
function authenticator(
  options: ActionApiOptions,
  cluster: string,
): (header: string | undefined) => Promise<Principal> {
  // Compared as digests so the comparison takes the same time whatever the token's length.
  const configured = (options.tokens ?? []).map((t) => ({ ...t, digest: digest(t.token) }));
  return async (header) => {
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (token !== undefined) {
      const d = digest(token);
      const match = configured.find((c) => timingSafeEqual(c.digest, d));
      if (match) {
        return {
          subject: `configured:${match.name}`,
          role: match.role,
          scope: { cluster, namespaces: match.namespaces },
          via: 'token',
        };
      }
    }
    return authenticate(header, {
      tokens: options.verifier ?? noVerifier,
      ...(options.oidc ? { oidc: options.oidc } : {}),
    });
  };
}

/** Every failure as `{ error: { code, message } }` with its HTTP status; internals are logged, not sent. */
function sendError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const send = (status: number, code: string, message: string): FastifyReply =>
    reply.status(status).send({ error: { code, message } });
  if (error instanceof HttpError) return send(error.status, error.code, error.message);
  if (isContainmentError(error)) {
    const status = statusOf(error.code);
    if (status === 401)
      void reply.header('www-authenticate', 'Bearer realm="containment", error="invalid_token"');
    return send(status, error.code, error.message);
  }
  const status = (error as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500)
    return send(status, ActionApiErrorCodes.REQUEST_INVALID, error.message);
  request.log.error({ err: error }, 'action API request failed');
  return send(500, ActionApiErrorCodes.INTERNAL, 'internal error');
}

// Over 120 lines: its routes share the authentication and access checks built at its top.
/** The routes, for registering into a larger server (`containment up`) or `buildActionApi`. */
export const actionApiPlugin: FastifyPluginAsync<ActionApiOptions> = async (app, options) => {
  const cluster = options.cluster ?? 'local';
  const { enforcer } = options;
  const principalFor = authenticator(options, cluster);
  const principals = new WeakMap<FastifyRequest, Principal>();

  const principalOf = (request: FastifyRequest): Principal => {
    const principal = principals.get(request);
    if (!principal) throw new Error('request reached an action handler unauthenticated');
    return principal;
  };

  const mayActOn = (principal: Principal, action: SecurityAction): boolean =>
    can(principal, 'actions:write', { cluster, namespace: action.spec.target.namespace });
  const mayRead = (principal: Principal, namespace: string): boolean =>
    can(principal, 'actions:read', { cluster, namespace });

  app.addHook('onRequest', async (request) => {
    const principal = await principalFor(request.headers.authorization);
    if (!roleAllows(principal.role, 'actions:read'))
      throw new ContainmentError(ErrorCodes.FORBIDDEN, `role ${principal.role} may not read actions`);
    principals.set(request, principal);
  });

  /** The body as an action the caller may ask for: REQUEST_INVALID / FORBIDDEN otherwise. */
  const requested = (principal: Principal, body: unknown): SecurityAction => {
    if (!roleAllows(principal.role, 'actions:write'))
      throw new ContainmentError(ErrorCodes.FORBIDDEN, `role ${principal.role} may not submit actions`);
    const action = parseSecurityAction(body);
    const { namespace } = action.spec.target;
    if (action.metadata.namespace !== undefined && action.metadata.namespace !== namespace) {
      throw new HttpError(
        400,
        ActionApiErrorCodes.REQUEST_INVALID,
        `metadata.namespace "${action.metadata.namespace}" differs from spec.target.namespace "${namespace}"`,
      );
    }
    if (!mayActOn(principal, action))
      throw new ContainmentError(
        ErrorCodes.FORBIDDEN,
        `not allowed to act in namespace ${cluster}/${namespace}`,
      );
    // Who asked, when the request does not say (the dashboard never does): the authenticated caller.
    action.spec.requestedBy ??= principal.subject;
    return action;
  };

  /** A stored action the caller may read; another namespace's looks exactly like a missing one. */
  const readable = (request: FastifyRequest, rawId: string): SecurityAction => {
    const parsed = actionIdSchema.safeParse(rawId);
    if (!parsed.success) throw new HttpError(400, ActionApiErrorCodes.REQUEST_INVALID, 'invalid action id');
    const action = enforcer.get(parsed.data);
    if (!action || !mayRead(principalOf(request), action.spec.target.namespace))
      throw new HttpError(404, ActionApiErrorCodes.NOT_FOUND, `action ${parsed.data} not found`);
    return action;
  };

  app.setErrorHandler(sendError);

  app.post('/v1/actions', { bodyLimit: MAX_BODY_BYTES }, async (request, reply) => {
    const principal = principalOf(request);
    const { wait } = query(postQuerySchema, request.query);
    const action = requested(principal, request.body);

    const id = action.metadata.name;
    const known = enforcer.get(id);
    let accepted = (): void => {};
    const stored = new Promise<undefined>((resolve) => (accepted = () => resolve(undefined)));
    const run = enforcer.submit(action, { onAccepted: () => accepted() }).catch((e: unknown) => {
      // The body was valid, so the only refusal left is an id already used for another spec.
      if (isContainmentError(e) && e.code === ErrorCodes.ACTION_INVALID)
        throw new HttpError(409, ActionApiErrorCodes.CONFLICT, e.message);
      throw e;
    });
    if (wait === 'true') return reply.status(200).send(await run);

    // A refusal (bad id, TARGET_NOT_MANAGED, no engine) comes before the action is stored:
    // answer it as an error; once stored, answer at once with the current state.
    const early = await Promise.race([
      run.then(
        (done) => ({ done }),
        (error: unknown) => ({ error }),
      ),
      stored,
    ]);
    if (early && 'error' in early) throw early.error;
    void run.catch((e: unknown) => options.onBackgroundError?.(e, id));
    const current = early?.done ?? enforcer.get(id) ?? known;
    if (!current) throw new Error(`action ${id} was accepted but is not stored`);
    const final = current.status !== undefined && FINAL_PHASES.has(current.status.phase);
    return reply.status(final ? 200 : 202).send(current);
  });

  app.post('/v1/actions/preview', { bodyLimit: MAX_BODY_BYTES }, async (request) =>
    enforcer.preview(requested(principalOf(request), request.body)),
  );

  app.get('/v1/actions/:id', async (request) => readable(request, (request.params as { id: string }).id));

  const { evidenceDir } = options;
  if (evidenceDir !== undefined) {
    const serveEvidence = evidenceHandler(evidenceDir, readable);
    // A bundle's files sit at its top or one directory down (`logs/stdout.log`).
    app.get('/v1/actions/:id/evidence/:entry', serveEvidence);
    app.get('/v1/actions/:id/evidence/:entry/:file', serveEvidence);
  }

  app.get('/v1/actions', async (request) => {
    const principal = principalOf(request);
    const { namespace, phase, limit } = query(listQuerySchema, request.query);
    const visible = namespaceFilter(principal, cluster);
    let namespaces: readonly string[] | '*' = visible === 'none' ? [] : visible;
    if (namespace !== undefined)
      namespaces = namespaces === '*' || namespaces.includes(namespace) ? [namespace] : [];
    return { actions: enforcer.list({ namespaces, limit, ...(phase === undefined ? {} : { phase }) }) };
  });

  const { audit } = options;
  if (audit !== undefined) {
    app.get('/v1/audit', async (request) => {
      const principal = principalOf(request);
      const { namespace, pod, limit } = query(auditQuerySchema, request.query);
      // An invisible namespace reads as one without actions, as in the list.
      const visible = mayRead(principal, namespace);
      const actions = visible
        ? enforcer
            .list({ namespaces: [namespace], limit: 1000 })
            .filter((a) => a.spec.target.pod === pod)
            .slice(0, limit)
        : [];
      return { workload: { cluster, namespace, pod }, trail: await audit(actions) };
    });
  }
};

/** Serves an evidence file of an action the caller may read: only one its status lists, in its bundle. */
function evidenceHandler(
  evidenceDir: string,
  readable: (request: FastifyRequest, rawId: string) => SecurityAction,
): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply> {
  return async (request, reply) => {
    // `entry`: a file at the top of the bundle, or the directory holding `file`.
    const params = request.params as { id: string; entry: string; file?: string };
    const action = readable(request, params.id);
    const wanted = params.file === undefined ? params.entry : `${params.entry}/${params.file}`;
    const file = evidenceFileSchema.safeParse(wanted);
    const bundle = join(resolve(evidenceDir), action.metadata.name);
    // Only a file the action's status lists, inside this action's bundle.
    const item = file.success
      ? action.status?.evidence.find((e) => {
          if (!e.uri.startsWith('file:')) return false;
          return fileURLToPath(e.uri) === join(bundle, file.data);
        })
      : undefined;
    if (!item || !file.success)
      throw new HttpError(
        404,
        ActionApiErrorCodes.NOT_FOUND,
        `no evidence file ${params.file} in action ${params.id}`,
      );
    const path = join(bundle, file.data);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile())
      throw new HttpError(404, ActionApiErrorCodes.NOT_FOUND, `evidence file ${file.data} is gone`);
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', info.size)
      .header('content-disposition', `attachment; filename="${params.id}-${file.data.replaceAll('/', '-')}"`)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-store')
      .header('repr-digest', `sha-256=:${Buffer.from(item.sha256, 'hex').toString('base64')}:`)
      .send(createReadStream(path));
  };
}

export interface RunningActionApi {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** A Fastify app serving only the action API (`containment up` runs it beside the scanner). */
export async function buildActionApi(
  options: ActionApiOptions & { logger?: FastifyBaseLogger },
): Promise<FastifyInstance> {
  const { logger, ...plugin } = options;
  const app = Fastify(logger ? { loggerInstance: logger } : { logger: false }) as unknown as FastifyInstance;
  await app.register(actionApiPlugin, plugin);
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: {
        code: ActionApiErrorCodes.NOT_FOUND,
        message: `no route ${request.method} ${request.url.split('?')[0]}`,
      },
    }),
  );
  return app;
}

/** Builds the app and listens (tests: port 0 on 127.0.0.1). */
export async function startActionApi(
  options: ActionApiOptions & { host: string; port: number; logger?: FastifyBaseLogger },
): Promise<RunningActionApi> {
  const { host, port, ...rest } = options;
  const app = await buildActionApi(rest);
  await app.listen({ host, port });
  const address = app.server.address() as AddressInfo;
  return { app, url: `http://${host}:${address.port}`, close: () => app.close() };
}
