/**
 * `TokenStore` on PostgreSQL, for scanner replicas sharing one database. The table is created
 * under an advisory lock (replicas may start together). Times stay epoch milliseconds (bigint),
 * as in the SQLite store, so both round-trip the same values.
 */
import type { Pool } from 'pg';
import { z } from 'zod';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { StoredToken, TokenStore } from './api-tokens.js';
import { ROLES } from './principal.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS auth_tokens (
  id          text PRIMARY KEY,
  hash        text NOT NULL,
  name        text NOT NULL,
  role        text NOT NULL CHECK (role IN (${ROLES.map((r) => `'${r}'`).join(', ')})),
  cluster     text NOT NULL,
  namespaces  jsonb NOT NULL,
  created_at  bigint NOT NULL,
  expires_at  bigint,
  revoked_at  bigint
)`;

// bigint columns arrive as strings (pg keeps 64-bit integers exact).
const epochMs = z
  .string()
  .regex(/^\d+$/)
  .transform((s) => Number(s));

const rowSchema = z.object({
  id: z.string(),
  hash: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  cluster: z.string(),
  namespaces: z.union([z.literal('*'), z.array(z.string())]),
  created_at: epochMs,
  expires_at: epochMs.nullable(),
  revoked_at: epochMs.nullable(),
});

function fromRow(raw: unknown): StoredToken {
  const parsed = rowSchema.safeParse(raw);
  if (!parsed.success)
    throw new ContainmentError(ErrorCodes.DB_UNREADABLE, 'auth_tokens holds a malformed row');
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

/** Creates the table if needed and returns the store; the pool stays the caller's. */
export async function openPostgresTokenStore(pool: Pool): Promise<TokenStore> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext('containment.auth.schema'))");
    await client.query(SCHEMA);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }

  const get = async (id: string): Promise<StoredToken | undefined> => {
    const { rows } = await pool.query('SELECT * FROM auth_tokens WHERE id = $1', [id]);
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  };

  return {
    get,
    async insert(token) {
      const { rowCount } = await pool.query(
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
      if (rowCount === 1) return;
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
      const { rows } = await pool.query('SELECT * FROM auth_tokens ORDER BY created_at, id');
      return rows.map(fromRow);
    },
    async revoke(id, at) {
      const { rowCount } = await pool.query(
        'UPDATE auth_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL',
        [at, id],
      );
      return rowCount === 1;
    },
  };
}
