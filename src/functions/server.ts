/**
 * OpenWhisk's REST API (`/api/v1/namespaces/{ns}/{actions,packages,triggers,rules,activations}`) over
 * the FunctionRuntime, with OpenWhisk's authentication: HTTP Basic `uuid:key`, the key scoped to one
 * namespace, `_` meaning the caller's own. Errors are `{ error, code }` as OpenWhisk sends them (plus
 * `errorCode`, a stable Containment code, where there is one).
 *
 * The security wrapper around it: per-source (IP) rate limits on the API and on web endpoints,
 * counted before authentication so key guessing is throttled too (429 with Retry-After); body-size
 * limits (action code up to 50 MB, every other body at OpenWhisk's 1 MB parameter limit); and the
 * security-event log of refused calls, readable at `/api/v1/namespaces/{ns}/security-events`.
 * Web actions (`/api/v1/web/…`) may require a JWT and check their input (routes/web-actions.ts).
 */
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { FunctionRuntime } from './runtime.js';
import { registerActionRoutes } from './routes/actions.js';
import { registerActivationRoutes } from './routes/activations.js';
import { namespaceOf } from './routes/common.js';
import { registerEntityRoutes } from './routes/entities.js';
import { registerSecurityEventRoutes } from './routes/security-events.js';
import { registerWebActionRoutes } from './routes/web-actions.js';
import { registerWebAuthSettingsRoutes } from './routes/web-auth-settings.js';
import { installSecurityWrapper } from './routes/security-wrapper.js';
import type { RateLimitSetting } from './routes/security-wrapper.js';
import type { ReplayGuard } from '../events/signature.js';
import type { SecurityEventLog } from './security-events.js';
import { registerSecurityNotices } from './security-notices.js';
import type { FunctionStore } from './store.js';
import { WEB_AUTH_SETTING, WebAuthenticator } from './web-auth.js';
import type { WebAuthSettings } from './web-auth.js';

export interface FunctionsAppOptions {
  runtime: FunctionRuntime;
  store: FunctionStore;
  logger: FastifyBaseLogger;
  /** Largest action PUT (its code); OpenWhisk allows 48 MB of code. */
  bodyLimit?: number;
  securityEvents: SecurityEventLog;
  /** The namespace whose key may read every namespace's security events (`?all=true`): `guest`. */
  adminNamespace?: string;
  /** Requests per source address and window; `false` turns a limit (or both) off. */
  rateLimit?: { api: RateLimitSetting | false; web: RateLimitSetting | false } | false;
  /** Accepted delivery ids of the security-notices endpoint (in memory when not given). */
  replayGuard?: ReplayGuard;
  /** @deprecated Accept the replayable pre-Standard-Webhooks schemes on security-notices. */
  acceptLegacySignature?: boolean;
}

const DEFAULT_BODY_LIMIT = 50 * 1024 * 1024;
/** Every body but action code: parameters are capped at 1 MB, plus room for JSON framing. */
const PARAMETER_BODY_LIMIT = 1024 * 1024 + 64 * 1024;

/** The app: the security wrapper, then one route module per resource (`routes/`). */
export async function buildFunctionsApp(options: FunctionsAppOptions): Promise<FastifyInstance> {
  const { runtime, store, securityEvents } = options;
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: PARAMETER_BODY_LIMIT,
    // Behind a proxy the address is the proxy's; per-source limits then need its X-Forwarded-For.
    trustProxy: false,
  });
  await installSecurityWrapper(app, {
    store,
    securityEvents,
    ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }),
  });

  app.get('/api/v1', async () => ({
    api_paths: ['/api/v1'],
    description: 'OpenWhisk API',
    runtime: 'containment',
  }));
  app.get('/api/v1/namespaces', async (request) => [namespaceOf(request, '_')]);
  const context = { runtime, store };
  registerActionRoutes(app, context, options.bodyLimit ?? DEFAULT_BODY_LIMIT);
  registerEntityRoutes(app, context);
  registerActivationRoutes(app, context);
  registerSecurityEventRoutes(app, securityEvents, options.adminNamespace);
  // The web endpoint of the security-notices package.
  registerSecurityNotices(app, {
    runtime,
    log: securityEvents,
    ...(options.replayGuard === undefined ? {} : { replayGuard: options.replayGuard }),
    acceptLegacySignature: options.acceptLegacySignature === true,
  });
  // Web actions, and the JWT issuer of each namespace's web actions.
  registerWebAuthSettingsRoutes(app, store);
  const authenticator = new WebAuthenticator((ns) =>
    store.getNamespaceSetting<WebAuthSettings>(ns, WEB_AUTH_SETTING),
  );
  registerWebActionRoutes(app, {
    runtime,
    store,
    securityEvents,
    authenticator,
    bodyLimit: PARAMETER_BODY_LIMIT,
  });
  return app;
}
