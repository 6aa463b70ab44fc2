/**
 * Attack tests for the runtime's security wrapper, on a real runtime: floods and key guessing are
 * throttled per source (429 + Retry-After), oversized bodies refused, parameters that break an
 * action's declared schema never reach the policy, a memory bomb and a policy reaching outside its
 * namespace are contained — and every one of them is in the security-event log, which survives a
 * restart of the runtime.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCodes } from '../errors.js';
import { GUEST_AUTH, eventually, startHarness } from './functions-harness.test-helper.js';
import type { AnyJson, Harness } from './functions-harness.test-helper.js';
import { PARAMETER_SCHEMA_ANNOTATION } from './parameter-schema.js';
import { PolicySdkHost, httpEnforcement, httpFindings } from './host/policy-sdk-host.js';

const basic = (auth: string): string => `Basic ${Buffer.from(auth).toString('base64')}`;
const WRONG_KEY = `${GUEST_AUTH.split(':')[0]}:not-the-key-0123456789abcdef`;

const SCHEMA = {
  type: 'object',
  required: ['pod'],
  additionalProperties: false,
  properties: {
    pod: { type: 'string', pattern: '^[a-z0-9-]{1,63}$' },
    gracePeriodSeconds: { type: 'integer', minimum: 0, maximum: 300 },
  },
};

describe('the security wrapper', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'functions-security-'));
  let h: Harness;

  const events = async (harness: Harness = h): Promise<AnyJson[]> => {
    const res = await harness.call('GET', '/api/v1/namespaces/_/security-events?limit=1000');
    assert.equal(res.status, 200);
    return res.body as AnyJson[];
  };

  before(async () => {
    // Refused before any network: the SDK host checks the pod's namespace first.
    const policyHost = new PolicySdkHost({
      credentials: () => ({ cluster: 'local', scannerToken: 'unused', enforcerToken: 'unused' }),
      findings: httpFindings('http://127.0.0.1:9'),
      enforcement: httpEnforcement('http://127.0.0.1:9'),
    });
    h = await startHarness({ dataDir, policyHost, rateLimit: false });
  });
  after(async () => {
    await h.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('records authentication failures under the namespace they aimed at', async () => {
    assert.equal((await h.call('GET', '/api/v1/namespaces/guest/actions', undefined, WRONG_KEY)).status, 401);
    assert.equal((await h.call('GET', '/api/v1/namespaces/guest/actions', undefined, null)).status, 401);
    const failed = (await events()).filter((e) => e.kind === 'authentication-failed');
    assert.deepEqual(
      failed.map((e) => e.reason),
      ['invalid key', 'no Basic credentials'],
    );
    assert.equal(failed[0].endpoint, '/api/v1/namespaces/guest/actions');
    assert.equal(failed[0].source, '127.0.0.1');
  });

  it('refuses a body over the parameter limit on invoke, but takes large action code', async () => {
    const put = await h.call('PUT', '/api/v1/namespaces/_/actions/echo', {
      exec: { kind: 'nodejs:20', code: `// ${'x'.repeat(1_500_000)}\nfunction main(p) { return p; }` },
    });
    assert.equal(put.status, 200);
    const res = await fetch(`${h.url}/api/v1/namespaces/_/actions/echo?blocking=true`, {
      method: 'POST',
      headers: { authorization: basic(GUEST_AUTH), 'content-type': 'application/json' },
      body: JSON.stringify({ blob: 'y'.repeat(2 * 1024 * 1024) }),
    });
    assert.equal(res.status, 413);
    const last = (await events()).at(-1);
    assert.equal(last.kind, 'body-too-large');
    assert.equal(last.endpoint, '/api/v1/namespaces/_/actions/echo');
  });

  it('refuses an action whose parameter schema is not the supported subset', async () => {
    const res = await h.call('PUT', '/api/v1/namespaces/_/actions/bad-schema', {
      exec: { kind: 'nodejs:20', code: 'function main(p) { return p; }' },
      annotations: [{ key: PARAMETER_SCHEMA_ANNOTATION, value: { type: 'object', oneOf: [] } }],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.errorCode, ErrorCodes.CONFIG_INVALID);
    assert.match(res.body.error, /unrecognized key|oneOf/i);
  });

  it('checks invocations and rule activations against the declared schema; bad input never runs', async () => {
    const put = await h.call('PUT', '/api/v1/namespaces/_/actions/checked', {
      exec: { kind: 'nodejs:20', code: 'function main(p) { return { ran: p.pod }; }' },
      annotations: [{ key: PARAMETER_SCHEMA_ANNOTATION, value: SCHEMA }],
    });
    assert.equal(put.status, 200);
    const invoke = (params: unknown) =>
      h.call('POST', '/api/v1/namespaces/_/actions/checked?blocking=true&result=true', params);

    assert.deepEqual((await invoke({ pod: 'web-1', gracePeriodSeconds: 5 })).body, { ran: 'web-1' });
    const attacks: [unknown, RegExp][] = [
      [{ pod: '../../kube-system/etcd' }, /params\.pod: does not match/],
      [{ pod: 'web-1', gracePeriodSeconds: 1.5 }, /expected integer, got number/],
      [{ pod: 'web-1', gracePeriodSeconds: 100000 }, /above 300/],
      [{ pod: 'web-1', __proto__: { admin: true }, extra: 1 }, /params\.extra: not allowed/],
      [{}, /params\.pod: required/],
      [{ pod: ['web-1'] }, /expected string, got array/],
    ];
    for (const [params, why] of attacks) {
      const res = await invoke(params);
      assert.equal(res.status, 400, JSON.stringify(params));
      assert.equal(res.body.errorCode, ErrorCodes.POLICY_PARAMS_INVALID);
      assert.match(res.body.error, why);
    }

    // Through a trigger: the rule's activation is refused, the trigger's log says why.
    assert.equal((await h.call('PUT', '/api/v1/namespaces/_/triggers/t')).status, 200);
    assert.equal(
      (await h.call('PUT', '/api/v1/namespaces/_/rules/t-checked', { trigger: 't', action: 'checked' }))
        .status,
      200,
    );
    const fired = await h.call('POST', '/api/v1/namespaces/_/triggers/t', { pod: 'Evil/Pod' });
    assert.equal(fired.status, 202);
    const trigger = await h.call('GET', `/api/v1/namespaces/_/activations/${fired.body.activationId}`);
    const ruleLog = JSON.parse(trigger.body.logs[0]);
    assert.equal(ruleLog.success, false);
    assert.match(ruleLog.error, /does not match/);

    const acts = await h.call('GET', '/api/v1/namespaces/_/activations?name=checked&docs=true&limit=100');
    assert.deepEqual(
      (acts.body as AnyJson[]).map((a) => a.response.result),
      [{ ran: 'web-1' }],
      'only the valid invocation ran',
    );
    const rejected = (await events()).filter((e) => e.kind === 'invalid-input');
    assert.equal(rejected.length, attacks.length + 1);
    assert.equal(rejected.at(-1).source, 'trigger t');
    assert.equal(rejected[0].endpoint, 'actions/checked');
  });

  it('contains an unbounded allocation as a developer error with a memory message; the runtime survives', async () => {
    const bomb = `export async function main() {
      const hoard = [];
      for (let i = 0; ; i++) hoard.push('x'.repeat(1024 * 1024) + i);
    }`;
    await h.call('PUT', '/api/v1/namespaces/_/actions/bomb', {
      exec: { kind: 'nodejs:20', code: bomb },
      limits: { memory: 128, timeout: 60_000 },
    });
    const res = await h.call('POST', '/api/v1/namespaces/_/actions/bomb?blocking=true');
    assert.equal(res.status, 502);
    assert.equal(res.body.response.status, 'action developer error');
    assert.match(res.body.response.result.error, /exhausted its memory/);
    // The runtime still runs other policies, and the bomb again.
    const ok = await h.call('POST', '/api/v1/namespaces/_/actions/checked?blocking=true&result=true', {
      pod: 'after-bomb',
    });
    assert.deepEqual(ok.body, { ran: 'after-bomb' });
    const again = await h.call('POST', '/api/v1/namespaces/_/actions/bomb?blocking=true');
    assert.equal(again.body.response.status, 'action developer error');
    const violations = (await events()).filter((e) => e.kind === 'sandbox-violation');
    assert.equal(violations.length, 2);
    assert.match(violations[0].reason, /exhausted its memory/);
  });

  it('records a policy reaching for a pod outside its namespace', async () => {
    const code = `import { kubernetes } from '@containment/policy-sdk';
      export async function main() {
        try { await kubernetes.terminate({ namespace: 'kube-system', name: 'etcd' }); return { refused: false }; }
        catch (e) { return { refused: true, why: String(e.message) }; }
      }`;
    await h.call('PUT', '/api/v1/namespaces/_/actions/reach', { exec: { kind: 'typescript', code } });
    const res = await h.call('POST', '/api/v1/namespaces/_/actions/reach?blocking=true&result=true');
    assert.equal(res.body.refused, true);
    assert.match(res.body.why, /outside the namespaces/);
    const last = (await events()).at(-1);
    assert.equal(last.kind, 'sandbox-violation');
    assert.match(last.reason, /kube-system\/etcd/);
  });

  it('keeps the log across a restart, and shows it only to its namespace', async () => {
    const before = await events();
    await h.close();
    h = await startHarness({ dataDir, rateLimit: false });
    assert.deepEqual(await events(), before);
    const other = h.running.addNamespace('other');
    assert.equal(
      (await h.call('GET', '/api/v1/namespaces/guest/security-events', undefined, other)).status,
      403,
    );
    assert.deepEqual(
      (await h.call('GET', '/api/v1/namespaces/_/security-events', undefined, other)).body,
      [],
    );
    // Aimed at no existing namespace: kept unattributed, visible to the admin namespace (guest) only.
    assert.equal(
      (await h.call('GET', '/api/v1/namespaces/nosuch/actions', undefined, WRONG_KEY)).status,
      401,
    );
    assert.equal(
      (await h.call('GET', '/api/v1/namespaces/_/security-events?all=true', undefined, other)).status,
      403,
    );
    const all = await h.call('GET', '/api/v1/namespaces/_/security-events?all=true&limit=1000');
    const unattributed = (all.body as AnyJson[]).filter((e) => e.namespace === '');
    assert.deepEqual(
      unattributed.map((e) => e.endpoint),
      ['/api/v1/namespaces/nosuch/actions'],
    );
    assert.ok(!(await events()).some((e) => e.namespace === ''), "not in guest's own view");
    const page = await h.call('GET', `/api/v1/namespaces/_/security-events?after=${before[1].id}&limit=1`);
    assert.deepEqual(page.body, [before[2]]);
  });
});

describe('per-source rate limits', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'functions-limits-'));
  let h: Harness;
  let open = true;
  before(async () => {
    h = await startHarness({
      dataDir,
      rateLimit: { api: { max: 5, windowMs: 60_000 }, web: { max: 3, windowMs: 60_000 } },
    });
  });
  after(async () => {
    if (open) await h.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('throttles key guessing and floods with 429 and Retry-After, and logs it once per window', async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${h.url}/api/v1/namespaces/guest/actions`, {
        headers: { authorization: basic(i % 2 === 0 ? WRONG_KEY : GUEST_AUTH) },
      });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after');
    }
    // Wrong keys count too: guessing is throttled like any other request.
    assert.deepEqual(statuses, [401, 200, 401, 200, 401, 429, 429, 429]);
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After ${retryAfter}`);

    // Web endpoints have their own budget per source.
    const web: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${h.url}/api/v1/web/guest/security-notices/events`, {
        method: 'POST',
        body: '{}',
      });
      web.push(res.status);
    }
    assert.deepEqual(web, [404, 404, 404, 429, 429]);
  });

  it('has the throttling in the security-event log (read after a restart without limits)', async () => {
    await h.close();
    open = false;
    const reopened = await startHarness({ dataDir, rateLimit: false });
    try {
      const res = await eventually(async () => {
        const r = await reopened.call('GET', '/api/v1/namespaces/_/security-events');
        return r.status === 200 ? r : undefined;
      }, 'security events');
      const limited = (res.body as AnyJson[]).filter((e) => e.kind === 'rate-limited');
      assert.deepEqual(
        limited.map((e) => e.endpoint),
        ['/api/v1/namespaces/guest/actions', '/api/v1/web/guest/security-notices/events'],
      );
      assert.match(limited[0].reason, /more than 5 requests in 60 s from 127\.0\.0\.1/);
    } finally {
      await reopened.close();
    }
  });
});
