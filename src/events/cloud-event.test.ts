import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloudEvent, HTTP, ValidationError } from 'cloudevents';
import { EventTypes, createEvent, eventSource, structuredBody } from './cloud-event.js';
import type { ScanCompletedData } from './cloud-event.js';

const scan: ScanCompletedData = {
  workload: {
    cluster: 'prod east',
    namespace: 'shop',
    pod: 'web-1',
    container: 'nginx',
    node: 'n1',
    image: 'nginx:1.25',
    imageDigest: 'sha256:' + 'a'.repeat(64),
  },
  scanTime: '2024-05-01T10:00:00.000Z',
  summary: { CRITICAL: 1, HIGH: 2, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
  newFindings: ['CVE-2024-0001'],
  insecureConfigurations: ['sshd-installed'],
};

test('scan.completed: spec attributes, UUID id, source, subject, data', () => {
  const before = Date.now();
  const event = createEvent(EventTypes.SCAN_COMPLETED, 'prod east', scan);
  assert.match(event.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(event.specversion, '1.0');
  assert.equal(event.type, 'dev.containment.scan.completed');
  assert.equal(event.source, '/containment/prod%20east');
  assert.equal(event.subject, 'shop/web-1/nginx');
  assert.equal(event.datacontenttype, 'application/json');
  const time = Date.parse(event.time ?? '');
  assert.ok(time >= before - 1 && time <= Date.now() + 1);
  assert.deepEqual(event.data, scan);
  assert.notEqual(createEvent(EventTypes.SCAN_COMPLETED, 'c', scan).id, event.id);
});

test('structured body parses back with the SDK to the same event', () => {
  const event = createEvent(EventTypes.FINDINGS_CHANGED, 'local', { ...scan, reason: 'feed-update' });
  const body = structuredBody(event);
  const parsed = HTTP.toEvent({
    headers: { 'content-type': 'application/cloudevents+json' },
    body,
  }) as CloudEvent<unknown>;
  assert.equal(parsed.id, event.id);
  assert.equal(parsed.type, EventTypes.FINDINGS_CHANGED);
  assert.equal(parsed.source, '/containment/local');
  assert.deepEqual(parsed.data, { ...scan, reason: 'feed-update' });
  assert.equal(JSON.parse(body).specversion, '1.0');
});

test('action.completed takes its subject from the target', () => {
  const event = createEvent(EventTypes.ACTION_COMPLETED, 'local', {
    name: 'quarantine-web-1',
    cluster: 'local',
    action: 'Quarantine',
    target: { namespace: 'shop', pod: 'web-1' },
    phase: 'Succeeded',
    completedAt: '2024-05-01T10:00:05.000Z',
  });
  assert.equal(event.subject, 'shop/web-1');
  const runtime = createEvent(EventTypes.RUNTIME_DETECTED, 'local', {
    workload: { ...scan.workload, container: undefined, containerId: '4f1c2a9e0b7d' },
    ruleId: 'shell_in_container',
    kind: 'process',
    severity: 'HIGH',
    title: 'A shell started in a container',
    detectedAt: '2024-05-01T10:00:00.000Z',
    process: { pid: 42, uid: 0, name: 'sh', argv: ['sh'] },
    evidence: { parent: 'node' },
    baseline: { state: 'none' },
    count: 1,
    firstSeen: '2024-05-01T10:00:00.000Z',
    lastSeen: '2024-05-01T10:00:00.000Z',
    fingerprint: 'fp-1',
    source: 'ebpf',
  });
  assert.equal(runtime.subject, 'shop/web-1');
});

test('the SDK validates: a cluster name cannot produce an invalid source, and bad attributes are refused', () => {
  for (const cluster of ['a b', 'x/../y', '%zz', 'ü']) {
    assert.doesNotThrow(() => createEvent(EventTypes.SCAN_COMPLETED, cluster, scan), cluster);
    assert.equal(decodeURIComponent(eventSource(cluster).slice('/containment/'.length)), cluster);
  }
  assert.throws(() => new CloudEvent({ type: 't', source: '/x', time: 'yesterday' }), ValidationError);
  assert.throws(() => new CloudEvent({ type: '', source: '/x' }), ValidationError);
});
