/**
 * The PostgreSQL server tests use: `CONTAINMENT_TEST_POSTGRES` (an admin URL), else the local
 * server with trust auth. Each test file works in a throwaway database of its own.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const postgresAdminUrl: string =
  process.env.CONTAINMENT_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** What `requireOrSkip` names when the server is missing. */
export const postgresWhat = `PostgreSQL at ${new URL(postgresAdminUrl).host}`;

export async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: postgresAdminUrl, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function adminQuery<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: postgresAdminUrl });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Creates a schema in the database at `url`; returns a URL whose connections work in it. */
export async function createSchema(url: string, schema: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
  const inSchema = new URL(url);
  inSchema.searchParams.set('options', `-c search_path=${schema}`);
  return inSchema.toString();
}

export interface TestDatabase {
  name: string;
  url: string;
  /** Drops the database; end every pool on it first. */
  drop(): Promise<void>;
}

/** Creates `containment_test_<prefix>_<random>`. */
export async function createTestDatabase(prefix: string): Promise<TestDatabase> {
  const name = `containment_test_${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      // pool.end() resolves before the server has closed the backends; forcing out one that is
      // still closing surfaces as an error on an already-ended client, so let them go first.
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const [row] = await adminQuery<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
          [name],
        );
        if (row?.n === 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
