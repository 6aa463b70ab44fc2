/**
 * The reference runtime policy (`policies/examples/runtime-response.ts`), compiled with
 * compilePolicy and run in the real QuickJS sandbox with the real SDK host, against the real
 * action API over a LocalEnforcer and a real Podman container: for each rule id, exactly which
 * SecurityActions it requests. Activations are dry runs (the enforcer records and "runs" each
 * action without touching the container), so one container serves every case.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { PodmanFixture } from '../../enforcement/podman-fixture.test-helper.js';
import type { RuntimeDetection } from '../../runtime/contracts.js';
import { repoRoot, sharedDataDir } from '../../testing/shared-data.js';
import { compilePolicy } from '../sandbox/compile.js';
import { QuickJsSandbox } from '../sandbox/quickjs-sandbox.js';
import type { JsonObject } from '../sandbox/sandbox.js';
import { AuditNotifier } from './notifier.js';
import { enforcementScopeOf } from './enforcement-scope.js';
import { DRY_RUN_ANNOTATION, PolicySdkHost, httpEnforcement, httpFindings } from './policy-sdk-host.js';
import { startPolicyLoop } from './policy-loop.test-helper.js';
import type { PolicyLoop } from './policy-loop.test-helper.js';

const POLICY = 'runtime-response';
let fixture: PodmanFixture | string | undefined;
let loop: PolicyLoop | undefined;
let sandbox: QuickJsSandbox | undefined;
let host: PolicySdkHost;
let code = '';
let activations = 0;
const notifier = new AuditNotifier({ logger: pino({ enabled: false }) });

before(async () => {
  fixture = await PodmanFixture.create();
  if (!(fixture instanceof PodmanFixture)) return;
  const running = await startPolicyLoop(join(sharedDataDir, 'osv', 'npm'), fixture);
  loop = running;
  host = new PolicySdkHost({
    credentials: (ns) => (ns === 'local' ? running.local : undefined),
    findings: httpFindings(running.scanner.url),
    enforcement: httpEnforcement(running.actions.url),
    notifier,
  });
  sandbox = new QuickJsSandbox({ workers: 1 });
  const file = join(repoRoot, 'policies', 'examples', `${POLICY}.ts`);
  code = (await compilePolicy(readFileSync(file, 'utf8'), { filename: file, loader: 'ts' })).code;
});
after(async () => {
  await sandbox?.close();
  await loop?.close();
  if (fixture instanceof PodmanFixture) fixture.cleanup();
});

function detection(
  pod: string,
  ruleId: string,
  state: RuntimeDetection['baseline']['state'],
): RuntimeDetection {
  const now = new Date().toISOString();
  return {
    workload: {
      cluster: 'local',
      namespace: 'local',
      pod,
      container: pod,
      node: 'n1',
      image: 'img',
      containerId: 'c'.repeat(64),
    },
    ruleId,
    kind: 'process',
    severity: 'CRITICAL',
    title: `test ${ruleId}`,
    detectedAt: now,
    process: { pid: 42, uid: 0, name: 'sh', exe: '/bin/busybox', argv: ['sh'] },
    evidence: {},
    baseline: { state },
    count: 1,
    firstSeen: now,
    lastSeen: now,
    fingerprint: `fp-${ruleId}-${state}-${++activations}`,
    source: 'ebpf',
  };
}

/** One dry-run activation with the whole CloudEvent; the SecurityActions it created, by kind. */
async function activate(
  d: RuntimeDetection & { detectionId?: number },
): Promise<{ decision: string; actions: string[]; refs: (string | undefined)[] }> {
  const l = loop as PolicyLoop;
  const before = new Set(l.enforcer.list({ namespaces: '*', limit: 1000 }).map((a) => a.metadata.name));
  const params = {
    specversion: '1.0',
    id: `evt-${++activations}`,
    source: '/containment/local',
    type: 'dev.containment.runtime.detected',
    data: d,
  } as unknown as JsonObject;
  const r = await (sandbox as QuickJsSandbox).invoke({
    actionKey: `local/${POLICY}@1`,
    code,
    params,
    limits: { timeoutMs: 30_000, memoryMb: 128, logLimitBytes: 65_536, resultLimitBytes: 65_536 },
    sdk: (method, args) =>
      host.invokeSdk('local', POLICY, method, args, {
        activationId: `activation-${activations}`,
        annotations: { [DRY_RUN_ANNOTATION]: true },
        scope: enforcementScopeOf(undefined, params),
      }),
  });
  assert.equal(r.status, 'success', `${r.error ?? ''} ${JSON.stringify(r.result)} ${r.logs.join('\n')}`);
  const created = l.enforcer
    .list({ namespaces: '*', limit: 1000 })
    .filter((a) => !before.has(a.metadata.name))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const a of created) assert.equal(a.spec.target.pod, d.workload.pod);
  const out = r.result as { decision: string; actions: { action: string; phase: string | null }[] };
  for (const a of out.actions) assert.equal(a.phase, 'Succeeded');
  assert.equal(created.length, out.actions.length, 'every action the policy reports was recorded');
  return {
    decision: out.decision,
    actions: out.actions.map((a) => a.action),
    refs: created.map((a) => a.spec.findingsRef),
  };
}

test('runtime-response: exactly which SecurityActions each rule id requests', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx || !loop) return;
  const pod = fx.run('exec sleep 3600').name;
  const cases: [string, RuntimeDetection['baseline']['state'], string[]][] = [
    ['reverse_shell', 'none', ['Quarantine']],
    ['crypto_miner', 'monitor', ['Quarantine']],
    ['drift_executable', 'protect', ['Snapshot', 'TerminateGraceful']],
    ['drift_executable', 'monitor', []],
    ['drift_executable', 'none', []],
    ['shell_in_container', 'protect', []],
    ['sensitive_file_read', 'none', []],
    ['falco:Terminal shell in container', 'none', []],
  ];
  for (const [ruleId, state, expected] of cases) {
    const notes = notifier.recent().length;
    // The scanner's aggregate id, which the audit trail follows from the action.
    const detectionId = 100 + activations;
    const out = await activate({ ...detection(pod, ruleId, state), detectionId });
    assert.deepEqual(out.actions, expected, `${ruleId} (${state})`);
    for (const ref of out.refs) assert.equal(ref, `detection/${detectionId}`);
    if (expected.length === 0) {
      assert.equal(out.decision, 'notify');
      assert.equal(notifier.recent().length, notes + 1, `${ruleId}: one notification`);
      assert.equal(notifier.recent().at(-1)?.channel, 'runtime');
    } else assert.equal(notifier.recent().length, notes, `${ruleId}: acts without notifying`);
  }
});
