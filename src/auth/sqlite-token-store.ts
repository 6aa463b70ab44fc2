/**
 * `TokenStore` on SQLite (better-sqlite3). Takes an open database so the server can keep tokens
 * beside its other tables; the table is created when the store is opened.
 */
import type { Database } from 'better-sqlite3';
import { z } from 'zod';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { StoredToken, TokenStore } from './api-tokens.js';
import type { Scope } from './principal.js';
import { ROLES } from './principal.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS auth_tokens (
  id          TEXT PRIMARY KEY,
  hash        TEXT NOT NULL,
  name        TEXT NOT NULL,
  role        TEXT NOT NULL CHECK (role IN (${ROLES.map((r) => `'${r}'`).join(', ')})),
  cluster     TEXT NOT NULL,
  namespaces  TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,
  revoked_at  INTEGER
) STRICT`;

const rowSchema = z.object({
  id: z.string(),
  hash: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  cluster: z.string(),
  namespaces: z.string(),
  created_at: z.number(),
  expires_at: z.number().nullable(),
  revoked_at: z.number().nullable(),
});

const namespacesSchema = z.union([z.literal('*'), z.array(z.string())]);

function malformed(): ContainmentError {
  return new ContainmentError(ErrorCodes.DB_UNREADABLE, 'auth_tokens holds a malformed row');
}

function parseNamespaces(text: string): Scope['namespaces'] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed();
  }
  const parsed = namespacesSchema.safeParse(value);
  if (!parsed.success) throw malformed();
  return parsed.data;
}

function fromRow(raw: unknown): StoredToken {
  const parsed = rowSchema.safeParse(raw);
  if (!parsed.success) throw malformed();
  const row = parsed.data;
  return {
    id: row.id,
    hash: row.hash,
    name: row.name,
    role: row.role,
    scope: { cluster: row.cluster, namespaces: parseNamespaces(row.namespaces) },
    createdAt: row.created_at,
    ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }),
    ...(row.revoked_at === null ? {} : { revokedAt: row.revoked_at }),
  };
}

export function openSqliteTokenStore(db: Database): TokenStore {
  db.exec(SCHEMA);
  const insert = db.prepare(
    `INSERT INTO auth_tokens (id, hash, name, role, cluster, namespaces, created_at, expires_at)
     VALUES (@id, @hash, @name, @role, @cluster, @namespaces, @createdAt, @expiresAt)`,
  );
  const get = db.prepare('SELECT * FROM auth_tokens WHERE id = ?');
  const list = db.prepare('SELECT * FROM auth_tokens ORDER BY created_at, id');
  const revoke = db.prepare('UPDATE auth_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');

  return {
    async insert(token) {
      insert.run({
        id: token.id,
        hash: token.hash,
        name: token.name,
        role: token.role,
        cluster: token.scope.cluster,
        namespaces: JSON.stringify(token.scope.namespaces),
        createdAt: token.createdAt,
        expiresAt: token.expiresAt ?? null,
      });
    },
    async get(id) {
      const row = get.get(id);
      return row === undefined ? undefined : fromRow(row);
    },
    async list() {
      return list.all().map(fromRow);
    },
    async revoke(id, at) {
      return revoke.run(at, id).changes === 1;
    },
  };
}
