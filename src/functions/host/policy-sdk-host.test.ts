import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { ErrorCodes } from '../../errors.js';
import type { SecurityAction } from '../../enforcement/security-action.js';
import { sharedDataDir } from '../../testing/shared-data.js';
import type { PolicyCallContext } from './policy-host.js';
import type { JsonValue } from '../sandbox/sandbox.js';
import { AuditNotifier } from './notifier.js';
import { podRefSchema } from './pod-ref.js';
import { PolicySdkHost, actionName, httpEnforcement, httpFindings } from './policy-sdk-host.js';
import type { NamespaceCredentials } from './policy-sdk-host.js';
import { REMOTE_SHELL, startPolicyLoop } from './policy-loop.test-helper.js';
import type { PolicyLoop } from './policy-loop.test-helper.js';

/** The namespace scope: these tests are about the namespace boundary (event scope: its own tests). */
const ctx = (activationId: string, annotations: Record<string, JsonValue> = {}): PolicyCallContext => ({
  activationId,
  annotations,
  scope: { mode: 'namespace' },
});

describe('pod argument', () => {
  it('accepts "namespace/name" and { namespace, name, container? }', () => {
    assert.deepEqual(podRefSchema.parse('local/web-1'), { namespace: 'local', name: 'web-1' });
    assert.deepEqual(podRefSchema.parse({ namespace: 'prod', name: 'api', container: 'app' }), {
      namespace: 'prod',
      name: 'api',
      container: 'app',
    });
  });
  it('refuses anything else', () => {
    for (const bad of [
      'web-1',
      'a/b/c',
      '../x',
      'local/../../etc',
      'local/*',
      { namespace: 'local' },
      { namespace: 'local', name: 'x', uid: 'forged' },
      { namespace: '', name: 'x' },
      42,
      null,
    ]) {
      assert.equal(podRefSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });
});

describe('PolicySdkHost against the real scanner and action API', () => {
  let loop: PolicyLoop;
  let host: PolicySdkHost;
  let credentials: Record<string, NamespaceCredentials>;
  const lines: string[] = [];
  const notifier = new AuditNotifier({ logger: pino({}, { write: (s: string) => void lines.push(s) }) });

  before(async () => {
    loop = await startPolicyLoop(join(sharedDataDir, 'osv', 'npm'), undefined);
    credentials = {
      local: loop.local,
      // Misconfigured on purpose: the host would let `team-a` act on `payments`, but its tokens only
      // cover `local` — the scanner and the action API must still refuse.
      'team-a': { ...loop.local, namespaces: ['payments'] },
    };
    host = new PolicySdkHost({
      credentials: (ns) => credentials[ns],
      findings: httpFindings(loop.scanner.url),
      enforcement: httpEnforcement(loop.actions.url),
      notifier,
    });
  });
  after(async () => {
    await loop?.close();
  });

  const allActions = (): SecurityAction[] => loop.enforcer.list({ namespaces: '*', limit: 1000 });

  it('vs.getFindings returns the scanner findings of the pod, as of `at`', async () => {
    const event = await loop.report('vulnerable-1', { npm: [['minimist', '1.2.5']] });
    const findings = (await host.invokeSdk(
      'local',
      'p',
      'vs.getFindings',
      ['local/vulnerable-1', event.scanTime],
      ctx('a1'),
    )) as {
      workload: { pod: string };
      vulnerablePackages: { id: string; fixedVersion?: string; severity: string; aliases: string[] }[];
    };
    assert.equal(findings.workload.pod, 'vulnerable-1');
    const cve = findings.vulnerablePackages.find((v) => [v.id, ...v.aliases].includes('GHSA-xvch-5gv4-984h'));
    assert.ok(cve, JSON.stringify(findings.vulnerablePackages.map((v) => v.id)));
    assert.equal(cve.severity, 'CRITICAL');
    assert.equal(cve.fixedVersion, '1.2.6');
    // Before the first scan, and for a pod never scanned: nothing.
    assert.equal(
      await host.invokeSdk(
        'local',
        'p',
        'vs.getFindings',
        [{ namespace: 'local', name: 'vulnerable-1' }, '2020-01-01T00:00:00Z'],
        ctx('a1'),
      ),
      null,
    );
    assert.equal(
      await host.invokeSdk('local', 'p', 'vs.getFindings', ['local/never-scanned'], ctx('a1')),
      null,
    );
    await assert.rejects(
      host.invokeSdk('local', 'p', 'vs.getFindings', ['local/vulnerable-1', 'yesterday'], ctx('a1')),
      {
        code: ErrorCodes.SDK_CALL_INVALID,
      },
    );
  });

  it('refuses pods outside the namespace before anything leaves the host', async () => {
    const before = allActions().length;
    await loop.report('secret-pod', { insecureConfigurations: [REMOTE_SHELL] });
    for (const [method, args] of [
      ['vs.getFindings', ['payments/db']],
      ['kubernetes.quarantine', [{ namespace: 'kube-system', name: 'coredns' }]],
      ['kubernetes.terminate', ['payments/db', { wait: true }]],
    ] as const) {
      await assert.rejects(host.invokeSdk('local', 'p', method, [...args], ctx('a2')), {
        code: ErrorCodes.FORBIDDEN,
        message: /outside the namespaces/,
      });
    }
    // A function namespace that was given no credentials can reach nothing, not even its own pods.
    await assert.rejects(host.invokeSdk('guest', 'p', 'vs.getFindings', ['guest/x'], ctx('a2')), {
      code: ErrorCodes.FORBIDDEN,
      message: /no scanner or enforcer credentials/,
    });
    assert.equal(allActions().length, before);
  });

  it('the scanner and the action API refuse what the tokens do not cover, even if the host allows it', async () => {
    const before = allActions().length;
    await assert.rejects(host.invokeSdk('team-a', 'p', 'vs.getFindings', ['payments/db'], ctx('a3')), {
      code: ErrorCodes.FORBIDDEN,
    });
    await assert.rejects(host.invokeSdk('team-a', 'p', 'kubernetes.quarantine', ['payments/db'], ctx('a3')), {
      code: ErrorCodes.FORBIDDEN,
    });
    assert.equal(allActions().length, before);
  });

  it('enforcement calls create SecurityActions named by activation, method and target; retries create nothing new', async () => {
    const args: JsonValue[] = [
      'local/app-1',
      { reason: 'remote shell', findingsRef: 'scan/7', gracePeriodSeconds: 3, wait: true },
    ];
    const first = (await host.invokeSdk(
      'local',
      'pkg/reference',
      'kubernetes.terminateGraceful',
      args,
      ctx('act-1'),
    )) as {
      name: string;
      dryRun: boolean;
      status: { phase: string; message: string };
    };
    // The container does not exist (or there is no engine): a final Failed status, never silence.
    assert.equal(first.status.phase, 'Failed');
    assert.equal(first.dryRun, false);
    assert.equal(
      first.name,
      await actionName(
        { namespace: 'local', action: 'pkg/reference', context: { activationId: 'act-1' } },
        'TerminateGraceful',
        { namespace: 'local', pod: 'app-1' },
      ),
    );
    const stored = loop.enforcer.get(first.name);
    assert.deepEqual(
      {
        target: stored?.spec.target,
        action: stored?.spec.action,
        grace: stored?.spec.gracePeriodSeconds,
        reason: stored?.spec.reason,
        findingsRef: stored?.spec.findingsRef,
        requestedBy: stored?.spec.requestedBy,
        dryRun: stored?.spec.dryRun,
      },
      {
        target: { namespace: 'local', pod: 'app-1' },
        action: 'TerminateGraceful',
        grace: 3,
        reason: 'remote shell',
        findingsRef: 'scan/7',
        requestedBy: 'policy/pkg/reference@act-1',
        dryRun: false,
      },
    );
    const count = allActions().length;
    const retry = await host.invokeSdk(
      'local',
      'pkg/reference',
      'kubernetes.terminateGraceful',
      args,
      ctx('act-1'),
    );
    assert.deepEqual(retry, first);
    assert.equal(allActions().length, count);
    // Another activation, method or target is another action.
    const names = new Set([first.name]);
    for (const [method, pod, id] of [
      ['kubernetes.terminateGraceful', 'local/app-1', 'act-2'],
      ['kubernetes.quarantine', 'local/app-1', 'act-1'],
      ['kubernetes.quarantine', 'local/app-2', 'act-1'],
    ] as const) {
      const r = (await host.invokeSdk('local', 'pkg/reference', method, [pod], ctx(id))) as { name: string };
      names.add(r.name);
    }
    assert.equal(names.size, 4);
    assert.equal(allActions().length, count + 3);
  });

  it('a dry-run annotation creates the actions with dryRun: true', async () => {
    const r = (await host.invokeSdk(
      'local',
      'p',
      'kubernetes.quarantine',
      ['local/app-3', { wait: true }],
      ctx('dry-1', { 'containment-dry-run': true }),
    )) as { name: string; dryRun: boolean };
    assert.equal(r.dryRun, true);
    assert.equal(loop.enforcer.get(r.name)?.spec.dryRun, true);
    // Only the boolean true counts; a string is not a dry run.
    const s = (await host.invokeSdk(
      'local',
      'p',
      'kubernetes.quarantine',
      ['local/app-3'],
      ctx('dry-2', { 'containment-dry-run': 'yes' }),
    )) as {
      dryRun: boolean;
    };
    assert.equal(s.dryRun, false);
  });

  it('malformed SDK arguments are refused with SDK_CALL_INVALID and create nothing', async () => {
    const count = allActions().length;
    for (const [method, args] of [
      ['kubernetes.quarantine', []],
      ['kubernetes.quarantine', ['local/x', { wait: 'yes' }]],
      ['kubernetes.quarantine', ['local/x', { gracePeriodSeconds: 5 }]],
      ['kubernetes.terminateGraceful', ['local/x', { gracePeriodSeconds: -1 }]],
      ['kubernetes.terminateGraceful', ['local/x', { grace: 5 }]],
      ['kubernetes.snapshot', ['local/x', {}, 'extra']],
      ['kubernetes.release', [{ namespace: 'local', name: 'x', uid: 'someone-else' }]],
      ['kubernetes.label', ['local/x', { 'bad key!': 'v' }]],
      ['notify', ['', 'hello']],
      ['notify', ['ops channel', 'hello']],
      ['notify', ['ops', 42]],
      ['no.such.method', []],
    ] as const) {
      await assert.rejects(
        host.invokeSdk('local', 'p', method, [...args] as JsonValue[], ctx('bad')),
        { code: ErrorCodes.SDK_CALL_INVALID },
        `${method} ${JSON.stringify(args)}`,
      );
    }
    assert.equal(allActions().length, count);
  });

  it('kubernetes.label is refused clearly in single-machine mode', async () => {
    await assert.rejects(
      host.invokeSdk('local', 'p', 'kubernetes.label', ['local/x', { team: 'a' }], ctx('l')),
      {
        code: ErrorCodes.ENFORCEMENT_FAILED,
        message: /labels cannot be changed/,
      },
    );
  });

  it('notify goes to the structured log and the audit list, marked when dry-run', async () => {
    const r = await host.invokeSdk(
      'local',
      'pkg/notifier',
      'notify',
      ['security', { pod: 'local/x', n: 2 }],
      ctx('n-1'),
    );
    assert.deepEqual(r, { delivered: true, channel: 'security' });
    await host.invokeSdk(
      'local',
      'pkg/notifier',
      'notify',
      ['security', 'dry'],
      ctx('n-2', { 'containment-dry-run': true }),
    );
    const [first, second] = notifier.recent().slice(-2);
    assert.deepEqual(
      { ...first, at: undefined },
      {
        channel: 'security',
        message: { pod: 'local/x', n: 2 },
        namespace: 'local',
        action: 'pkg/notifier',
        activationId: 'n-1',
        dryRun: false,
        at: undefined,
      },
    );
    assert.equal(second?.dryRun, true);
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; notification: { activationId: string } });
    assert.deepEqual(
      logged
        .filter((l) => l.msg === 'policy notification')
        .map((l) => l.notification.activationId)
        .slice(-2),
      ['n-1', 'n-2'],
    );
  });
});

describe('AuditNotifier', () => {
  it('keeps only the most recent notifications', () => {
    const n = new AuditNotifier({ logger: pino({ enabled: false }), keep: 2 });
    for (const id of ['1', '2', '3'])
      n.notify({
        channel: 'c',
        message: id,
        namespace: 'n',
        action: 'a',
        activationId: id,
        dryRun: false,
        at: '',
      });
    assert.deepEqual(
      n.recent().map((x) => x.activationId),
      ['2', '3'],
    );
  });
});
