/**
 * The OIDC flags of `containment server` and `containment up`: the issuer whose JWTs the server
 * accepts, and the dashboard's OIDC client (authorization code + PKCE against that issuer).
 * Flags > environment (`CONTAINMENT_OIDC_*`) > the config file's `oidc` > defaults.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { OidcVerifierOptions } from '../auth/oidc.js';
import type { ConfigFile } from '../config/config.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { WebOidcClient } from '../scanner/routes/ui-oidc.js';

export interface OidcFlags {
  oidcIssuer?: string;
  oidcAudience?: string;
  oidcRolesClaim?: string;
  oidcNamespacesClaim?: string;
  oidcClusterClaim?: string;
  oidcClientId?: string;
  oidcClientSecret?: string;
  oidcRedirectUri?: string;
}

export function addOidcOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--oidc-issuer <url>', 'also accept OIDC JWTs from this issuer (JWKS by discovery)').env(
        'CONTAINMENT_OIDC_ISSUER',
      ),
    )
    .addOption(
      new Option('--oidc-audience <aud>', 'audience OIDC tokens must carry').env('CONTAINMENT_OIDC_AUDIENCE'),
    )
    .addOption(
      new Option('--oidc-roles-claim <claim>', 'claim holding the role(s) (default: roles)').env(
        'CONTAINMENT_OIDC_ROLES_CLAIM',
      ),
    )
    .addOption(
      new Option(
        '--oidc-namespaces-claim <claim>',
        'claim holding the namespaces, a list or * (default: namespaces)',
      ).env('CONTAINMENT_OIDC_NAMESPACES_CLAIM'),
    )
    .addOption(
      new Option('--oidc-cluster-claim <claim>', 'claim holding the cluster (default: every cluster)').env(
        'CONTAINMENT_OIDC_CLUSTER_CLAIM',
      ),
    )
    .addOption(
      new Option(
        '--oidc-client-id <id>',
        "the dashboard's OIDC client at the issuer: enables 'Sign in with your identity provider'",
      ).env('CONTAINMENT_OIDC_CLIENT_ID'),
    )
    .addOption(
      new Option(
        '--oidc-client-secret <secret>',
        "the dashboard client's secret (a confidential client; default: a public client with PKCE only)",
      ).env('CONTAINMENT_OIDC_CLIENT_SECRET'),
    )
    .addOption(
      new Option(
        '--oidc-redirect-uri <url>',
        'redirect URI registered for the client (default: <this server>/ui/oidc/callback)',
      ).env('CONTAINMENT_OIDC_REDIRECT_URI'),
    );
}

/** The verifier's and the dashboard client's settings; `{}` when no issuer is configured. */
export function oidcSettings(
  flags: OidcFlags,
  file: ConfigFile,
): { oidc?: OidcVerifierOptions; webOidc?: WebOidcClient } {
  const f = file.oidc ?? {};
  // An empty variable (CONTAINMENT_OIDC_ISSUER=) is unset, as elsewhere.
  const set = (v: string | undefined): string | undefined => (v === '' ? undefined : v);
  const issuer = set(flags.oidcIssuer) ?? f.issuer;
  const audience = set(flags.oidcAudience) ?? f.audience;
  const clientId = set(flags.oidcClientId) ?? f.clientId;
  const clientSecret = set(flags.oidcClientSecret) ?? f.clientSecret;
  const redirectUri = set(flags.oidcRedirectUri) ?? f.redirectUri;
  if ((issuer === undefined) !== (audience === undefined))
    throw new ContainmentError(ErrorCodes.USAGE, '--oidc-issuer and --oidc-audience go together');
  if (issuer === undefined || audience === undefined) {
    if (clientId !== undefined || clientSecret !== undefined || redirectUri !== undefined)
      throw new ContainmentError(
        ErrorCodes.USAGE,
        '--oidc-client-id, --oidc-client-secret and --oidc-redirect-uri need --oidc-issuer and --oidc-audience',
      );
    return {};
  }
  if (clientId === undefined && (clientSecret !== undefined || redirectUri !== undefined))
    throw new ContainmentError(
      ErrorCodes.USAGE,
      '--oidc-client-secret and --oidc-redirect-uri need --oidc-client-id',
    );
  if (redirectUri !== undefined && !URL.canParse(redirectUri))
    throw new ContainmentError(ErrorCodes.USAGE, `--oidc-redirect-uri ${redirectUri}: not a URL`);
  const clusterClaim = set(flags.oidcClusterClaim) ?? f.clusterClaim;
  return {
    oidc: {
      issuer,
      audience,
      rolesClaim: set(flags.oidcRolesClaim) ?? f.rolesClaim ?? 'roles',
      namespacesClaim: set(flags.oidcNamespacesClaim) ?? f.namespacesClaim ?? 'namespaces',
      ...(clusterClaim === undefined ? {} : { clusterClaim }),
    },
    ...(clientId === undefined
      ? {}
      : {
          webOidc: {
            issuer,
            clientId,
            ...(clientSecret === undefined ? {} : { clientSecret }),
            ...(redirectUri === undefined ? {} : { redirectUri }),
          },
        }),
  };
}
