/**
 * API tokens: `ctm_<id>_<secret>` where `id` is 16 hex characters (public, the row key) and
 * `secret` is 32 random bytes in base64url. Only a hash of `<id>.<secret>` is stored — SHA-256,
 * or HMAC-SHA256 keyed with a server pepper when one is configured (then a stolen database alone
 * cannot even confirm a guessed token). A slow KDF is unnecessary: the secret has 256 bits of
 * entropy, so brute force is hopeless anyway.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { Principal, Role, Scope } from './principal.js';
import { scopeProblem } from './principal.js';

export const TOKEN_PREFIX = 'ctm_';
const TOKEN_PATTERN = /^ctm_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** One token as persisted. `hash` is hex; times are epoch milliseconds. */
export interface StoredToken {
  id: string;
  hash: string;
  name: string;
  role: Role;
  scope: Scope;
  createdAt: number;
  expiresAt?: number;
  revokedAt?: number;
}

/** Persistence seam: SQLite now, PostgreSQL later. Async so either fits. */
export interface TokenStore {
  insert(token: StoredToken): Promise<void>;
  get(id: string): Promise<StoredToken | undefined>;
  list(): Promise<StoredToken[]>;
  /** Marks the token revoked; false when there is no such token or it was already revoked. */
  revoke(id: string, at: number): Promise<boolean>;
}

/** What callers may see about a token: everything but its hash. */
export type TokenInfo = Omit<StoredToken, 'hash'>;

export interface IssueTokenInput {
  name: string;
  role: Role;
  scope: Scope;
  expiresAt?: number;
}

export interface ApiTokensOptions {
  store: TokenStore;
  /** Server secret mixed into every hash; changing it invalidates every token. */
  pepper?: string | Buffer;
  /** Clock for expiry, epoch ms (tests). */
  now?: () => number;
}

export interface ApiTokens {
  /** Returns the token string once; it cannot be recovered later. */
  issue(input: IssueTokenInput): Promise<{ token: string; info: TokenInfo }>;
  /**
   * Stores a token string chosen by an operator (e.g. a bootstrap admin token from the
   * environment). Registering an id that exists changes nothing and returns what is stored.
   */
  register(token: string, input: IssueTokenInput): Promise<TokenInfo>;
  list(): Promise<TokenInfo[]>;
  revoke(id: string): Promise<boolean>;
  /** Resolves to the caller, or throws UNAUTHENTICATED. */
  verify(token: string): Promise<Principal>;
}

export function isApiToken(value: string): boolean {
  return value.startsWith(TOKEN_PREFIX);
}

function unauthenticated(message: string): ContainmentError {
  return new ContainmentError(ErrorCodes.UNAUTHENTICATED, message);
}

function toInfo({ hash: _hash, ...info }: StoredToken): TokenInfo {
  return info;
}

export function createApiTokens(options: ApiTokensOptions): ApiTokens {
  const { store, pepper } = options;
  const now = options.now ?? Date.now;

  const hashOf = (id: string, secret: string): Buffer => {
    const h = pepper === undefined ? createHash('sha256') : createHmac('sha256', pepper);
    return h.update(`${id}.${secret}`).digest();
  };

  /** Validates and stores a token's hash (never the secret). */
  const storeToken = async (id: string, secret: string, input: IssueTokenInput): Promise<TokenInfo> => {
    const problem = scopeProblem(input.role, input.scope);
    if (problem) throw new ContainmentError(ErrorCodes.USAGE, problem);
    if (input.scope.cluster === '')
      throw new ContainmentError(ErrorCodes.USAGE, 'token cluster must not be empty');
    const stored: StoredToken = {
      id,
      hash: hashOf(id, secret).toString('hex'),
      name: input.name,
      role: input.role,
      scope: input.scope,
      createdAt: now(),
      ...(input.expiresAt === undefined ? {} : { expiresAt: input.expiresAt }),
    };
    await store.insert(stored);
    return toInfo(stored);
  };

  return {
    async issue(input) {
      const id = randomBytes(8).toString('hex');
      const secret = randomBytes(32).toString('base64url');
      const info = await storeToken(id, secret, input);
      return { token: `${TOKEN_PREFIX}${id}_${secret}`, info };
    },

    async register(token, input) {
      const match = TOKEN_PATTERN.exec(token);
      if (!match) {
        throw new ContainmentError(
          ErrorCodes.USAGE,
          `not a Containment API token (${TOKEN_PREFIX}<16 hex>_<43 base64url>)`,
        );
      }
      const [, id = '', secret = ''] = match;
      const existing = await store.get(id);
      if (existing) return toInfo(existing);
      return storeToken(id, secret, input);
    },

    async list() {
      return (await store.list()).map(toInfo);
    },

    revoke(id) {
      return store.revoke(id, now());
    },

    async verify(token) {
      const match = TOKEN_PATTERN.exec(token);
      if (!match) throw unauthenticated('malformed API token');
      const [, id = '', secret = ''] = match;
      const stored = await store.get(id);
      const expected = stored ? Buffer.from(stored.hash, 'hex') : undefined;
      const actual = hashOf(id, secret);
      if (!stored || expected?.length !== actual.length || !timingSafeEqual(expected, actual)) {
        throw unauthenticated('invalid API token');
      }
      // Past this point the caller proved it holds the secret, so saying why is no oracle.
      if (stored.revokedAt !== undefined) throw unauthenticated('API token revoked');
      if (stored.expiresAt !== undefined && stored.expiresAt <= now())
        throw unauthenticated('API token expired');
      return { subject: `token:${id}`, role: stored.role, scope: stored.scope, via: 'token', tokenId: id };
    },
  };
}
