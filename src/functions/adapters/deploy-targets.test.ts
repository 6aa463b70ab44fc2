/**
 * Deploying the reference policy elsewhere than this runtime, against the real scanner and the real
 * enforcement (action) API (`startPolicyLoop`, no Podman needed: actions are dry runs or refused):
 * - OpenWhisk: the deployment goes through the official `openwhisk` npm client to this project's
 *   OpenWhisk-compatible runtime, which stores the entities as OpenWhisk would; the test reads them
 *   back with the same client and checks they are what OpenWhisk expects. Our runtime cannot run
 *   arbitrary Node code in its sandbox, so the deployed `nodejs:20` code is then run the way
 *   OpenWhisk's Node.js runtime loads it (evaluate, call the global `main`) in a plain Node child
 *   process, with the package's default parameters and a CloudEvent: the policy reads the real
 *   findings API and creates SecurityActions through the real action API. The web action, run the
 *   same way, fires the trigger through this runtime's API.
 * - Knative: the manifests parse into the expected objects, and the bundled CloudEvents handler,
 *   run as `node handler.cjs`, takes structured and binary CloudEvents and runs the policy.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CloudEvent, HTTP } from 'cloudevents';
import { loadAll } from 'js-yaml';
import openwhisk from 'openwhisk';
import type { ScanCompletedData } from '../../events/cloud-event.js';
import { newWebhookSecret, signDelivery } from '../../events/signature.js';
import { repoRoot, sharedDataDir } from '../../testing/shared-data.js';
import { GUEST_AUTH, eventually, startHarness } from '../functions-harness.test-helper.js';
import type { AnyJson, Harness } from '../functions-harness.test-helper.js';
import type { JsonObject } from '../sandbox/sandbox.js';
import { REMOTE_SHELL, startPolicyLoop } from '../host/policy-loop.test-helper.js';
import type { PolicyLoop } from '../host/policy-loop.test-helper.js';
import type { WhiskApi, WhiskCollection } from '../../clients/whisk-client.js';
import { CONFIG_PARAM } from './bundled-config.js';
import type { BundledConfig } from './bundled-config.js';
import { HANDLER_FILE, knativeManifests, toYaml } from './knative/manifests.js';
import {
  NOTICES_WEB_ACTION,
  OPENWHISK_POLICY_PACKAGE,
  deployToOpenWhisk,
} from './openwhisk/policy-deploy.js';
import { bundlePolicy, readPolicy } from './policy-bundle.js';

const REFERENCE = join(repoRoot, 'policies', 'examples', 'quarantine-or-terminate.ts');
const POLICY = 'quarantine-or-terminate';

type Ow = ReturnType<typeof openwhisk>;

/** The deployment's WhiskApi over the official client, unchanged. */
function officialClientApi(ow: Ow): WhiskApi {
  const notFound = (e: AnyJson) => (e.statusCode === 404 ? undefined : Promise.reject(e));
  const resource = (collection: WhiskCollection): AnyJson =>
    ({ actions: ow.actions, packages: ow.packages, triggers: ow.triggers, rules: ow.rules })[collection];
  const bodyKey = { actions: 'action', packages: 'package', triggers: 'trigger', rules: 'rule' } as const;
  return {
    get: (collection, name) => resource(collection).get({ name }).catch(notFound),
    put: (collection, name, body) =>
      collection === 'rules'
        ? ow.rules.update({ name, trigger: String(body.trigger), action: String(body.action) } as AnyJson)
        : resource(collection).update({ name, [bodyKey[collection]]: body }),
    delete: (collection, name) =>
      resource(collection)
        .delete({ name })
        .then(
          () => true,
          (e: AnyJson) => (e.statusCode === 404 ? false : Promise.reject(e)),
        ),
    list: (collection) => resource(collection).list({ limit: 200 }),
    setRuleStatus: async (name, status) => {
      await (status === 'active' ? ow.rules.enable({ name }) : ow.rules.disable({ name }));
    },
  };
}

/** Runs `node <script>` with `input` on stdin; resolves with stdout parsed as JSON. */
function runNode(script: string, input: unknown, env: NodeJS.ProcessEnv = {}): Promise<AnyJson> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve({ code, result: JSON.parse(last), stdout: out, stderr: err });
      } catch {
        reject(new Error(`exit ${code}: ${out}\n${err}`));
      }
    });
    child.stdin.end(JSON.stringify(input));
  });
}

/**
 * What OpenWhisk's Node.js runtime does with non-binary code (runner.js): evaluate it inside a
 * function and take `main` (or module.exports.main), then call it with the parameters.
 */
const OPENWHISK_RUNNER = `
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const main = eval('(function(){' + input.code + '\\ntry { return main } catch (e) { if (e.name === "ReferenceError") { return module.exports.main || exports.main } else throw e } })()');
Promise.resolve()
  .then(() => main(input.params))
  .then((r) => process.stdout.write('\\n' + JSON.stringify(r)), (e) => process.stdout.write('\\n' + JSON.stringify({ rejected: String(e && e.message || e) })));
`;

describe('policy deploy to OpenWhisk and Knative', () => {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-targets-'));
  const runner = join(dir, 'openwhisk-runner.cjs');
  let h: Harness;
  let loop: PolicyLoop;
  let ow: Ow;
  let shellEvent: ScanCompletedData;
  let sdk: Omit<BundledConfig, 'dryRun'>;

  const asCloudEvent = (data: ScanCompletedData, id: string): JsonObject =>
    JSON.parse(
      JSON.stringify(
        new CloudEvent({ id, source: '/containment/local', type: 'dev.containment.scan.completed', data }),
      ),
    ) as JsonObject;

  before(async () => {
    writeFileSync(runner, OPENWHISK_RUNNER);
    [h, loop] = await Promise.all([
      startHarness({ rateLimit: false }),
      startPolicyLoop(join(sharedDataDir, 'osv', 'npm'), undefined),
    ]);
    ow = openwhisk({ apihost: h.url, api_key: GUEST_AUTH });
    shellEvent = await loop.report('shell-pod', { insecureConfigurations: [REMOTE_SHELL] });
    sdk = {
      scannerUrl: loop.scanner.url,
      scannerToken: loop.local.scannerToken,
      actionsUrl: loop.actions.url,
      enforcerToken: loop.local.enforcerToken,
      cluster: 'local',
      namespaces: ['local'],
    };
  });
  after(async () => {
    await h?.close();
    await loop?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('--target openwhisk', () => {
    let secret: string;

    before(async () => {
      const result = await deployToOpenWhisk(officialClientApi(ow), readPolicy(REFERENCE), {
        sdk,
        dryRun: true,
        params: { gracePeriodSeconds: 5 },
      });
      assert.equal(result.action, `${OPENWHISK_POLICY_PACKAGE}/${POLICY}`);
      assert.equal(typeof result.generatedSecret, 'string');
      secret = result.generatedSecret as string;
    });

    it('creates exactly the entities OpenWhisk expects, read back with the official client', async () => {
      const pkg: AnyJson = await ow.packages.get({ name: OPENWHISK_POLICY_PACKAGE });
      const config = pkg.parameters.find((p: AnyJson) => p.key === CONFIG_PARAM)?.value;
      assert.deepEqual(config, { ...sdk, dryRun: true });

      const action: AnyJson = await ow.actions.get({ name: `${OPENWHISK_POLICY_PACKAGE}/${POLICY}` });
      assert.equal(action.exec.kind, 'nodejs:20');
      assert.equal(action.exec.binary, false);
      assert.match(action.exec.code, /function main\(params\)/);
      assert.doesNotMatch(action.exec.code, /\brequire\(/, 'a plain script: nothing to install');
      assert.equal(action.limits.concurrency, 1);
      assert.deepEqual(action.parameters, [{ key: 'gracePeriodSeconds', value: 5 }]);
      assert.equal(action.namespace, `guest/${OPENWHISK_POLICY_PACKAGE}`);

      const web: AnyJson = await ow.actions.get({ name: NOTICES_WEB_ACTION });
      const annotations = Object.fromEntries(web.annotations.map((a: AnyJson) => [a.key, a.value]));
      assert.equal(web.exec.kind, 'nodejs:20');
      assert.equal(annotations['web-export'], true);
      assert.equal(annotations['raw-http'], true);
      assert.equal(annotations.final, true);
      assert.equal(annotations['require-whisk-auth'], secret);
      assert.equal(annotations['provide-api-key'], true);

      const trigger: AnyJson = await ow.triggers.get({ name: 'security-notices' });
      assert.deepEqual(Object.values(trigger.rules), [
        { action: { name: POLICY, path: `guest/${OPENWHISK_POLICY_PACKAGE}` }, status: 'active' },
      ]);
      const rule: AnyJson = await ow.rules.get({ name: `security-notices-${POLICY}` });
      assert.equal(rule.status, 'active');
    });

    it('keeps the web action secret on a redeploy and leaves the rule active', async () => {
      await ow.rules.disable({ name: `security-notices-${POLICY}` });
      const again = await deployToOpenWhisk(officialClientApi(ow), readPolicy(REFERENCE), {
        sdk,
        dryRun: true,
      });
      assert.equal(again.generatedSecret, undefined);
      const web: AnyJson = await ow.actions.get({ name: NOTICES_WEB_ACTION });
      assert.equal(web.annotations.find((a: AnyJson) => a.key === 'require-whisk-auth').value, secret);
      assert.equal(
        ((await ow.rules.get({ name: `security-notices-${POLICY}` })) as AnyJson).status,
        'active',
      );
    });

    it('runs as OpenWhisk runs it: the bundled SDK reads real findings and creates the SecurityAction', async () => {
      const action: AnyJson = await ow.actions.get({ name: `${OPENWHISK_POLICY_PACKAGE}/${POLICY}` });
      const pkg: AnyJson = await ow.packages.get({ name: OPENWHISK_POLICY_PACKAGE });
      // Parameter precedence as OpenWhisk applies it: package, action, then the trigger's event.
      const params = Object.fromEntries(
        [...pkg.parameters, ...action.parameters].map((p: AnyJson) => [p.key, p.value]),
      );
      const activationId = 'a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5';
      const run = await runNode(
        runner,
        { code: action.exec.code, params: { ...params, ...asCloudEvent(shellEvent, 'evt-ow-1') } },
        { __OW_ACTIVATION_ID: activationId },
      );
      assert.equal(run.result.decision, 'Quarantine', run.stdout + run.stderr);
      assert.deepEqual(run.result.remoteShells, ['remote_shell_installed']);
      const [done] = run.result.actions;
      assert.equal(done.dryRun, true);
      // The real action API has it, named and attributed as the runtime's own SDK host would.
      const stored = loop.enforcer
        .list({ namespaces: '*', limit: 100 })
        .find((a) => a.metadata.name === done.name);
      assert.ok(stored, `SecurityAction ${done.name} is in the enforcer`);
      assert.equal(stored.spec.requestedBy, `policy/${POLICY}@${activationId}`);
      assert.equal(stored.spec.dryRun, true);
      assert.equal(stored.spec.action, 'Quarantine');
      assert.match(stored.spec.reason, /remote shell/);
    });

    it('refuses, inside the bundle, a pod outside its namespaces and a missing configuration', async () => {
      const action: AnyJson = await ow.actions.get({ name: `${OPENWHISK_POLICY_PACKAGE}/${POLICY}` });
      const outside = {
        ...shellEvent,
        workload: { ...shellEvent.workload, namespace: 'kube-system', pod: 'etcd' },
      } as ScanCompletedData;
      const before = loop.enforcer.list({ namespaces: '*', limit: 1000 }).length;
      const forbidden = await runNode(runner, {
        code: action.exec.code,
        params: { [CONFIG_PARAM]: { ...sdk, dryRun: true }, ...asCloudEvent(outside, 'evt-ow-2') },
      });
      assert.match(forbidden.result.rejected, /kube-system\/etcd is outside the namespaces/);
      // An event cannot smuggle in its own configuration: without the package's, nothing runs.
      const noConfig = await runNode(runner, {
        code: action.exec.code,
        params: asCloudEvent(shellEvent, 'evt-ow-3'),
      });
      assert.match(noConfig.result.error, /__containment parameter is missing or invalid/);
      assert.equal(loop.enforcer.list({ namespaces: '*', limit: 1000 }).length, before);
    });

    it('the web action turns structured and binary CloudEvents into trigger fires, and refuses junk', async () => {
      const web: AnyJson = await ow.actions.get({ name: NOTICES_WEB_ACTION });
      const env = { __OW_API_HOST: h.url, __OW_API_KEY: GUEST_AUTH };
      const ce = new CloudEvent({
        id: 'evt-web-1',
        source: '/containment/local',
        type: 'dev.containment.scan.completed',
        data: shellEvent,
      });
      const structured = HTTP.structured(ce);
      const binary = HTTP.binary(new CloudEvent({ ...ce, id: 'evt-web-2' }));
      // As OpenWhisk may pass a body whose content type it deems binary: base64.
      const encoded = HTTP.structured(new CloudEvent({ ...ce, id: 'evt-web-3' }));
      encoded.body = Buffer.from(String(encoded.body)).toString('base64');
      for (const [message, id] of [
        [structured, 'evt-web-1'],
        [binary, 'evt-web-2'],
        [encoded, 'evt-web-3'],
      ] as const) {
        const run = await runNode(
          runner,
          {
            code: web.exec.code,
            params: {
              __ow_method: 'post',
              __ow_headers: message.headers,
              __ow_body: String(message.body),
              __ow_path: '',
            },
          },
          env,
        );
        assert.equal(run.result.statusCode, 202, JSON.stringify(run.result));
        const fired: AnyJson = await eventually(
          () =>
            ow.activations
              .get({ name: run.result.body.activationId })
              .catch((e: AnyJson) => (e.statusCode === 404 ? undefined : Promise.reject(e))),
          'the trigger activation',
        );
        assert.equal(fired.name, 'security-notices');
        assert.equal(fired.response.result.id, id);
        assert.equal(fired.response.result.data.workload.pod, 'shell-pod');
      }
      const junk = await runNode(
        runner,
        {
          code: web.exec.code,
          params: {
            __ow_method: 'post',
            __ow_headers: { 'content-type': 'application/json' },
            __ow_body: '{"a":1}',
          },
        },
        env,
      );
      assert.equal(junk.result.statusCode, 400);
      assert.match(junk.result.body.error, /not a CloudEvent/);
    });
  });

  describe('--target knative', () => {
    let handler: string;
    before(async () => {
      handler = await bundlePolicy('knative', readPolicy(REFERENCE), POLICY);
    });

    it('writes a ConfigMap with the handler, a Service running it and Triggers on the Broker', () => {
      const yaml = toYaml(
        knativeManifests({
          name: POLICY,
          namespace: 'security',
          image: 'registry.example/node:20-slim',
          handler,
          scannerUrl: 'http://scanner.containment:8080',
          actionsUrl: 'http://actions.containment:8082',
          namespaces: ['shop', 'web'],
          dryRun: true,
        }),
      );
      const objects = loadAll(yaml) as AnyJson[];
      assert.deepEqual(
        objects.map((o) => `${o.apiVersion} ${o.kind} ${o.metadata.name}`),
        [
          `v1 ConfigMap ${POLICY}-policy`,
          `serving.knative.dev/v1 Service ${POLICY}`,
          `eventing.knative.dev/v1 Trigger ${POLICY}-scan-completed`,
          `eventing.knative.dev/v1 Trigger ${POLICY}-findings-changed`,
        ],
      );
      assert.ok(objects.every((o) => o.metadata.namespace === 'security'));
      assert.equal(objects[0].data[HANDLER_FILE], handler, 'the bundle survives YAML');
      const container = objects[1].spec.template.spec.containers[0];
      assert.equal(container.image, 'registry.example/node:20-slim');
      assert.deepEqual(container.command, ['node', `/var/containment/policy/${HANDLER_FILE}`]);
      assert.deepEqual(container.volumeMounts, [
        { name: 'policy', mountPath: '/var/containment/policy', readOnly: true },
      ]);
      assert.deepEqual(objects[1].spec.template.spec.volumes, [
        { name: 'policy', configMap: { name: `${POLICY}-policy` } },
      ]);
      const env = Object.fromEntries(container.env.map((e: AnyJson) => [e.name, e.value ?? e.valueFrom]));
      assert.equal(env.CONTAINMENT_NAMESPACES, 'shop,web');
      assert.equal(env.CONTAINMENT_DRY_RUN, 'true');
      assert.deepEqual(env.CONTAINMENT_SCANNER_TOKEN, {
        secretKeyRef: { name: `${POLICY}-credentials`, key: 'scanner-token' },
      });
      assert.equal(container.securityContext.runAsNonRoot, true);
      for (const [i, type] of [
        [2, 'dev.containment.scan.completed'],
        [3, 'dev.containment.findings.changed'],
      ] as const) {
        assert.equal(objects[i].spec.broker, 'default');
        assert.deepEqual(objects[i].spec.filter, { attributes: { type } });
        assert.deepEqual(objects[i].spec.subscriber.ref, {
          apiVersion: 'serving.knative.dev/v1',
          kind: 'Service',
          name: POLICY,
        });
      }
      assert.doesNotMatch(yaml, new RegExp(loop.local.scannerToken), 'no token without a Secret asked for');
    });

    /** Starts the bundled handler as Knative runs it; resolves with its URL and a stop function. */
    async function startHandler(
      env: Record<string, string>,
    ): Promise<{ url: string; stop: () => Promise<void> }> {
      const file = join(dir, HANDLER_FILE);
      writeFileSync(file, handler);
      const child = spawn(process.execPath, [file], {
        env: {
          PATH: process.env.PATH ?? '',
          PORT: '0',
          CONTAINMENT_LISTEN_HOST: '127.0.0.1',
          CONTAINMENT_SCANNER_URL: sdk.scannerUrl,
          CONTAINMENT_SCANNER_TOKEN: sdk.scannerToken,
          CONTAINMENT_ACTIONS_URL: sdk.actionsUrl,
          CONTAINMENT_ENFORCER_TOKEN: sdk.enforcerToken,
          CONTAINMENT_NAMESPACES: 'local',
          CONTAINMENT_DRY_RUN: 'true',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /"port":(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (code) => reject(new Error(`handler exited ${code}: ${out}`)));
      });
      const stop = () =>
        new Promise<void>((resolve) => {
          child.removeAllListeners('exit');
          child.on('exit', () => resolve());
          child.kill('SIGTERM');
        });
      return { url: `http://127.0.0.1:${port}/`, stop };
    }

    it('with a webhook secret: only signed structured deliveries run, a replay does not, even after a restart', async () => {
      const [secret, next] = [newWebhookSecret(), newWebhookSecret()];
      const replayFile = join(dir, 'replay.json');
      const env = {
        CONTAINMENT_WEBHOOK_SECRET: `${secret} ${next}`,
        CONTAINMENT_REPLAY_FILE: replayFile,
      };
      const post = async (url: string, body: string, headers: Record<string, string>) => {
        const res = await fetch(url, { method: 'POST', headers, body });
        return { status: res.status, body: (await res.json().catch(() => ({}))) as AnyJson };
      };
      const structured = { 'content-type': 'application/cloudevents+json' };
      const event = (id: string) =>
        JSON.stringify(
          new CloudEvent({
            id,
            source: '/containment/local',
            type: 'dev.containment.scan.completed',
            data: shellEvent,
          }),
        );
      let h = await startHandler(env);
      try {
        const body = event('kn-signed-1');
        const signed = { ...structured, ...signDelivery(body, secret, 'kn-signed-1') };
        const first = await post(h.url, body, signed);
        assert.equal(first.status, 200, JSON.stringify(first.body));
        assert.equal(first.body.result.decision, 'Quarantine');
        // The replay: answered, not run again.
        assert.deepEqual((await post(h.url, body, signed)).body, { duplicate: true });
        // Unsigned, signed by a stranger, a changed body, stale: refused.
        assert.equal((await post(h.url, body, structured)).status, 401);
        const stranger = { ...structured, ...signDelivery(body, newWebhookSecret(), 'kn-x') };
        assert.equal((await post(h.url, body, stranger)).status, 401);
        assert.equal((await post(h.url, `${body} `, signed)).status, 401);
        const old = signDelivery(body, secret, 'kn-old', new Date(Date.now() - 10 * 60_000));
        assert.equal((await post(h.url, body, { ...structured, ...old })).status, 401);
        // The signed bytes with forged binary-mode attributes: refused, never read from headers.
        const forged = {
          ...signDelivery(body, secret, 'kn-forged'),
          'content-type': 'application/json',
          'ce-specversion': '1.0',
          'ce-id': 'forged',
          'ce-source': '/containment/local',
          'ce-type': 'dev.containment.action.completed',
        };
        assert.equal((await post(h.url, body, forged)).status, 415);
        // Rotation: the next secret alone is accepted too.
        const rotated = event('kn-signed-2');
        const byNext = await post(h.url, rotated, {
          ...structured,
          ...signDelivery(rotated, next, 'kn-signed-2'),
        });
        assert.equal(byNext.status, 200);
        // A restart in the middle of the window: the replay file still knows the id.
        await h.stop();
        h = await startHandler(env);
        assert.deepEqual((await post(h.url, body, signed)).body, { duplicate: true });
      } finally {
        await h.stop();
      }
    });

    it('runs the policy behind the CloudEvents handler for structured and binary events', async () => {
      const h = await startHandler({});
      try {
        const url = h.url;
        const send = async (message: { headers: Record<string, unknown>; body: unknown }) => {
          const res = await fetch(url, {
            method: 'POST',
            headers: message.headers as Record<string, string>,
            body: String(message.body),
          });
          return { status: res.status, body: (await res.json()) as AnyJson };
        };
        const ce = new CloudEvent({
          id: 'kn-1',
          source: '/containment/local',
          type: 'dev.containment.scan.completed',
          data: shellEvent,
        });
        const structured = await send(HTTP.structured(ce));
        assert.equal(structured.status, 200, JSON.stringify(structured.body));
        assert.equal(structured.body.result.decision, 'Quarantine');
        assert.equal(structured.body.result.actions[0].dryRun, true);

        const binary = await send(HTTP.binary(new CloudEvent({ ...ce, id: 'kn-2' })));
        assert.equal(binary.status, 200);
        assert.equal(binary.body.result.decision, 'Quarantine');
        const name = binary.body.result.actions[0].name as string;
        assert.ok(loop.enforcer.list({ namespaces: '*', limit: 1000 }).some((a) => a.metadata.name === name));

        // Knative may deliver twice: the same source+id does not run the policy again.
        const again = await send(HTTP.binary(new CloudEvent({ ...ce, id: 'kn-2' })));
        assert.equal(again.body.duplicate, true);

        const junk = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"x":1}',
        });
        assert.equal(junk.status, 400);
        const huge = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: 'x'.repeat(2 * 1024 * 1024),
        }).catch(() => undefined);
        assert.ok(huge === undefined || huge.status === 413);
        const health = await fetch(`${url}healthz`);
        assert.equal(health.status, 200);
      } finally {
        await h.stop();
      }
      assert.ok(readFileSync(join(dir, HANDLER_FILE), 'utf8').length > 0);
    });
  });
});
