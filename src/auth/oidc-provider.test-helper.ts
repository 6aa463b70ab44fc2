/**
 * A real OpenID provider for tests: `oidc-provider` (v8) on loopback, issuing JWT access tokens
 * through the client_credentials grant with per-client extra claims. Each client's secret is
 * `<client id>-secret`; the token's audience is the requested resource indicator.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';

export const RSA_KID = 'provider-rsa';
export const EC_KID = 'provider-ec';

export interface OidcProviderOptions {
  /** Client id → claims added to its access tokens. */
  clients: Record<string, Record<string, unknown>>;
  /** Clients whose tokens are signed ES256 (the others RS256). */
  es256Clients?: readonly string[];
}

export interface TestOidcProvider {
  issuer: string;
  /** The provider's RS256 signing key (kid RSA_KID), for forging tokens that differ in one property. */
  rsaPrivate: CryptoKey;
  /** A real access token from the provider's token endpoint. */
  issue(clientId: string, resource: string): Promise<string>;
  close(): void;
}

type ProviderCtor = new (issuer: string, config: object) => { callback(): RequestListener };

export async function startOidcProvider(options: OidcProviderOptions): Promise<TestOidcProvider> {
  // oidc-provider ships no type declarations; only its constructor and callback() are used.
  const { default: Provider } = (await import('oidc-provider' as string)) as { default: ProviderCtor };
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const keys: JWK[] = [
    { ...(await exportJWK(rsa.privateKey)), kid: RSA_KID, alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.privateKey)), kid: EC_KID, alg: 'ES256', use: 'sig' },
  ];
  const es256 = new Set(options.es256Clients ?? []);

  let handler: RequestListener = (_req, res) => res.writeHead(503).end();
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const provider = new Provider(issuer, {
    jwks: { keys },
    cookies: { keys: ['test-cookie-key'] },
    clients: Object.keys(options.clients).map((id) => ({
      client_id: id,
      client_secret: `${id}-secret`,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    })),
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: (_ctx: unknown, resource: string, client: { clientId: string }) => ({
          scope: 'api',
          audience: resource,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: es256.has(client.clientId) ? 'ES256' : 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (_ctx: unknown, token: { clientId: string }) => options.clients[token.clientId],
  });
  handler = provider.callback();

  return {
    issuer,
    rsaPrivate: rsa.privateKey,
    async issue(clientId, resource) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${clientId}:${clientId}-secret`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'api' }),
      });
      const body = (await res.json()) as { access_token?: string };
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.ok(body.access_token);
      return body.access_token;
    },
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
