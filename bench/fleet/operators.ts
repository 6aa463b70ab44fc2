/**
 * The operator side of the fleet (issue 14), section (e) of `npm run bench:operator`: a real
 * kube-apiserver + etcd (src/testing/k8s) and a real kwok managing BENCH_KWOK_NODES (1,000) fake
 * Nodes — kwok keeps them Ready (node leases, status) and runs their pods as kwok does (status
 * Running, pod IPs), so the API server carries a 1,000-node cluster's background writes.
 *
 * What is real and what is simulated:
 * - real: kube-apiserver, etcd, kwok, the Nodes and Pods, the SecurityAction CRD and every
 *   SecurityAction; BENCH_FLEET_OPERATORS (10) real `containment operator` processes, one for each
 *   of the first nodes, which carry out their nodes' actions (Quarantine, through the API: kwok's
 *   pods have no processes);
 * - simulated: the operators of the other nodes. For each one this process opens the same two
 *   watches the operator opens (its ListWatcher, `watchSecurityActions`, with the selectors
 *   `containment.dev/node=<node>` and `!containment.dev/node`) and counts their events; the bench
 *   writes those nodes' actions' status (Running, then Succeeded) as their operator would.
 * One more watch, of every SecurityAction without a selector, shows what a node would receive
 * without the operator's selector.
 *
 * BENCH_FLEET_ACTIONS (1,000) labelled Quarantine actions are created at once, action i for a pod
 * on node i mod NODES (so every node gets its share). Reported: watch events per node (real and
 * simulated, p50/max), the unfiltered total, time to all Succeeded for the real operators' actions,
 * kwok's start-up, and the CPU seconds of kube-apiserver, etcd and kwok (from /proc) while the fleet
 * idles and while the actions run.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as k8s from '@kubernetes/client-node';
import { installCrd } from '../../src/kubernetes/crd.test-helper.js';
import type { ListWatcher } from '../../src/kubernetes/list-watch.js';
import {
  API_VERSION,
  GROUP,
  KIND,
  NODE_LABEL,
  PLURAL,
  VERSION,
  WATCH_PATH,
  watchSecurityActions,
} from '../../src/kubernetes/security-action-api.js';
import type { SecurityActionObject } from '../../src/kubernetes/security-action-api.js';
import { kwokStageFiles } from '../../src/testing/k8s/binaries.js';
import type { ControlPlaneBinaries } from '../../src/testing/k8s/binaries.js';
import { startControlPlane } from '../../src/testing/k8s/control-plane.js';
import { startOperatorProcess, stopProcess } from '../operator-process.js';
import type { OperatorProcess } from '../operator-process.js';
import { poll } from '../../src/testing/wait.js';

const NODES = Number(process.env.BENCH_KWOK_NODES ?? 1_000);
const ACTIONS = Number(process.env.BENCH_FLEET_ACTIONS ?? 1_000);
const REAL = Math.min(NODES, Number(process.env.BENCH_FLEET_OPERATORS ?? 10));
const IDLE_MS = Number(process.env.BENCH_FLEET_IDLE_MS ?? 30_000);
const NS = 'fleet';
const KWOK_NODE = 'kwok.x-k8s.io/node';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nodeName = (n: number): string => `kwok-node-${String(n).padStart(4, '0')}`;
const quiet = { info: (): void => {}, warn: (): void => {} };

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function pool(count: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

/** user + system CPU seconds of a process so far (clock ticks are 100 Hz on Linux). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMb(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Math.round(Number(kb) / 1024);
}

/** Polls `done` every second; how long it took to hold (throws past `timeoutMs`). */
async function waitFor(what: string, timeoutMs: number, done: () => Promise<boolean>): Promise<number> {
  const polled = await poll(done, Boolean, { ms: timeoutMs, every: 1000 });
  if (!polled.ok) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
  return polled.elapsedMs;
}

export interface FleetOptions {
  binaries: ControlPlaneBinaries;
  kwok: string;
  cliEntry: string;
  tmp: string;
  log: (line: string) => void;
}

export async function runOperatorFleet(o: FleetOptions): Promise<[string, string, string][]> {
  const rows: [string, string, string][] = [];
  const cp = await startControlPlane({ binaries: o.binaries, name: 'operator-fleet' });
  let kwok: ChildProcess | undefined;
  const real: OperatorProcess[] = [];
  const watchers: ListWatcher<SecurityActionObject>[] = [];
  let all: AbortController | undefined;
  try {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions(cp.kubeConfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await installCrd(kc);
    await core.createNamespace({ body: { metadata: { name: NS } } });

    // kwok manages only the Nodes annotated for it; it serves nothing (no kubelet API port).
    const kwokLog = openSync(join(o.tmp, 'kwok.log'), 'a');
    kwok = spawn(
      o.kwok,
      [
        `--kubeconfig=${cp.kubeconfigPath}`,
        '--manage-all-nodes=false',
        `--manage-nodes-with-annotation-selector=${KWOK_NODE}=fake`,
        '--manage-nodes-with-label-selector=',
        // As a kubelet does: a Lease per node, renewed every 10 s (a quarter of its duration).
        '--node-lease-duration-seconds=40',
        '--cidr=10.0.0.1/16',
        '--node-ip=10.0.0.1',
        '--server-address=',
        ...(kwokStageFiles() ?? []).map((f) => `--config=${f}`),
      ],
      { stdio: ['ignore', kwokLog, kwokLog] },
    );
    const kwokPid = kwok.pid as number;
    const pids = { 'kube-apiserver': cp.pids.kubeApiserver, etcd: cp.pids.etcd, kwok: kwokPid };
    const cpuNow = (): Record<string, number> =>
      Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
    const cpuRow = (label: string, before: Record<string, number>, ms: number): void => {
      const after = cpuNow();
      const parts = Object.keys(pids).map(
        (k) => `${k} ${(((after[k] ?? 0) - (before[k] ?? 0)) / (ms / 1000)).toFixed(2)}`,
      );
      rows.push([label, `${parts.join(', ')} cores`, `over ${(ms / 1000).toFixed(1)} s`]);
    };

    o.log(`(e) fleet: ${NODES} kwok nodes`);
    let t = performance.now();
    await pool(NODES, 16, async (n) => {
      await core.createNode({
        body: {
          metadata: {
            name: nodeName(n),
            annotations: { [KWOK_NODE]: 'fake' },
            labels: { type: 'kwok', 'kubernetes.io/hostname': nodeName(n) },
          },
          status: {
            capacity: { cpu: '32', memory: '256Gi', pods: '110' },
            allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
          },
        },
      });
    });
    const nodesCreated = performance.now() - t;
    const readyNodes = async (): Promise<number> =>
      (await core.listNode({ labelSelector: 'type=kwok' })).items.filter((n) =>
        n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      ).length;
    const readyMs = await waitFor(
      `${NODES} nodes Ready`,
      30_000 + NODES * 200,
      async () => (await readyNodes()) >= NODES,
    );
    rows.push([
      `kwok: ${NODES} Nodes created, then Ready`,
      `${(nodesCreated / 1000).toFixed(1)} s to create`,
      `all Ready ${(readyMs / 1000).toFixed(1)} s later`,
    ]);

    o.log(`(e) fleet: ${ACTIONS} pods`);
    t = performance.now();
    await pool(ACTIONS, 16, async (i) => {
      await core.createNamespacedPod({
        namespace: NS,
        body: {
          metadata: { name: `pod-${i}`, labels: { app: 'fleet' } },
          spec: {
            nodeName: nodeName(i % NODES),
            containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
            tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
          },
        },
      });
    });
    const runningMs = await waitFor(`${ACTIONS} pods Running`, 300_000, async () => {
      const pods = await core.listNamespacedPod({ namespace: NS });
      return pods.items.filter((p) => p.status?.phase === 'Running').length >= ACTIONS;
    });
    rows.push([
      `kwok: ${ACTIONS} pods over the nodes, Running`,
      `${(performance.now() - t - runningMs) / 1000 > 0 ? ((performance.now() - t - runningMs) / 1000).toFixed(1) : '0'} s to create`,
      `all Running ${(runningMs / 1000).toFixed(1)} s later`,
    ]);

    // The fleet's background: kwok's node leases and status, nothing else.
    o.log(`(e) fleet idle for ${IDLE_MS / 1000} s`);
    let cpu = cpuNow();
    t = performance.now();
    await sleep(IDLE_MS);
    cpuRow(`idle fleet of ${NODES} nodes: CPU`, cpu, performance.now() - t);

    // The simulated nodes' watches: the operator's two, per node, with its ListWatcher.
    o.log(`(e) ${2 * (NODES - REAL)} watches for ${NODES - REAL} simulated operators`);
    const events = new Array<number>(NODES).fill(0);
    const unlabelledEvents = new Array<number>(NODES).fill(0);
    for (let n = REAL; n < NODES; n++) {
      const node = nodeName(n);
      watchers.push(
        watchSecurityActions({
          kubeConfig: kc,
          labelSelector: `${NODE_LABEL}=${node}`,
          logger: quiet,
          onEvent: () => void (events[n] = (events[n] ?? 0) + 1),
        }),
        watchSecurityActions({
          kubeConfig: kc,
          labelSelector: `!${NODE_LABEL}`,
          logger: quiet,
          onEvent: () => void (unlabelledEvents[n] = (unlabelledEvents[n] ?? 0) + 1),
        }),
      );
    }
    t = performance.now();
    cpu = cpuNow();
    let started = 0;
    await pool(watchers.length, 32, async (i) => {
      await watchers[i]?.start();
      if (++started % 500 === 0) o.log(`  ${started} watches`);
    });
    const watchStartMs = performance.now() - t;
    rows.push([
      `${watchers.length} operator watches opened (${NODES - REAL} simulated nodes)`,
      `${(watchStartMs / 1000).toFixed(1)} s (list, then watch)`,
      `kube-apiserver RSS ${rssMb(cp.pids.kubeApiserver)} MB, etcd ${rssMb(cp.pids.etcd)} MB`,
    ]);

    // Every SecurityAction, unfiltered: what each node would receive without a selector.
    let unfiltered = 0;
    const watchAll = async (): Promise<void> => {
      all = await new k8s.Watch(kc).watch(
        WATCH_PATH,
        {},
        () => void unfiltered++,
        () => void (all && !all.signal.aborted ? sleep(200).then(watchAll) : undefined),
      );
    };
    await watchAll();

    o.log(`(e) ${REAL} real operator processes`);
    await pool(REAL, 4, async (n) => {
      real[n] = await startOperatorProcess({
        cliEntry: o.cliEntry,
        node: nodeName(n),
        kubeconfig: cp.kubeconfigPath,
        evidenceDir: join(o.tmp, `fleet-evidence-${n}`),
        keepLog: true,
      });
    });

    o.log(`(e) ${ACTIONS} SecurityActions at once`);
    cpu = cpuNow();
    const t0 = performance.now();
    const wall0 = Date.now();
    const created = new Map<number, object>();
    await pool(ACTIONS, 16, async (i) => {
      const obj = await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: NS,
        body: {
          apiVersion: API_VERSION,
          kind: KIND,
          metadata: { name: `act-${i}`, labels: { [NODE_LABEL]: nodeName(i % NODES) } },
          spec: { target: { namespace: NS, pod: `pod-${i}` }, action: 'Quarantine' },
        },
      });
      created.set(i, obj as object);
    });
    const createdMs = performance.now() - t0;
    // The simulated operators' status writes: Running, then Succeeded, as the operator writes them.
    const simulated = Array.from({ length: ACTIONS }, (_, i) => i).filter((i) => i % NODES >= REAL);
    await pool(simulated.length, 16, async (k) => {
      const i = simulated[k] as number;
      const node = nodeName(i % NODES);
      const now = new Date().toISOString();
      let obj = created.get(i) as Record<string, unknown>;
      for (const phase of ['Running', 'Succeeded'] as const) {
        obj = (await custom.replaceNamespacedCustomObjectStatus({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: NS,
          name: `act-${i}`,
          body: {
            ...obj,
            status: {
              phase,
              node,
              startedAt: now,
              ...(phase === 'Succeeded' ? { completedAt: new Date().toISOString() } : {}),
              message: 'simulated operator',
              evidence: [],
              conditions: [],
            },
          },
        })) as Record<string, unknown>;
      }
    });
    const realActions = Array.from({ length: ACTIONS }, (_, i) => i).filter((i) => i % NODES < REAL);
    // Polled from the API (a watch here could miss its end): each action's own completedAt.
    const completed = new Map<string, number>();
    await waitFor('every action Succeeded', 600_000, async () => {
      const list = (await custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: NS,
      })) as { items: SecurityActionObject[] };
      for (const a of list.items)
        if (a.status?.phase === 'Succeeded' && a.status.completedAt)
          completed.set(a.metadata?.name ?? '', Date.parse(a.status.completedAt));
      return completed.size >= ACTIONS;
    });
    const realDone = realActions.map((i) => (completed.get(`act-${i}`) ?? NaN) - wall0).sort((a, b) => a - b);
    const allDone = Math.max(...completed.values()) - wall0;
    await sleep(2000); // the last events reach every watch
    cpuRow(`${ACTIONS} actions over the fleet: CPU`, cpu, performance.now() - t0);
    rows.push([
      `${ACTIONS} Quarantine actions created at once`,
      `${(createdMs / 1000).toFixed(1)} s to create`,
      `every action Succeeded after ${(allDone / 1000).toFixed(1)} s`,
    ]);
    rows.push([
      `${realActions.length} actions of the ${REAL} real operators: created → Succeeded`,
      `p50 ${(percentile(realDone, 50) / 1000).toFixed(2)} s`,
      `last ${(percentile(realDone, 100) / 1000).toFixed(2)} s`,
    ]);

    // Real operators report their counters when stopped.
    await Promise.all(real.map((p) => stopProcess(p.child)));
    const realEvents = real.map((p) => {
      const line = p
        .log()
        .split('\n')
        .find((l) => l.includes('"operator stopped"'));
      const stats = line
        ? (JSON.parse(line) as { stats?: { events?: number; completed?: number } }).stats
        : undefined;
      return stats?.events ?? NaN;
    });
    real.length = 0;
    const sortedReal = [...realEvents].sort((a, b) => a - b);
    const perNode = ACTIONS / NODES;
    rows.push([
      `watch events per real operator (${perNode} action(s) per node)`,
      `p50 ${percentile(sortedReal, 50)}`,
      `max ${percentile(sortedReal, 100)} (both watches, incl. its own status writes)`,
    ]);
    const sim = events.slice(REAL).sort((a, b) => a - b);
    const simUnlabelled = unlabelledEvents.slice(REAL);
    rows.push([
      `watch events per simulated node (operator's selectors)`,
      `p50 ${percentile(sim, 50)}`,
      `max ${percentile(sim, 100)}; unlabelled watch ${Math.max(...simUnlabelled)} max`,
    ]);
    const delivered = sim.reduce((a, b) => a + b, 0) + realEvents.reduce((a, b) => a + b, 0);
    rows.push([
      `watch events delivered to all ${NODES} nodes`,
      `${delivered} in total`,
      `one unselected watch alone got ${unfiltered}; ${NODES} of them would get ${NODES * unfiltered}`,
    ]);
    rows.push([
      `after the actions`,
      `kube-apiserver RSS ${rssMb(cp.pids.kubeApiserver)} MB`,
      `etcd ${rssMb(cp.pids.etcd)} MB, kwok ${rssMb(kwokPid)} MB`,
    ]);
  } catch (err) {
    const kwokLog = readFileSync(join(o.tmp, 'kwok.log'), 'utf8');
    o.log(`kwok's log ends:\n${kwokLog.slice(-3000)}`);
    throw err;
  } finally {
    all?.abort();
    await Promise.all(real.map((p) => stopProcess(p.child)));
    await Promise.all(watchers.map((w) => w.stop()));
    if (kwok) await stopProcess(kwok);
    await cp.stop();
  }
  return rows;
}
