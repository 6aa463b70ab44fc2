/**
 * A matching worker thread: opens the advisory database (read-only SQLite, or a small PostgreSQL
 * pool) and answers each request with one finding set per package (`packageFindingSet`), so the
 * server's event loop keeps serving while packages it has not seen yet are matched.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { matchIdentity } from '../../matching/index.js';
import type { AsyncAdvisoryStore } from '../../vulndb/advisory-store.js';
import { openPostgresAdvisoryStore } from '../../vulndb/postgres-store.js';
import { openSqliteAdvisoryStore } from '../../vulndb/sqlite-store.js';
import { LOOKUP_BATCH, packageFindingSet } from '../package-matcher.js';
import type { MatchRequest, MatchResponse, MatchWorkerData } from './protocol.js';

const data = workerData as MatchWorkerData;
const port = parentPort;
if (!port) throw new Error('the match worker must run as a worker thread');
const opened: Promise<AsyncAdvisoryStore> =
  'database' in data
    ? openPostgresAdvisoryStore(data.database)
    : Promise.resolve(openSqliteAdvisoryStore(data.advisoryDbPath, { readonly: true }));
// A database that cannot be opened fails every request with its error (see `answer`).
opened.catch(() => {});

async function answer(request: MatchRequest): Promise<MatchResponse> {
  try {
    const advisories = await opened;
    const sets: { digest: string; body: string }[] = [];
    // A batch's advisories at a time, as on the main thread (`PackageMatcher`): bounded memory.
    for (let start = 0; start < request.packages.length; start += LOOKUP_BATCH) {
      const batch = request.packages.slice(start, start + LOOKUP_BATCH);
      const records = await advisories.lookupMany(
        batch.map((p) => {
          const { ecosystem, name } = matchIdentity(p);
          return { ecosystem, name };
        }),
      );
      for (const [i, pkg] of batch.entries()) {
        const set = packageFindingSet(pkg, records[i] ?? []);
        sets.push({ digest: set.digest, body: set.body });
      }
    }
    return { id: request.id, sets };
  } catch (e) {
    return { id: request.id, error: e instanceof Error ? e.message : String(e) };
  }
}

port.on('message', (request: MatchRequest) => {
  void answer(request).then((response) => port.postMessage(response));
});
