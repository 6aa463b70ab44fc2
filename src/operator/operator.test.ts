/**
 * The node operator against a real kube-apiserver (one per file; several operators in-process):
 * each action kind end to end, exactly-one-wins labelling of unlabelled actions, 410 Gone and
 * reconnects, resuming after a stop mid-action, attack tests (another namespace's pod, a replaced
 * pod), and the whole operator run as its ServiceAccount with exactly the chart's RBAC rules.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { QUARANTINE_LABEL, quarantinePolicyName } from '../enforcement/kubernetes/quarantine-policy.js';
import {
  buildPodTestImage,
  podmanPodAvailable,
  runPodContainer,
} from '../agent/kubernetes/pod-container.test-helper.js';
import { verifyBundle } from '../linux/evidence.js';
import { isQuarantined } from '../linux/netns-quarantine.js';
import { hasCommand, run } from '../testing/tools.js';
import type { ActionStatus } from '../enforcement/security-action.js';
import { binariesWhat, findBinaries } from '../testing/k8s/binaries.js';
import { startControlPlane } from '../testing/k8s/control-plane.js';
import { Relay } from '../testing/k8s/tcp-relay.js';
import type { ControlPlane } from '../testing/k8s/control-plane.js';
import { repoRoot, requireOrSkip } from '../testing/shared-data.js';
import { installCrd } from '../kubernetes/crd.test-helper.js';
import { Operator } from './operator.js';
import type { OperatorOptions } from './operator.js';
import {
  API_VERSION,
  GROUP,
  KIND,
  NODE_LABEL,
  PLURAL,
  watchSecurityActions,
  VERSION,
} from '../kubernetes/security-action-api.js';
import type { SecurityActionObject } from '../kubernetes/security-action-api.js';
import { poll, waitFor, waitUntil } from '../testing/wait.js';

const binaries = findBinaries();
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const NODE_A = 'node-a';
const NODE_B = 'node-b';

let cp: ControlPlane | undefined;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let custom: k8s.CustomObjectsApi;
let networking: k8s.NetworkingV1Api;
let evidenceRoot: string;
const operators: Operator[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function namespace(name: string): Promise<string> {
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

async function pod(
  ns: string,
  name: string,
  node: string | undefined,
  labels: Record<string, string> = { app: 'web' },
): Promise<k8s.V1Pod> {
  return core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name, labels },
      spec: {
        ...(node === undefined ? {} : { nodeName: node }),
        containers: [{ name: 'app', image: 'registry.invalid/web:1' }],
      },
    },
  });
}

async function action(
  ns: string,
  name: string,
  spec: Record<string, unknown>,
  labels: Record<string, string> | undefined,
): Promise<SecurityActionObject> {
  return (await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: ns,
    body: { apiVersion: API_VERSION, kind: KIND, metadata: { name, ...(labels ? { labels } : {}) }, spec },
  })) as SecurityActionObject;
}

const onNode = (node: string): Record<string, string> => ({ [NODE_LABEL]: node });

async function getAction(ns: string, name: string): Promise<SecurityActionObject> {
  return (await custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: ns,
    name,
  })) as SecurityActionObject;
}

function waitFinal(ns: string, name: string, timeoutMs = 15_000): Promise<SecurityActionObject> {
  return waitFor(
    () => getAction(ns, name),
    (a) => a.status?.phase === 'Succeeded' || a.status?.phase === 'Failed',
    `${ns}/${name} in a final phase`,
    { ms: timeoutMs, every: 50 },
  );
}

async function readPod(ns: string, name: string): Promise<k8s.V1Pod | undefined> {
  try {
    return await core.readNamespacedPod({ namespace: ns, name });
  } catch (e) {
    if ((e as { code?: number }).code === 404) return undefined;
    throw e;
  }
}

/**
 * The Events about `uid`. Events are recorded just after the final status, so this waits until
 * at least `atLeast` are there, then a little longer, so an extra (duplicate) one would show too.
 */
async function eventsFor(ns: string, uid: string, atLeast = 1): Promise<k8s.CoreV1Event[]> {
  const list = async (): Promise<k8s.CoreV1Event[]> =>
    (await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.uid=${uid}` })).items;
  await poll(list, (events) => events.length >= atLeast, { ms: 5000, every: 50 });
  await sleep(150);
  return list();
}

function cond(
  status: ActionStatus | undefined,
  type: string,
): ActionStatus['conditions'][number] | undefined {
  return status?.conditions.find((c) => c.type === type);
}

/** Operators see no local pod processes unless `realProc` (only the node-level test has real ones). */
async function startOperator(
  node: string,
  extra: Partial<OperatorOptions> = {},
  kubeConfig = kc,
  realProc = false,
): Promise<Operator> {
  const op = new Operator({
    kubeConfig,
    node,
    logger,
    evidenceDir: join(evidenceRoot, node),
    ...(realProc ? {} : { listPodProcesses: async () => [] }),
    ...extra,
  });
  operators.push(op);
  await op.start();
  return op;
}

async function stopOperator(op: Operator): Promise<void> {
  await op.stop();
  operators.splice(operators.indexOf(op), 1);
}

describe('node operator (real kube-apiserver)', () => {
  before(async () => {
    if (!binaries) return;
    cp = await startControlPlane({ binaries, name: 'operator-test', watchCache: false });
    kc = new k8s.KubeConfig();
    kc.loadFromOptions(cp.kubeConfig);
    core = kc.makeApiClient(k8s.CoreV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    networking = kc.makeApiClient(k8s.NetworkingV1Api);
    await installCrd(kc);
    evidenceRoot = mkdtempSync(join(tmpdir(), 'containment-operator-test-'));
  });
  // Each test runs its own operators: one left running would act on the next test's actions.
  afterEach(async () => {
    await Promise.all(operators.splice(0).map((o) => o.stop()));
  });
  after(async () => {
    await cp?.stop();
    if (evidenceRoot) rmSync(evidenceRoot, { recursive: true, force: true });
  });

  it('quarantines exactly the target pod (not its replica), records every layer and Events, then releases it', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('quarantine');
    const target = await pod(ns, 'web-1', NODE_A);
    const replica = await pod(ns, 'web-2', NODE_A);
    const op = await startOperator(NODE_A);
    await action(
      ns,
      'q1',
      { target: { namespace: ns, pod: 'web-1' }, action: 'Quarantine', reason: 'sshd installed' },
      onNode(NODE_A),
    );
    const done = await waitFinal(ns, 'q1');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
    assert.equal(done.status?.node, NODE_A);
    assert.ok(
      done.status?.startedAt && done.status.completedAt && done.status.startedAt <= done.status.completedAt,
    );
    assert.equal(cond(done.status, 'PodLabelled')?.status, 'True');
    assert.equal(cond(done.status, 'NetworkPolicyApplied')?.status, 'True');
    const nodeLayer = cond(done.status, 'NodeIsolation');
    assert.equal(nodeLayer?.status, 'Unknown');
    assert.equal(nodeLayer?.reason, 'NoLocalProcess');
    assert.match(nodeLayer?.message ?? '', /no process of pod quarantine\/web-1 .* runs on node node-a/);

    const uid = target.metadata?.uid ?? '';
    assert.equal((await readPod(ns, 'web-1'))?.metadata?.labels?.[QUARANTINE_LABEL], uid);
    assert.equal((await readPod(ns, 'web-2'))?.metadata?.labels?.[QUARANTINE_LABEL], undefined);
    const policy = await networking.readNamespacedNetworkPolicy({
      namespace: ns,
      name: quarantinePolicyName('web-1'),
    });
    assert.deepEqual(policy.spec?.podSelector?.matchLabels, { [QUARANTINE_LABEL]: uid });
    assert.deepEqual(policy.spec?.policyTypes, ['Ingress', 'Egress']);
    assert.equal(policy.spec?.ingress, undefined);
    assert.equal(policy.spec?.egress, undefined);
    // The API server's own selector evaluation: the policy selects web-1 and not its replica.
    const selected = await core.listNamespacedPod({
      namespace: ns,
      labelSelector: `${QUARANTINE_LABEL}=${uid}`,
    });
    assert.deepEqual(
      selected.items.map((p) => p.metadata?.name),
      ['web-1'],
    );
    assert.notEqual(replica.metadata?.uid, uid);

    const podEvents = await eventsFor(ns, uid);
    assert.deepEqual(
      podEvents.map((e) => [e.reason, e.type, e.source?.host]),
      [['Quarantined', 'Warning', NODE_A]],
    );
    assert.deepEqual(
      (await eventsFor(ns, done.metadata.uid)).map((e) => e.reason),
      ['Succeeded'],
    );

    await action(ns, 'r1', { target: { namespace: ns, pod: 'web-1' }, action: 'Release' }, onNode(NODE_A));
    const released = await waitFinal(ns, 'r1');
    assert.equal(released.status?.phase, 'Succeeded', released.status?.message);
    assert.equal(cond(released.status, 'PodLabelled')?.reason, 'Unlabelled');
    assert.equal(cond(released.status, 'NetworkPolicyApplied')?.reason, 'Deleted');
    assert.equal((await readPod(ns, 'web-1'))?.metadata?.labels?.[QUARANTINE_LABEL], undefined);
    assert.equal((await readPod(ns, 'web-1'))?.metadata?.labels?.app, 'web');
    const left = await networking.listNamespacedNetworkPolicy({ namespace: ns });
    assert.equal(left.items.length, 0);
    assert.ok(op.stats.completed >= 2);
  });

  it('snapshots the pod object and its events into a verified bundle, never overwriting one', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('snapshot');
    const p = await pod(ns, 'db-0', NODE_A);
    await startOperator(NODE_A);
    await action(ns, 's1', { target: { namespace: ns, pod: 'db-0' }, action: 'Snapshot' }, onNode(NODE_A));
    const done = await waitFinal(ns, 's1');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
    const evidence = done.status?.evidence ?? [];
    assert.deepEqual(
      evidence.map((e) => e.kind),
      ['manifest', 'pod', 'events'],
    );
    const dir = join(evidenceRoot, NODE_A, ns, 's1');
    assert.deepEqual(await verifyBundle(dir), []);
    const manifestText = readFileSync(join(dir, 'manifest.json'), 'utf8');
    const manifest = JSON.parse(manifestText) as { pod: { uid: string }; notes: string[]; actionUid: string };
    assert.equal(manifest.pod.uid, p.metadata?.uid);
    assert.equal(manifest.actionUid, done.metadata.uid);
    assert.match(manifest.notes.join('\n'), /no process of this pod runs on node node-a/);
    const podJson = JSON.parse(readFileSync(fileURLToPath(evidence[1]?.uri ?? ''), 'utf8')) as k8s.V1Pod;
    assert.equal(podJson.metadata?.uid, p.metadata?.uid);
    assert.equal(podJson.spec?.nodeName, NODE_A);

    // Another action's leftover directory under this name is never replaced.
    mkdirSync(join(evidenceRoot, NODE_A, ns, 's2'), { recursive: true });
    writeFileSync(
      join(evidenceRoot, NODE_A, ns, 's2', 'manifest.json'),
      JSON.stringify({ actionUid: 'someone-else' }),
    );
    await action(ns, 's2', { target: { namespace: ns, pod: 'db-0' }, action: 'Snapshot' }, onNode(NODE_A));
    const refused = await waitFinal(ns, 's2');
    assert.equal(refused.status?.phase, 'Failed');
    assert.match(refused.status?.message ?? '', /already exists .* never overwritten/);
    assert.equal(
      readFileSync(join(evidenceRoot, NODE_A, ns, 's2', 'manifest.json'), 'utf8'),
      JSON.stringify({ actionUid: 'someone-else' }),
    );
  });

  it('TerminateGraceful snapshots then deletes with the grace period; Terminate deletes at once', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('terminate');
    await pod(ns, 'api-0', NODE_A);
    await pod(ns, 'api-1', NODE_A);
    await startOperator(NODE_A);
    await action(
      ns,
      'tg',
      { target: { namespace: ns, pod: 'api-0' }, action: 'TerminateGraceful', gracePeriodSeconds: 45 },
      onNode(NODE_A),
    );
    await action(ns, 'tk', { target: { namespace: ns, pod: 'api-1' }, action: 'Terminate' }, onNode(NODE_A));
    const graceful = await waitFinal(ns, 'tg');
    assert.equal(graceful.status?.phase, 'Succeeded', graceful.status?.message);
    assert.equal(cond(graceful.status, 'EvidenceCollected')?.status, 'True');
    assert.equal(cond(graceful.status, 'PodDeleted')?.reason, 'GracefulDeletion');
    // No kubelet confirms the deletion: the pod stays, marked for deletion with our grace period.
    const deleting = await readPod(ns, 'api-0');
    assert.ok(deleting?.metadata?.deletionTimestamp, 'pod marked for deletion');
    assert.equal(deleting?.metadata?.deletionGracePeriodSeconds, 45);
    assert.ok((graceful.status?.evidence ?? []).some((e) => e.kind === 'pod'));

    const killed = await waitFinal(ns, 'tk');
    assert.equal(killed.status?.phase, 'Succeeded', killed.status?.message);
    assert.equal(cond(killed.status, 'PodDeleted')?.reason, 'ForceDeleted');
    assert.equal(cond(killed.status, 'NodeKill')?.reason, 'NoLocalProcess');
    assert.equal(await readPod(ns, 'api-1'), undefined);
  });

  it('dry run records the plan and changes nothing', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('dryrun');
    await pod(ns, 'web-0', NODE_A);
    await startOperator(NODE_A);
    await action(
      ns,
      'dq',
      { target: { namespace: ns, pod: 'web-0' }, action: 'Quarantine', dryRun: true },
      onNode(NODE_A),
    );
    await action(
      ns,
      'dt',
      { target: { namespace: ns, pod: 'web-0' }, action: 'Terminate', dryRun: true },
      onNode(NODE_A),
    );
    for (const name of ['dq', 'dt']) {
      const done = await waitFinal(ns, name);
      assert.equal(done.status?.phase, 'Succeeded');
      assert.match(done.status?.message ?? '', /^dry run: would .*; nothing was changed$/);
      assert.equal(cond(done.status, 'DryRun')?.status, 'True');
      assert.deepEqual(
        (await eventsFor(ns, done.metadata.uid)).map((e) => e.reason),
        ['DryRun'],
      );
    }
    const p = await readPod(ns, 'web-0');
    assert.ok(p, 'pod still exists');
    assert.equal(p.metadata?.deletionTimestamp, undefined);
    assert.equal(p.metadata?.labels?.[QUARANTINE_LABEL], undefined);
    assert.equal((await networking.listNamespacedNetworkPolicy({ namespace: ns })).items.length, 0);
    assert.deepEqual(await eventsFor(ns, p.metadata?.uid ?? '', 0), []);
  });

  it('fails missing, replaced and cross-namespace targets with a clear message, and leaves other nodes’ pods alone', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('failures');
    const victimNs = await namespace('victim');
    const victim = await pod(victimNs, 'bank-0', NODE_A);
    const current = await pod(ns, 'web-0', NODE_A);
    await pod(ns, 'elsewhere', NODE_B);
    const op = await startOperator(NODE_A);
    const ignoredBefore = op.stats.ignored;
    await action(
      ns,
      'missing',
      { target: { namespace: ns, pod: 'nope' }, action: 'Quarantine' },
      onNode(NODE_A),
    );
    await action(
      ns,
      'replaced',
      {
        target: { namespace: ns, pod: 'web-0', uid: '00000000-0000-4000-8000-000000000000' },
        action: 'Terminate',
      },
      onNode(NODE_A),
    );
    // Attack: someone allowed to create actions in `failures` aims at a pod in `victim`.
    await action(
      ns,
      'cross',
      { target: { namespace: victimNs, pod: 'bank-0' }, action: 'Terminate' },
      onNode(NODE_A),
    );
    // Labelled for node-a, but the pod is bound to node-b: not ours.
    await action(
      ns,
      'other-node',
      { target: { namespace: ns, pod: 'elsewhere' }, action: 'Quarantine' },
      onNode(NODE_A),
    );

    const missing = await waitFinal(ns, 'missing');
    assert.equal(missing.status?.phase, 'Failed');
    assert.equal(
      missing.status?.message,
      'target pod failures/nope not found: already gone, or never existed',
    );
    const replaced = await waitFinal(ns, 'replaced');
    assert.equal(replaced.status?.phase, 'Failed');
    assert.match(replaced.status?.message ?? '', /has uid .*, not the requested 00000000-.*: replaced/);
    assert.ok(await readPod(ns, 'web-0'), 'the pod that merely shares the name is not deleted');
    assert.equal((await readPod(ns, 'web-0'))?.metadata?.uid, current.metadata?.uid);
    const cross = await waitFinal(ns, 'cross');
    assert.equal(cross.status?.phase, 'Failed');
    assert.match(
      cross.status?.message ?? '',
      /^refused: target namespace victim differs from the action's namespace failures/,
    );
    const stillThere = await readPod(victimNs, 'bank-0');
    assert.equal(stillThere?.metadata?.uid, victim.metadata?.uid);
    assert.equal(stillThere?.metadata?.deletionTimestamp, undefined);
    assert.deepEqual(
      (await eventsFor(ns, missing.metadata.uid)).map((e) => [e.type, e.reason]),
      [['Warning', 'Failed']],
    );

    await waitUntil(
      () => op.stats.ignored > ignoredBefore,
      { ms: 5000, every: 50 },
      'the other node’s action was seen and ignored',
    );
    assert.equal((await getAction(ns, 'other-node')).status, undefined);
    assert.equal((await readPod(ns, 'elsewhere'))?.metadata?.labels?.[QUARANTINE_LABEL], undefined);
  });

  it('labels unlabelled actions with the pod’s node: of two racing operators exactly one wins', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('race');
    // No head start for the pod's own node: both write at once, so the race really happens.
    const a = await startOperator(NODE_A, { adoptDelayMs: 0 });
    const b = await startOperator(NODE_B, { adoptDelayMs: 0 });
    const before = { labelled: a.stats.labelled + b.stats.labelled };
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      const node = i % 2 === 0 ? NODE_A : NODE_B;
      await pod(ns, `p${i}`, node);
      names.push(`u${i}`);
    }
    // Created together, unlabelled (as `kubectl create` would): both operators see each one.
    await Promise.all(
      names.map((n, i) =>
        action(ns, n, { target: { namespace: ns, pod: `p${i}` }, action: 'Quarantine' }, undefined),
      ),
    );
    for (const [i, n] of names.entries()) {
      const done = await waitFinal(ns, n);
      const node = i % 2 === 0 ? NODE_A : NODE_B;
      assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
      assert.equal(done.metadata.labels?.[NODE_LABEL], node);
      assert.equal(done.status?.node, node, 'carried out by the pod’s own node');
      assert.equal((await eventsFor(ns, done.metadata.uid)).length, 1, 'one completion, one Event');
    }
    assert.equal(
      a.stats.labelled + b.stats.labelled - before.labelled,
      names.length,
      'exactly one label write per action',
    );
    // Both saw every action and raced (same process, same broadcast): the losers got 409s.
    assert.ok(a.stats.labelConflicts + b.stats.labelConflicts >= 1, 'at least one real race was lost');

    // An unlabelled action whose pod does not exist: failed once, by whichever operator came first.
    await action(ns, 'orphan', { target: { namespace: ns, pod: 'ghost' }, action: 'Snapshot' }, undefined);
    const orphan = await waitFinal(ns, 'orphan');
    assert.equal(orphan.status?.phase, 'Failed');
    await sleep(300);
    assert.deepEqual(
      (await eventsFor(ns, orphan.metadata.uid)).map((e) => e.reason),
      ['Failed'],
    );

    // With the default head start, the pod's own node labels; the other only would if it did not.
    await stopOperator(a);
    await stopOperator(b);
    const a2 = await startOperator(NODE_A);
    const b2 = await startOperator(NODE_B);
    await Promise.all(
      [0, 1, 2, 3].map((i) =>
        action(ns, `d${i}`, { target: { namespace: ns, pod: `p${i}` }, action: 'Snapshot' }, undefined),
      ),
    );
    for (const i of [0, 1, 2, 3]) {
      const done = await waitFinal(ns, `d${i}`);
      assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
      assert.equal(done.metadata.labels?.[NODE_LABEL], i % 2 === 0 ? NODE_A : NODE_B);
    }
    assert.equal(a2.stats.labelled + b2.stats.labelled, 4, 'still exactly one label write per action');
  });

  it('relists when its watch starts from a too-old resourceVersion (410 Gone)', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('gone');
    await pod(ns, 'web-0', NODE_A);
    await action(
      ns,
      'before-start',
      { target: { namespace: ns, pod: 'web-0' }, action: 'Snapshot' },
      onNode(NODE_A),
    );
    // Served by etcd (no watch cache, see before()): once compacted, resourceVersion 1 is too old.
    await cp.compact();
    const seen: string[] = [];
    const watch = watchSecurityActions({
      kubeConfig: kc,
      labelSelector: `${NODE_LABEL}=${NODE_A}`,
      logger,
      resourceVersion: '1',
      onEvent: (type, a) => seen.push(`${type}:${a.metadata.name}`),
    });
    void watch.start();
    await poll(() => seen.includes('LISTED:before-start'), Boolean, { ms: 10_000, every: 50 });
    await watch.stop();
    assert.ok(watch.stats.gone >= 1, 'the server answered 410 Gone');
    assert.ok(watch.stats.lists >= 1, 'and the watch relisted');
    assert.ok(seen.includes('LISTED:before-start'), seen.join(','));

    // The operator started the same way still carries out what was created before it.
    const op = await startOperator(NODE_A, { watchResourceVersion: '1' });
    const done = await waitFinal(ns, 'before-start');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
    assert.ok((op.watchStats()[0]?.gone ?? 0) >= 1);
  });

  it('reconnects and relists after losing the API server, missing nothing created meanwhile', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('reconnect');
    await pod(ns, 'web-0', NODE_A);
    const relay = new Relay(new URL(cp.server));
    await relay.listen();
    const viaRelay = new k8s.KubeConfig();
    viaRelay.loadFromOptions({
      ...cp.kubeConfig,
      clusters: cp.kubeConfig.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${relay.port}` })),
    });
    const op = await startOperator(NODE_A, {}, viaRelay);
    const listsBefore = op.watchStats()[0]?.lists ?? 0;
    await relay.cut();
    await action(
      ns,
      'while-away',
      { target: { namespace: ns, pod: 'web-0' }, action: 'Quarantine' },
      onNode(NODE_A),
    );
    await sleep(400);
    assert.equal((await getAction(ns, 'while-away')).status, undefined, 'nothing can happen while cut off');
    await relay.restore();
    const done = await waitFinal(ns, 'while-away');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
    const stats = op.watchStats()[0];
    assert.ok((stats?.failures ?? 0) >= 1, 'the lost connection was noticed');
    assert.ok((stats?.lists ?? 0) > listsBefore, 'and followed by a relist');
    await stopOperator(op);
    await relay.cut();
  });

  it('retries a step that fails because the API server went away, and finishes the action', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('transient');
    await pod(ns, 'web-0', NODE_A);
    const relay = new Relay(new URL(cp.server));
    await relay.listen();
    const viaRelay = new k8s.KubeConfig();
    viaRelay.loadFromOptions({
      ...cp.kubeConfig,
      clusters: cp.kubeConfig.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${relay.port}` })),
    });
    let cut = false;
    await startOperator(
      NODE_A,
      {
        // Right after the label, the API server becomes unreachable for a moment.
        afterStep: async (_a, step) => {
          if (step !== 'PodLabelled' || cut) return;
          cut = true;
          await relay.cut();
          setTimeout(() => void relay.restore(), 600);
        },
      },
      viaRelay,
    );
    await action(ns, 'q', { target: { namespace: ns, pod: 'web-0' }, action: 'Quarantine' }, onNode(NODE_A));
    const done = await waitFinal(ns, 'q');
    assert.ok(cut, 'the connection was cut mid-action');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
    assert.equal(cond(done.status, 'PodLabelled')?.reason, 'AlreadyLabelled', 'resumed, not redone');
    assert.equal(cond(done.status, 'NetworkPolicyApplied')?.reason, 'Created');
    assert.equal((await networking.listNamespacedNetworkPolicy({ namespace: ns })).items.length, 1);
    await Promise.all(operators.splice(0).map((o) => o.stop()));
    await relay.cut();
  });

  it('finishes an action after being stopped mid-way, without repeating work, and never redoes a finished one', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('restart');
    const p = await pod(ns, 'web-0', NODE_A);
    let labelled!: () => void;
    const labelledNow = new Promise<void>((r) => (labelled = r));
    // The first operator "dies" right after labelling: its work never continues.
    const first = await startOperator(NODE_A, {
      afterStep: async (_a, step) => {
        if (step !== 'PodLabelled') return;
        labelled();
        await new Promise(() => undefined);
      },
    });
    await action(ns, 'q', { target: { namespace: ns, pod: 'web-0' }, action: 'Quarantine' }, onNode(NODE_A));
    await labelledNow;
    await stopOperator(first);
    const midway = await getAction(ns, 'q');
    assert.equal(midway.status?.phase, 'Running');
    assert.equal((await readPod(ns, 'web-0'))?.metadata?.labels?.[QUARANTINE_LABEL], p.metadata?.uid);
    assert.equal((await networking.listNamespacedNetworkPolicy({ namespace: ns })).items.length, 0);

    const second = await startOperator(NODE_A);
    const done = await waitFinal(ns, 'q');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
    assert.equal(done.status?.startedAt, midway.status?.startedAt, 'the same run, resumed');
    assert.equal(
      cond(done.status, 'PodLabelled')?.reason,
      'AlreadyLabelled',
      'the label was not applied twice',
    );
    assert.equal(cond(done.status, 'NetworkPolicyApplied')?.reason, 'Created');
    assert.equal((await networking.listNamespacedNetworkPolicy({ namespace: ns })).items.length, 1);
    assert.deepEqual(
      (await eventsFor(ns, p.metadata?.uid ?? '')).map((e) => e.reason),
      ['Quarantined'],
    );

    // Undo the effect by hand; a restarted operator must not redo a Succeeded action.
    await core.patchNamespacedPod(
      { namespace: ns, name: 'web-0', body: { metadata: { labels: { [QUARANTINE_LABEL]: null } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await stopOperator(second);
    const third = await startOperator(NODE_A);
    await sleep(500);
    await third.idle();
    assert.equal((await readPod(ns, 'web-0'))?.metadata?.labels?.[QUARANTINE_LABEL], undefined);
    assert.equal((await getAction(ns, 'q')).metadata.resourceVersion, done.metadata.resourceVersion);
    assert.equal(third.stats.completed + third.stats.failed, 0);
  });

  it('resumes a TerminateGraceful whose pod went away meanwhile: Succeeded, with the bundle written before', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('resume-gone');
    await pod(ns, 'web-0', NODE_A);
    let snapped!: () => void;
    const snappedNow = new Promise<void>((r) => (snapped = r));
    const first = await startOperator(NODE_A, {
      afterStep: async (_a, step) => {
        if (step !== 'EvidenceCollected') return;
        snapped();
        await new Promise(() => undefined);
      },
    });
    await action(
      ns,
      'tg',
      { target: { namespace: ns, pod: 'web-0' }, action: 'TerminateGraceful' },
      onNode(NODE_A),
    );
    await snappedNow;
    await stopOperator(first);
    // Someone else deletes the pod before a new operator starts.
    await core.deleteNamespacedPod({ namespace: ns, name: 'web-0', gracePeriodSeconds: 0 });
    // A new pod of the same name is not the one this action started on: it must survive.
    const replacement = await pod(ns, 'web-0', NODE_A);
    await startOperator(NODE_A);
    const done = await waitFinal(ns, 'tg');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
    assert.match(done.status?.message ?? '', /is gone: deleted before this operator resumed/);
    assert.equal(cond(done.status, 'EvidenceCollected')?.reason, 'AlreadyCollected');
    assert.deepEqual(
      (done.status?.evidence ?? []).map((e) => e.kind),
      ['manifest', 'pod', 'events'],
    );
    const survivor = await readPod(ns, 'web-0');
    assert.equal(survivor?.metadata?.uid, replacement.metadata?.uid);
    assert.equal(survivor?.metadata?.deletionTimestamp, undefined);
  });

  it('needs no more than the chart’s operator RBAC, run as its ServiceAccount through impersonation', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const sa = 'system:serviceaccount:containment-system:containment-operator';
    await rbac.createClusterRole({
      body: {
        metadata: { name: 'containment-operator-test' },
        rules: [
          { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'delete', 'patch'] },
          {
            apiGroups: ['networking.k8s.io'],
            resources: ['networkpolicies'],
            verbs: ['get', 'create', 'delete'],
          },
          {
            apiGroups: [GROUP],
            resources: ['securityactions'],
            verbs: ['get', 'list', 'watch', 'update', 'patch'],
          },
          { apiGroups: [GROUP], resources: ['securityactions/status'], verbs: ['get', 'update', 'patch'] },
          // `list`: the chart grants it so that a Snapshot can keep the pod's recent events.
          { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch', 'list'] },
        ],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'containment-operator-test' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'containment-operator-test',
        },
        subjects: [{ kind: 'ServiceAccount', name: 'containment-operator', namespace: 'containment-system' }],
      },
    });
    const dir = mkdtempSync(join(tmpdir(), 'containment-operator-kubeconfig-'));
    const file = join(dir, 'operator.kubeconfig');
    const admin = JSON.parse(readFileSync(cp.kubeconfigPath, 'utf8')) as {
      users: { user: Record<string, string> }[];
    };
    for (const u of admin.users) u.user.as = sa;
    writeFileSync(file, JSON.stringify(admin), { mode: 0o600 });
    const asOperator = new k8s.KubeConfig();
    asOperator.loadFromFile(file);
    rmSync(dir, { recursive: true, force: true });
    // The impersonated identity really is limited: it may not list secrets.
    const probe = asOperator.makeApiClient(k8s.CoreV1Api);
    await assert.rejects(
      probe.listNamespacedSecret({ namespace: 'default' }),
      (e: { code?: number }) => e.code === 403,
    );
    // RBAC bindings reach the authorizer through a watch: wait until ours applies.
    const customAs = asOperator.makeApiClient(k8s.CustomObjectsApi);
    await poll(
      () =>
        customAs.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, limit: 1 }).then(
          () => true,
          () => false,
        ),
      Boolean,
      { ms: 5000, every: 100 },
    );

    const ns = await namespace('rbac');
    for (let i = 0; i < 5; i++) await pod(ns, `p${i}`, NODE_A);
    const op = await startOperator(NODE_A, {}, asOperator);
    const kinds = ['Quarantine', 'Snapshot', 'TerminateGraceful', 'Terminate'];
    for (const [i, kind] of kinds.entries()) {
      // Unlabelled, so the operator's own labelling is exercised too.
      await action(
        ns,
        `rb-${i}`,
        { target: { namespace: ns, pod: `p${i}` }, action: kind, gracePeriodSeconds: 5 },
        undefined,
      );
    }
    await action(
      ns,
      'rb-release',
      { target: { namespace: ns, pod: 'p4' }, action: 'Release' },
      onNode(NODE_A),
    );
    for (const name of [...kinds.map((_, i) => `rb-${i}`), 'rb-release']) {
      const done = await waitFinal(ns, name);
      assert.equal(done.status?.phase, 'Succeeded', `${name}: ${done.status?.message}`);
      assert.ok(
        (await eventsFor(ns, done.metadata.uid)).length >= 1,
        `${name}: Event recorded as the operator`,
      );
    }
    const snap = await getAction(ns, 'rb-1');
    assert.deepEqual(
      (snap.status?.evidence ?? []).map((e) => e.kind),
      ['manifest', 'pod', 'events'],
    );
    assert.equal(op.stats.failed, 0);

    // Without `list` on events, a Snapshot still succeeds and its bundle says what is missing.
    await rbac.patchClusterRole(
      {
        name: 'containment-operator-test',
        body: [{ op: 'replace', path: '/rules/4/verbs', value: ['create', 'patch'] }],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    const eventsApi = asOperator.makeApiClient(k8s.CoreV1Api);
    await poll(
      () =>
        eventsApi.listNamespacedEvent({ namespace: ns, limit: 1 }).then(
          () => false,
          () => true,
        ),
      Boolean,
      { ms: 5000, every: 100 },
    );
    await action(
      ns,
      'rb-noevents',
      { target: { namespace: ns, pod: 'p4' }, action: 'Snapshot' },
      onNode(NODE_A),
    );
    const noEvents = await waitFinal(ns, 'rb-noevents');
    assert.equal(noEvents.status?.phase, 'Succeeded', noEvents.status?.message);
    assert.match(
      cond(noEvents.status, 'EvidenceCollected')?.message ?? '',
      /events not collected: forbidden/,
    );
  });
  it('applies and lifts nftables isolation in the netns of a real pod container on this node, and kills it on Terminate', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const why =
      podmanPodAvailable() ?? (hasCommand('nft') && hasCommand('nsenter') ? undefined : 'nft and nsenter');
    if (!requireOrSkip(t, why === undefined, `${why ?? ''} (real pod containers for node-level enforcement)`))
      return;
    const ns = await namespace('node-level');
    const p = await pod(ns, 'shell-0', NODE_A);
    const uid = p.metadata?.uid ?? '';
    const image = buildPodTestImage();
    // A Podman container in the kubelet's cgroup for this pod UID: /proc shows it as the pod's.
    const container = runPodContainer(image, uid);
    // The kubelet's log directory of this pod (no kubelet runs here: a fixture).
    const podLogsDir = join(evidenceRoot, 'pod-logs');
    mkdirSync(join(podLogsDir, `${ns}_shell-0_${uid}`, 'app'), { recursive: true });
    writeFileSync(join(podLogsDir, `${ns}_shell-0_${uid}`, 'app', '0.log'), 'started\n');
    try {
      await startOperator(NODE_A, { podLogsDir }, kc, true);
      const ref = { pid: container.pid, containerId: container.id };
      await action(
        ns,
        'nq',
        { target: { namespace: ns, pod: 'shell-0' }, action: 'Quarantine' },
        onNode(NODE_A),
      );
      const q = await waitFinal(ns, 'nq');
      assert.equal(q.status?.phase, 'Succeeded', q.status?.message);
      assert.equal(cond(q.status, 'NodeIsolation')?.status, 'True', JSON.stringify(q.status));
      assert.equal(cond(q.status, 'NodeIsolation')?.reason, 'NftablesApplied');
      assert.equal(await isQuarantined(ref), true);

      await action(
        ns,
        'ns',
        { target: { namespace: ns, pod: 'shell-0' }, action: 'Snapshot' },
        onNode(NODE_A),
      );
      const s = await waitFinal(ns, 'ns');
      assert.equal(s.status?.phase, 'Succeeded', s.status?.message);
      const kinds = (s.status?.evidence ?? []).map((e) => e.kind);
      assert.deepEqual(kinds, [
        'manifest',
        'pod',
        'events',
        'processes',
        'sockets',
        'filesystem-changes',
        'logs',
      ]);
      assert.deepEqual(await verifyBundle(join(evidenceRoot, NODE_A, ns, 'ns')), []);
      assert.equal(
        readFileSync(join(evidenceRoot, NODE_A, ns, 'ns', 'logs', 'app', '0.log'), 'utf8'),
        'started\n',
      );
      const processes = JSON.parse(
        readFileSync(
          join(evidenceRoot, NODE_A, ns, 'ns', 'containers', container.id, 'processes.json'),
          'utf8',
        ),
      ) as { pid: number; cmdline: string[] }[];
      assert.ok(
        processes.some((x) => x.pid === container.pid && x.cmdline.includes('sleep')),
        JSON.stringify(processes),
      );

      await action(
        ns,
        'nr',
        { target: { namespace: ns, pod: 'shell-0' }, action: 'Release' },
        onNode(NODE_A),
      );
      const r = await waitFinal(ns, 'nr');
      assert.equal(r.status?.phase, 'Succeeded', r.status?.message);
      assert.equal(cond(r.status, 'NodeIsolation')?.reason, 'Released');
      assert.equal(await isQuarantined(ref), false);

      await action(
        ns,
        'nt',
        { target: { namespace: ns, pod: 'shell-0' }, action: 'Terminate' },
        onNode(NODE_A),
      );
      const k = await waitFinal(ns, 'nt');
      assert.equal(k.status?.phase, 'Succeeded', k.status?.message);
      assert.equal(cond(k.status, 'NodeKill')?.reason, 'Killed');
      assert.equal(await readPod(ns, 'shell-0'), undefined);
      const state = run('podman', ['inspect', '--format', '{{.State.Running}}', container.name]);
      assert.equal(state.stdout.trim(), 'false', 'the container process was killed');
    } finally {
      container.remove();
      image.remove();
    }
  });
  it('runs as the `containment operator` process: NODE_NAME, a kubeconfig file, a clean stop on SIGTERM', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = await namespace('cli');
    await pod(ns, 'web-0', 'node-c');
    const child = spawn(
      process.execPath,
      [
        join(repoRoot, 'bin', 'containment.js'),
        'operator',
        '--kubeconfig',
        cp.kubeconfigPath,
        '--evidence-dir',
        join(evidenceRoot, 'cli'),
      ],
      {
        env: { ...process.env, NODE_NAME: 'node-c', CONTAINMENT_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(
        () => stderr,
        (s) => s.includes('operator started'),
        'operator started',
        {
          ms: 30_000,
          every: 50,
        },
      );
      await action(
        ns,
        'cli-snap',
        { target: { namespace: ns, pod: 'web-0' }, action: 'Snapshot' },
        undefined,
      );
      const done = await waitFinal(ns, 'cli-snap');
      assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
      assert.equal(done.status?.node, 'node-c');
      assert.equal(done.metadata.labels?.[NODE_LABEL], 'node-c');
      assert.deepEqual(await verifyBundle(join(evidenceRoot, 'cli', ns, 'cli-snap')), []);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /operator stopped/);
  });
});
