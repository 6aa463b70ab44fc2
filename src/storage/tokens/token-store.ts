/**
 * `TokenStore` (API tokens, `auth/api-tokens.ts`) on SQLite or PostgreSQL: one implementation
 * over the dialect seam. Times are epoch milliseconds on both (INTEGER / bigint), so both
 * round-trip the same values. On SQLite the table sits beside the server's other tables.
 */
import type { Database } from 'better-sqlite3';
import type { Pool } from 'pg';
import { z } from 'zod';
import type { StoredToken, TokenStore } from '../../auth/api-tokens.js';
import { ROLES } from '../../auth/principal.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { defineMigrations, migratePostgres, migrateSqlite } from '../migrations.js';
import { postgresDb, sqliteDb } from '../sql.js';
import type { SqlDb } from '../sql.js';

const roleCheck = `CHECK (role IN (${ROLES.map((r) => `'${r}'`).join(', ')}))`;

export const TOKEN_MIGRATIONS = defineMigrations('tokens', [
  {
    version: 1,
    name: 'auth_tokens',
    sqlite: `CREATE TABLE IF NOT EXISTS auth_tokens (
      id TEXT PRIMARY KEY, hash TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL ${roleCheck},
      cluster TEXT NOT NULL, namespaces TEXT NOT NULL,
      created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER
    ) STRICT`,
    postgres: `CREATE TABLE IF NOT EXISTS auth_tokens (
      id text PRIMARY KEY, hash text NOT NULL, name text NOT NULL, role text NOT NULL ${roleCheck},
      cluster text NOT NULL, namespaces jsonb NOT NULL,
      created_at bigint NOT NULL, expires_at bigint, revoked_at bigint
    )`,
  },
]);

const malformed = (): ContainmentError =>
  new ContainmentError(ErrorCodes.DB_UNREADABLE, 'auth_tokens holds a malformed row');

// SQLite gives numbers and JSON text; pg gives bigint as digit strings and jsonb parsed.
const epochMs = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]);
const namespacesSchema = z.union([z.literal('*'), z.array(z.string())]);
const namespacesColumn = z.union([
  namespacesSchema,
  z.string().transform((text, ctx) => {
    try {
      return namespacesSchema.parse(JSON.parse(text));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'namespaces' });
      return z.NEVER;
    }
  }),
]);
const rowSchema = z.object({
  id: z.string(),
  hash: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  cluster: z.string(),
  namespaces: namespacesColumn,
  created_at: epochMs,
  expires_at: epochMs.nullable(),
  revoked_at: epochMs.nullable(),
});

function fromRow(raw: unknown): StoredToken {
  const parsed = rowSchema.safeParse(raw);
  if (!parsed.success) throw malformed();
  const row = parsed.data;
  return {
    id: row.id,
    hash: row.hash,
    name: row.name,
    role: row.role,
    scope: { cluster: row.cluster, namespaces: row.namespaces },
    createdAt: row.created_at,
    ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }),
    ...(row.revoked_at === null ? {} : { revokedAt: row.revoked_at }),
  };
}

/** The store over either engine; the table must exist (`TOKEN_MIGRATIONS`). */
export function tokenStore(db: SqlDb): TokenStore {
  const get = async (id: string): Promise<StoredToken | undefined> => {
    const row = await db.get('SELECT * FROM auth_tokens WHERE id = $1', [id]);
    return row === undefined ? undefined : fromRow(row);
  };
  return {
    get,
    async insert(token) {
      const inserted = await db.run(
        `INSERT INTO auth_tokens (id, hash, name, role, cluster, namespaces, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
        [
          token.id,
          token.hash,
          token.name,
          token.role,
          token.scope.cluster,
          JSON.stringify(token.scope.namespaces),
          token.createdAt,
          token.expiresAt ?? null,
        ],
      );
      if (inserted === 1) return;
      // Two replicas registering the same bootstrap token at once: the same token with the same
      // grant is already there, which is what the caller wanted. Anything else is a real clash.
      const existing = await get(token.id);
      const same =
        existing !== undefined &&
        existing.hash === token.hash &&
        existing.role === token.role &&
        existing.scope.cluster === token.scope.cluster &&
        JSON.stringify(existing.scope.namespaces) === JSON.stringify(token.scope.namespaces);
      if (!same) throw new ContainmentError(ErrorCodes.USAGE, `API token id ${token.id} is already in use`);
    },
    async list() {
      return (await db.all('SELECT * FROM auth_tokens ORDER BY created_at, id')).map(fromRow);
    },
    async revoke(id, at) {
      return (
        (await db.run('UPDATE auth_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [
          at,
          id,
        ])) === 1
      );
    },
  };
}

/** Migrates and opens the store on an open SQLite connection (shared with the scanner's tables). */
export function openSqliteTokenStore(db: Database): TokenStore {
  migrateSqlite(db, TOKEN_MIGRATIONS);
  return tokenStore(sqliteDb(db));
}

/** Migrates and opens the store on the caller's pool (which stays the caller's). */
export async function openPostgresTokenStore(pool: Pool): Promise<TokenStore> {
  await migratePostgres(pool, TOKEN_MIGRATIONS);
  return tokenStore(postgresDb(pool));
}
