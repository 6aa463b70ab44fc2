/**
 * Compatibility: the official `openwhisk` npm client, unchanged, against this runtime — entities,
 * invocations, trigger fires, rule status and activations, through the URLs the client builds itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import openwhisk from 'openwhisk';
import { GUEST_AUTH, eventually, startHarness } from './functions-harness.test-helper.js';
import type { AnyJson, Harness } from './functions-harness.test-helper.js';

const HELLO_V1 = 'function main(params) { return { greeting: "Hi " + params.name }; }';
const HELLO_V2 = `function main(params) {
  console.log("greeting " + params.name);
  return { greeting: "Hello " + params.name };
}`;

describe('the openwhisk npm client against this runtime', () => {
  let h: Harness;
  let ow: ReturnType<typeof openwhisk>;

  before(async () => {
    h = await startHarness();
    ow = openwhisk({ apihost: h.url, api_key: GUEST_AUTH });
  });
  after(() => h.close());

  /** The client rejects with an OpenWhiskError carrying the HTTP status. */
  async function rejectsWith(promise: Promise<unknown>, statusCode: number): Promise<void> {
    await assert.rejects(promise, (e: AnyJson) => {
      assert.equal(e.statusCode, statusCode, String(e.message));
      return true;
    });
  }

  async function activation(id: string): Promise<AnyJson> {
    return eventually(
      () =>
        ow.activations
          .get({ name: id }) // the client takes an activation's id as its name
          .catch((e: AnyJson) => (e.statusCode === 404 ? undefined : Promise.reject(e))),
      `activation ${id}`,
    );
  }

  it('creates, refuses to re-create, updates, gets and lists actions', async () => {
    const created: AnyJson = await ow.actions.create({ name: 'hello', action: HELLO_V1 });
    assert.equal(created.name, 'hello');
    assert.equal(created.namespace, 'guest');
    assert.equal(created.version, '0.0.1');
    assert.equal(created.exec.kind, 'nodejs:default');

    await rejectsWith(ow.actions.create({ name: 'hello', action: HELLO_V1 }), 409);

    const updated: AnyJson = await ow.actions.update({
      name: 'hello',
      action: HELLO_V2,
      params: { name: 'default' },
    });
    assert.equal(updated.version, '0.0.2');

    const got: AnyJson = await ow.actions.get({ name: 'hello' });
    assert.equal(got.exec.code, HELLO_V2);
    assert.deepEqual(got.parameters, [{ key: 'name', value: 'default' }]);
    assert.deepEqual(got.limits, { timeout: 60_000, memory: 256, logs: 10, concurrency: 1 });
    const withoutCode = { name: 'hello', code: false }; // `code` is not in the client's typings
    const noCode: AnyJson = await ow.actions.get(withoutCode);
    assert.equal(noCode.exec.code, undefined);

    const list: AnyJson[] = await ow.actions.list();
    assert.deepEqual(
      list.map((a) => a.name),
      ['hello'],
    );
  });

  it('invokes blocking with result, and non-blocking then reads the activation and its logs', async () => {
    assert.deepEqual(
      await ow.actions.invoke({ name: 'hello', blocking: true, result: true, params: { name: 'ow' } }),
      {
        greeting: 'Hello ow',
      },
    );
    // The action's default parameter applies when the invocation does not set it.
    assert.deepEqual(await ow.actions.invoke({ name: 'hello', blocking: true, result: true }), {
      greeting: 'Hello default',
    });

    const full: AnyJson = await ow.actions.invoke({
      name: 'hello',
      blocking: true,
      params: { name: 'record' },
    });
    assert.equal(full.response.status, 'success');
    assert.equal(full.response.statusCode, 0);
    assert.equal(full.response.success, true);
    assert.match(full.activationId, /^[0-9a-f]{32}$/);

    const started: AnyJson = await ow.actions.invoke({ name: 'hello', params: { name: 'later' } });
    assert.deepEqual(Object.keys(started), ['activationId']);
    const record = await activation(started.activationId);
    assert.equal(record.name, 'hello');
    assert.equal(record.namespace, 'guest');
    assert.deepEqual(record.response.result, { greeting: 'Hello later' });
    assert.ok(record.end >= record.start);
    assert.equal(record.duration, record.end - record.start);
    assert.ok(record.annotations.some((a: AnyJson) => a.key === 'path' && a.value === 'guest/hello'));

    const logs: AnyJson = await ow.activations.logs({ name: started.activationId });
    assert.equal(logs.logs.length, 1);
    assert.match(logs.logs[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z\s+stdout: greeting later$/);
  });

  it('fires a trigger: 204 without a rule, 202 with an active rule, 204 again once it is disabled', async () => {
    const trigger: AnyJson = await ow.triggers.create({
      name: 'notices',
      trigger: { parameters: [{ key: 'name', value: 'trigger' }] },
    });
    assert.equal(trigger.name, 'notices');

    const none: AnyJson = await ow.triggers.invoke({ name: 'notices', params: { name: 'nobody' } });
    assert.equal(none?.activationId, undefined);

    const rule: AnyJson = await ow.rules.create({
      name: 'notify-hello',
      action: 'hello',
      trigger: 'notices',
    });
    assert.equal(rule.status, 'active');
    assert.deepEqual(rule.action, { name: 'hello', path: 'guest' });

    const fired: AnyJson = await ow.triggers.invoke({ name: 'notices', params: { name: 'fired' } });
    assert.match(fired.activationId, /^[0-9a-f]{32}$/);
    const triggerRecord = await activation(fired.activationId);
    assert.equal(triggerRecord.name, 'notices');
    assert.equal(triggerRecord.logs.length, 1);
    const entry = JSON.parse(triggerRecord.logs[0]);
    assert.equal(entry.rule, 'guest/notify-hello');
    assert.equal(entry.action, 'guest/hello');
    assert.equal(entry.success, true);
    const actionRecord = await activation(entry.activationId);
    assert.equal(actionRecord.cause, fired.activationId);
    assert.deepEqual(actionRecord.response.result, { greeting: 'Hello fired' });

    await ow.rules.disable({ name: 'notify-hello' });
    assert.equal(((await ow.rules.get({ name: 'notify-hello' })) as AnyJson).status, 'inactive');
    const afterDisable: AnyJson = await ow.triggers.invoke({ name: 'notices' });
    assert.equal(afterDisable?.activationId, undefined);

    await ow.rules.enable({ name: 'notify-hello' });
    assert.equal(((await ow.rules.get({ name: 'notify-hello' })) as AnyJson).status, 'active');
    const again: AnyJson = await ow.triggers.invoke({ name: 'notices' });
    assert.match(again.activationId, /^[0-9a-f]{32}$/);
    // The trigger's own parameter reaches the action when the fire does not override it.
    const againEntry = JSON.parse((await activation(again.activationId)).logs[0]);
    assert.deepEqual((await activation(againEntry.activationId)).response.result, {
      greeting: 'Hello trigger',
    });
  });

  it('lists activations with name, limit, skip and docs', async () => {
    const all: AnyJson[] = await ow.activations.list({ name: 'hello', limit: 200 });
    assert.ok(all.length >= 6, `expected at least 6 hello activations, got ${all.length}`);
    assert.ok(all.every((a) => a.name === 'hello'));
    assert.ok(
      all.every((a) => a.response === undefined && a.statusCode === 0),
      'summaries carry statusCode only',
    );
    const starts = all.map((a) => a.start);
    assert.deepEqual(
      starts,
      [...starts].sort((a, b) => b - a),
      'newest first',
    );

    const page: AnyJson[] = await ow.activations.list({ name: 'hello', limit: 2, skip: 1 });
    assert.deepEqual(
      page.map((a) => a.activationId),
      all.slice(1, 3).map((a) => a.activationId),
    );

    const docs: AnyJson[] = await ow.activations.list({ name: 'hello', limit: 1, docs: true });
    assert.equal(docs.length, 1);
    assert.equal(docs[0].response.success, true);
    assert.ok(Array.isArray(docs[0].logs));

    const triggers: AnyJson[] = await ow.activations.list({ name: 'notices' });
    assert.ok(triggers.length >= 2 && triggers.every((a) => a.name === 'notices'));
  });

  it('runs packaged actions with package defaults, and deletes entities', async () => {
    await ow.packages.create({
      name: 'security',
      package: { parameters: [{ key: 'name', value: 'package' }] },
    });
    await ow.actions.create({ name: 'security/greet', action: HELLO_V1 });
    assert.deepEqual(await ow.actions.invoke({ name: 'security/greet', blocking: true, result: true }), {
      greeting: 'Hi package',
    });
    const pkg: AnyJson = await ow.packages.get({ name: 'security' });
    assert.deepEqual(
      pkg.actions.map((a: AnyJson) => a.name),
      ['greet'],
    );

    await ow.rules.delete({ name: 'notify-hello' });
    await ow.triggers.delete({ name: 'notices' });
    await ow.actions.delete({ name: 'security/greet' });
    await ow.packages.delete({ name: 'security' });
    await rejectsWith(ow.rules.get({ name: 'notify-hello' }), 404);
    await rejectsWith(ow.triggers.get({ name: 'notices' }), 404);
    await rejectsWith(ow.packages.get({ name: 'security' }), 404);
  });

  it('reports a wrong key as 401 and an application error as 502 with the error', async () => {
    const intruder = openwhisk({ apihost: h.url, api_key: GUEST_AUTH.replace(/.$/, 'x') });
    await rejectsWith(intruder.actions.list(), 401);

    await ow.actions.create({
      name: 'fails',
      action: 'function main() { return { error: "no findings" }; }',
    });
    await assert.rejects(ow.actions.invoke({ name: 'fails', blocking: true, result: true }), (e: AnyJson) => {
      assert.equal(e.statusCode, 502);
      assert.match(e.message, /no findings/);
      return true;
    });
  });
});
