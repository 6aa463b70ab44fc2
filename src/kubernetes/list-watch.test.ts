/**
 * The shared list-watch against a real kube-apiserver: events in order, a relist after a too-old
 * resourceVersion (410 Gone), a relist after the connection is cut that reports what was created
 * and deleted meanwhile, and stopping on the first failure when asked to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { binariesWhat, findBinaries } from '../testing/k8s/binaries.js';
import { startControlPlane } from '../testing/k8s/control-plane.js';
import type { ControlPlane } from '../testing/k8s/control-plane.js';
import { Relay } from '../testing/k8s/tcp-relay.js';
import { requireOrSkip } from '../testing/shared-data.js';
import type { ListWatchEventType, ListWatchOptions } from './list-watch.js';
import { ListWatcher } from './list-watch.js';
import { waitUntil } from '../testing/wait.js';

const binaries = findBinaries();
const quiet = { info: () => undefined, warn: () => undefined };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let cp: ControlPlane | undefined;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;

/** The watch's events arrive in-process: a short poll interval. */
const until = (what: string, ok: () => boolean): Promise<void> =>
  waitUntil(ok, { ms: 20_000, every: 50 }, what);

function podWatcher(
  kubeConfig: k8s.KubeConfig,
  namespace: string,
  seen: string[],
  extra: Partial<ListWatchOptions<k8s.V1Pod>> = {},
): ListWatcher<k8s.V1Pod> {
  const api = kubeConfig.makeApiClient(k8s.CoreV1Api);
  return new ListWatcher<k8s.V1Pod>({
    kubeConfig,
    path: `/api/v1/namespaces/${namespace}/pods`,
    listPage: ({ limit, continue: cont }) =>
      api.listNamespacedPod({ namespace, limit, ...(cont === undefined ? {} : { _continue: cont }) }),
    onEvent: (type: ListWatchEventType, pod) => seen.push(`${type}:${pod.metadata?.name ?? ''}`),
    logger: quiet,
    pageSize: 2,
    minBackoffMs: 50,
    maxBackoffMs: 200,
    ...extra,
  });
}

async function makePod(namespace: string, name: string): Promise<void> {
  await core.createNamespacedPod({
    namespace,
    body: { metadata: { name }, spec: { containers: [{ name: 'app', image: 'registry.invalid/x:1' }] } },
  });
}

describe('ListWatcher (real kube-apiserver)', () => {
  before(async () => {
    if (!binaries) return;
    cp = await startControlPlane({ binaries, name: 'list-watch-test', watchCache: false });
    kc = new k8s.KubeConfig();
    kc.loadFromOptions(cp.kubeConfig);
    core = kc.makeApiClient(k8s.CoreV1Api);
  });
  after(async () => {
    await cp?.stop();
  });

  it('lists in pages, then reports additions, changes and deletions', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = 'events';
    await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const name of ['a', 'b', 'c']) await makePod(ns, name);
    const seen: string[] = [];
    const w = podWatcher(kc, ns, seen);
    await w.start();
    assert.deepEqual([...seen].sort(), ['LISTED:a', 'LISTED:b', 'LISTED:c'], 'three pages of one list');
    await makePod(ns, 'd');
    await core.patchNamespacedPod(
      { namespace: ns, name: 'a', body: { metadata: { labels: { x: '1' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await core.deleteNamespacedPod({ namespace: ns, name: 'b', gracePeriodSeconds: 0 });
    await until('the watch events', () => seen.includes('DELETED:b'));
    // kube-apiserver 1.36 first sets deletionTimestamp on the pod (MODIFIED), then removes it.
    const events = seen.slice(3);
    const marked = events.indexOf('MODIFIED:b');
    if (marked !== -1) assert.equal(events[marked + 1], 'DELETED:b', events.join(','));
    assert.deepEqual(
      events.filter((e) => e !== 'MODIFIED:b'),
      ['ADDED:d', 'MODIFIED:a', 'DELETED:b'],
    );
    assert.equal(w.stats.lists, 1);
    await w.stop();
  });

  it('relists when it starts from a too-old resourceVersion (410 Gone)', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = 'gone';
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await makePod(ns, 'old');
    // Served by etcd (no watch cache, see before()): once compacted, resourceVersion 1 is too old.
    await cp.compact();
    const seen: string[] = [];
    const w = podWatcher(kc, ns, seen, { resourceVersion: '1' });
    await w.start();
    await until('the relist', () => seen.includes('LISTED:old'));
    assert.ok(w.stats.gone >= 1, 'the server answered 410 Gone');
    assert.equal(w.stats.lists, 1);
    assert.equal(w.stats.failures, 0, 'a 410 is no failure');
    await w.stop();
  });

  it('after a cut connection it relists and reports what was created and deleted meanwhile', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const ns = 'cut';
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await makePod(ns, 'stays');
    await makePod(ns, 'goes');
    const relay = new Relay(new URL(cp.server));
    await relay.listen();
    const viaRelay = new k8s.KubeConfig();
    viaRelay.loadFromOptions({
      ...cp.kubeConfig,
      clusters: cp.kubeConfig.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${relay.port}` })),
    });
    const seen: string[] = [];
    const w = podWatcher(viaRelay, ns, seen);
    try {
      await w.start();
      await relay.cut();
      await makePod(ns, 'new');
      await core.deleteNamespacedPod({ namespace: ns, name: 'goes', gracePeriodSeconds: 0 });
      await sleep(300);
      assert.ok(!seen.some((s) => s.endsWith(':new')), 'nothing arrives while cut off');
      await relay.restore();
      await until(
        'the relist after the cut',
        () => seen.includes('LISTED:new') && seen.includes('DELETED:goes'),
      );
      assert.ok(w.stats.failures >= 1, 'the lost connection was noticed');
      assert.ok(w.stats.lists >= 2, 'and followed by a relist');
      assert.deepEqual(
        w
          .list()
          .map((p) => p.metadata?.name)
          .sort(),
        ['new', 'stays'],
      );
    } finally {
      await w.stop();
      await relay.cut();
    }
  });

  it('with stopOnError before-sync, a failing first list rejects start() and is not retried', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const relay = new Relay(new URL(cp.server));
    await relay.listen();
    await relay.cut();
    const nowhere = new k8s.KubeConfig();
    nowhere.loadFromOptions({
      ...cp.kubeConfig,
      clusters: cp.kubeConfig.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${relay.port}` })),
    });
    const w = podWatcher(nowhere, 'default', [], { stopOnError: 'before-sync' });
    await assert.rejects(w.start());
    await sleep(400);
    assert.equal(w.stats.failures, 1, 'no retry after the refusal');
    assert.equal(w.stats.lists, 0);
    await w.stop();
  });
});
