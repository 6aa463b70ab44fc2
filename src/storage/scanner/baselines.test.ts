import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { ConflictError, NotFoundError } from '../../errors.js';
import type { Baseline } from '../../runtime/contracts.js';
import { PostgresScannerStore } from './postgres-scanner-store.js';
import type { ScannerStore } from '../../scanner/scanner-store.js';
import { SqliteScannerStore } from './sqlite-scanner-store.js';
import { requireOrSkip } from '../../testing/shared-data.js';
import { testEngines } from '../engines.test-helper.js';
import type { Connection } from '../engines.test-helper.js';
import { BaselineStore } from './baselines.js';

const { engines, cleanup } = await testEngines('baselines');
after(cleanup);

const DIGEST = 'sha256:' + 'ab'.repeat(32);

function learned(items: Partial<Baseline> = {}): Baseline {
  return {
    image: DIGEST,
    state: 'learning',
    learningStartedAt: 1000,
    eventsLearned: 2,
    executables: ['/usr/sbin/nginx'],
    listeners: ['tcp:80'],
    outbound: [],
    ...items,
  };
}

for (const engine of engines) {
  describe(`baseline store (${engine.name})`, () => {
    const need = (t: TestContext): boolean => requireOrSkip(t, engine.available, engine.what);
    let clock = Date.parse('2026-03-01T12:00:00.000Z');
    const openStore = async (c: Connection): Promise<ScannerStore> =>
      c.engine === 'sqlite' ? SqliteScannerStore.open(c.sqlite) : PostgresScannerStore.open(c.pool);
    const open = async (): Promise<{
      baselines: BaselineStore;
      store: ScannerStore;
      connect: () => Promise<BaselineStore>;
    }> => {
      const database = await engine.database();
      const c = await database.connect();
      const store = await openStore(c);
      await store.createCluster('prod');
      await store.createCluster('staging');
      return {
        store,
        baselines: new BaselineStore(c.db, () => clock),
        // Another process (SQLite) or replica (PostgreSQL) on the same database.
        connect: async () => new BaselineStore((await database.connect()).db, () => clock),
      };
    };

    test('agents push, items join while learning, the state only moves forward; clusters are apart', async (t) => {
      if (!need(t)) return;
      const { baselines } = await open();
      const first = await baselines.sync('prod', [
        { baseline: learned(), generation: 0, imageRef: 'nginx:1.27' },
      ]);
      assert.deepEqual(first, [
        {
          ...learned(),
          cluster: 'prod',
          imageRef: 'nginx:1.27',
          generation: 0,
          revision: 1,
          updatedAt: '2026-03-01T12:00:00.000Z',
        },
      ]);
      // A second node learned more, and started learning earlier.
      const second = learned({
        learningStartedAt: 500,
        eventsLearned: 5,
        executables: ['/usr/sbin/nginx', '/bin/sh'],
        outbound: ['10.0.0.5:443'],
      });
      const [joined] = await baselines.sync('prod', [{ baseline: second, generation: 0 }]);
      assert.equal(joined?.state, 'learning');
      assert.equal(joined?.learningStartedAt, 500);
      assert.equal(joined?.eventsLearned, 5);
      assert.deepEqual(joined?.executables, ['/usr/sbin/nginx', '/bin/sh']);
      assert.deepEqual(joined?.outbound, ['10.0.0.5:443']);
      assert.equal(joined?.imageRef, 'nginx:1.27', 'kept');
      assert.equal(joined?.revision, 2);
      // Unchanged: no write.
      assert.equal((await baselines.sync('prod', [{ baseline: second, generation: 0 }]))[0]?.revision, 2);
      // Learning ended on one node: monitor; a later push still learning neither reverts nor grows it.
      await baselines.sync('prod', [{ baseline: { ...second, state: 'monitor' }, generation: 0 }]);
      const [monitored] = await baselines.sync('prod', [
        { baseline: learned({ executables: ['/usr/bin/curl'] }), generation: 0 },
      ]);
      assert.equal(monitored?.state, 'monitor');
      assert.deepEqual(monitored?.executables, ['/usr/sbin/nginx', '/bin/sh']);
      assert.deepEqual(await baselines.list('staging'), []);
      assert.deepEqual(await baselines.sync('staging', []), []);
    });

    test('lock and reset are operator changes: a push based on the old generation cannot undo them', async (t) => {
      if (!need(t)) return;
      const { baselines } = await open();
      await baselines.sync('prod', [{ baseline: learned(), generation: 0, imageRef: 'nginx:1.27' }]);
      // Named by its reference, as users know it.
      const locked = await baselines.lock('prod', 'nginx:1.27');
      assert.equal(locked.state, 'protect');
      assert.equal(locked.generation, 1);
      assert.equal(locked.image, DIGEST);
      // An agent that has not seen the lock yet pushes learning with a new item: ignored.
      const [after] = await baselines.sync('prod', [
        { baseline: learned({ executables: ['/bin/sh'] }), generation: 0 },
      ]);
      assert.equal(after?.state, 'protect');
      assert.deepEqual(after?.executables, ['/usr/sbin/nginx']);
      assert.equal(after?.revision, locked.revision);
      assert.equal((await baselines.lock('prod', DIGEST, 'monitor')).state, 'monitor');

      clock += 60_000;
      const reset = await baselines.reset('prod', DIGEST);
      assert.deepEqual(
        { ...reset, updatedAt: undefined, revision: undefined },
        {
          image: DIGEST,
          cluster: 'prod',
          imageRef: 'nginx:1.27',
          state: 'learning',
          learningStartedAt: clock,
          eventsLearned: 0,
          executables: [],
          listeners: [],
          outbound: [],
          generation: 3,
          updatedAt: undefined,
          revision: undefined,
        },
      );
      // Once the agent has taken generation 3, it learns into the emptied baseline again.
      const [relearned] = await baselines.sync('prod', [
        { baseline: learned({ learningStartedAt: clock, executables: ['/bin/sh'] }), generation: 3 },
      ]);
      assert.deepEqual(relearned?.executables, ['/bin/sh']);
      assert.deepEqual(await baselines.list('prod', 'nginx:1.27'), [relearned]);
      assert.deepEqual(await baselines.list('prod', 'other:1'), []);
    });

    test('unknown cluster and unknown image are NotFoundErrors with stable codes; nothing is written', async (t) => {
      if (!need(t)) return;
      const { baselines } = await open();
      await assert.rejects(
        baselines.sync('nowhere', [{ baseline: learned(), generation: 0 }]),
        (e: unknown) => e instanceof NotFoundError && e.code === 'CLUSTER_NOT_FOUND',
      );
      await assert.rejects(
        baselines.lock('prod', 'nginx:1.27'),
        (e: unknown) => e instanceof NotFoundError && e.code === 'BASELINE_NOT_FOUND',
      );
      await assert.rejects(
        baselines.reset('nowhere', DIGEST),
        (e: unknown) => e instanceof NotFoundError && e.code === 'CLUSTER_NOT_FOUND',
      );
      assert.deepEqual(await baselines.list('prod'), []);
      assert.ok(!(new NotFoundError('BASELINE_NOT_FOUND', 'x') instanceof ConflictError));
    });

    test('concurrent pushes from two connections all land (compare-and-swap on the revision)', async (t) => {
      if (!need(t)) return;
      const { baselines, connect } = await open();
      const other = await connect();
      const pushes = Array.from({ length: 12 }, (_, i) =>
        (i % 2 === 0 ? baselines : other).sync('prod', [
          { baseline: learned({ executables: [`/bin/tool-${i}`] }), generation: 0 },
        ]),
      );
      await Promise.all(pushes);
      const [stored] = await baselines.list('prod');
      assert.deepEqual(
        [...(stored?.executables ?? [])].sort(),
        Array.from({ length: 12 }, (_, i) => `/bin/tool-${i}`).sort(),
      );
    });

    test('removing the cluster removes its baselines', async (t) => {
      if (!need(t)) return;
      const { baselines, store } = await open();
      await baselines.sync('prod', [{ baseline: learned(), generation: 0 }]);
      await store.deleteCluster('prod');
      await store.createCluster('prod');
      assert.deepEqual(await baselines.list('prod'), []);
    });
  });
}
