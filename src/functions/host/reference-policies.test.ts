/**
 * The shipped policies (`policies/examples/`), compiled with compilePolicy and run in the real
 * QuickJS sandbox with the real SDK host, against a real scanner and the real action API over a
 * LocalEnforcer on real Podman containers (local mode: namespace `local`, pod = container name).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { verifyBundle } from '../../linux/evidence.js';
import { isQuarantined } from '../../linux/netns-quarantine.js';
import {
  PodmanFixture,
  eventually,
  httpReachable,
  reachableFromNetns,
} from '../../enforcement/podman-fixture.test-helper.js';
import type { TestContainer } from '../../enforcement/podman-fixture.test-helper.js';
import type { ScanCompletedData } from '../../events/cloud-event.js';
import { repoRoot, sharedDataDir } from '../../testing/shared-data.js';
import { compilePolicy } from '../sandbox/compile.js';
import { QuickJsSandbox } from '../sandbox/quickjs-sandbox.js';
import type { JsonObject, JsonValue } from '../sandbox/sandbox.js';
import { AuditNotifier } from './notifier.js';
import { enforcementScopeOf } from './enforcement-scope.js';
import { DRY_RUN_ANNOTATION, PolicySdkHost, httpEnforcement, httpFindings } from './policy-sdk-host.js';
import { REMOTE_SHELL, startPolicyLoop } from './policy-loop.test-helper.js';
import type { PolicyLoop } from './policy-loop.test-helper.js';

const EXAMPLES = [
  'quarantine-or-terminate',
  'quarantine-critical-fixable',
  'notify-only',
  'release-when-clean',
];

let fixture: PodmanFixture | string | undefined;
let loop: PolicyLoop;
let sandbox: QuickJsSandbox;
let host: PolicySdkHost;
const notifier = new AuditNotifier({ logger: pino({ enabled: false }) });
const compiled = new Map<string, string>();
let activations = 0;

before(async () => {
  fixture = await PodmanFixture.create();
  loop = await startPolicyLoop(
    join(sharedDataDir, 'osv', 'npm'),
    fixture instanceof PodmanFixture ? fixture : undefined,
  );
  host = new PolicySdkHost({
    credentials: (ns) => (ns === 'local' ? loop.local : undefined),
    findings: httpFindings(loop.scanner.url),
    enforcement: httpEnforcement(loop.actions.url),
    notifier,
  });
  sandbox = new QuickJsSandbox({ workers: 1 });
  for (const name of EXAMPLES) {
    const file = join(repoRoot, 'policies', 'examples', `${name}.ts`);
    const { code } = await compilePolicy(readFileSync(file, 'utf8'), { filename: file, loader: 'ts' });
    compiled.set(name, code);
  }
});
after(async () => {
  await sandbox?.close();
  await loop?.close();
  if (fixture instanceof PodmanFixture) fixture.cleanup();
});

interface Outcome {
  pod: { namespace: string; name: string };
  decision: string;
  actions?: { name: string; action: string; dryRun: boolean; phase: string | null; message: string | null }[];
  [key: string]: JsonValue | undefined;
}

/** One activation of an example in the sandbox; the SDK calls go to the real host. */
async function activate(
  policy: string,
  params: JsonObject,
  options: { dryRun?: boolean; activationId?: string } = {},
): Promise<Outcome> {
  const activationId = options.activationId ?? `activation-${++activations}`;
  const annotations: Record<string, JsonValue> = options.dryRun ? { [DRY_RUN_ANNOTATION]: true } : {};
  const r = await sandbox.invoke({
    actionKey: `local/${policy}@1`,
    code: compiled.get(policy) as string,
    params,
    limits: { timeoutMs: 30_000, memoryMb: 128, logLimitBytes: 65_536, resultLimitBytes: 65_536 },
    // As the runtime does: the examples act only on the triggering event's workload (the default).
    sdk: (method, args) =>
      host.invokeSdk('local', policy, method, args, {
        activationId,
        annotations,
        scope: enforcementScopeOf(undefined, params),
      }),
  });
  assert.equal(
    r.status,
    'success',
    `${policy}: ${r.error ?? ''} ${JSON.stringify(r.result)} ${r.logs.join('\n')}`,
  );
  return r.result as Outcome;
}

const eventParams = (data: ScanCompletedData): JsonObject => data as unknown as JsonObject;
/** As the security-notices trigger may pass it: the whole CloudEvent. */
const cloudEvent = (data: ScanCompletedData): JsonObject => ({
  specversion: '1.0',
  id: `evt-${++activations}`,
  source: '/containment/local',
  type: 'dev.containment.scan.completed',
  data: eventParams(data),
});

async function startWeb(fx: PodmanFixture): Promise<TestContainer> {
  const web = fx.run('exec httpd -f -p 8080 -h /www');
  assert.ok(await eventually(() => httpReachable(web.ip, 8080)), 'httpd never answered');
  return web;
}

test('a pod the scanner has never seen is left alone', async () => {
  const out = await activate('quarantine-or-terminate', {
    workload: { cluster: 'local', namespace: 'local', pod: 'never-scanned', node: 'n', image: 'i' },
    scanTime: new Date().toISOString(),
    summary: {},
    newFindings: [],
    insecureConfigurations: [],
  });
  assert.equal(out.decision, 'none');
  assert.equal(loop.enforcer.list({ namespaces: '*', limit: 10 }).length, 0);
});

test('the reference policy leaves other events on its trigger (runtime detections) alone', async () => {
  const data = await loop.report('detected-pod', { insecureConfigurations: [REMOTE_SHELL] });
  const before = loop.enforcer.list({ namespaces: '*', limit: 1000 }).length;
  const out = await activate('quarantine-or-terminate', {
    ...cloudEvent(data),
    type: 'dev.containment.runtime.detected',
  });
  assert.equal(out.decision, 'none');
  assert.equal(loop.enforcer.list({ namespaces: '*', limit: 1000 }).length, before);
  // The same pod's scan event is acted on: the guard is about the event type, nothing else.
  assert.equal(
    (await activate('quarantine-or-terminate', { ...cloudEvent(data), id: 'scan-1' })).decision,
    'Quarantine',
  );
});

test('the reference policy and the other examples on real containers', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const shell = await startWeb(fx);
  const vulnerable = await startWeb(fx);
  const clean = await startWeb(fx);
  const shellEvent = await loop.report(shell.name, { insecureConfigurations: [REMOTE_SHELL] });
  const vulnEvent = await loop.report(vulnerable.name, { npm: [['minimist', '1.2.5']] });
  assert.ok(vulnEvent.newFindings.length > 0);
  const count = (): number => loop.enforcer.list({ namespaces: '*', limit: 1000 }).length;

  await t.test('dry run: records what would be done and changes nothing', async () => {
    const a = await activate('quarantine-or-terminate', cloudEvent(shellEvent), { dryRun: true });
    const b = await activate(
      'quarantine-or-terminate',
      { ...eventParams(vulnEvent), gracePeriodSeconds: 1 },
      { dryRun: true },
    );
    assert.deepEqual([a.decision, b.decision], ['Quarantine', 'TerminateGraceful']);
    for (const action of [...(a.actions ?? []), ...(b.actions ?? [])]) {
      assert.equal(action.dryRun, true);
      assert.equal(action.phase, 'Succeeded', action.message ?? '');
      assert.match(action.message ?? '', /^dry run: would .*nothing was changed$/);
      assert.equal(existsSync(join(loop.evidenceDir, action.name)), false);
    }
    assert.equal(await isQuarantined({ pid: shell.pid }), false);
    assert.equal(await httpReachable(shell.ip, 8080), true);
    assert.equal(fx.exists(vulnerable.name), true);
    assert.equal(await httpReachable(vulnerable.ip, 8080), true);
  });

  await t.test('notify-only tells the security channel and changes nothing', async () => {
    const before = count();
    const out = await activate('notify-only', eventParams(vulnEvent));
    assert.equal(out.notified, true);
    const sent = notifier.recent().at(-1);
    assert.equal(sent?.channel, 'security');
    const vulns = (sent?.message as { vulnerabilities: { package: string; severity: string }[] })
      .vulnerabilities;
    assert.ok(vulns.some((v) => v.package === 'minimist@1.2.5' && v.severity === 'CRITICAL'));
    assert.equal(count(), before);
  });

  await t.test('quarantine-critical-fixable acts only on a CRITICAL finding with a fix', async () => {
    const none = await activate('quarantine-critical-fixable', eventParams(shellEvent));
    assert.equal(none.decision, 'none');
    assert.equal(await isQuarantined({ pid: shell.pid }), false);
    const out = await activate('quarantine-critical-fixable', eventParams(vulnEvent));
    assert.equal(out.decision, 'Quarantine');
    assert.equal(out.phase, 'Succeeded');
    assert.ok((out.upgrades as string[]).some((u) => u.startsWith('minimist 1.2.5 → 1.2.6')));
    assert.equal(await isQuarantined({ pid: vulnerable.pid }), true);
    assert.equal(notifier.recent().at(-1)?.channel, 'security');
  });

  await t.test('reference policy: a remote shell is quarantined, for real, once per activation', async () => {
    const out = await activate('quarantine-or-terminate', cloudEvent(shellEvent), {
      activationId: 'ref-shell',
    });
    assert.equal(out.decision, 'Quarantine');
    const [action] = out.actions ?? [];
    assert.equal(action?.phase, 'Succeeded', action?.message ?? '');
    const stored = loop.enforcer.get(action.name);
    assert.equal(stored?.spec.requestedBy, 'policy/quarantine-or-terminate@ref-shell');
    assert.match(stored?.spec.reason ?? '', /remote_shell_installed \(\/usr\/sbin\/sshd\)/);
    assert.equal(await isQuarantined({ pid: shell.pid }), true);
    assert.equal(await httpReachable(shell.ip, 8080), false, 'host → container');
    assert.equal(await reachableFromNetns(shell.pid, shell.gateway), false, 'container → host');
    assert.equal(fx.describe(shell.name).pid, shell.pid, 'still running');
    // The runtime retries the activation: the same SecurityAction, nothing new.
    const before = count();
    const again = await activate('quarantine-or-terminate', cloudEvent(shellEvent), {
      activationId: 'ref-shell',
    });
    assert.deepEqual(again.actions, out.actions);
    assert.equal(count(), before);
  });

  await t.test('reference policy: vulnerable packages → snapshot and graceful termination', async () => {
    const out = await activate('quarantine-or-terminate', {
      ...eventParams(vulnEvent),
      gracePeriodSeconds: 1,
    });
    assert.equal(out.decision, 'TerminateGraceful');
    assert.equal(out.vulnerablePackages, vulnEvent.newFindings.length);
    const [action] = out.actions ?? [];
    assert.equal(action?.phase, 'Succeeded', action?.message ?? '');
    const bundle = join(loop.evidenceDir, action.name);
    assert.equal(existsSync(join(bundle, 'manifest.json')), true);
    assert.deepEqual(await verifyBundle(bundle), []);
    assert.equal(fx.exists(vulnerable.name), false, 'container removed');
    assert.match(loop.enforcer.get(action.name)?.spec.reason ?? '', /minimist@1\.2\.5/);
  });

  await t.test('release-when-clean releases a pod whose rescan is clean, and only that one', async () => {
    const q = (await host.invokeSdk(
      'local',
      'ops',
      'kubernetes.quarantine',
      [`local/${clean.name}`, { wait: true }],
      {
        activationId: 'manual-quarantine',
        annotations: {},
        // An operator's setup step, not a policy reacting to an event.
        scope: { mode: 'namespace' },
      },
    )) as { status: { phase: string } };
    assert.equal(q.status.phase, 'Succeeded');
    assert.equal(await httpReachable(clean.ip, 8080), false);
    const cleanEvent = await loop.report(clean.name, {});
    const out = await activate('release-when-clean', eventParams(cleanEvent));
    assert.equal(out.decision, 'Release');
    assert.equal(out.phase, 'Succeeded');
    assert.equal(await isQuarantined({ pid: clean.pid }), false);
    assert.equal(await httpReachable(clean.ip, 8080), true);
    // The remote-shell pod is still dirty: it stays quarantined.
    const dirty = await activate('release-when-clean', eventParams(shellEvent));
    assert.equal(dirty.decision, 'none');
    assert.equal(await isQuarantined({ pid: shell.pid }), true);
  });
});
