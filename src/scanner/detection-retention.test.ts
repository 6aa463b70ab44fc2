/** Detection retention on both engines: old aggregates go, recent ones and other tables stay. */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { RuntimeDetection } from '../runtime/contracts.js';
import { testEngines } from '../storage/engines.test-helper.js';
import { requireOrSkip } from '../testing/shared-data.js';
import { DetectionRetention, parseRetention } from './detection-retention.js';
import { PostgresScannerStore } from '../storage/scanner/postgres-scanner-store.js';
import type { ScannerStore } from './scanner-store.js';
import { SqliteScannerStore } from '../storage/scanner/sqlite-scanner-store.js';

const { engines, cleanup } = await testEngines('retention');
after(cleanup);

const DAY = 86_400_000;
const NOW = Date.parse('2026-06-30T00:00:00.000Z');

function seen(namespace: string, lastSeen: number): RuntimeDetection {
  const at = new Date(lastSeen).toISOString();
  return {
    workload: { cluster: 'c1', namespace, pod: 'p', node: 'n', image: 'app:1', containerId: 'a'.repeat(64) },
    ruleId: 'shell_in_container',
    kind: 'process',
    severity: 'HIGH',
    title: 'shell',
    detectedAt: at,
    process: { pid: 1, uid: 0, name: 'sh', argv: ['sh'] },
    evidence: {},
    baseline: { state: 'none' },
    count: 1,
    firstSeen: at,
    lastSeen: at,
    fingerprint: `fp-${namespace}`,
    source: 'ebpf',
  };
}

for (const engine of engines) {
  describe(`detection retention (${engine.name})`, () => {
    const need = (t: TestContext): boolean => requireOrSkip(t, engine.available, engine.what);
    const open = async (): Promise<ScannerStore> => {
      const c = await (await engine.database()).connect();
      const store =
        c.engine === 'sqlite'
          ? await SqliteScannerStore.open(c.sqlite)
          : await PostgresScannerStore.open(c.pool);
      await store.createCluster('c1');
      return store;
    };
    const namespaces = async (store: ScannerStore): Promise<string[]> =>
      (await store.detections.list({ cluster: 'c1', namespaces: '*' }, {}, { limit: 100, offset: 0 }))
        .map((d) => d.workload.namespace)
        .sort();

    test('deletes aggregates last seen before now − retention, keeps the rest', async (t) => {
      if (!need(t)) return;
      const store = await open();
      await store.detections.record([
        seen('old', NOW - 31 * DAY),
        seen('edge', NOW - 30 * DAY),
        seen('recent', NOW - 2 * DAY),
      ]);
      const pruned: number[] = [];
      const retention = new DetectionRetention({
        detections: store.detections,
        retentionMs: 30 * DAY,
        now: () => NOW,
        onPruned: (n) => pruned.push(n),
      });
      assert.equal(await retention.runOnce(), 1);
      assert.deepEqual(pruned, [1]);
      assert.deepEqual(await namespaces(store), ['edge', 'recent']);
      // A repeat of an old aggregate seen again is recent again and stays.
      await store.detections.record([
        { ...seen('edge', NOW - 30 * DAY), lastSeen: new Date(NOW).toISOString() },
      ]);
      assert.equal(
        await new DetectionRetention({
          detections: store.detections,
          retentionMs: DAY,
          now: () => NOW,
        }).runOnce(),
        1,
      );
      assert.deepEqual(await namespaces(store), ['edge']);
    });

    test('retention 0 keeps everything; a failing prune is reported, not thrown', async (t) => {
      if (!need(t)) return;
      const store = await open();
      await store.detections.record([seen('ancient', NOW - 3650 * DAY)]);
      const keep = new DetectionRetention({ detections: store.detections, retentionMs: 0, now: () => NOW });
      keep.start();
      await keep.stop();
      assert.deepEqual(await namespaces(store), ['ancient']);
      const errors: unknown[] = [];
      const failing = new DetectionRetention({
        detections: { prune: () => Promise.reject(new Error('database gone')) },
        retentionMs: DAY,
        onError: (e) => errors.push(e),
      });
      assert.equal(await failing.runOnce(), 0);
      assert.equal((errors[0] as Error).message, 'database gone');
    });
  });
}

test('retention syntax', () => {
  assert.equal(parseRetention('30d'), 30 * DAY);
  assert.equal(parseRetention('12h'), DAY / 2);
  assert.equal(parseRetention('90m'), 90 * 60_000);
  assert.equal(parseRetention('0'), 0);
  assert.equal(parseRetention('off'), 0);
  for (const bad of ['', '30', '5x', '-1d', '0m', '3651d', '1.5d', '30 d'])
    assert.equal(parseRetention(bad), undefined, bad);
});
