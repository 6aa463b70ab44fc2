/**
 * The function runtime's SQLite store: namespaces with their keys, entities (actions, packages,
 * triggers, rules) as JSON documents, and activation records. Keys are stored as SHA-256 hashes;
 * a key is random (128+ bits), so a plain hash is enough and lookups stay cheap.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import Database from 'better-sqlite3';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { defineMigrations, migrateSqlite } from '../storage/migrations.js';
import { configureSqlite } from '../storage/sqlite.js';
import type { Activation, Collection } from './entities.js';
import type { SecurityEvent } from './security-events.js';
import { isValidName } from './entities.js';

export interface ActivationQuery {
  /** Entity path (`action` or `pkg/action`). */
  name?: string;
  limit: number;
  skip: number;
  /** Epoch ms, inclusive bounds on `start`. */
  since?: number;
  upto?: number;
}

/** The runtime's tables, in the shared schema history (`storage/migrations.ts`). */
export const FUNCTION_MIGRATIONS = defineMigrations('functions', [
  {
    version: 1,
    name: 'namespaces, entities, activations, security_events',
    sqlite: `
CREATE TABLE IF NOT EXISTS namespaces (
  name TEXT PRIMARY KEY,
  uuid TEXT NOT NULL UNIQUE,
  key_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS entities (
  namespace TEXT NOT NULL,
  collection TEXT NOT NULL,
  name TEXT NOT NULL,
  doc TEXT NOT NULL,
  updated INTEGER NOT NULL,
  PRIMARY KEY (namespace, collection, name)
);
CREATE TABLE IF NOT EXISTS activations (
  id TEXT PRIMARY KEY,
  namespace TEXT NOT NULL,
  path TEXT NOT NULL,
  start INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS activations_by_start ON activations (namespace, start DESC);
CREATE INDEX IF NOT EXISTS activations_by_path ON activations (namespace, path, start DESC);
CREATE TABLE IF NOT EXISTS security_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace TEXT NOT NULL,
  time TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS security_events_by_namespace ON security_events (namespace, id);
`,
  },
  {
    version: 2,
    name: 'namespace_settings (the web-action JWT issuer of each namespace)',
    sqlite: `
CREATE TABLE IF NOT EXISTS namespace_settings (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (namespace, key)
);
`,
  },
]);

/** Security events kept per namespace; older ones are pruned as new ones arrive. */
export const SECURITY_EVENTS_KEPT = 10_000;

function hashKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** `uuid:key` as OpenWhisk's `wsk` and client expect. */
export function parseAuth(auth: string): { uuid: string; key: string } {
  const colon = auth.indexOf(':');
  const uuid = auth.slice(0, colon);
  const key = auth.slice(colon + 1);
  if (colon < 1 || key.length < 16 || !/^[\w-]+$/.test(uuid) || /\s/.test(key)) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      'function runtime auth must be "<uuid>:<key>" with a key of at least 16 characters',
    );
  }
  return { uuid, key };
}

export class FunctionStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = configureSqlite(new Database(file), { normalSync: false, foreignKeys: false });
    migrateSqlite(this.db, FUNCTION_MIGRATIONS);
  }

  close(): void {
    this.db.close();
  }

  /**
   * Adds a namespace with the given `uuid:key`, or a generated one. Returns the auth to hand to the
   * namespace's users. Refuses an existing namespace or uuid.
   */
  addNamespace(name: string, auth?: string): string {
    if (!isValidName(name) || name === '_') {
      throw new ContainmentError(ErrorCodes.USAGE, `invalid namespace name "${name}"`);
    }
    const chosen = auth ?? `${randomUUID()}:${randomBytes(32).toString('base64url')}`;
    const { uuid, key } = parseAuth(chosen);
    try {
      this.db
        .prepare('INSERT INTO namespaces (name, uuid, key_hash) VALUES (?, ?, ?)')
        .run(name, uuid, hashKey(key));
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE|PRIMARY/.test(String(e)))
        throw new ContainmentError(ErrorCodes.USAGE, `namespace "${name}" or its uuid already exists`);
      throw e;
    }
    return chosen;
  }

  hasNamespace(name: string): boolean {
    return this.db.prepare('SELECT 1 FROM namespaces WHERE name = ?').get(name) !== undefined;
  }

  /** Checks the key in constant time; returns the namespace it belongs to, or undefined. */
  authenticate(uuid: string, key: string): string | undefined {
    const row = this.db.prepare('SELECT name, key_hash FROM namespaces WHERE uuid = ?').get(uuid) as
      { name: string; key_hash: Buffer } | undefined;
    const given = hashKey(key);
    // Compare against a dummy when the uuid is unknown so both paths cost the same.
    const ok = timingSafeEqual(row?.key_hash ?? Buffer.alloc(given.length), given);
    return ok && row ? row.name : undefined;
  }

  getEntity<T>(namespace: string, collection: Collection, name: string): T | undefined {
    const row = this.db
      .prepare('SELECT doc FROM entities WHERE namespace = ? AND collection = ? AND name = ?')
      .get(namespace, collection, name) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as T) : undefined;
  }

  putEntity(namespace: string, collection: Collection, name: string, doc: unknown, updated: number): void {
    this.db
      .prepare(
        `INSERT INTO entities (namespace, collection, name, doc, updated) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (namespace, collection, name) DO UPDATE SET doc = excluded.doc, updated = excluded.updated`,
      )
      .run(namespace, collection, name, JSON.stringify(doc), updated);
  }

  deleteEntity(namespace: string, collection: Collection, name: string): boolean {
    return (
      this.db
        .prepare('DELETE FROM entities WHERE namespace = ? AND collection = ? AND name = ?')
        .run(namespace, collection, name).changes > 0
    );
  }

  /** Newest first, as OpenWhisk lists. `prefix` keeps names starting with it (a package's `pkg/`). */
  listEntities<T>(
    namespace: string,
    collection: Collection,
    options: { skip?: number; limit?: number; prefix?: string } = {},
  ): T[] {
    const rows = this.db
      .prepare(
        `SELECT doc FROM entities WHERE namespace = ? AND collection = ? AND substr(name, 1, ?) = ?
         ORDER BY updated DESC, name LIMIT ? OFFSET ?`,
      )
      .all(
        namespace,
        collection,
        options.prefix?.length ?? 0,
        options.prefix ?? '',
        options.limit ?? -1,
        options.skip ?? 0,
      ) as { doc: string }[];
    return rows.map((r) => JSON.parse(r.doc) as T);
  }

  insertActivation(path: string, activation: Activation): void {
    this.db
      .prepare('INSERT INTO activations (id, namespace, path, start, doc) VALUES (?, ?, ?, ?, ?)')
      .run(activation.activationId, activation.namespace, path, activation.start, JSON.stringify(activation));
  }

  getActivation(namespace: string, id: string): Activation | undefined {
    const row = this.db
      .prepare('SELECT doc FROM activations WHERE namespace = ? AND id = ?')
      .get(namespace, id) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as Activation) : undefined;
  }

  listActivations(namespace: string, q: ActivationQuery): Activation[] {
    const where = ['namespace = ?'];
    const args: (string | number)[] = [namespace];
    if (q.name !== undefined) {
      where.push('path = ?');
      args.push(q.name);
    }
    if (q.since !== undefined) {
      where.push('start >= ?');
      args.push(q.since);
    }
    if (q.upto !== undefined) {
      where.push('start <= ?');
      args.push(q.upto);
    }
    const rows = this.db
      .prepare(
        `SELECT doc FROM activations WHERE ${where.join(' AND ')} ORDER BY start DESC, rowid DESC LIMIT ? OFFSET ?`,
      )
      .all(...args, q.limit, q.skip) as { doc: string }[];
    return rows.map((r) => JSON.parse(r.doc) as Activation);
  }

  /** Appends a security event; the namespace keeps its latest SECURITY_EVENTS_KEPT. */
  insertSecurityEvent(event: SecurityEvent): void {
    const insert = this.db.prepare('INSERT INTO security_events (namespace, time, doc) VALUES (?, ?, ?)');
    const prune = this.db.prepare(
      'DELETE FROM security_events WHERE namespace = ? AND id <= (SELECT id FROM security_events WHERE namespace = ? ORDER BY id DESC LIMIT 1 OFFSET ?)',
    );
    const { lastInsertRowid } = insert.run(event.namespace, event.time, JSON.stringify(event));
    // Pruning every hundredth insert keeps the cost of a flood low and the table bounded.
    if (Number(lastInsertRowid) % 100 === 0)
      prune.run(event.namespace, event.namespace, SECURITY_EVENTS_KEPT);
  }

  /** Oldest first; `after` is an event id (exclusive), for paging; namespace undefined = all. */
  listSecurityEvents(
    namespace: string | undefined,
    q: { limit: number; after?: number },
  ): (SecurityEvent & { id: number })[] {
    const rows = (
      namespace === undefined
        ? this.db
            .prepare('SELECT id, doc FROM security_events WHERE id > ? ORDER BY id LIMIT ?')
            .all(q.after ?? 0, q.limit)
        : this.db
            .prepare('SELECT id, doc FROM security_events WHERE namespace = ? AND id > ? ORDER BY id LIMIT ?')
            .all(namespace, q.after ?? 0, q.limit)
    ) as { id: number; doc: string }[];
    return rows.map((r) => ({ id: r.id, ...(JSON.parse(r.doc) as SecurityEvent) }));
  }

  // ---- per-namespace settings (e.g. `web-auth`: the JWT issuer of the namespace's web actions) ----

  getNamespaceSetting<T>(namespace: string, key: string): T | undefined {
    const row = this.db
      .prepare('SELECT doc FROM namespace_settings WHERE namespace = ? AND key = ?')
      .get(namespace, key) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as T) : undefined;
  }

  /** Stores `doc` under `key`, or removes the setting when `doc` is undefined. */
  putNamespaceSetting(namespace: string, key: string, doc: unknown): void {
    if (doc === undefined) {
      this.db.prepare('DELETE FROM namespace_settings WHERE namespace = ? AND key = ?').run(namespace, key);
      return;
    }
    this.db
      .prepare(
        `INSERT INTO namespace_settings (namespace, key, doc) VALUES (?, ?, ?)
         ON CONFLICT (namespace, key) DO UPDATE SET doc = excluded.doc`,
      )
      .run(namespace, key, JSON.stringify(doc));
  }
}
