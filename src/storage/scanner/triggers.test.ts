import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { NotFoundError } from '../../errors.js';
import { PostgresScannerStore } from './postgres-scanner-store.js';
import type { ScannerStore } from '../../scanner/scanner-store.js';
import { SqliteScannerStore } from './sqlite-scanner-store.js';
import { requireOrSkip } from '../../testing/shared-data.js';
import { testEngines } from '../engines.test-helper.js';

const { engines, cleanup } = await testEngines('triggers');
after(cleanup);

for (const engine of engines) {
  describe(`trigger store (${engine.name})`, () => {
    const need = (t: TestContext): boolean => requireOrSkip(t, engine.available, engine.what);
    const at = Date.parse('2025-03-01T12:00:00.250Z');
    const open = async (): Promise<ScannerStore> => {
      const c = await (await engine.database()).connect();
      return c.engine === 'sqlite'
        ? await SqliteScannerStore.open(c.sqlite, { now: () => at })
        : PostgresScannerStore.open(c.pool, { now: () => at });
    };

    test('round-trips every field, for all namespaces and for a list', async (t) => {
      if (!need(t)) return;
      const store = await open();
      await store.createCluster('prod');
      const all = await store.createTrigger({
        cluster: 'prod',
        namespaces: '*',
        url: 'https://hooks.example/all',
        kind: 'openwhisk',
        secret: 's1',
        auth: 'uuid:key',
        everyScan: true,
      });
      const some = await store.createTrigger({
        cluster: 'prod',
        namespaces: ['a', 'b'],
        url: 'https://hooks.example/some',
        kind: 'cloudevents',
        secret: 's2',
        everyScan: false,
      });
      assert.equal(all.createdAt, '2025-03-01T12:00:00.250Z');
      assert.deepEqual(await store.getTrigger(all.id), all);
      assert.deepEqual(await store.getTrigger(some.id), some);
      assert.deepEqual((await store.listTriggers()).map((tr) => tr.id).sort(), [all.id, some.id].sort());
      assert.deepEqual(await store.triggerTarget(all.id), {
        kind: 'openwhisk',
        url: 'https://hooks.example/all',
        secret: 's1',
        auth: 'uuid:key',
      });
      assert.deepEqual(await store.triggerTarget(some.id), {
        kind: 'cloudevents',
        url: 'https://hooks.example/some',
        secret: 's2',
      });
      assert.equal(await store.deleteTrigger(some.id), true);
      assert.equal(await store.deleteTrigger(some.id), false);
      assert.equal(await store.triggerTarget(some.id), undefined);
      await store.close();
    });

    test('an unregistered cluster is a NotFoundError with CLUSTER_NOT_FOUND; nothing is written', async (t) => {
      if (!need(t)) return;
      const store = await open();
      await assert.rejects(
        store.createTrigger({
          cluster: 'nowhere',
          namespaces: '*',
          url: 'https://hooks.example/',
          kind: 'cloudevents',
          secret: 's',
          everyScan: false,
        }),
        (e: unknown) => e instanceof NotFoundError && e.code === 'CLUSTER_NOT_FOUND',
      );
      assert.deepEqual(await store.listTriggers(), []);
      await store.close();
    });
  });
}
