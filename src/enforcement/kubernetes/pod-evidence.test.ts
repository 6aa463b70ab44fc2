import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { verifyBundle } from '../../linux/evidence.js';
import { podEvidenceItems, writePodEvidence } from './pod-evidence.js';
import type { PodEvidenceInput } from './pod-evidence.js';

const root = mkdtempSync(join(tmpdir(), 'containment-pod-evidence-'));
after(() => rmSync(root, { recursive: true, force: true }));

const input = (over: Partial<PodEvidenceInput> = {}): PodEvidenceInput => ({
  evidenceDir: root,
  namespace: 'shop',
  actionName: 'snap-1',
  actionUid: 'uid-1',
  node: 'n1',
  pod: { metadata: { name: 'web-0', uid: 'pod-uid' }, spec: { nodeName: 'n1' } },
  events: [{ reason: 'Started' }],
  containers: [],
  now: () => new Date('2026-01-01T00:00:00Z'),
  ...over,
});

describe('pod evidence bundle', () => {
  test('writes the pod and its events with a manifest of SHA-256 sums', async () => {
    const bundle = await writePodEvidence(input());
    assert.equal(bundle.dir, join(root, 'shop', 'snap-1'));
    assert.equal(bundle.reused, false);
    assert.deepEqual(await verifyBundle(bundle.dir), []);
    assert.deepEqual(
      podEvidenceItems(bundle).map((e) => e.kind),
      ['manifest', 'pod', 'events'],
    );
    assert.match(bundle.manifest.notes.join(), /no process of this pod runs on node n1/);
  });

  test('the same action again reuses its bundle; another action of that name is refused; nothing is left half-written', async () => {
    const again = await writePodEvidence(input({ events: [{ reason: 'Different' }] }));
    assert.equal(again.reused, true);
    assert.equal(again.manifest.files.length, 2);
    await assert.rejects(
      writePodEvidence(input({ actionUid: 'uid-2' })),
      /EVIDENCE_EXISTS|never overwritten/,
    );
    assert.deepEqual(readdirSync(join(root, 'shop')), ['snap-1']);
  });

  test('events that could not be read are a note, not a failure; a name that could escape is refused', async () => {
    const b = await writePodEvidence(input({ actionName: 'snap-2', events: { error: 'forbidden' } }));
    assert.deepEqual(
      b.manifest.files.map((f) => f.kind),
      ['pod'],
    );
    assert.match(b.manifest.notes.join(), /events not collected: forbidden/);
    await assert.rejects(writePodEvidence(input({ actionName: '../escape' })), /invalid action id/);
    await assert.rejects(writePodEvidence(input({ namespace: '..' })), /invalid action id/);
  });
});
