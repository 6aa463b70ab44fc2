/**
 * Attack tests for the enforcement scope: a policy fired by an event about one workload tries to act
 * on others — another pod, another container of the pod, the same pod in another cluster, a pod it
 * wrote into its own parameters, with no event at all — through the real runtime (REST API, QuickJS
 * sandbox, PolicySdkHost) and through the bundled host. Every refusal must happen before anything
 * leaves the runtime: the real action API in front of the enforcer counts the HTTP requests it gets.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startActionApi } from '../../enforcement/action-api.js';
import type { RunningActionApi } from '../../enforcement/action-api.js';
import { LocalEnforcer } from '../../enforcement/local-enforcer.js';
import { DockerEngine } from '../../engine/docker/docker-engine.js';
import { ErrorCodes } from '../../errors.js';
import { runPolicy } from '../adapters/bundled-host.js';
import { startHarness } from '../functions-harness.test-helper.js';
import type { AnyJson, Harness } from '../functions-harness.test-helper.js';
import { call as sdkCall } from '../sdk/policy-sdk.js';
import {
  ENFORCEMENT_SCOPE_ANNOTATION,
  checkEnforcementScope,
  enforcementScopeOf,
  eventWorkloads,
} from './enforcement-scope.js';
import { DRY_RUN_ANNOTATION, PolicySdkHost, httpEnforcement, httpFindings } from './policy-sdk-host.js';

const TOKEN = 'enforcer-scope-test-0123456789abcdef';

describe('enforcement scope (pure)', () => {
  const event = {
    specversion: '1.0',
    type: 'dev.containment.scan.completed',
    data: { workload: { cluster: 'local', namespace: 'local', pod: 'web-1', node: 'n', image: 'i' } },
  };
  it('takes the workload from the CloudEvent, or from its data passed as parameters', () => {
    assert.deepEqual(eventWorkloads(event), [{ cluster: 'local', namespace: 'local', pod: 'web-1' }]);
    assert.deepEqual(eventWorkloads(event.data), [{ cluster: 'local', namespace: 'local', pod: 'web-1' }]);
    assert.deepEqual(eventWorkloads({ data: { target: { namespace: 'shop', pod: 'api' } } }), [
      { namespace: 'shop', pod: 'api' },
    ]);
    assert.deepEqual(eventWorkloads({ pod: 'web-1' }), []);
    assert.deepEqual(eventWorkloads({ data: { workload: { namespace: 'local', pod: 7 } } }), []);
  });
  it('refuses what the event does not name; only namespace mode (exactly) widens it', () => {
    const scope = enforcementScopeOf(undefined, event);
    const check = (pod: { namespace: string; name: string; container?: string }, cluster = 'local') =>
      checkEnforcementScope(scope, 'kubernetes.quarantine', cluster, pod);
    check({ namespace: 'local', name: 'web-1' });
    check({ namespace: 'local', name: 'web-1', container: 'app' });
    const denied = { code: ErrorCodes.SCOPE_DENIED };
    assert.throws(() => check({ namespace: 'local', name: 'web-2' }), denied);
    assert.throws(() => check({ namespace: 'other', name: 'web-1' }), denied);
    assert.throws(() => check({ namespace: 'local', name: 'web-1' }, 'east'), denied);
    // Reading findings and notifying are not enforcement.
    checkEnforcementScope(scope, 'vs.getFindings', 'local', { namespace: 'local', name: 'web-2' });
    for (const value of ['Namespace', 'namespace ', true, 'cluster', null])
      assert.equal(enforcementScopeOf(value, event).mode, 'event', String(value));
    assert.equal(enforcementScopeOf('namespace', {}).mode, 'namespace');
    // Parameters from an anonymous web request cannot name the event.
    assert.deepEqual(enforcementScopeOf(undefined, event, false), { mode: 'event', workloads: [] });
  });
  it('a container named by the event: that container or the whole pod, not a sibling', () => {
    const scope = enforcementScopeOf(undefined, {
      data: { workload: { namespace: 'shop', pod: 'api', container: 'app' } },
    });
    checkEnforcementScope(scope, 'kubernetes.snapshot', 'c', { namespace: 'shop', name: 'api' });
    checkEnforcementScope(scope, 'kubernetes.snapshot', 'c', {
      namespace: 'shop',
      name: 'api',
      container: 'app',
    });
    assert.throws(
      () =>
        checkEnforcementScope(scope, 'kubernetes.snapshot', 'c', {
          namespace: 'shop',
          name: 'api',
          container: 'sidecar',
        }),
      { code: ErrorCodes.SCOPE_DENIED },
    );
  });
});

describe('enforcement scope through the runtime and the bundled host', () => {
  const dir = mkdtempSync(join(tmpdir(), 'enforcement-scope-'));
  let actions: RunningActionApi;
  let enforcer: LocalEnforcer;
  let h: Harness;
  let requests = 0;

  before(async () => {
    enforcer = new LocalEnforcer({
      // Dry runs only: the engine is never reached.
      engine: new DockerEngine(join(dir, 'no-engine.sock')),
      dataDir: join(dir, 'enforcer'),
      node: 'node-test',
      exportFilesystem: false,
    });
    actions = await startActionApi({
      host: '127.0.0.1',
      port: 0,
      enforcer,
      tokens: [{ token: TOKEN, name: 'policies', role: 'policy', namespaces: ['local', 'guest'] }],
    });
    actions.app.server.on('request', () => void (requests += 1));
    const policyHost = new PolicySdkHost({
      credentials: () => ({
        cluster: 'local',
        scannerToken: 'unused',
        enforcerToken: TOKEN,
        namespaces: ['local'],
      }),
      findings: httpFindings('http://127.0.0.1:9'),
      enforcement: httpEnforcement(actions.url),
    });
    h = await startHarness({ policyHost, rateLimit: false });
  });
  after(async () => {
    await h?.close();
    await actions?.close();
    enforcer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The policy tries every call in `tries`; each outcome is `ok` or the error message. */
  const POLICY = `import { call } from '@containment/policy-sdk';
    export async function main(p) {
      // Rewriting its own parameters must not widen the scope (it was fixed before main ran).
      if (p.data && p.data.workload) p.data.workload.pod = 'db-1';
      const out = [];
      for (const [method, ...args] of p.tries) {
        try { await call(method, ...args); out.push('ok'); } catch (e) { out.push(String(e.message)); }
      }
      return { out };
    }`;

  async function deploy(name: string, scope?: string): Promise<void> {
    const annotations = [
      { key: DRY_RUN_ANNOTATION, value: true },
      ...(scope === undefined ? [] : [{ key: ENFORCEMENT_SCOPE_ANNOTATION, value: scope }]),
    ];
    const put = await h.call('PUT', `/api/v1/namespaces/_/actions/${name}?overwrite=true`, {
      exec: { kind: 'nodejs:20', code: POLICY },
      annotations,
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
  }

  const event = (pod: string, extra: Record<string, unknown> = {}) => ({
    specversion: '1.0',
    id: `e-${pod}`,
    source: '/containment/local',
    type: 'dev.containment.scan.completed',
    data: { workload: { cluster: 'local', namespace: 'local', pod, node: 'n', image: 'i', ...extra } },
  });

  async function invoke(name: string, params: Record<string, unknown>): Promise<string[]> {
    const r = await h.call('POST', `/api/v1/namespaces/_/actions/${name}?blocking=true&result=true`, params);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return (r.body as { out: string[] }).out;
  }

  const securityEvents = async (): Promise<AnyJson[]> =>
    (await h.call('GET', '/api/v1/namespaces/_/security-events?limit=1000')).body as AnyJson[];

  it('acts on the event workload; every other target is refused before any request', async () => {
    await deploy('scoped');
    const before = requests;
    const eventsBefore = (await securityEvents()).length;
    const out = await invoke('scoped', {
      ...event('web-1'),
      tries: [
        ['kubernetes.quarantine', 'local/web-1'],
        ['kubernetes.quarantine', 'local/db-1'],
        ['kubernetes.snapshot', { namespace: 'local', name: 'db-1' }],
        ['kubernetes.terminate', 'local/db-1'],
        ['kubernetes.terminateGraceful', 'local/db-1', { gracePeriodSeconds: 1 }],
        ['kubernetes.release', 'local/db-1'],
        ['kubernetes.label', 'local/db-1', { team: 'x' }],
      ],
    });
    assert.equal(out[0], 'ok');
    for (const refused of out.slice(1))
      assert.match(refused, /^SCOPE_DENIED: .*local\/db-1 is not a workload/);
    assert.equal(requests - before, 1, 'only the in-scope call reached the action API');
    assert.deepEqual(
      enforcer.list({ namespaces: '*', limit: 100 }).map((a) => `${a.spec.action} ${a.spec.target.pod}`),
      ['Quarantine web-1'],
    );
    const denied = (await securityEvents()).slice(eventsBefore).filter((e) => e.kind === 'scope-denied');
    assert.equal(denied.length, 6);
    assert.match(denied[0].reason, /kubernetes\.quarantine: pod local\/db-1/);
    assert.match(denied[0].source, /^activation [0-9a-f]{32}$/);
  });

  it('refuses a sibling container, another cluster, and an activation with no event', async () => {
    await deploy('scoped');
    const before = requests;
    const sibling = await invoke('scoped', {
      ...event('api', { container: 'app' }),
      tries: [['kubernetes.quarantine', { namespace: 'local', name: 'api', container: 'sidecar' }]],
    });
    const east = await invoke('scoped', {
      ...event('web-1', { cluster: 'east' }),
      tries: [['kubernetes.quarantine', 'local/web-1']],
    });
    const none = await invoke('scoped', { tries: [['kubernetes.quarantine', 'local/web-1']] });
    for (const out of [sibling, east, none]) assert.match(out[0] ?? '', /^SCOPE_DENIED: /);
    assert.match(none[0] ?? '', /no triggering event/);
    assert.equal(requests, before);
  });

  it('a trigger fire (the security-notices path) gives the event its scope', async () => {
    await deploy('fired');
    await h.call('PUT', '/api/v1/namespaces/_/triggers/scans', {});
    await h.call('PUT', '/api/v1/namespaces/_/rules/scans-fired', { trigger: 'scans', action: 'fired' });
    const fired = await h.call('POST', '/api/v1/namespaces/_/triggers/scans', {
      ...event('web-7'),
      tries: [
        ['kubernetes.quarantine', 'local/web-7'],
        ['kubernetes.quarantine', 'local/web-8'],
      ],
    });
    assert.equal(fired.status, 202);
    let activation: AnyJson;
    for (let i = 0; i < 200 && activation === undefined; i++) {
      const list = await h.call('GET', '/api/v1/namespaces/_/activations?name=fired&docs=true');
      activation = (list.body as AnyJson[])[0];
      if (activation === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(activation, 'the rule ran');
    const out = activation.response.result.out as string[];
    assert.equal(out[0], 'ok');
    assert.match(out[1] ?? '', /^SCOPE_DENIED: /);
  });

  it('the namespace annotation acts on any pod of the namespace scope, and no further', async () => {
    await deploy('wide', 'namespace');
    const before = requests;
    const out = await invoke('wide', {
      ...event('web-1'),
      tries: [
        ['kubernetes.quarantine', 'local/db-2'],
        ['kubernetes.quarantine', 'kube-system/etcd'],
      ],
    });
    assert.equal(out[0], 'ok');
    assert.match(out[1] ?? '', /outside the namespaces/);
    assert.equal(requests - before, 1);
  });

  it('the bundled host (OpenWhisk/Knative) refuses the same way, before any request', async () => {
    const config = {
      scannerUrl: 'http://127.0.0.1:9',
      scannerToken: 'unused',
      actionsUrl: actions.url,
      enforcerToken: TOKEN,
      cluster: 'local',
      namespaces: ['local'],
      dryRun: true,
    };
    const policy = {
      main: async () => {
        const ok = await sdkCall('kubernetes.quarantine', 'local/web-3');
        try {
          await sdkCall('kubernetes.quarantine', 'local/db-3');
          return { ok, refused: false };
        } catch (e) {
          return { ok, refused: (e as { code?: string }).code };
        }
      },
    };
    // Importing bundled-host bound the SDK module to the bundled host, as a bundle's entry does.
    const before = requests;
    const lines: string[] = [];
    const log = console.log;
    console.log = (line: string) => void lines.push(line);
    let result: unknown;
    try {
      result = await runPolicy(policy, 'bundled', 'act-1', config, event('web-3'));
    } finally {
      console.log = log;
    }
    assert.equal((result as { refused: string }).refused, ErrorCodes.SCOPE_DENIED);
    assert.equal(requests - before, 1);
    const logged = lines.map((l) => JSON.parse(l) as AnyJson).find((l) => l.msg === 'security event');
    assert.equal(logged?.securityEvent.kind, 'scope-denied');
    const wide = await runPolicy(policy, 'bundled', 'act-2', config, event('web-3'), 'namespace');
    assert.equal((wide as { refused: unknown }).refused, false);
  });
});
