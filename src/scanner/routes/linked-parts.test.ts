/**
 * `/v1/audit` and `/v1/policies` on the real scanner app linked to a real policy runtime (QuickJS
 * sandbox) and a real action API: what each role sees and may change, checked before the linked
 * credentials are used (a viewer of another namespace gets nothing, a viewer cannot switch a rule,
 * an analyst can), bad queries, a scanner with nothing linked, and a runtime that is down. The
 * whole chain on a real quarantine is in test/e2e/dashboard-up.browser.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WhiskClient } from '../../clients/whisk-client.js';
import { startActionApi } from '../../enforcement/action-api.js';
import type { RunningActionApi } from '../../enforcement/action-api.js';
import { UnavailableEnforcer } from '../../enforcement/unavailable-enforcer.js';
import { startHarness as startFunctions } from '../../functions/functions-harness.test-helper.js';
import type { Harness as FunctionsHarness } from '../../functions/functions-harness.test-helper.js';
import { isCI, sharedDataDir } from '../../testing/shared-data.js';
import { startHarness } from '../scanner-harness.test-helper.js';
import type { Harness } from '../scanner-harness.test-helper.js';
import type { LinkedParts } from './linked-parts.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(osvNpm);
if (!haveData) {
  const msg = `shared OSV data not found at ${osvNpm}`;
  if (isCI()) throw new Error(msg);
  console.warn(`\n*** SKIPPED: ${msg} ***\n`);
}

const ACTION_TOKEN = `admin-${'a'.repeat(32)}`;
const POLICY_SOURCE =
  'function main(params) { console.log("policy saw", params.n); return { seen: params.n }; }';

describe('linked parts: audit trail and policies through the scanner', { skip: !haveData }, () => {
  let h: Harness;
  let functions: FunctionsHarness;
  let actions: RunningActionApi;
  let linked: LinkedParts | undefined;
  const tokens = { viewerLocal: '', viewerOther: '', analystLocal: '' };

  before(async () => {
    h = await startHarness(osvNpm, { linkedParts: () => linked });
    functions = await startFunctions();
    const auth = functions.running.addNamespace('local');
    const whisk = new WhiskClient({ apihost: functions.url, auth, namespace: 'local' });
    await whisk.put('actions', 'guard', {
      exec: { kind: 'nodejs:20', code: POLICY_SOURCE },
      annotations: [{ key: 'containment-policy', value: true }],
    });
    await whisk.put('actions', 'helper', {
      exec: { kind: 'nodejs:20', code: 'function main() { return {}; }' },
    });
    await whisk.put('triggers', 'notices', {});
    await whisk.put('rules', 'guard-on-notices', { trigger: '/_/notices', action: '/_/guard' });
    await whisk.setRuleStatus('guard-on-notices', 'active');
    const fired = await whisk.fire('notices', { n: 7 });
    assert.ok(fired, 'the rule took the event');
    actions = await startActionApi({
      host: '127.0.0.1',
      port: 0,
      enforcer: new UnavailableEnforcer('no engine in this test'),
      cluster: 'local',
      tokens: [{ token: ACTION_TOKEN, name: 'admin', role: 'admin', namespaces: '*' }],
    });
    linked = {
      cluster: 'local',
      actions: { url: actions.url, token: ACTION_TOKEN },
      functions: { url: functions.url, namespaces: { local: auth } },
    };
    const issue = async (role: 'viewer' | 'analyst', namespace: string): Promise<string> =>
      (
        await h.tokens.issue({
          name: `${role} ${namespace}`,
          role,
          scope: { cluster: 'local', namespaces: [namespace] },
        })
      ).token;
    tokens.viewerLocal = await issue('viewer', 'local');
    tokens.viewerOther = await issue('viewer', 'other');
    tokens.analystLocal = await issue('analyst', 'local');
  });
  after(async () => {
    await actions?.close();
    await functions?.close();
    await h?.close();
  });

  const get = (token: string, url: string) =>
    h.app.inject({ url, headers: { authorization: `Bearer ${token}` } });
  const switchRule = (token: string, rule: string, status: string) =>
    h.app.inject({
      method: 'POST',
      url: `/v1/policies/local/rules/${rule}`,
      headers: { authorization: `Bearer ${token}` },
      payload: { status },
    });
  const ruleStatus = async (): Promise<string | undefined> =>
    (
      (await get(h.adminToken, '/v1/policies?activations=0')).json() as {
        namespaces: { rules: { name: string; status: string }[] }[];
      }
    ).namespaces[0]?.rules.find((r) => r.name === 'guard-on-notices')?.status;

  test('an admin sees the policy with its source, the trigger, the rule and the activation with logs', async () => {
    // The activation is stored when the sandbox returns.
    let body: {
      cluster: string;
      namespaces: {
        namespace: string;
        mayChangeRules: boolean;
        policies: { name: string; source: string; dryRun: boolean }[];
        triggers: { name: string }[];
        rules: { name: string; trigger: string; action: string; status: string }[];
        activations: { name: string; status: string; logs: string[]; result: unknown }[];
      }[];
    };
    for (let i = 0; ; i++) {
      const res = await get(h.adminToken, '/v1/policies');
      assert.equal(res.statusCode, 200, res.body);
      body = res.json();
      if (body.namespaces[0]?.activations.some((a) => a.name === 'guard') || i > 80) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(body.cluster, 'local');
    const [ns] = body.namespaces;
    assert.equal(ns?.namespace, 'local');
    assert.equal(ns?.mayChangeRules, true);
    assert.deepEqual(
      ns?.policies.map((p) => [p.name, p.source, p.dryRun]),
      [['guard', POLICY_SOURCE, false]],
      'only actions annotated as policies, with their source',
    );
    assert.deepEqual(ns?.triggers, [{ name: 'notices' }]);
    assert.deepEqual(ns?.rules, [
      { name: 'guard-on-notices', trigger: 'notices', action: 'guard', status: 'active' },
    ]);
    const run = ns?.activations.find((a) => a.name === 'guard');
    assert.equal(run?.status, 'success');
    assert.deepEqual(run?.result, { seen: 7 });
    assert.match(run?.logs.join('\n') ?? '', /policy saw 7/);
  });

  test('a viewer of another namespace sees no policies and no audit trail', async () => {
    const policies = await get(tokens.viewerOther, '/v1/policies');
    assert.equal(policies.statusCode, 200);
    assert.deepEqual(policies.json().namespaces, []);
    const audit = await get(tokens.viewerOther, '/v1/audit?namespace=local&pod=web');
    assert.equal(audit.statusCode, 403);
    assert.equal(audit.json().error.code, 'FORBIDDEN');
    const byId = await get(tokens.viewerOther, '/v1/audit?action=some-action');
    assert.equal(byId.statusCode, 404, 'an unknown and an invisible action answer alike');
  });

  test('a viewer cannot switch a rule; an analyst of the namespace can', async () => {
    const viewer = await get(tokens.viewerLocal, '/v1/policies');
    assert.equal(viewer.json().namespaces[0].mayChangeRules, false);
    const refused = await switchRule(tokens.viewerLocal, 'guard-on-notices', 'inactive');
    assert.equal(refused.statusCode, 403);
    assert.equal(refused.json().error.code, 'FORBIDDEN');
    const outsider = await switchRule(tokens.viewerOther, 'guard-on-notices', 'inactive');
    assert.equal(outsider.statusCode, 403);
    assert.equal(await ruleStatus(), 'active', 'nothing changed');

    const off = await switchRule(tokens.analystLocal, 'guard-on-notices', 'inactive');
    assert.equal(off.statusCode, 200, off.body);
    assert.equal(await ruleStatus(), 'inactive');
    assert.equal((await switchRule(tokens.analystLocal, 'guard-on-notices', 'active')).statusCode, 200);
    assert.equal(await ruleStatus(), 'active');

    const missing = await switchRule(h.adminToken, 'no-such-rule', 'inactive');
    assert.equal(missing.statusCode, 404);
    const bad = await switchRule(h.adminToken, 'guard-on-notices', 'paused');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'REQUEST_INVALID');
  });

  test('the audit trail of a visible workload; bad queries are refused with their code', async () => {
    const res = await get(tokens.viewerLocal, '/v1/audit?namespace=local&pod=web');
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), {
      workload: { cluster: 'local', namespace: 'local', pod: 'web' },
      trail: [],
    });
    for (const query of ['namespace=local', 'action=x&pod=web', 'namespace=local&pod=web&limit=0']) {
      const bad = await get(h.adminToken, `/v1/audit?${query}`);
      assert.equal(bad.statusCode, 400, query);
      assert.equal(bad.json().error.code, 'REQUEST_INVALID');
    }
  });

  test('a runtime that does not answer is LINKED_PART_FAILED; nothing linked is PARTS_NOT_LINKED', async () => {
    const saved = linked;
    try {
      linked = saved && { ...saved, functions: { ...saved.functions, url: 'http://127.0.0.1:9' } };
      const down = await get(h.adminToken, '/v1/policies');
      assert.equal(down.statusCode, 502);
      assert.equal(down.json().error.code, 'LINKED_PART_FAILED');
      linked = undefined;
      for (const url of ['/v1/policies', '/v1/audit?namespace=local&pod=web']) {
        const none = await get(h.adminToken, url);
        assert.equal(none.statusCode, 501, url);
        assert.equal(none.json().error.code, 'PARTS_NOT_LINKED');
      }
    } finally {
      linked = saved;
    }
  });
});
