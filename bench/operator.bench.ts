/**
 * The node operator benchmark (`npm run bench:operator`, issue 6), against a real kube-apiserver
 * + etcd (src/testing/k8s). Figures, not a test: nothing fails on a missed target.
 *
 * (a) latency: SecurityAction created → status Succeeded (seen through a watch), one action at a
 *     time, for Quarantine and for Terminate: p50/p99 over BENCH_ACTIONS (100) each, served by
 *     the real `containment operator` process;
 * (b) throughput: BENCH_BURST (300) Quarantine actions created at once: actions/s to the last
 *     Succeeded;
 * (c) memory: the operator process's RSS (VmRSS, and its peak VmHWM) with 1,000 pods and 10,000
 *     historic Succeeded actions for its node present, after its start-up list and 100 actions;
 * (d) watch fan-out: 10 operators (in this process) for 10 nodes, 100 labelled actions spread over
 *     the nodes: watch events each operator received (it should see only its own node's), and the
 *     same for unlabelled actions (each operator sees those until one labels them);
 * (e) the fleet: 1,000 kwok nodes, 10 real operator processes and 990 simulated ones, 1,000
 *     actions over the fleet (bench/fleet/operators.ts says what is real and what is simulated);
 *     skipped, loudly, when kwok is not built (`scripts/k8s/build.ts --kwok`).
 * BENCH_OPERATOR_ONLY=fleet runs (e) alone.
 * The operator process logs at level info (a line per action, as in production). It runs from an
 * esbuild bundle of the CLI (dependencies external, as a `npm run build` install would run, without
 * tsx's transpiler in the RSS); BENCH_OPERATOR_TSX=1 runs bin/containment.js through tsx instead.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { installCrd } from '../src/kubernetes/crd.test-helper.js';
import { Operator } from '../src/operator/operator.js';
import {
  API_VERSION,
  GROUP,
  KIND,
  NODE_LABEL,
  PLURAL,
  VERSION,
  WATCH_PATH,
} from '../src/kubernetes/security-action-api.js';
import { binariesWhat, findBinaries, findKwok, kwokWhat } from '../src/testing/k8s/binaries.js';
import type { ControlPlaneBinaries } from '../src/testing/k8s/binaries.js';
import { startControlPlane } from '../src/testing/k8s/control-plane.js';
import type { ControlPlane } from '../src/testing/k8s/control-plane.js';
import { repoRoot } from '../src/testing/shared-data.js';
import {
  bundleCli,
  startOperatorProcess as startProcess,
  stopProcess,
  tsxEntry,
} from './operator-process.js';
import { runOperatorFleet } from './fleet/operators.js';
import { poll } from '../src/testing/wait.js';

const ACTIONS = Number(process.env.BENCH_ACTIONS ?? 100);
const BURST = Number(process.env.BENCH_BURST ?? 300);
const PODS = Number(process.env.BENCH_PODS ?? 1000);
const HISTORIC = Number(process.env.BENCH_HISTORIC ?? 10_000);
const FANOUT_NODES = 10;
const TARGET = { p99Ms: 500, rssMb: 200 };
const NODE = 'bench-node';
const NS = 'bench';

const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i] as T, i);
      }
    }),
  );
}

interface Cluster {
  cp: ControlPlane;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  custom: k8s.CustomObjectsApi;
}

/** Resolves each action's Succeeded/Failed moment, seen through one watch of all actions. */
class CompletionWatch {
  private readonly waiters = new Map<string, (t: number) => void>();
  private readonly done = new Map<string, number>();
  private controller: AbortController | undefined;
  private stopped = false;
  failed = 0;
  constructor(private readonly kc: k8s.KubeConfig) {}
  async start(): Promise<void> {
    if (this.stopped) return;
    // Without a resourceVersion the server first replays every object: nothing finished is missed.
    this.controller = await new k8s.Watch(this.kc).watch(
      WATCH_PATH,
      { labelSelector: `${NODE_LABEL}=${NODE}` },
      (_type: string, obj: { metadata?: { name?: string }; status?: { phase?: string } }) => {
        const phase = obj.status?.phase;
        const name = obj.metadata?.name ?? '';
        if ((phase !== 'Succeeded' && phase !== 'Failed') || this.done.has(name)) return;
        if (phase === 'Failed') this.failed++;
        const t = performance.now();
        this.done.set(name, t);
        this.waiters.get(name)?.(t);
      },
      // A watch that ends (server timeout, API server still starting up) is started again.
      () => void sleep(200).then(() => this.start()),
    );
  }
  when(name: string): Promise<number> {
    const t = this.done.get(name);
    if (t !== undefined) return Promise.resolve(t);
    return new Promise((resolve) => this.waiters.set(name, resolve));
  }
  stop(): void {
    this.stopped = true;
    this.controller?.abort();
  }
}

async function createPod(c: Cluster, name: string, node: string): Promise<void> {
  await c.core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: { name, labels: { app: 'bench' } },
      spec: { nodeName: node, containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
    },
  });
}

async function createAction(
  c: Cluster,
  name: string,
  pod: string,
  action: string,
  node: string | undefined,
): Promise<unknown> {
  return c.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: NS,
    body: {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name, ...(node === undefined ? {} : { labels: { [NODE_LABEL]: node } }) },
      spec: { target: { namespace: NS, pod }, action },
    },
  });
}

let cliEntry = tsxEntry;

function startOperatorProcess(
  kubeconfig: string,
  evidenceDir: string,
  nodeOptions = '',
): Promise<{ child: ChildProcess; startMs: number }> {
  return startProcess({ cliEntry, node: NODE, kubeconfig, evidenceDir, nodeOptions });
}

function memoryMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kb('VmRSS') / 1024), hwm: Math.round(kb('VmHWM') / 1024) };
}

async function latency(
  c: Cluster,
  watch: CompletionWatch,
  action: 'Quarantine' | 'Terminate',
): Promise<number[]> {
  const samples: number[] = [];
  const prefix = action.toLowerCase();
  await pool(
    Array.from({ length: ACTIONS }, (_, i) => i),
    16,
    (i) => createPod(c, `${prefix}-${i}`, NODE),
  );
  for (let i = 0; i < ACTIONS; i++) {
    const name = `${prefix}-${i}`;
    const t0 = performance.now();
    await createAction(c, name, name, action, NODE);
    samples.push((await watch.when(name)) - t0);
  }
  return samples.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const binaries = findBinaries();
  if (!binaries) {
    log(`SKIPPED: ${binariesWhat} is not available`);
    process.exitCode = 1;
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'containment-operator-bench-'));
  if (process.env.BENCH_OPERATOR_TSX !== '1') cliEntry = await bundleCli(tmp);
  const how =
    cliEntry === tsxEntry
      ? `bin/containment.js (${existsSync(join(repoRoot, 'dist')) ? 'dist' : 'tsx'})`
      : 'an esbuild bundle of the CLI';
  log(
    `${cpus().length} cores, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; operator from ${how}`,
  );
  const rows: [string, string, string][] = [];
  try {
    // BENCH_OPERATOR_ONLY=fleet runs section (e) alone.
    if (process.env.BENCH_OPERATOR_ONLY !== 'fleet') await sectionsAtoD(binaries, tmp, rows);
    const kwok = findKwok();
    if (!kwok) log(`SKIPPED (e) fleet: ${kwokWhat} is not available`);
    else rows.push(...(await runOperatorFleet({ binaries, kwok, cliEntry, tmp, log })));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const widths = [0, 1, 2].map((k) => Math.max(...rows.map((r) => r[k]?.length ?? 0)));
  const line = (r: readonly string[]): string => r.map((cell, k) => cell.padEnd(widths[k] ?? 0)).join(' | ');
  process.stdout.write(
    `\nOperator benchmark (real kube-apiserver + etcd, ${cpus().length} cores, load ${loadavg()[0]?.toFixed(2)})\n`,
  );
  process.stdout.write(`${line(['measurement', 'median / figure', 'p99 / detail'])}\n`);
  process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('-|-')}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

async function sectionsAtoD(
  binaries: ControlPlaneBinaries,
  tmp: string,
  rows: [string, string, string][],
): Promise<void> {
  const cp = await startControlPlane({ binaries, name: 'operator-bench' });
  let op: ChildProcess | undefined;
  try {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions(cp.kubeConfig);
    const c: Cluster = {
      cp,
      kc,
      core: kc.makeApiClient(k8s.CoreV1Api),
      custom: kc.makeApiClient(k8s.CustomObjectsApi),
    };
    await installCrd(kc);
    await c.core.createNamespace({ body: { metadata: { name: NS } } });
    const watch = new CompletionWatch(kc);
    await watch.start();

    // (a) latency, one action at a time, against the real operator process.
    const first = await startOperatorProcess(cp.kubeconfigPath, join(tmp, 'evidence'));
    op = first.child;
    log('(a) latency: warming up');
    await createPod(c, 'warm', NODE);
    for (let i = 0; i < 5; i++) {
      await createAction(c, `warm-${i}`, 'warm', 'Snapshot', NODE);
      await watch.when(`warm-${i}`);
    }
    for (const action of ['Quarantine', 'Terminate'] as const) {
      log(`(a) latency: ${ACTIONS} × ${action}`);
      const s = await latency(c, watch, action);
      rows.push([
        `${action}: created → Succeeded`,
        `p50 ${percentile(s, 50).toFixed(1)} ms`,
        `p99 ${percentile(s, 99).toFixed(1)} ms (target < ${TARGET.p99Ms})`,
      ]);
    }

    // (b) a burst, all created at once.
    log(`(b) throughput: ${BURST} Quarantine actions at once`);
    await pool(
      Array.from({ length: BURST }, (_, i) => i),
      16,
      (i) => createPod(c, `burst-${i}`, NODE),
    );
    const t0 = performance.now();
    await pool(
      Array.from({ length: BURST }, (_, i) => i),
      16,
      async (i) => {
        await createAction(c, `burst-${i}`, `burst-${i}`, 'Quarantine', NODE);
      },
    );
    const created = performance.now() - t0;
    const ends = await Promise.all(Array.from({ length: BURST }, (_, i) => watch.when(`burst-${i}`)));
    const total = Math.max(...ends) - t0;
    rows.push([
      `burst of ${BURST} Quarantine`,
      `${((BURST / total) * 1000).toFixed(0)} actions/s`,
      `all Succeeded in ${(total / 1000).toFixed(2)} s (created in ${(created / 1000).toFixed(2)} s)`,
    ]);
    await stopProcess(op);
    op = undefined;

    // (c) memory with many pods and historic actions present.
    log(`(c) memory: ${PODS} pods, ${HISTORIC} historic Succeeded actions`);
    const existingPods = 2 * ACTIONS + BURST + 1;
    await pool(
      Array.from({ length: Math.max(0, PODS - existingPods) }, (_, i) => i),
      24,
      (i) => createPod(c, `idle-${i}`, NODE),
    );
    const now = new Date().toISOString();
    await pool(
      Array.from({ length: HISTORIC }, (_, i) => i),
      24,
      async (i) => {
        const obj = (await createAction(c, `hist-${i}`, `idle-${i % 100}`, 'Snapshot', NODE)) as Record<
          string,
          unknown
        >;
        await c.custom.replaceNamespacedCustomObjectStatus({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: NS,
          name: `hist-${i}`,
          body: {
            ...obj,
            status: {
              phase: 'Succeeded',
              node: NODE,
              startedAt: now,
              completedAt: now,
              message: 'historic',
              evidence: [],
              conditions: [],
            },
          },
        });
        if ((i + 1) % 2000 === 0) log(`  ${i + 1} historic actions`);
      },
    );
    // As started (Node's default heap sizing), then with the old-space cap a DaemonSet would set.
    for (const [variant, nodeOptions] of [
      ['default heap', ''],
      ['--max-old-space-size=96', '--max-old-space-size=96'],
    ] as const) {
      const proc = await startOperatorProcess(
        cp.kubeconfigPath,
        join(tmp, `evidence-${variant}`),
        nodeOptions,
      );
      op = proc.child;
      const afterStart = memoryMb(op.pid as number);
      const mem: number[] = [];
      for (let i = 0; i < 100; i++) {
        const name = `mem-${nodeOptions ? 'capped' : 'default'}-${i}`;
        const t1 = performance.now();
        await createAction(c, name, `idle-${100 + i}`, 'Quarantine', NODE);
        mem.push((await watch.when(name)) - t1);
      }
      mem.sort((a, b) => a - b);
      const afterRun = memoryMb(op.pid as number);
      rows.push([
        `operator start-up, ${HISTORIC} historic actions (${variant})`,
        `${(proc.startMs / 1000).toFixed(2)} s to watching`,
        `RSS ${afterStart.rss} MB after its list`,
      ]);
      rows.push([
        `operator RSS, ${PODS} pods + ${HISTORIC} historic, +100 actions (${variant})`,
        `RSS ${afterRun.rss} MB`,
        `peak ${afterRun.hwm} MB (target < ${TARGET.rssMb})`,
      ]);
      rows.push([
        `Quarantine latency with that history (${variant})`,
        `p50 ${percentile(mem, 50).toFixed(1)} ms`,
        `p99 ${percentile(mem, 99).toFixed(1)} ms`,
      ]);
      await stopProcess(op);
      op = undefined;
    }
    watch.stop();

    // (d) watch fan-out: 10 operators, each for its own node.
    log(`(d) fan-out: ${FANOUT_NODES} operators`);
    const logger = pino({ level: 'warn' });
    const ops = Array.from(
      { length: FANOUT_NODES },
      (_, n) =>
        new Operator({
          kubeConfig: kc,
          node: `fan-${n}`,
          logger,
          evidenceDir: join(tmp, 'fan'),
          listPodProcesses: async () => [],
        }),
    );
    await Promise.all(ops.map((o) => o.start()));
    const before = ops.map((o) => o.stats.events);
    const perNode = 10;
    await pool(
      Array.from({ length: FANOUT_NODES * perNode }, (_, i) => i),
      16,
      async (i) => {
        const node = `fan-${i % FANOUT_NODES}`;
        await createPod(c, `fan-${i}`, node);
        await createAction(c, `fan-${i}`, `fan-${i}`, 'Quarantine', node);
      },
    );
    const waitIdle = async (count: (o: Operator) => number, want: number): Promise<void> => {
      await poll(() => ops.every((o) => count(o) >= want), Boolean, { ms: 60_000, every: 100 });
      await sleep(500);
    };
    await waitIdle((o) => o.stats.completed, perNode);
    const labelled = ops.map((o, n) => o.stats.events - (before[n] ?? 0));
    rows.push([
      `watch events per operator, ${FANOUT_NODES * perNode} labelled actions over ${FANOUT_NODES} nodes`,
      `min ${Math.min(...labelled)} / max ${Math.max(...labelled)}`,
      `an unfiltered watch would see ≥ ${FANOUT_NODES * perNode * 3}`,
    ]);
    const before2 = ops.map((o) => o.stats.events);
    await pool(
      Array.from({ length: FANOUT_NODES * perNode }, (_, i) => i),
      16,
      async (i) => {
        const node = `fan-${i % FANOUT_NODES}`;
        await createPod(c, `fan-u-${i}`, node);
        await createAction(c, `fan-u-${i}`, `fan-u-${i}`, 'Quarantine', undefined);
      },
    );
    await waitIdle((o) => o.stats.completed, 2 * perNode);
    const unlabelled = ops.map((o, n) => o.stats.events - (before2[n] ?? 0));
    const labels = ops.reduce((n, o) => n + o.stats.labelled, 0);
    const conflicts = ops.reduce((n, o) => n + o.stats.labelConflicts, 0);
    rows.push([
      `same with unlabelled actions (kubectl-made)`,
      `min ${Math.min(...unlabelled)} / max ${Math.max(...unlabelled)}`,
      `${labels} label writes won, ${conflicts} lost races`,
    ]);
    await Promise.all(ops.map((o) => o.stop()));
  } finally {
    if (op) await stopProcess(op);
    await cp.stop();
  }
}

await main();
