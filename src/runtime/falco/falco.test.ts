/**
 * Falco alerts in: payloads written from Falco's documented JSON output (http_output) and
 * falcosidekick's webhook payload (fixtures/), mapped to runtime detections; bad bodies refused
 * whole; the Fastify route on a real Fastify instance.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { isContainmentError } from '../../errors.js';
import { RuntimeDetectionSchema } from '../contracts.js';
import type { RuntimeDetection } from '../contracts.js';
import { falcoAlertsToDetections, falcoRuleId, mapFalcoAlerts } from './falco-alert.js';
import { FALCO_ALERTS_PATH, registerFalcoRoute } from './falco-route.js';

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(
    readFileSync(join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures', name), 'utf8'),
  ) as Record<string, unknown>;
const falco = fixture('falco-http-output.json');
const sidekick = fixture('falcosidekick-webhook.json');
const host = fixture('falco-host-alert.json');
const ctx = { cluster: 'prod' };

const errorOf = (body: unknown): { code: string; message: string } | undefined => {
  try {
    mapFalcoAlerts(body, ctx);
  } catch (e) {
    assert.ok(isContainmentError(e), String(e));
    return { code: e.code, message: e.message };
  }
  return undefined;
};

describe('Falco alert mapping', () => {
  test("Falco's http_output alert: workload from k8s fields, falco:<rule>, severity, masked argv", () => {
    const [d] = falcoAlertsToDetections(falco, ctx);
    assert.ok(d);
    RuntimeDetectionSchema.parse(d);
    assert.deepEqual(d.workload, {
      cluster: 'prod',
      namespace: 'shop',
      pod: 'web-7d9c6b5f4-x2x9q',
      container: 'web',
      node: 'worker-1',
      image: 'registry.example.com/shop/web:1.4.2',
      containerId: '3ad7f1e0c9d2f1b5e0a4c3b2a1908f7e6d5c4b3a29180706f5e4d3c2b1a09f8e',
    });
    assert.equal(d.ruleId, 'falco:terminal_shell_in_container');
    assert.equal(d.title, 'Terminal shell in container');
    assert.equal(d.severity, 'LOW');
    assert.equal(d.kind, 'process');
    assert.equal(d.source, 'falco');
    assert.equal(d.detectedAt, '2024-05-14T10:21:33.511Z');
    assert.deepEqual(d.process, {
      pid: 48213,
      ppid: 48190,
      uid: 0,
      name: 'bash',
      exe: '/usr/bin/bash',
      argv: ['bash', '-c', 'echo', '$MYSQL_PASSWORD', '--password', '***'],
    });
    // The secret never reaches the detection, neither in argv nor in the evidence.
    assert.doesNotMatch(JSON.stringify(d), /hunter2/);
    assert.equal(d.evidence['k8s.ns.name'], 'shop');
    assert.equal(d.evidence.priority, 'notice');
    assert.equal(d.count, 1);
    assert.match(d.fingerprint, /^[0-9a-f]{32}$/);
  });

  test("falcosidekick's webhook payload: lower-case priority, uuid, custom fields, network tag", () => {
    const [d] = falcoAlertsToDetections(sidekick, { cluster: 'prod', node: 'fallback' });
    assert.ok(d);
    assert.equal(d.ruleId, 'falco:detect_outbound_connections_to_common_miner_pool_ports');
    assert.equal(d.severity, 'CRITICAL');
    assert.equal(d.kind, 'socket');
    assert.equal(d.workload.namespace, 'batch');
    assert.equal(d.workload.pod, 'report-28591230-abcde');
    assert.equal(d.workload.containerId, '9f8e7d6c5b4a');
    assert.equal(d.workload.image, 'docker.io/library/alpine');
    assert.equal(d.process.uid, 65534);
    assert.equal(d.process.pid, -1, 'no proc.pid in the payload: unknown, not invented');
    assert.equal(d.evidence['fd.sport'], 3333);
    assert.equal(d.evidence.environment, 'production');
    assert.doesNotMatch(JSON.stringify(d), /s3cret/);
  });

  test('host alerts are skipped with a reason; a batch maps each alert', () => {
    const r = mapFalcoAlerts([falco, host, sidekick], ctx);
    assert.deepEqual(
      r.detections.map((d: RuntimeDetection) => d.ruleId),
      ['falco:terminal_shell_in_container', 'falco:detect_outbound_connections_to_common_miner_pool_ports'],
    );
    assert.deepEqual(r.skipped, [
      { rule: 'Read sensitive file untrusted', reason: 'not in a container (container.id host or absent)' },
    ]);
  });

  test('the same alert twice has the same fingerprint; another container another', () => {
    const a = falcoAlertsToDetections(falco, ctx)[0];
    const b = falcoAlertsToDetections({ ...falco, time: '2024-05-14T11:00:00Z' }, ctx)[0];
    const fields = { ...(falco.output_fields as object), 'container.full_id': 'f'.repeat(64) };
    const c = falcoAlertsToDetections({ ...falco, output_fields: fields }, ctx)[0];
    assert.equal(a?.fingerprint, b?.fingerprint);
    assert.notEqual(a?.fingerprint, c?.fingerprint);
  });

  test('rule ids fit the contract', () => {
    assert.equal(falcoRuleId('PTRACE attached to process'), 'falco:ptrace_attached_to_process');
    assert.equal(
      falcoRuleId('Drop and execute new binary in container'),
      'falco:drop_and_execute_new_binary_in_container',
    );
    assert.equal(falcoRuleId('  ***  '), 'falco:unnamed');
    assert.match(falcoRuleId('x'.repeat(1000)), /^falco:x{120}$/);
  });

  test('malformed bodies: FALCO_ALERT_INVALID, one line, nothing half-mapped', () => {
    const cases: [unknown, RegExp][] = [
      [null, /not a Falco alert/],
      ['text', /not a Falco alert/],
      [[], /expected 1 to 1000 Falco alerts, got 0/],
      [{ ...falco, priority: 'Loud' }, /priority: not a Falco priority/],
      [{ ...falco, time: 'yesterday' }, /time: not an RFC 3339 time/],
      [{ ...falco, rule: '' }, /rule:/],
      [{ ...falco, output_fields: 'x' }, /output_fields:/],
      [{ ...falco, output_fields: { 'proc.name': { nested: 1 } } }, /output_fields/],
      [[falco, { ...sidekick, rule: undefined }], /^not a Falco alert: alert 1: rule:/],
      [Array.from({ length: 1001 }, () => falco), /expected 1 to 1000 Falco alerts, got 1001/],
    ];
    for (const [body, message] of cases) {
      const e = errorOf(body);
      assert.equal(e?.code, 'FALCO_ALERT_INVALID', JSON.stringify(body)?.slice(0, 80));
      assert.match(e.message, message);
      assert.doesNotMatch(e.message, /\n/);
    }
  });
});

describe('Falco route (real Fastify)', () => {
  test('202 with the count; 400 with the error code and nothing stored; auth hook runs first', async () => {
    const stored: RuntimeDetection[][] = [];
    const app = Fastify();
    registerFalcoRoute(app, {
      clusterOf: () => 'prod',
      sink: async (d) => {
        stored.push(d);
      },
      preHandler: async (request, reply) => {
        if (request.headers.authorization !== 'Bearer agent-token')
          await reply.code(401).send({ error: { code: 'UNAUTHENTICATED', message: 'no token' } });
      },
    });
    const post = (payload: unknown, token = 'agent-token') =>
      app.inject({
        method: 'POST',
        url: FALCO_ALERTS_PATH,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        payload: JSON.stringify(payload),
      });
    const ok = await post(sidekick);
    assert.equal(ok.statusCode, 202, ok.body);
    assert.deepEqual(ok.json(), { accepted: 1, skipped: [] });
    assert.equal(stored.length, 1);
    assert.equal(stored[0]?.[0]?.workload.cluster, 'prod');

    const bad = await post([falco, { ...falco, priority: 'Loud' }]);
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'FALCO_ALERT_INVALID');
    assert.equal(stored.length, 1, 'a malformed batch stores nothing, not even its valid alerts');

    const onlyHost = await post(host);
    assert.equal(onlyHost.statusCode, 202);
    assert.equal(onlyHost.json().accepted, 0);
    assert.equal(stored.length, 1);

    const anonymous = await post(falco, 'wrong');
    assert.equal(anonymous.statusCode, 401);
    assert.equal(stored.length, 1);
    await app.close();
  });
});
