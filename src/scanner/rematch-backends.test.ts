/**
 * `rematchAdvisories` on both stores (SQLite writes re-matches in batched transactions,
 * PostgreSQL one by one): only the workload holding the changed package is re-matched, its
 * findings then include the new advisory and keep the untouched packages' ones, and a second run
 * finds nothing to change.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sharedDataDir } from '../testing/shared-data.js';
import { rematchAdvisories } from './rematch.js';
import { describeEachBackend, npmReport, startHarness } from './scanner-harness.test-helper.js';
import type { BackendHarness } from './scanner-harness.test-helper.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const ID = 'TEST-REMATCH-BACKENDS-0001';

let h: BackendHarness;

describeEachBackend('re-match on each store', { skip: !existsSync(osvNpm) }, (backend) => {
  before(async () => {
    h = await startHarness(osvNpm, { backend: backend.name });
  });
  after(async () => {
    await h?.close();
  });

  test('only the workload with the changed package is re-matched, once', async () => {
    const agent = (
      await h.app.inject({
        method: 'POST',
        url: '/v1/clusters',
        headers: { authorization: `Bearer ${h.adminToken}` },
        payload: { name: 'c' },
      })
    ).json() as { agentToken: string };
    for (const [pod, packages] of [
      [
        'pad',
        [
          ['left-pad', '1.0.0'],
          ['minimist', '1.2.5'],
        ],
      ],
      ['other', [['lodash', '4.17.21']]],
    ] as const) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/reports',
        headers: { authorization: `Bearer ${agent.agentToken}` },
        payload: npmReport('c', 'ns', pod, packages),
      });
      assert.equal(res.statusCode, 201, res.body);
    }
    await h.advisories.importRecords([
      {
        origin: 'test',
        record: {
          schema_version: '1.6.0',
          id: ID,
          modified: '2025-06-01T00:00:00Z',
          summary: 'Test fixture: made-up advisory for left-pad',
          affected: [
            {
              package: { ecosystem: 'npm', name: 'left-pad' },
              ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.3.1' }] }],
            },
          ],
        },
      },
    ]);
    const deps = { store: h.store, advisories: h.advisories, onEvents: () => {} };
    const report = await rematchAdvisories(deps, [ID]);
    assert.deepEqual(report, { advisories: 1, candidates: 1, rematched: 1, events: 0 });
    const findings = (
      await h.app.inject({
        method: 'GET',
        url: '/v1/findings?cluster=c&namespace=ns&pod=pad',
        headers: { authorization: `Bearer ${h.adminToken}` },
      })
    ).json() as { vulnerablePackages: { id: string; package: { name: string } }[] };
    const ids = findings.vulnerablePackages.map((v) => `${v.package.name}:${v.id}`);
    assert.ok(ids.includes(`left-pad:${ID}`), ids.join());
    assert.ok(
      ids.some((i) => i.startsWith('minimist:')),
      'untouched packages keep their findings',
    );
    assert.deepEqual(await rematchAdvisories(deps, [ID]), {
      advisories: 1,
      candidates: 1,
      rematched: 0,
      events: 0,
    });
  });
});
