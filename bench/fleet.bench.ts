/**
 * The fleet benchmark (`npm run bench:fleet`): N simulated nodes × M containers (default
 * 1,000 × 30) reporting to two real `containment server` replicas sharing one fresh PostgreSQL
 * database, only through the public API (`POST /v1/reports`, `POST /v1/admin/rematch`). The agents
 * are lightweight clients in this process (async, bounded concurrency); their inventories come
 * from a few hundred synthetic images (bench/fleet/model.ts), so many workloads share one.
 *
 * (1) burst: every node starts at once and sends a first report of each container;
 * (2) steady state: every container checks in (inventory hash only) BENCH_FLEET_ROUNDS times;
 * (3) 1 % advisory change: `containment db import` of the changed records into the database, then
 *     the re-match of the fleet, timed until both replicas answered `POST /v1/admin/rematch`.
 * Each with p50/p99 latency and `pg_database_size`. Figures, not a test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createTestDatabase, postgresReachable, postgresWhat } from '../src/testing/postgres.js';
import { api, importAdvisories, newAdminToken, startScannerProcess } from '../src/testing/scanner-process.js';
import type { ScannerProcess } from '../src/testing/scanner-process.js';
import { ZipWriter } from '../src/testing/zip-writer.js';
import { buildFeed, buildImages, changeFeed, imageOf } from './fleet/model.js';
import type { Image, OsvRecord } from './fleet/model.js';
import { databaseSize, limiter, load, mb, percentile, post, replicaAgents } from './fleet/load.js';

const NODES = Number(process.env.BENCH_FLEET_NODES ?? 1_000);
const CONTAINERS = Number(process.env.BENCH_FLEET_CONTAINERS ?? 30);
const IMAGES = Number(process.env.BENCH_FLEET_IMAGES ?? 300);
const RECORDS = Number(process.env.BENCH_FLEET_RECORDS ?? 30_000);
const CONCURRENCY = Number(process.env.BENCH_FLEET_CONCURRENCY ?? 64);
const ROUNDS = Number(process.env.BENCH_FLEET_ROUNDS ?? 2);
const REPLICAS = 2;
const CHANGED_SHARE = 0.01;
const CLUSTER = 'fleet';

const log = (line: string): void => void process.stderr.write(`[bench:fleet] ${line}\n`);

function writeZip(path: string, records: readonly OsvRecord[]): void {
  const zip = new ZipWriter(path);
  for (const r of records) zip.add(`${r.id}.json`, Buffer.from(JSON.stringify(r)));
  zip.close();
}

interface Fleet {
  urls: string[];
  token: string;
  images: Image[];
  run: number;
}

function body(f: Fleet, node: number, container: number, tag: string, withInventory: boolean): string {
  const image = f.images[imageOf(f.images.length, node, container)] as Image;
  const workload = {
    cluster: CLUSTER,
    namespace: `ns-${container % 10}`,
    pod: `node-${node}-pod-${container}`,
    container: 'app',
    node: `node-${node}`,
    image: image.ref,
  };
  const head = JSON.stringify({
    reportId: `${tag}-${f.run}-${node}-${container}`,
    workload,
    scanTime: new Date().toISOString(),
    inventoryHash: image.hash,
  });
  return withInventory ? `${head.slice(0, -1)},"inventory":${image.inventoryJson}}` : head;
}

interface PhaseResult {
  seconds: number;
  latencies: number[];
  /** Per node: from the phase's start until its last container was answered. */
  nodeDone: number[];
  resent: number;
}

/**
 * Every node reports each of its containers one after another (as an agent does), all nodes at
 * once, at most CONCURRENCY requests in flight overall; node n talks to replica n mod 2.
 */
async function phase(f: Fleet, tag: string, withInventory: boolean): Promise<PhaseResult> {
  const agents = replicaAgents(f.urls.length, Math.ceil(CONCURRENCY / f.urls.length));
  const limit = limiter(CONCURRENCY);
  const latencies: number[] = [];
  const nodeDone: number[] = [];
  let resent = 0;
  const start = performance.now();
  try {
    await Promise.all(
      Array.from({ length: NODES }, async (_, n) => {
        const url = f.urls[n % f.urls.length] as string;
        const agent = agents[n % agents.length]!;
        for (let c = 0; c < CONTAINERS; c++) {
          let r = await limit(() => post(url, f.token, body(f, n, c, tag, withInventory), agent));
          if (r.status === 409) {
            // INVENTORY_REQUIRED: the server has not seen this hash for the workload; resend it whole.
            resent++;
            const first = r.ms;
            r = await limit(() => post(url, f.token, body(f, n, c, `${tag}-full`, true), agent));
            r.ms += first;
          }
          if (r.status !== 201) throw new Error(`report answered ${r.status}: ${JSON.stringify(r.body)}`);
          latencies.push(r.ms);
        }
        nodeDone.push(performance.now() - start);
      }),
    );
  } finally {
    for (const a of agents) a.destroy();
  }
  return { seconds: (performance.now() - start) / 1000, latencies, nodeDone, resent };
}

function printPhase(name: string, r: PhaseResult, dbBytes: number): void {
  const n = r.latencies.length;
  console.log(`\n${name}`);
  console.log(`  ${n} reports in ${r.seconds.toFixed(1)} s: ${(n / r.seconds).toFixed(0)} reports/s`);
  console.log(
    `  request latency p50 ${percentile(r.latencies, 50).toFixed(1)} ms, p99 ${percentile(r.latencies, 99).toFixed(1)} ms`,
  );
  console.log(
    `  node done (all its containers answered) p50 ${(percentile(r.nodeDone, 50) / 1000).toFixed(1)} s, ` +
      `p99 ${(percentile(r.nodeDone, 99) / 1000).toFixed(1)} s`,
  );
  if (r.resent > 0) console.log(`  ${r.resent} check-ins answered 409 INVENTORY_REQUIRED and resent whole`);
  console.log(`  pg_database_size ${mb(dbBytes)}; load ${load()}`);
}

async function rematch(f: Fleet, adminToken: string, changed: string, dbUrl: string, dbName: string) {
  const t0 = performance.now();
  await importAdvisories(changed, ['--database', dbUrl]);
  const imported = performance.now();
  // Both replicas also poll for imports (every 5 s); asking each now returns once its check,
  // or the one it was already running, has finished.
  const answers = await Promise.all(
    f.urls.map(async (url) => {
      const r = await api<Record<string, unknown>>(url, adminToken, 'POST', '/v1/admin/rematch');
      if (r.status !== 200) throw new Error(`rematch answered ${r.status}: ${JSON.stringify(r.body)}`);
      return { ms: performance.now() - imported, body: r.body };
    }),
  );
  const done = performance.now();
  console.log(
    `\n(3) ${(CHANGED_SHARE * 100).toFixed(0)} % of ${RECORDS} advisories changed (half withdrawn, half affecting every version)`,
  );
  console.log(`  db import of the change: ${((imported - t0) / 1000).toFixed(1)} s`);
  console.log(
    `  import committed → re-match finished on both replicas: ${((done - imported) / 1000).toFixed(1)} s ` +
      `(replica answers after ${answers.map((a) => (a.ms / 1000).toFixed(1)).join(' s, ')} s)`,
  );
  for (const [i, a] of answers.entries()) console.log(`  replica ${i + 1}: ${JSON.stringify(a.body)}`);
  console.log(`  pg_database_size ${mb(await databaseSize(dbName))}; load ${load()}`);
}

async function main(): Promise<void> {
  const cpu = cpus();
  console.log(`fleet benchmark — ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, Node ${process.version}`);
  console.log(
    `${NODES} nodes × ${CONTAINERS} containers = ${NODES * CONTAINERS} workloads from ${IMAGES} images; ` +
      `${RECORDS} advisories; ${REPLICAS} replicas on PostgreSQL; ${CONCURRENCY} requests in flight at most`,
  );
  console.log(`load average at start: ${load()}`);
  if (!(await postgresReachable())) {
    console.log(`not measured: ${postgresWhat} is not reachable`);
    if (process.env.CI === 'true') process.exitCode = 1;
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'containment-bench-fleet-'));
  const db = await createTestDatabase('fleet');
  const servers: ScannerProcess[] = [];
  try {
    const feed = buildFeed(RECORDS);
    writeZip(join(tmp, 'feed.zip'), feed);
    writeZip(join(tmp, 'changed.zip'), changeFeed(feed, CHANGED_SHARE));
    const images = buildImages(IMAGES);
    const used = new Set<number>();
    for (let n = 0; n < NODES; n++) for (let c = 0; c < CONTAINERS; c++) used.add(imageOf(IMAGES, n, c));
    const avg = images.reduce((s, i) => s + i.packages, 0) / images.length;
    console.log(`images in use: ${used.size}, ${avg.toFixed(0)} packages each on average`);
    let t = performance.now();
    await importAdvisories(join(tmp, 'feed.zip'), ['--database', db.url]);
    log(`imported ${RECORDS} records in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    console.log(`pg_database_size after the import: ${mb(await databaseSize(db.name))}`);
    const adminToken = newAdminToken();
    for (let i = 0; i < REPLICAS; i++)
      servers.push(
        await startScannerProcess(
          ['--data-dir', tmp, '--database', db.url, '--trigger-allow', '127.0.0.0/8', '--rate-limit', 'off'],
          { CONTAINMENT_ADMIN_TOKEN: adminToken },
        ),
      );
    const urls = servers.map((s) => s.url);
    const cluster = await api<{ agentToken: string }>(urls[0]!, adminToken, 'POST', '/v1/clusters', {
      name: CLUSTER,
    });
    if (cluster.status !== 201) throw new Error(`cluster: ${cluster.status} ${JSON.stringify(cluster.body)}`);
    const fleet: Fleet = { urls, token: cluster.body.agentToken, images, run: Date.now() };

    log(`burst: ${NODES} nodes start at once (load ${load()})`);
    t = performance.now();
    const burst = await phase(fleet, 'first', true);
    printPhase(
      `(1) burst: every node starts at once, ${NODES * CONTAINERS} first reports`,
      burst,
      await databaseSize(db.name),
    );
    for (let round = 1; round <= ROUNDS; round++) {
      log(`steady state: check-in round ${round}/${ROUNDS} (load ${load()})`);
      const steady = await phase(fleet, `checkin${round}`, false);
      printPhase(
        `(2) steady state, round ${round}: every container checks in (hash only)`,
        steady,
        await databaseSize(db.name),
      );
    }
    log(`advisory change (load ${load()})`);
    await rematch(fleet, adminToken, join(tmp, 'changed.zip'), db.url, db.name);
    console.log(`\nload average at end: ${load()}`);
  } finally {
    for (const s of servers) await s.stop();
    await db.drop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
