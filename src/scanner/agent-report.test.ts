import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { Package } from '../inventory/types.js';
import { buildAgentReport, canonicalJson, inventoryHash, reportInventory } from './agent-report.js';

const pkg = (name: string, version: string): Package => ({
  name,
  version,
  ecosystem: 'npm',
  location: `/app/node_modules/${name}/package.json`,
  extractor: 'npm',
});

test('canonical JSON sorts keys at every level and keeps array order', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }),
    '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
  );
});

test('the inventory hash ignores package order and key order, and sees every change', () => {
  const a = reportInventory({
    packages: [pkg('left-pad', '1.0.0'), pkg('minimist', '1.2.5')],
    insecureConfigurations: [],
  });
  const reordered = reportInventory({
    // Same packages, other order, keys written in another order.
    packages: [Object.assign({ version: '1.2.5' }, pkg('minimist', '1.2.5')), pkg('left-pad', '1.0.0')],
    insecureConfigurations: [],
  });
  assert.equal(inventoryHash(a), inventoryHash(reordered));
  const bumped = reportInventory({
    packages: [pkg('left-pad', '1.0.0'), pkg('minimist', '1.2.6')],
    insecureConfigurations: [],
  });
  assert.notEqual(inventoryHash(a), inventoryHash(bumped));
  // sha256 of exactly the canonical text: another implementation can reproduce it.
  const text = `{"insecureConfigurations":[],"packages":[${['left-pad', 'minimist']
    .map(
      (n, i) =>
        `{"ecosystem":"npm","extractor":"npm","location":"/app/node_modules/${n}/package.json","name":"${n}","version":"${['1.0.0', '1.2.5'][i]}"}`,
    )
    .join(',')}]}`;
  assert.equal(inventoryHash(a), createHash('sha256').update(text).digest('hex'));
});

test('buildAgentReport carries the canonical inventory and its hash', () => {
  const report = buildAgentReport({
    reportId: 'r1',
    workload: { cluster: 'c', namespace: 'n', pod: 'p', node: 'host', image: 'img' },
    scanTime: '2025-01-01T00:00:00.000Z',
    inventory: { packages: [pkg('minimist', '1.2.5'), pkg('a', '1.0.0')], insecureConfigurations: [] },
  });
  assert.ok(report.inventory, 'a report carries its inventory');
  assert.deepEqual(
    report.inventory.packages.map((p) => p.name),
    ['a', 'minimist'],
  );
  assert.equal(report.inventoryHash, inventoryHash(report.inventory));
});
