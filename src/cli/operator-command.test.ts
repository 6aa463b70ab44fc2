/** `containment operator`: its refusals (the real run against an API server is in src/operator/operator.test.ts). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { containment } from '../testing/tools.js';

describe('containment operator', () => {
  test('without a node name: a usage error naming --node and NODE_NAME', () => {
    const r = containment(['operator', '--kubeconfig', '/nonexistent'], { NODE_NAME: '' });
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^error\[USAGE\]: .*--node .*NODE_NAME/);
  });

  test('an invalid node name, a bad concurrency or an unreadable kubeconfig is refused in one line', () => {
    const badNode = containment(['operator', '--node', 'Node_1'], {});
    assert.equal(badNode.status, 2);
    assert.match(badNode.stderr, /^error\[USAGE\]: --node Node_1: not a valid node name/);
    const badConcurrency = containment(['operator', '--node', 'n1', '--concurrency', '0'], {});
    assert.equal(badConcurrency.status, 2);
    assert.match(badConcurrency.stderr, /^error\[USAGE\]: .*concurrency/);
    const badCap = containment(['operator', '--node', 'n1', '--evidence-max-layer-bytes', '12'], {});
    assert.equal(badCap.status, 2);
    assert.match(badCap.stderr, /^error\[USAGE\]: .*evidence-max-layer-bytes/);
    const dir = mkdtempSync(join(tmpdir(), 'containment-operator-cli-'));
    try {
      const file = join(dir, 'kubeconfig');
      writeFileSync(file, 'clusters: [');
      const bad = containment(['operator', '--node', 'n1', '--kubeconfig', file, '--data-dir', dir], {});
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /^error\[CONFIG_INVALID\]: /);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
