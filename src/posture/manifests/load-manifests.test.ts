import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ContainmentError } from '../../errors.js';
import { loadManifests, parseManifests } from './load-manifests.js';

const dir = mkdtempSync(join(tmpdir(), 'posture-manifests-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const HELM = `---
# Source: shop/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: shop
---
# Source: shop/templates/empty.yaml
# nothing rendered here
---
# Source: shop/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  annotations:
    created: 2024-01-01
spec:
  template:
    spec:
      containers:
        - name: app
          image: nginx
`;

test('Helm output: empty documents skipped, # Source kept, no implicit YAML types', () => {
  const inputs = parseManifests(HELM, 'out.yaml');
  assert.deepEqual(
    inputs.map((i) => i.object.kind),
    ['ServiceAccount', 'Deployment'],
  );
  assert.equal(inputs[1]!.source, 'out.yaml#3 (shop/templates/deployment.yaml)');
  // CORE schema: a date-looking value stays the string the API server would see
  assert.equal(
    (inputs[1]!.object.metadata as { annotations: Record<string, unknown> }).annotations.created,
    '2024-01-01',
  );
});

test('List kinds are flattened; JSON files are read; directories recursively', () => {
  mkdirSync(join(dir, 'tree', 'sub'), { recursive: true });
  writeFileSync(
    join(dir, 'tree', 'list.yaml'),
    'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: []}}\n- {apiVersion: v1, kind: Service, metadata: {name: b}, spec: {}}\n',
  );
  writeFileSync(
    join(dir, 'tree', 'sub', 'pod.json'),
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'PodList',
      items: [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'c' }, spec: {} }],
    }),
  );
  writeFileSync(join(dir, 'tree', 'README.md'), 'not a manifest');
  const inputs = loadManifests([join(dir, 'tree')]);
  assert.deepEqual(
    inputs.map((i) => `${i.object.kind}/${(i.object.metadata as { name: string }).name}`),
    ['Pod/a', 'Service/b', 'Pod/c'],
  );
});

test('bad input: one-line errors with stable codes, naming file and document', () => {
  const code = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof ContainmentError);
      assert.ok(!e.message.includes('\n'), e.message);
      return `${e.code}: ${e.message}`;
    }
    return 'no error';
  };
  assert.match(
    code(() => parseManifests('a: [', 'x.yaml')),
    /^MANIFEST_INVALID: x\.yaml#0: not valid YAML/,
  );
  assert.match(
    code(() => parseManifests('---\n- 1\n- 2\n', 'x.yaml')),
    /^MANIFEST_INVALID: x\.yaml#1: not a Kubernetes object/,
  );
  assert.match(
    code(() => parseManifests('kind: Pod\nmetadata: {name: a}\n', 'x.yaml')),
    /^MANIFEST_INVALID: .*apiVersion and kind/,
  );
  assert.match(
    code(() => parseManifests('apiVersion: v1\nkind: Pod\n', 'x.yaml')),
    /^MANIFEST_INVALID: .*without metadata\.name/,
  );
  assert.match(
    code(() => parseManifests('apiVersion: v1\nkind: List\nitems: [3]\n', 'x.yaml')),
    /^MANIFEST_INVALID: x\.yaml#0 items\[0\]/,
  );
  assert.match(
    code(() => parseManifests('{', 'x.json')),
    /^MANIFEST_INVALID: x\.json: not valid JSON/,
  );
  assert.match(
    code(() => loadManifests([join(dir, 'missing.yaml')])),
    /^TARGET_NOT_FOUND/,
  );
  mkdirSync(join(dir, 'empty'));
  assert.match(
    code(() => loadManifests([join(dir, 'empty')])),
    /^TARGET_NOT_FOUND: no \.yaml/,
  );
});
