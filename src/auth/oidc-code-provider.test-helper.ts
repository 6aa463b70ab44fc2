/**
 * A real OpenID provider (`oidc-provider` v8, as in oidc-provider.test-helper.ts) for the
 * authorization code flow: its development login form accepts any login name (the password is
 * ignored) and asks for consent; each account's extra claims (roles, namespaces) go into its ID
 * token. The issuer URL is known before the client is configured, because the redirect URI
 * belongs to a server that needs the issuer to start.
 */
import { createServer } from 'node:http';
import type { RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';

export interface CodeFlowProvider {
  issuer: string;
  /** Registers the one client; logins map to `accounts[login]` claims (unknown logins get none). */
  configure(client: {
    clientId: string;
    clientSecret: string;
    redirectUri: string;
    accounts: Record<string, Record<string, unknown>>;
  }): Promise<void>;
  close(): void;
}

type ProviderCtor = new (issuer: string, config: object) => { callback(): RequestListener };

export async function startCodeFlowProvider(): Promise<CodeFlowProvider> {
  const { default: Provider } = (await import('oidc-provider' as string)) as { default: ProviderCtor };
  let handler: RequestListener = (_req, res) => res.writeHead(503).end();
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    async configure({ clientId, clientSecret, redirectUri, accounts }) {
      const rsa = await generateKeyPair('RS256', { extractable: true });
      const provider = new Provider(issuer, {
        jwks: { keys: [{ ...(await exportJWK(rsa.privateKey)), kid: 'code-rsa', alg: 'RS256', use: 'sig' }] },
        cookies: { keys: ['test-cookie-key'] },
        clients: [
          {
            client_id: clientId,
            client_secret: clientSecret,
            grant_types: ['authorization_code'],
            response_types: ['code'],
            redirect_uris: [redirectUri],
            token_endpoint_auth_method: 'client_secret_post',
          },
        ],
        pkce: { required: () => true },
        claims: { openid: ['sub', 'roles', 'namespaces'] },
        conformIdTokenClaims: false,
        features: { devInteractions: { enabled: true } },
        findAccount: (_ctx: unknown, id: string) => ({
          accountId: id,
          claims: () => ({ sub: id, ...accounts[id] }),
        }),
      });
      handler = provider.callback();
    },
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
