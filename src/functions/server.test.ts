/**
 * The OpenWhisk REST API over HTTP against a real runtime (SQLite, QuickJS sandbox): authentication
 * and namespace scoping, limits, activation statuses, blocking waits, parameter precedence, the
 * trigger → rule → action chain, and the policy host seam.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GUEST_AUTH, eventually, startHarness } from './functions-harness.test-helper.js';
import type { AnyJson, Harness } from './functions-harness.test-helper.js';
import type { PolicyCallContext, PolicyHost } from './host/policy-host.js';
import type { JsonValue } from './sandbox/sandbox.js';

const OTHER_AUTH = '9f1c3c0e-5b7a-4c38-9d55-0c8f3b1e2a77:other-namespace-key-0123456789abcdef';
const ECHO = 'export function main(p) { return p; }';

interface SdkCall {
  namespace: string;
  action: string;
  method: string;
  args: JsonValue[];
  context: PolicyCallContext;
}

describe('function runtime API', () => {
  let h: Harness;
  const sdkCalls: SdkCall[] = [];
  /** `notify` answers after the delay the policy asks for, so a test can hold an invocation open. */
  const host: PolicyHost = {
    async invokeSdk(namespace, action, method, args, context) {
      sdkCalls.push({ namespace, action, method, args, context });
      if (method === 'notify' && typeof args[1] === 'number')
        await new Promise((r) => setTimeout(r, args[1] as number));
      return { ok: true, method };
    },
  };

  before(async () => {
    h = await startHarness({ policyHost: host });
    h.running.addNamespace('other', OTHER_AUTH);
  });
  after(() => h.close());

  async function put(path: string, body: unknown, auth?: string): Promise<AnyJson> {
    const r = await h.call('PUT', `/api/v1/namespaces/_/${path}`, body, auth);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  }

  async function activation(id: string, auth = GUEST_AUTH): Promise<AnyJson> {
    return eventually(async () => {
      const r = await h.call('GET', `/api/v1/namespaces/_/activations/${id}`, undefined, auth);
      return r.status === 200 ? r.body : undefined;
    }, `activation ${id}`);
  }

  describe('authentication', () => {
    before(() =>
      put('actions/secret', {
        exec: { kind: 'nodejs:20', code: 'export function main() { return { secret: 42 }; }' },
      }),
    );

    it('rejects a missing, malformed, wrong or unknown key with 401', async () => {
      for (const auth of [
        null,
        'not-base64-colon',
        GUEST_AUTH.replace(/.$/, '0'),
        `ffffffff-0000:${GUEST_AUTH.split(':')[1]}`,
      ]) {
        const r = await h.call('GET', '/api/v1/namespaces/_/actions', undefined, auth);
        assert.equal(r.status, 401, `auth ${String(auth)}`);
        assert.equal(r.body.error, 'The supplied authentication is invalid');
      }
    });

    it('checks the route, not the raw URL: percent-encoded paths get no way around the key', async () => {
      for (const path of [
        '/api/v1/%6eamespaces/guest/actions',
        '/api/v1/namespaces/guest/%61ctions/secret',
        '/api/v1/namespaces',
      ]) {
        const r = await h.call('GET', path, undefined, null);
        assert.ok(r.status === 401 || r.status === 404, `${path}: ${r.status}`);
        assert.equal(JSON.stringify(r.body).includes('secret: 42'), false);
      }
    });

    it("keeps another namespace's key out of guest's entities and activations", async () => {
      for (const [method, path] of [
        ['GET', '/api/v1/namespaces/guest/actions'],
        ['GET', '/api/v1/namespaces/guest/actions/secret'],
        ['POST', '/api/v1/namespaces/guest/actions/secret?blocking=true&result=true'],
        ['DELETE', '/api/v1/namespaces/guest/actions/secret'],
        ['PUT', '/api/v1/namespaces/guest/triggers/planted'],
      ] as const) {
        const r = await h.call(method, path, method === 'PUT' ? {} : undefined, OTHER_AUTH);
        assert.equal(r.status, 403, `${method} ${path}`);
      }
      // `_` is the caller's own namespace: other sees nothing of guest's.
      const own = await h.call('GET', '/api/v1/namespaces/_/actions', undefined, OTHER_AUTH);
      assert.deepEqual(own.body, []);
      assert.equal(
        (await h.call('GET', '/api/v1/namespaces/_/actions/secret', undefined, OTHER_AUTH)).status,
        404,
      );

      const invoked = await h.call('POST', '/api/v1/namespaces/_/actions/secret?blocking=true');
      assert.equal(invoked.status, 200);
      const id = invoked.body.activationId as string;
      assert.equal(
        (await h.call('GET', `/api/v1/namespaces/guest/activations/${id}`, undefined, OTHER_AUTH)).status,
        403,
      );
      assert.equal(
        (await h.call('GET', `/api/v1/namespaces/_/activations/${id}`, undefined, OTHER_AUTH)).status,
        404,
      );
      assert.equal(
        (await h.call('GET', `/api/v1/namespaces/other/activations/${id}`, undefined, OTHER_AUTH)).status,
        404,
      );
      // The action is untouched.
      assert.equal((await h.call('GET', '/api/v1/namespaces/guest/actions/secret')).status, 200);
      assert.equal((await h.call('GET', '/api/v1/namespaces/guest/triggers/planted')).status, 404);
    });
  });

  describe('entities', () => {
    it('validates limits with OpenWhisk messages and keeps unspecified ones on update', async () => {
      const cases: [AnyJson, RegExp][] = [
        [{ timeout: 99 }, /duration 99 milliseconds below allowed threshold of 100 milliseconds/],
        [
          { timeout: 300_001 },
          /duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds/,
        ],
        [{ memory: 64 }, /memory 64 MB below allowed threshold of 128 MB/],
        [{ memory: 1024 }, /memory 1024 MB exceeds allowed threshold of 512 MB/],
        [{ logs: 11 }, /logs 11 MB exceeds allowed threshold of 10 MB/],
        [{ timeout: 1000.5 }, /must be whole number/],
      ];
      for (const [limits, message] of cases) {
        const r = await h.call('PUT', '/api/v1/namespaces/_/actions/limited', {
          exec: { kind: 'nodejs:20', code: ECHO },
          limits,
        });
        assert.equal(r.status, 400, JSON.stringify(limits));
        assert.match(r.body.error, message);
      }
      assert.equal((await h.call('GET', '/api/v1/namespaces/_/actions/limited')).status, 404);
      const ok = await put('actions/limited', {
        exec: { kind: 'nodejs:20', code: ECHO },
        limits: { timeout: 100, memory: 512, logs: 0 },
      });
      assert.deepEqual(ok.limits, { timeout: 100, memory: 512, logs: 0, concurrency: 1 });
      const updated = await put('actions/limited?overwrite=true', { limits: { memory: 128 } });
      assert.deepEqual(updated.limits, { timeout: 100, memory: 128, logs: 0, concurrency: 1 });
      assert.equal(updated.exec.code, ECHO);
    });

    it('refuses overwriting without ?overwrite=true, bad code, kinds and names', async () => {
      await put('actions/once', { exec: { kind: 'nodejs:20', code: ECHO } });
      const again = await h.call('PUT', '/api/v1/namespaces/_/actions/once', {
        exec: { kind: 'nodejs:20', code: ECHO },
      });
      assert.equal(again.status, 409);

      const syntax = await h.call('PUT', '/api/v1/namespaces/_/actions/broken', {
        exec: { kind: 'nodejs:20', code: 'export function main( {' },
      });
      assert.equal(syntax.status, 400);
      assert.match(syntax.body.error, /broken\.js:1:/);
      const escape = await h.call('PUT', '/api/v1/namespaces/_/actions/broken', {
        exec: { kind: 'nodejs:20', code: 'import fs from "node:fs"; export function main() { return {}; }' },
      });
      assert.equal(escape.status, 400);
      assert.match(escape.body.error, /import of "node:fs" is not allowed/);
      const python = await h.call('PUT', '/api/v1/namespaces/_/actions/broken', {
        exec: { kind: 'python:3', code: 'def main(a): return a' },
      });
      assert.equal(python.status, 400);
      const badName = await h.call('PUT', '/api/v1/namespaces/_/actions/%24bad', {
        exec: { kind: 'nodejs:20', code: ECHO },
      });
      assert.equal(badName.status, 400);
      assert.equal((await h.call('GET', '/api/v1/namespaces/_/actions/broken')).status, 404);
    });

    it('compiles TypeScript actions and OpenWhisk-style scripts with exec.main', async () => {
      await put('actions/typed', {
        exec: {
          kind: 'typescript',
          code: 'export function main(p: { n: number }): { square: number } { return { square: p.n * p.n }; }',
        },
      });
      const typed = await h.call('POST', '/api/v1/namespaces/_/actions/typed?blocking=true&result=true', {
        n: 7,
      });
      assert.deepEqual(typed.body, { square: 49 });
      await put('actions/named', {
        exec: {
          kind: 'nodejs:default',
          code: 'function handler(p) { return { via: "handler", p: p.x }; }',
          main: 'handler',
        },
      });
      const named = await h.call('POST', '/api/v1/namespaces/_/actions/named?blocking=true&result=true', {
        x: 1,
      });
      assert.deepEqual(named.body, { via: 'handler', p: 1 });
    });

    it('keeps a package with actions from being deleted', async () => {
      await put('packages/held', {});
      await put('actions/held/one', { exec: { kind: 'nodejs:20', code: ECHO } });
      const r = await h.call('DELETE', '/api/v1/namespaces/_/packages/held');
      assert.equal(r.status, 409);
      const missingPkg = await h.call('PUT', '/api/v1/namespaces/_/actions/nopkg/one', {
        exec: { kind: 'nodejs:20', code: ECHO },
      });
      assert.equal(missingPkg.status, 404);
    });
  });

  describe('activations', () => {
    it('records success, application error and developer error (timeout) with their codes', async () => {
      await put('actions/ok', {
        exec: {
          kind: 'nodejs:20',
          code: 'export function main() { console.log("fine"); return { ok: true }; }',
        },
      });
      await put('actions/app-error', {
        exec: {
          kind: 'nodejs:20',
          code: 'export function main() { return { error: { reason: "denied" } }; }',
        },
      });
      await put('actions/throws', {
        exec: { kind: 'nodejs:20', code: 'export function main() { throw new Error("boom"); }' },
      });
      await put('actions/spins', {
        exec: { kind: 'nodejs:20', code: 'export function main() { for (;;) {} }' },
        limits: { timeout: 300 },
      });

      const ok = await h.call('POST', '/api/v1/namespaces/_/actions/ok?blocking=true');
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.body.response, {
        status: 'success',
        statusCode: 0,
        success: true,
        result: { ok: true },
      });

      const app = await h.call('POST', '/api/v1/namespaces/_/actions/app-error?blocking=true');
      assert.equal(app.status, 502);
      assert.equal(app.body.response.status, 'application error');
      assert.equal(app.body.response.statusCode, 1);
      assert.deepEqual(app.body.response.result, { error: { reason: 'denied' } });

      const threw = await h.call('POST', '/api/v1/namespaces/_/actions/throws?blocking=true&result=true');
      assert.equal(threw.status, 502);
      assert.match(threw.body.error, /boom/);

      const spun = await h.call('POST', '/api/v1/namespaces/_/actions/spins?blocking=true');
      assert.equal(spun.status, 502);
      assert.equal(spun.body.response.status, 'action developer error');
      assert.equal(spun.body.response.statusCode, 2);
      assert.equal(
        spun.body.response.result.error,
        'The action exceeded its time limits of 300 milliseconds.',
      );
      assert.ok(spun.body.annotations.some((a: AnyJson) => a.key === 'timeout' && a.value === true));

      const stored = await activation(ok.body.activationId);
      assert.deepEqual(stored, ok.body);
      const result = await h.call('GET', `/api/v1/namespaces/_/activations/${ok.body.activationId}/result`);
      assert.deepEqual(result.body.result, { ok: true });
      const logs = await h.call('GET', `/api/v1/namespaces/_/activations/${ok.body.activationId}/logs`);
      assert.match(logs.body.logs[0], /stdout: fine$/);
      assert.equal((await h.call('GET', '/api/v1/namespaces/_/activations/not-an-id')).status, 400);
      const huge = await h.call('POST', '/api/v1/namespaces/_/actions/ok?blocking=true', {
        blob: 'x'.repeat(1024 * 1024),
      });
      assert.equal(huge.status, 413);
    });

    it('answers 202 with only the id when a blocking call outlasts its wait, and records the end later', async () => {
      await put('actions/slow', {
        exec: {
          kind: 'nodejs:20',
          code: 'import { notify } from "@containment/policy-sdk"; export async function main() { await notify("slow", 800); return { finished: true }; }',
        },
        limits: { timeout: 5000 },
      });
      const r = await h.call(
        'POST',
        '/api/v1/namespaces/_/actions/slow?blocking=true&result=true&timeout=100',
      );
      assert.equal(r.status, 202);
      assert.deepEqual(Object.keys(r.body), ['activationId']);
      assert.equal(
        (await h.call('GET', `/api/v1/namespaces/_/activations/${r.body.activationId}`)).status,
        404,
        'not recorded before it ends',
      );
      const record = await activation(r.body.activationId);
      assert.deepEqual(record.response.result, { finished: true });
      assert.ok(record.duration >= 700, `duration ${record.duration}`);

      const tooLong = await h.call('POST', '/api/v1/namespaces/_/actions/slow?blocking=true&timeout=60001');
      assert.equal(tooLong.status, 400);
    });

    it('lists with since and upto bounds', async () => {
      const first = await h.call('POST', '/api/v1/namespaces/_/actions/ok?blocking=true');
      await new Promise((r) => setTimeout(r, 20));
      const second = await h.call('POST', '/api/v1/namespaces/_/actions/ok?blocking=true');
      const ids = async (query: string): Promise<string[]> =>
        (await h.call('GET', `/api/v1/namespaces/_/activations?name=ok&${query}`)).body.map(
          (a: AnyJson) => a.activationId,
        );
      const sinceSecond = await ids(`since=${second.body.start}`);
      assert.ok(
        sinceSecond.includes(second.body.activationId) && !sinceSecond.includes(first.body.activationId),
      );
      const uptoFirst = await ids(`upto=${first.body.start}`);
      assert.ok(uptoFirst.includes(first.body.activationId) && !uptoFirst.includes(second.body.activationId));
      assert.equal((await h.call('GET', '/api/v1/namespaces/_/activations?limit=201')).status, 400);
    });
  });

  it('applies parameters in OpenWhisk order: package, then action, then invocation', async () => {
    await put('packages/layers', {
      parameters: [
        { key: 'a', value: 'package' },
        { key: 'b', value: 'package' },
        { key: 'c', value: 'package' },
      ],
    });
    await put('actions/layers/echo', {
      exec: { kind: 'nodejs:20', code: ECHO },
      parameters: [
        { key: 'b', value: 'action' },
        { key: 'c', value: 'action' },
      ],
    });
    const r = await h.call('POST', '/api/v1/namespaces/_/actions/layers/echo?blocking=true&result=true', {
      c: 'invoke',
    });
    assert.deepEqual(r.body, { a: 'package', b: 'action', c: 'invoke' });
  });

  it('fires a trigger into one activation per active rule, each caused by the trigger', async () => {
    await put('triggers/scan-completed', { parameters: [{ key: 'source', value: 'trigger' }] });
    await put('actions/first', {
      exec: { kind: 'nodejs:20', code: 'export function main(p) { return { first: p }; }' },
    });
    await put('actions/second', {
      exec: { kind: 'nodejs:20', code: 'export function main(p) { return { second: p }; }' },
    });
    const none = await h.call('POST', '/api/v1/namespaces/_/triggers/scan-completed', { pod: 'web-1' });
    assert.equal(none.status, 204);
    const before = (await h.call('GET', '/api/v1/namespaces/_/activations?name=scan-completed')).body;
    assert.deepEqual(before, []);

    await put('rules/to-first', { trigger: '/_/scan-completed', action: '/_/first' });
    await put('rules/to-second', { trigger: 'scan-completed', action: 'second' });
    await put('rules/dormant', { trigger: 'scan-completed', action: 'first' });
    const off = await h.call('POST', '/api/v1/namespaces/_/rules/dormant', { status: 'inactive' });
    assert.equal(off.body.status, 'inactive');
    assert.equal(
      (await h.call('POST', '/api/v1/namespaces/_/rules/dormant', { status: 'paused' })).status,
      400,
    );

    const trigger = await h.call('GET', '/api/v1/namespaces/_/triggers/scan-completed');
    assert.deepEqual(Object.keys(trigger.body.rules).sort(), [
      'guest/dormant',
      'guest/to-first',
      'guest/to-second',
    ]);

    const fired = await h.call('POST', '/api/v1/namespaces/_/triggers/scan-completed', { pod: 'web-1' });
    assert.equal(fired.status, 202);
    const record = await activation(fired.body.activationId);
    assert.deepEqual(record.response.result, { source: 'trigger', pod: 'web-1' });
    const entries = record.logs
      .map((l: string) => JSON.parse(l))
      .sort((a: AnyJson, b: AnyJson) => a.rule.localeCompare(b.rule));
    assert.deepEqual(
      entries.map((e: AnyJson) => [e.rule, e.action, e.success]),
      [
        ['guest/to-first', 'guest/first', true],
        ['guest/to-second', 'guest/second', true],
      ],
    );
    const first = await activation(entries[0].activationId);
    const second = await activation(entries[1].activationId);
    assert.deepEqual(first.response.result, { first: { source: 'trigger', pod: 'web-1' } });
    assert.deepEqual(second.response.result, { second: { source: 'trigger', pod: 'web-1' } });
    assert.equal(first.cause, fired.body.activationId);
    assert.equal(second.cause, fired.body.activationId);

    const badRule = await h.call('PUT', '/api/v1/namespaces/_/rules/elsewhere', {
      trigger: '/other/t',
      action: 'first',
    });
    assert.equal(badRule.status, 403);
    const dangling = await h.call('PUT', '/api/v1/namespaces/_/rules/dangling', {
      trigger: 'scan-completed',
      action: 'missing',
    });
    assert.equal(dangling.status, 404);
  });

  it('routes SDK calls to the policy host with the activation’s namespace and action', async () => {
    await put('actions/caller', {
      exec: {
        kind: 'typescript',
        code: 'import { kubernetes } from "@containment/policy-sdk"; export async function main(p: { pod: string }) { return { answer: await kubernetes.quarantine(p.pod) }; }',
      },
      annotations: [{ key: 'dry-run', value: true }],
    });
    const r = await h.call('POST', '/api/v1/namespaces/_/actions/caller?blocking=true', { pod: 'web-1' });
    assert.deepEqual(r.body.response.result, { answer: { ok: true, method: 'kubernetes.quarantine' } });
    const call = sdkCalls.find((c) => c.method === 'kubernetes.quarantine');
    assert.ok(call);
    assert.equal(call.namespace, 'guest');
    assert.equal(call.action, 'caller');
    assert.deepEqual(call.args, ['web-1']);
    assert.equal(call.context.activationId, r.body.activationId);
    assert.equal(call.context.annotations['dry-run'], true);
  });
});

describe('function runtime without a policy host, and the guest key', () => {
  it('generates the guest key once, keeps it across restarts, and rejects SDK calls clearly', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'functions-guest-'));
    try {
      const first = await startHarness({ guestAuth: null, dataDir });
      const auth = first.running.generatedGuestAuth;
      assert.ok(auth !== undefined && /^[\w-]+:\S{16,}$/.test(auth));
      assert.equal((await first.call('GET', '/api/v1/namespaces', undefined, auth)).body[0], 'guest');
      const r = await first.call(
        'PUT',
        '/api/v1/namespaces/_/actions/sdk',
        {
          exec: {
            kind: 'nodejs:20',
            code: 'import { notify } from "@containment/policy-sdk"; export async function main() { try { await notify("c", "m"); return { sent: true }; } catch (e) { return { refused: String(e.message) }; } }',
          },
        },
        auth,
      );
      assert.equal(r.status, 200);
      const out = await first.call(
        'POST',
        '/api/v1/namespaces/_/actions/sdk?blocking=true&result=true',
        {},
        auth,
      );
      assert.match(out.body.refused, /no policy SDK host configured/);
      await first.close();

      const second = await startHarness({ guestAuth: null, dataDir });
      assert.equal(second.running.generatedGuestAuth, undefined);
      assert.equal(
        (await second.call('GET', '/api/v1/namespaces/_/actions/sdk', undefined, auth)).status,
        200,
      );
      await second.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
