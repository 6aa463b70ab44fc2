/**
 * One rescan measurement in a fresh process (its own peak RSS), for `bench/rescan.bench.ts`.
 * Uses only library entry points that the compared trees share (the bench copies this file into
 * the older tree to run it there). Prints one JSON line.
 *   cold <root> <db>              one scan() without a cache: time, peak RSS
 *   rescan <root> <db> <n>        store open, ScanCache: a first scan, then n rescans of the
 *                                 unchanged root (time and RSS after each)
 *   agent <image> <n>             a node agent watching one container of <image> (real podman,
 *                                 real scanner service in this process, npm records): the
 *                                 first n unchanged periodic rescans after the first report
 *   layers <image> <n>            inventories of two containers of <image> from their layers
 *                                 (`LayerScans`, trees that have it) against walks of their root
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { Agent } from '../src/agent/agent.js';
import { DockerEngine } from '../src/engine/docker/docker-engine.js';
import { findEngineSocket } from '../src/engine/socket.js';
import { scan } from '../src/scan/scan.js';
import { ScanCache } from '../src/scan/scan-cache.js';
import type { ScanResult } from '../src/scan/scan-result.js';
import { startTestScanner } from '../src/testing/scanner.js';
import { sharedDataDir } from '../src/testing/shared-data.js';
import { openSqliteAdvisoryStore } from '../src/vulndb/sqlite-store.js';

const maxRssMb = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
const rssMb = (): number => Math.round(process.memoryUsage.rss() / 1024 / 1024);
/** The findings, as one digest: the trees must agree on it. */
const digest = (r: ScanResult): string =>
  createHash('sha256')
    .update(JSON.stringify(r.vulnerabilities))
    .update(JSON.stringify(r.insecureConfigurations))
    .digest('hex')
    .slice(0, 16);

export interface ColdMeasurement {
  ms: number;
  maxRssMb: number;
  packages: number;
  findings: number;
  digest: string;
}

export interface RescanMeasurement {
  firstMs: number;
  rescanMs: number[];
  /** CPU time (user + system) of each rescan. */
  rescanCpuMs: number[];
  rssCurveMb: number[];
  maxRssMb: number;
  digest: string;
}

export interface AgentMeasurement {
  /**
   * Per unchanged rescan without a walk: the agent's scan (its log's scanMs) plus the report's
   * round trip.
   */
  rescanMs: number[];
  /**
   * CPU time (user + system) of the process between a rescan's report and the one before:
   * the agent's rescan and the server's check-in, less sensitive to load than wall time.
   */
  rescanCpuMs: number[];
  /**
   * The same for the periodic rescans that take the inventory afresh (at least every tenth): a walk
   * of the whole root, or of the writable layer only where the agent scans from the layers.
   */
  walkRescanMs: number[];
  walkRescanCpuMs: number[];
  checkIns: number;
  walks: number;
}

async function agentRescans(image: string, n: number): Promise<AgentMeasurement> {
  const socket = findEngineSocket(undefined, process.env);
  if (!socket) throw new Error('no container engine socket');
  const scanner = await startTestScanner({ records: join(sharedDataDir, 'osv', 'npm') });
  const name = `containment-bench-rescan-${randomBytes(3).toString('hex')}`;
  const label = 'containment-bench-rescan';
  try {
    const client = scanner.agent;
    const sendMs: number[] = [];
    const scanMs: number[] = [];
    const kinds: string[] = [];
    /** CPU time (user + system) of this process since the previous scan's report: agent and server. */
    const cpuMs: number[] = [];
    let cpu = process.cpuUsage();
    /** Whether the agent walked the filesystem for this scan (a periodic full walk, not reuse). */
    const walkedFor: boolean[] = [];
    let walks = 0;
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => (done = resolve));
    const logger = pino(
      { level: 'info' },
      {
        write: (line: string) => {
          const l = JSON.parse(line) as { msg?: string; scanMs?: number; kind?: string };
          if (l.msg !== 'container scanned') return;
          scanMs.push(l.scanMs ?? Number.NaN);
          kinds.push(l.kind ?? '');
          const used = process.cpuUsage(cpu);
          cpu = process.cpuUsage();
          cpuMs.push((used.user + used.system) / 1000);
          walkedFor.push(agent.stats.walks !== walks);
          walks = agent.stats.walks;
          if (kinds.filter((k, i) => k === 'check-in' && !walkedFor[i]).length >= n) done();
        },
      },
    );
    const agent = new Agent({
      engine: new DockerEngine(socket),
      sink: {
        sendReport: async (report) => {
          const start = performance.now();
          const result = await client.sendReport(report);
          sendMs.push(performance.now() - start);
          return result;
        },
      },
      logger,
      labels: { [label]: name },
      rescanIntervalMs: 500,
      driftCheckIntervalMs: 0,
    });
    await agent.start();
    execFileSync(
      'podman',
      ['run', '-d', '--name', name, '--label', `${label}=${name}`, image, 'sleep', '3600'],
      {
        stdio: 'pipe',
      },
    );
    await finished;
    await agent.stop();
    // The first report is the full one; the rest are the unchanged rescans, less the periodic
    // full walks (at least every tenth rescan, more when walks outlast ten intervals).
    const rescanMs = kinds.flatMap((k, i) =>
      k === 'check-in' && !walkedFor[i] ? [(scanMs[i] as number) + (sendMs[i] as number)] : [],
    );
    const rescanCpuMs = kinds.flatMap((k, i) =>
      k === 'check-in' && !walkedFor[i] ? [cpuMs[i] as number] : [],
    );
    const walkRescanMs = kinds.flatMap((k, i) =>
      k === 'check-in' && walkedFor[i] ? [(scanMs[i] as number) + (sendMs[i] as number)] : [],
    );
    const walkRescanCpuMs = kinds.flatMap((k, i) =>
      k === 'check-in' && walkedFor[i] ? [cpuMs[i] as number] : [],
    );
    return {
      rescanMs: rescanMs.slice(0, n),
      rescanCpuMs: rescanCpuMs.slice(0, n),
      walkRescanMs,
      walkRescanCpuMs,
      checkIns: agent.stats.checkIns,
      walks: agent.stats.walks,
    };
  } finally {
    execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', name], { stdio: 'ignore' });
    await scanner.close();
  }
}

async function main(argv: string[]): Promise<unknown> {
  const [mode, ...args] = argv;
  if (mode === 'cold') {
    const [root, db] = args as [string, string];
    const store = openSqliteAdvisoryStore(db, { readonly: true });
    const start = performance.now();
    const result = await scan(root, { store });
    const ms = performance.now() - start;
    store.close();
    const m: ColdMeasurement = {
      ms,
      maxRssMb: maxRssMb(),
      packages: result.packages.length,
      findings: result.vulnerabilities.length,
      digest: digest(result),
    };
    return m;
  }
  if (mode === 'rescan') {
    const [root, db, n] = args as [string, string, string];
    const store = openSqliteAdvisoryStore(db, { readonly: true });
    const cache = new ScanCache();
    let start = performance.now();
    const first = await scan(root, { store, cache });
    const firstMs = performance.now() - start;
    const rescanMs: number[] = [];
    const rescanCpuMs: number[] = [];
    const rssCurveMb: number[] = [];
    let last = first;
    for (let i = 0; i < Number(n); i++) {
      start = performance.now();
      const cpu = process.cpuUsage();
      last = await scan(root, { store, cache });
      const used = process.cpuUsage(cpu);
      rescanMs.push(performance.now() - start);
      rescanCpuMs.push((used.user + used.system) / 1000);
      rssCurveMb.push(rssMb());
    }
    store.close();
    if (digest(last) !== digest(first)) throw new Error('a rescan of the unchanged root found otherwise');
    const m: RescanMeasurement = {
      firstMs,
      rescanMs,
      rescanCpuMs,
      rssCurveMb,
      maxRssMb: maxRssMb(),
      digest: digest(first),
    };
    return m;
  }
  if (mode === 'layers') {
    const [image, n] = args as [string, string];
    return layerScans(image, Number(n));
  }
  if (mode === 'agent') {
    const [image, n] = args as [string, string];
    return agentRescans(image, Number(n));
  }
  throw new Error(`unknown mode ${String(mode)}`);
}

export interface LayersMeasurement {
  /** CPU ms (user + system) of each kind of inventory, medians of n where repeated. */
  mergedWalkCpuMs: number;
  firstContainerCpuMs: number;
  secondContainerCpuMs: number;
  unchangedCpuMs: number;
  unaffectedChangeCpuMs: number;
  packageAddedCpuMs: number;
  packages: { walked: number; layered: number; added: number };
  stats: Record<string, number>;
}

async function cpuOf<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const cpu = process.cpuUsage();
  const value = await fn();
  const used = process.cpuUsage(cpu);
  return { ms: (used.user + used.system) / 1000, value };
}

async function layerScans(image: string, n: number): Promise<LayersMeasurement> {
  // Imported here: the older tree this file also runs in has no such module.
  const { LayerScans } = await import('../src/scan/container-layers.js');
  const { collectInventory } = await import('../src/inventory/collect.js');
  const { DirectoryRootFs } = await import('../src/inventory/fs/directory-root-fs.js');
  const names = [0, 1].map(() => `containment-bench-layers-${randomBytes(3).toString('hex')}`);
  try {
    const pids = names.map((name) => {
      execFileSync('podman', ['run', '-d', '--name', name, image, 'sleep', '3600'], { stdio: 'pipe' });
      return Number(
        execFileSync('podman', ['inspect', '--format', '{{.State.Pid}}', name], { encoding: 'utf8' }),
      );
    }) as [number, number];
    const image0 = { User: '' };
    const walkRoot = async (pid: number) => {
      const fs = await DirectoryRootFs.open(`/proc/${pid}/root`);
      try {
        return await collectInventory(fs, { image: image0 });
      } finally {
        fs.close();
      }
    };
    const walked: number[] = [];
    let walkedPackages = 0;
    for (let i = 0; i < Math.min(n, 5); i++) {
      const r = await cpuOf(() => walkRoot(pids[0]));
      walked.push(r.ms);
      walkedPackages = r.value.packages.length;
    }
    const layers = new LayerScans();
    const scanOf = (pid: number) => layers.inventory({ pid, name: String(pid), image: image0 });
    const first = await cpuOf(() => scanOf(pids[0]));
    const second = await cpuOf(() => scanOf(pids[1]));
    const unchanged: number[] = [];
    for (let i = 0; i < n; i++) unchanged.push((await cpuOf(() => scanOf(pids[0]))).ms);
    writeFileSync(`/proc/${pids[0]}/root/usr/share/doc/bench-notes.txt`, 'notes');
    const unaffected = await cpuOf(() => scanOf(pids[0]));
    mkdirSync(`/proc/${pids[0]}/root/usr/local/lib/node_modules/minimist`, { recursive: true });
    writeFileSync(
      `/proc/${pids[0]}/root/usr/local/lib/node_modules/minimist/package.json`,
      '{"name":"minimist","version":"1.2.5"}',
    );
    const added = await cpuOf(() => scanOf(pids[0]));
    return {
      mergedWalkCpuMs: median(walked),
      firstContainerCpuMs: first.ms,
      secondContainerCpuMs: second.ms,
      unchangedCpuMs: median(unchanged),
      unaffectedChangeCpuMs: unaffected.ms,
      packageAddedCpuMs: added.ms,
      packages: {
        walked: walkedPackages,
        layered: first.value?.inventory.packages.length ?? -1,
        added: added.value?.inventory.packages.length ?? -1,
      },
      stats: { ...layers.stats },
    };
  } finally {
    execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', ...names], { stdio: 'ignore' });
  }
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

process.stdout.write(`${JSON.stringify(await main(process.argv.slice(2)))}\n`);
