/**
 * The scanner service benchmark (`npm run bench:server`): the real `containment server` process,
 * 50 concurrent agents (keep-alive HTTP clients in this process) posting reports of 200 real
 * Debian 12 and npm packages, against the 100,000 OSV records of bench:scan.
 *
 * (a) ingestion: first reports of new workloads (full matching) and repeated unchanged reports
 *     (inventory-hash check-ins): reports/s, p50/p99 latency; on SQLite, then on PostgreSQL with
 *     two replicas when the server has `--database`.
 *     Each phase also shows its CPU time per report (scanner processes, their PostgreSQL
 *     backends, the agents here) and the rate that CPU time allows on otherwise idle cores: the
 *     machine is shared, and the wall-clock rate follows its load more than the code.
 * (b) event delivery: from a report's 201 to its CloudEvent at a local receiver, p50/p99.
 * (c) only with BENCH_SERVER_ONLY=match-cache: what a second (or restarted) replica's first
 *     matches cost with and without the match cache shared through the advisory database.
 * Each measurement is repeated BENCH_RUNS times (default 3, a fresh server and data dir each) and
 * the median printed, with the load average. Figures, not a test: nothing fails on a missed target.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Package } from '../src/inventory/types.js';
import { parseDpkgStatus } from '../src/inventory/extractors/dpkg.js';
import { buildAgentReport } from '../src/scanner/agent-report.js';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  createTestDatabase,
  postgresAdminUrl,
  postgresReachable,
  postgresWhat,
} from '../src/testing/postgres.js';
import type { TestDatabase } from '../src/testing/postgres.js';
import {
  api,
  importAdvisories,
  keepAliveAgent,
  newAdminToken,
  requestJson,
  startScannerProcess,
} from '../src/testing/scanner-process.js';
import type { ScannerProcess } from '../src/testing/scanner-process.js';
import { PackageMatcher, matchKey } from '../src/scanner/package-matcher.js';
import type { AsyncAdvisoryStore } from '../src/vulndb/advisory-store.js';
import { openPostgresAdvisoryStore } from '../src/vulndb/postgres-store.js';
import { openSqliteAdvisoryStore } from '../src/vulndb/sqlite-store.js';
import { prepareRecords, prepareRoot } from './prepare-data.js';
import { waitUntil } from '../src/testing/wait.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** `ingestion` or `delivery`: measure that half alone (unset: both); `match-cache`: (c) alone. */
const ONLY = process.env.BENCH_SERVER_ONLY;
const AGENTS = 50;
const PACKAGES = 200;
/** Reports per agent in each ingestion run: first reports (matched), then unchanged ones. */
const FULL_PER_AGENT = Number(process.env.BENCH_FULL_PER_AGENT ?? 1);
const CHECKIN_PER_AGENT = Number(process.env.BENCH_CHECKIN_PER_AGENT ?? 6);
/** Reports sent one by one to a new server before measuring (JIT, caches, first connections). */
const WARMUP_REPORTS = 10;
/**
 * Delivery runs: a few agents below the server's capacity (each pausing between reports), each
 * report a new workload, so each causes one event: the deliverer's latency, not a backlog's.
 */
const DELIVERY_AGENTS = 4;
const DELIVERY_PER_AGENT = 25;
const DELIVERY_PAUSE_MS = 100;
const TARGET = { reportsPerSecond: 300, postgresCheckInsPerSecond: 1000, deliveryP99Ms: 100 };
const CLUSTER = 'bench';

const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

// --- inputs ---

/** Real npm package names and versions (the GHSA records in testdata/osv name the first dozen). */
const NPM: readonly (readonly [string, readonly string[]])[] = [
  ['lodash', ['4.17.11', '4.17.20', '4.17.21']],
  ['minimist', ['0.2.0', '1.2.5', '1.2.8']],
  ['express', ['4.18.2', '4.19.2', '4.21.0']],
  ['axios', ['0.21.1', '1.5.0', '1.7.9']],
  ['semver', ['5.7.1', '7.5.1', '7.6.0']],
  ['ws', ['5.2.3', '7.5.9', '8.17.1']],
  ['cookie', ['0.5.0', '0.7.1']],
  ['send', ['0.18.0', '0.19.0']],
  ['serve-static', ['1.15.0', '1.16.2']],
  ['body-parser', ['1.20.2', '1.20.3']],
  ['path-to-regexp', ['0.1.7', '0.1.12']],
  ['ansi-html', ['0.0.7', '0.0.9']],
  ['debug', ['2.6.9', '4.3.4']],
  ['qs', ['6.11.0', '6.13.0']],
  ['uuid', ['8.3.2', '9.0.1']],
  ['chalk', ['4.1.2', '5.3.0']],
  ['commander', ['9.5.0', '12.1.0']],
  ['moment', ['2.29.1', '2.30.1']],
  ['react', ['18.2.0', '18.3.1']],
  ['tslib', ['2.6.2', '2.6.3']],
];
const NPM_PER_REPORT = NPM.length;
const DEBIAN_PER_REPORT = PACKAGES - NPM_PER_REPORT;

/** Report inventories: a sliding window over the root's dpkg packages plus npm versions varied by `n`. */
function inventoryMaker(debian: readonly Package[]): (n: number) => Package[] {
  if (debian.length < DEBIAN_PER_REPORT) throw new Error(`only ${debian.length} Debian packages in the root`);
  return (n) => {
    const start = (n * 7) % debian.length;
    const debs = Array.from(
      { length: DEBIAN_PER_REPORT },
      (_, k) => debian[(start + k) % debian.length] as Package,
    );
    const npm = NPM.map(([name, versions], k): Package => {
      const version = versions[Math.floor(n / (k + 1)) % versions.length] as string;
      return {
        name,
        version,
        ecosystem: 'npm',
        location: `/srv/app/node_modules/${name}/package.json`,
        extractor: 'npm',
      };
    });
    return [...debs, ...npm];
  };
}

// --- measurement helpers ---

interface Stats {
  median: number;
  min: number;
  max: number;
}

function stats(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** Nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const fmt = (s: Stats, digits = 1): string =>
  `median ${s.median.toFixed(digits)} (min ${s.min.toFixed(digits)}, max ${s.max.toFixed(digits)})`;

interface Phase {
  reportsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  load1: number;
  /** CPU ms per report: the scanner processes, their PostgreSQL backends, this process (the agents). */
  cpu: { scanner: number; postgres: number; agents: number };
}

/** CPU ms (user + system) of a process so far; 0 once it is gone. */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

/** Whose CPU a phase counts: the scanner processes, and the PostgreSQL backends of their database. */
interface CpuScope {
  scannerPids: readonly number[];
  /** The server processes of the database's current connections. */
  postgresPids(): Promise<number[]>;
}

async function cpuSample(
  scope: CpuScope,
): Promise<{ scanner: number; postgres: Map<number, number>; agents: number }> {
  const own = process.cpuUsage();
  return {
    scanner: scope.scannerPids.reduce((sum, pid) => sum + cpuMs(pid), 0),
    postgres: new Map((await scope.postgresPids()).map((pid) => [pid, cpuMs(pid)])),
    agents: (own.user + own.system) / 1000,
  };
}

/** Every agent posts its bodies one after another on its own keep-alive connection; all agents at once. */
async function drive(
  urls: readonly string[],
  token: string,
  bodies: readonly string[][],
  expectStatus: number,
  scope: CpuScope,
): Promise<Phase> {
  const latencies: number[] = [];
  const before = await cpuSample(scope);
  const start = performance.now();
  await Promise.all(
    bodies.map(async (mine, a) => {
      const agent = keepAliveAgent();
      const url = urls[a % urls.length] as string;
      try {
        for (const body of mine) {
          const t0 = performance.now();
          const r = await requestJson(url, token, 'POST', '/v1/reports', body, agent);
          latencies.push(performance.now() - t0);
          if (r.status !== expectStatus)
            throw new Error(`report answered ${r.status}: ${JSON.stringify(r.body)}`);
        }
      } finally {
        agent.destroy();
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const after = await cpuSample(scope);
  // A backend that connected during the phase counts from zero; one that left is not counted.
  let postgres = 0;
  for (const [pid, ms] of after.postgres) postgres += ms - (before.postgres.get(pid) ?? 0);
  const n = latencies.length;
  return {
    cpu: {
      scanner: (after.scanner - before.scanner) / n,
      postgres: postgres / n,
      agents: (after.agents - before.agents) / n,
    },
    reportsPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    load1: loadavg()[0] ?? 0,
  };
}

// --- servers ---

interface Setup {
  advisoryTemplate: string;
  /** A PostgreSQL database holding the same advisories, copied for each run; none without a server. */
  postgresTemplate: TestDatabase | undefined;
  adminToken: string;
  makePackages: (n: number) => Package[];
}

/** A fresh data dir holding a copy of the imported advisory database. */
function freshDataDir(setup: Setup): string {
  const dir = mkdtempSync(join(tmpdir(), 'containment-bench-server-'));
  copyFileSync(setup.advisoryTemplate, join(dir, 'vulndb.sqlite'));
  return dir;
}

async function startServers(
  setup: Setup,
  dataDir: string,
  extra: readonly string[] = [],
  replicas = 1,
): Promise<ScannerProcess[]> {
  const servers: ScannerProcess[] = [];
  for (let i = 0; i < replicas; i++) {
    servers.push(
      await startScannerProcess(
        ['--data-dir', dataDir, '--trigger-allow', '127.0.0.0/8', '--rate-limit', 'off', ...extra],
        { CONTAINMENT_ADMIN_TOKEN: setup.adminToken },
      ),
    );
  }
  return servers;
}

async function registerCluster(url: string, adminToken: string): Promise<string> {
  const r = await api<{ agentToken: string }>(url, adminToken, 'POST', '/v1/clusters', { name: CLUSTER });
  if (r.status !== 201) throw new Error(`cluster: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.agentToken;
}

function reportBody(
  setup: Setup,
  reportId: string,
  pod: string,
  inventoryN: number,
  namespace = 'apps',
): string {
  return JSON.stringify(
    buildAgentReport({
      reportId,
      workload: { cluster: CLUSTER, namespace, pod, node: 'node-1', image: 'app:1' },
      scanTime: new Date().toISOString(),
      inventory: {
        os: { id: 'debian', versionId: '12', ecosystem: 'Debian:12' },
        packages: setup.makePackages(inventoryN),
        insecureConfigurations: [],
      },
    }),
  );
}

/** Full reports of throw-away workloads, one at a time, before a measurement. */
async function warmUp(setup: Setup, run: number, urls: readonly string[], agentToken: string): Promise<void> {
  for (let i = 0; i < WARMUP_REPORTS; i++) {
    const r = await requestJson(
      urls[i % urls.length] as string,
      agentToken,
      'POST',
      '/v1/reports',
      reportBody(setup, `warm-${run}-${i}`, `warm-${i}`, 10_000 + i, 'warmup'),
    );
    if (r.status !== 201) throw new Error(`warm-up report answered ${r.status}: ${JSON.stringify(r.body)}`);
  }
}

/** One ingestion run: full reports of new workloads, then the same inventories again (check-ins). */
async function ingestionRun(
  setup: Setup,
  run: number,
  servers: readonly ScannerProcess[],
  databaseUrl?: string,
): Promise<{ full: Phase; checkIn: Phase }> {
  const urls = servers.map((s) => s.url);
  const scope: CpuScope = {
    scannerPids: servers.map((s) => s.child.pid as number),
    postgresPids: () => (databaseUrl ? backendPids(databaseUrl) : Promise.resolve([])),
  };
  const agentToken = await registerCluster(urls[0] as string, setup.adminToken);
  const pod = (a: number, r: number): string => `w-${a}-${r}`;
  const full = Array.from({ length: AGENTS }, (_, a) =>
    Array.from({ length: FULL_PER_AGENT }, (_, r) =>
      reportBody(setup, `full-${run}-${a}-${r}`, pod(a, r), a * FULL_PER_AGENT + r),
    ),
  );
  const checkIns = Array.from({ length: AGENTS }, (_, a) =>
    Array.from({ length: CHECKIN_PER_AGENT }, (_, k) => {
      const r = k % FULL_PER_AGENT;
      return reportBody(setup, `again-${run}-${a}-${k}`, pod(a, r), a * FULL_PER_AGENT + r);
    }),
  );
  await warmUp(setup, run, urls, agentToken);
  const fullPhase = await drive(urls, agentToken, full, 201, scope);
  const checkInPhase = await drive(urls, agentToken, checkIns, 201, scope);
  return { full: fullPhase, checkIn: checkInPhase };
}

function printPhase(name: string, phases: readonly Phase[], target?: number): void {
  const rate = stats(phases.map((p) => p.reportsPerSecond));
  const verdict = target === undefined ? '' : rate.median >= target ? '  [target met]' : '  [target missed]';
  console.log(`  ${name}`);
  console.log(`    reports/s   ${fmt(rate)}${target === undefined ? '' : `  target ≥ ${target}`}${verdict}`);
  console.log(`    p50 ms      ${fmt(stats(phases.map((p) => p.p50Ms)))}`);
  console.log(`    p99 ms      ${fmt(stats(phases.map((p) => p.p99Ms)))}`);
  console.log(`    load (1 min) after each run: ${phases.map((p) => p.load1.toFixed(2)).join(', ')}`);
  const scanner = stats(phases.map((p) => p.cpu.scanner));
  const postgres = stats(phases.map((p) => p.cpu.postgres));
  const agents = stats(phases.map((p) => p.cpu.agents));
  console.log(`    CPU ms a report, scanner processes   ${fmt(scanner, 2)}`);
  if (postgres.max > 0) console.log(`    CPU ms a report, PostgreSQL backends ${fmt(postgres, 2)}`);
  console.log(`    CPU ms a report, the agents (bench)  ${fmt(agents, 2)}`);
  // What the CPU time allows when nothing else runs: every core busy with these processes only.
  const bound = (cores: number, ms: number): string => ((cores * 1000) / ms).toFixed(0);
  const all = scanner.median + postgres.median + agents.median;
  console.log(
    `    → CPU-bound rate on ${cpus().length} otherwise idle cores: ${bound(cpus().length, all)} reports/s ` +
      `(${bound(cpus().length, scanner.median + postgres.median)} with the agents elsewhere)`,
  );
}

/** The server processes of a database's current connections (this process's own excepted). */
async function backendPids(url: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    return rows.map((r) => r.pid);
  } finally {
    await client.end();
  }
}

async function ingestionSqlite(setup: Setup): Promise<void> {
  const full: Phase[] = [];
  const checkIn: Phase[] = [];
  for (let run = 0; run < RUNS; run++) {
    const dir = freshDataDir(setup);
    const servers = await startServers(setup, dir);
    try {
      log(`ingestion on SQLite, run ${run + 1}/${RUNS} (load ${load()})`);
      const r = await ingestionRun(setup, run, servers);
      full.push(r.full);
      checkIn.push(r.checkIn);
    } finally {
      for (const s of servers) await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(
    `\n(a) report ingestion, SQLite, 1 server, ${AGENTS} concurrent agents, ${PACKAGES} packages a report`,
  );
  printPhase(
    `first reports of new workloads (matched), ${AGENTS}×${FULL_PER_AGENT} per run`,
    full,
    TARGET.reportsPerSecond,
  );
  printPhase(
    `unchanged reports (hash check-ins), ${AGENTS}×${CHECKIN_PER_AGENT} per run`,
    checkIn,
    TARGET.reportsPerSecond,
  );
  const all = full.map((f, i) => {
    const c = checkIn[i] as Phase;
    const n = AGENTS * (FULL_PER_AGENT + CHECKIN_PER_AGENT);
    return (
      n / ((AGENTS * FULL_PER_AGENT) / f.reportsPerSecond + (AGENTS * CHECKIN_PER_AGENT) / c.reportsPerSecond)
    );
  });
  console.log(`  both phases together: reports/s ${fmt(stats(all))}  target ≥ ${TARGET.reportsPerSecond}`);
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresAdminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A copy of the template database (a file copy on the server: no second import). */
async function copyOf(template: TestDatabase): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `containment_test_bench_${randomBytes(6).toString('hex')}`;
  // The importer's connections may still be closing: a template must have none.
  for (let attempt = 1; ; attempt++) {
    try {
      await adminQuery(`CREATE DATABASE ${name} TEMPLATE ${template.name}`);
      break;
    } catch (e) {
      if (attempt >= 50 || !/being accessed by other users/.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const url = new URL(template.url);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function ingestionPostgres(setup: Setup): Promise<void> {
  const full: Phase[] = [];
  const checkIn: Phase[] = [];
  const template = setup.postgresTemplate as TestDatabase;
  for (let run = 0; run < RUNS; run++) {
    const db = await copyOf(template);
    const dir = freshDataDir(setup);
    try {
      const servers = await startServers(setup, dir, ['--database', db.url], 2);
      try {
        log(`ingestion on PostgreSQL, 2 replicas, run ${run + 1}/${RUNS} (load ${load()})`);
        const r = await ingestionRun(setup, run, servers, db.url);
        full.push(r.full);
        checkIn.push(r.checkIn);
      } finally {
        for (const s of servers) await s.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await db.drop();
    }
  }
  console.log(
    `\n(a) report ingestion, PostgreSQL, 2 server replicas on one database, agents split between them`,
  );
  printPhase(
    `first reports of new workloads (matched), ${AGENTS}×${FULL_PER_AGENT} per run`,
    full,
    TARGET.reportsPerSecond,
  );
  printPhase(
    `unchanged reports (hash check-ins), ${AGENTS}×${CHECKIN_PER_AGENT} per run`,
    checkIn,
    TARGET.postgresCheckInsPerSecond,
  );
}

/** A receiver that answers 200 at once and notes when each event arrived, by workload pod. */
async function startTimingReceiver(): Promise<{
  url: string;
  arrivals: Map<string, number>;
  close(): Promise<void>;
}> {
  const arrivals = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        data: { workload: { pod: string } };
      };
      if (!arrivals.has(event.data.workload.pod)) arrivals.set(event.data.workload.pod, at);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    arrivals,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function deliveryRuns(setup: Setup): Promise<void> {
  const p50: number[] = [];
  const p99: number[] = [];
  const p99FromSend: number[] = [];
  const loads: number[] = [];
  const cpuPerReport: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const dir = freshDataDir(setup);
    const receiver = await startTimingReceiver();
    const [server] = await startServers(setup, dir);
    try {
      log(`event delivery, run ${run + 1}/${RUNS} (load ${load()})`);
      const url = (server as ScannerProcess).url;
      const agentToken = await registerCluster(url, setup.adminToken);
      await warmUp(setup, run, [url], agentToken);
      const cpuBefore = cpuMs(server?.child.pid ?? -1);
      // The trigger covers the measured namespace only, so warm-up reports cause no events.
      const trigger = await api(url, setup.adminToken, 'POST', '/v1/triggers', {
        cluster: CLUSTER,
        namespaces: ['apps'],
        url: receiver.url,
        kind: 'cloudevents',
        secret: 'bench-secret',
      });
      if (trigger.status !== 201)
        throw new Error(`trigger: ${trigger.status} ${JSON.stringify(trigger.body)}`);
      const sent = new Map<string, number>();
      const answered = new Map<string, number>();
      await Promise.all(
        Array.from({ length: DELIVERY_AGENTS }, async (_, a) => {
          const agent = keepAliveAgent();
          const bodies = Array.from({ length: DELIVERY_PER_AGENT }, (_, r) =>
            reportBody(setup, `ev-${run}-${a}-${r}`, `ev-${a}-${r}`, a * DELIVERY_PER_AGENT + r),
          );
          try {
            for (const [r, body] of bodies.entries()) {
              const pod = `ev-${a}-${r}`;
              sent.set(pod, performance.now());
              const res = await requestJson<{ events: number }>(
                url,
                agentToken,
                'POST',
                '/v1/reports',
                body,
                agent,
              );
              answered.set(pod, performance.now());
              if (res.status !== 201 || res.body.events !== 1)
                throw new Error(`report answered ${res.status}: ${JSON.stringify(res.body)}`);
              await new Promise((r) => setTimeout(r, DELIVERY_PAUSE_MS));
            }
          } finally {
            agent.destroy();
          }
        }),
      );
      await waitUntil(
        () => receiver.arrivals.size === answered.size,
        { ms: 30_000, every: 5 },
        'every event',
      );
      const fromAnswer = [...answered].map(([pod, t]) => (receiver.arrivals.get(pod) as number) - t);
      const fromSend = [...sent].map(([pod, t]) => (receiver.arrivals.get(pod) as number) - t);
      p50.push(percentile(fromAnswer, 50));
      p99.push(percentile(fromAnswer, 99));
      p99FromSend.push(percentile(fromSend, 99));
      loads.push(loadavg()[0] ?? 0);
      cpuPerReport.push((cpuMs(server?.child.pid ?? -1) - cpuBefore) / answered.size);
    } finally {
      await server?.stop();
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const met = stats(p99).median < TARGET.deliveryP99Ms ? '[target met]' : '[target missed]';
  console.log(
    `\n(b) event delivery, ${DELIVERY_AGENTS} agents × ${DELIVERY_PER_AGENT} new workloads a run ` +
      `(${DELIVERY_PAUSE_MS} ms pause after each answer), receiver answering at once`,
  );
  console.log('  201 answered → CloudEvent received (negative: the event came before the answer)');
  console.log(`    p50 ms      ${fmt(stats(p50))}`);
  console.log(`    p99 ms      ${fmt(stats(p99))}  target < ${TARGET.deliveryP99Ms} ${met}`);
  console.log(`  report sent → CloudEvent received (bounds "scan stored → received" from above)`);
  console.log(`    p99 ms      ${fmt(stats(p99FromSend))}`);
  console.log(`  server CPU ms/report (report and its delivery) ${fmt(stats(cpuPerReport), 2)}`);
  console.log(`    load (1 min) after each run: ${loads.map((l) => l.toFixed(2)).join(', ')}`);
}

// --- (c) the shared match cache ---

/**
 * What a second replica (or a restarted one) pays for its first matches, with and without the
 * match cache shared through the advisory database: replica A (one store, its own connection)
 * matches the distinct packages of the ingestion runs' 50 first reports, then replica B (another
 * store and connection on the same database) matches the same packages, a report's 200 at a time,
 * on this thread. B's CPU is counted in this process and, on PostgreSQL, in the database's backends.
 * Modes alternate run by run; the shared table is emptied before each run.
 */
async function matchCacheRuns(setup: Setup): Promise<void> {
  const byKey = new Map<string, Package>();
  for (let n = 0; n < AGENTS * FULL_PER_AGENT; n++)
    for (const p of setup.makePackages(n)) byKey.set(matchKey(p), p);
  const packages = [...byKey.values()];
  interface Pair {
    a: AsyncAdvisoryStore;
    b: AsyncAdvisoryStore;
    url?: string;
    /** Empties the shared match cache. */
    clear(): Promise<void>;
    close(): Promise<void>;
  }
  const engines: { name: string; open(): Promise<Pair> }[] = [
    {
      name: 'SQLite (two connections to one file: a restarted process)',
      open: async () => {
        const dir = freshDataDir(setup);
        const path = join(dir, 'vulndb.sqlite');
        const a = openSqliteAdvisoryStore(path);
        const b = openSqliteAdvisoryStore(path);
        return {
          a,
          b,
          clear: async () => {
            const db = new Database(path);
            db.exec('DELETE FROM match_cache');
            db.close();
          },
          close: async () => {
            a.close();
            b.close();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      },
    },
  ];
  if (setup.postgresTemplate) {
    engines.push({
      name: 'PostgreSQL (two pools: two replicas)',
      open: async () => {
        const db = await copyOf(setup.postgresTemplate as TestDatabase);
        const a = await openPostgresAdvisoryStore(db.url);
        const b = await openPostgresAdvisoryStore(db.url);
        return {
          a,
          b,
          url: db.url,
          clear: async () => {
            const client = new pg.Client({ connectionString: db.url });
            await client.connect();
            await client.query('DELETE FROM vulndb_match_cache');
            await client.end();
          },
          close: async () => {
            await a.close();
            await b.close();
            await db.drop();
          },
        };
      },
    });
  }
  console.log(
    `\n(c) a second replica's first matches of ${packages.length} distinct packages (the first reports' inventories), 200 a call`,
  );
  for (const engine of engines) {
    const stores = await engine.open();
    try {
      type Cost = { ownMs: number; postgresMs: number };
      const results: Record<'local' | 'shared', { a: Cost; b: Cost }[]> = {
        local: [],
        shared: [],
      };
      for (let run = 0; run < 2 * RUNS; run++) {
        const mode = run % 2 === 0 ? 'local' : 'shared';
        await stores.clear();
        const shared = mode === 'shared';
        const a = new PackageMatcher(stores.a, { shared });
        const b = new PackageMatcher(stores.b, { shared });
        const pids = stores.url ? await backendPids(stores.url) : [];
        const postgresNow = (): number => pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
        const measure = async (matcher: PackageMatcher) => {
          const pg0 = postgresNow();
          const t0 = process.cpuUsage();
          for (let i = 0; i < packages.length; i += PACKAGES)
            await matcher.matchAll(packages.slice(i, i + PACKAGES));
          const used = process.cpuUsage(t0);
          return { ownMs: (used.user + used.system) / 1000, postgresMs: postgresNow() - pg0 };
        };
        results[mode].push({ a: await measure(a), b: await measure(b) });
      }
      console.log(`  ${engine.name}, load ${load()}`);
      for (const mode of ['local', 'shared'] as const) {
        const r = results[mode];
        const line = (who: 'a' | 'b') =>
          `CPU ms ${fmt(stats(r.map((x) => x[who].ownMs)), 1)}` +
          (stores.url ? ` + PostgreSQL ${fmt(stats(r.map((x) => x[who].postgresMs)), 1)}` : '');
        console.log(`    ${mode.padEnd(6)} replica A (first to match): ${line('a')}`);
        console.log(`    ${mode.padEnd(6)} replica B (after A):        ${line('b')}`);
      }
    } finally {
      await stores.close();
    }
  }
}

async function main(): Promise<void> {
  const cpu = cpus();
  console.log(
    `scanner service benchmark — ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, Node ${process.version}`,
  );
  console.log(`load average at start: ${load()}; ${RUNS} runs of each measurement, medians shown`);
  const root = prepareRoot(log);
  const osv = process.env.BENCH_SERVER_OSV ?? prepareRecords(root, log).allZip;
  const template = mkdtempSync(join(tmpdir(), 'containment-bench-advisories-'));
  const postgres =
    ONLY !== 'delivery' && (await postgresReachable())
      ? await createTestDatabase('bench_template')
      : undefined;
  try {
    log(`importing ${osv} into SQLite${postgres ? ' and PostgreSQL' : ''} (once, both at once) ...`);
    const t0 = performance.now();
    await Promise.all([
      importAdvisories(osv, ['--data-dir', template]),
      ...(postgres ? [importAdvisories(osv, ['--database', postgres.url])] : []),
    ]);
    log(`imported in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const status = readFileSync(join(root.path, 'var/lib/dpkg/status'), 'utf8');
    const debian = parseDpkgStatus(status, '/var/lib/dpkg/status', 'Debian:12', {
      id: 'debian',
      versionId: '12',
      ecosystem: 'Debian:12',
    });
    const setup: Setup = {
      advisoryTemplate: join(template, 'vulndb.sqlite'),
      postgresTemplate: postgres,
      adminToken: newAdminToken(),
      makePackages: inventoryMaker(debian),
    };
    if (!existsSync(setup.advisoryTemplate)) throw new Error('the import wrote no vulndb.sqlite');
    console.log(
      `advisories: ${osv === process.env.BENCH_SERVER_OSV ? osv : `bench:scan's 100,000 records`}; ` +
        `reports: ${DEBIAN_PER_REPORT} Debian 12 packages of ${root.path} (${root.how}) + ${NPM_PER_REPORT} npm`,
    );
    if (ONLY === 'match-cache') {
      await matchCacheRuns(setup);
    } else if (ONLY !== 'delivery') {
      await ingestionSqlite(setup);
      if (postgres) await ingestionPostgres(setup);
      else console.log(`\n(a) PostgreSQL with two replicas: not measured, ${postgresWhat} is not reachable`);
    }
    if (ONLY !== 'ingestion' && ONLY !== 'match-cache') await deliveryRuns(setup);
    console.log(`\nload average at end: ${load()}`);
  } finally {
    rmSync(template, { recursive: true, force: true });
    await postgres?.drop();
  }
}

await main();
