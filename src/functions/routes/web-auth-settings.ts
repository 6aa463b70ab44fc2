/**
 * `/api/v1/namespaces/{ns}/settings/web-auth`: the JWT issuer of the namespace's web actions
 * (`{ issuer, audience, jwksUrl, algorithms? }`, web-auth.ts), read, set and removed with the
 * namespace's key. Refused settings (symmetric algorithms, a JWKS URL on a metadata or link-local
 * address) are 400 CONFIG_INVALID and change nothing.
 */
import type { FastifyInstance } from 'fastify';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { WhiskError, WhiskMessages } from '../runtime.js';
import type { FunctionStore } from '../store.js';
import { parseWebAuthSettings, WEB_AUTH_SETTING } from '../web-auth.js';
import type { WebAuthSettings } from '../web-auth.js';
import { namespaceOf } from './common.js';

export function registerWebAuthSettingsRoutes(app: FastifyInstance, store: FunctionStore): void {
  const url = `/api/v1/namespaces/:ns/settings/${WEB_AUTH_SETTING}`;
  app.get(url, async (request) => {
    const ns = namespaceOf(request);
    const settings = store.getNamespaceSetting<WebAuthSettings>(ns, WEB_AUTH_SETTING);
    if (settings === undefined) throw new WhiskError(404, WhiskMessages.notFound);
    return settings;
  });
  app.put(url, async (request) => {
    const ns = namespaceOf(request);
    let settings: WebAuthSettings;
    try {
      settings = parseWebAuthSettings(request.body);
    } catch (e) {
      if (e instanceof ContainmentError) throw new WhiskError(400, e.message, ErrorCodes.CONFIG_INVALID);
      throw e;
    }
    store.putNamespaceSetting(ns, WEB_AUTH_SETTING, settings);
    return settings;
  });
  app.delete(url, async (request) => {
    const ns = namespaceOf(request);
    store.putNamespaceSetting(ns, WEB_AUTH_SETTING, undefined);
    return {};
  });
}
