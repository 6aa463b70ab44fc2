/**
 * The decision log's enforcer wrapper: monitor mode turns every action but Release into a dry run
 * whatever the requester sent, each new action is reported once with its outcome (a retry of a
 * known id is not reported again), refusals are reported, and the one-line and JSON forms carry
 * time, workload, finding, policy, action and outcome. The inner enforcer here is a small
 * in-memory one (the real LocalEnforcer needs an engine; up-monitor.test.ts runs it on Podman).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { ActionPreview, Enforcer } from '../enforcement/local-enforcer.js';
import { parseSecurityAction } from '../enforcement/security-action.js';
import type { SecurityAction } from '../enforcement/security-action.js';
import { UnavailableEnforcer } from '../enforcement/unavailable-enforcer.js';
import { enforceSetting } from '../cli/up-command.js';
import { decisionOf, formatDecision, ObservedEnforcer } from './decision-log.js';
import type { Decision } from './decision-log.js';
import { decisionOutput } from './up-console.js';

/** Stores what it is given and "carries it out" by marking it Succeeded (or Failed when asked). */
class MemoryEnforcer implements Enforcer {
  readonly received: SecurityAction[] = [];
  private readonly stored = new Map<string, SecurityAction>();
  async submit(input: unknown): Promise<SecurityAction> {
    const action = parseSecurityAction(input);
    this.received.push(action);
    const known = this.stored.get(action.metadata.name);
    if (known) return known;
    const failed = action.spec.target.pod === 'gone';
    const done: SecurityAction = {
      ...action,
      status: {
        phase: failed ? 'Failed' : 'Succeeded',
        completedAt: '2026-05-01T12:03:04.000Z',
        message: failed ? 'container gone is not running' : 'done it',
        evidence: [],
        conditions: [],
      },
    };
    this.stored.set(action.metadata.name, done);
    return done;
  }
  async preview(input: unknown): Promise<ActionPreview> {
    const action = parseSecurityAction(input);
    return {
      action,
      target: { id: 'c0ffee', name: action.spec.target.pod, image: 'busybox', running: true },
      plan: `${action.spec.action} ${action.spec.target.pod}`,
      dryRun: action.spec.dryRun,
    };
  }
  get(id: string) {
    return this.stored.get(id);
  }
  list() {
    return [...this.stored.values()];
  }
  close() {}
}

const request = (name: string, action: string, pod = 'web-1', dryRun = false) => ({
  metadata: { name },
  spec: {
    target: { namespace: 'local', pod },
    action,
    reason: 'remote shell: remote_shell_installed (/usr/sbin/sshd)',
    requestedBy: `policy/quarantine-or-terminate@${'a'.repeat(32)}`,
    dryRun,
  },
});

describe('ObservedEnforcer', () => {
  it('previews in the mode it runs in: monitor mode says every action but Release is a dry run', async () => {
    const monitor = new ObservedEnforcer(new MemoryEnforcer(), { enforce: false, onDecision: () => {} });
    const enforcing = new ObservedEnforcer(new MemoryEnforcer(), { enforce: true, onDecision: () => {} });
    const quarantine = await monitor.preview(request('p-1', 'Quarantine'));
    assert.equal(quarantine.dryRun, true);
    assert.equal(quarantine.action.spec.dryRun, true);
    assert.equal((await monitor.preview(request('p-2', 'Release'))).dryRun, false);
    assert.equal((await enforcing.preview(request('p-3', 'Quarantine'))).dryRun, false);
    await assert.rejects(
      new ObservedEnforcer(new UnavailableEnforcer('no engine here'), {
        enforce: true,
        onDecision: () => {},
      }).preview(request('p-4', 'Quarantine')),
      (e: Error & { code?: string }) => e.code === 'ENGINE_UNAVAILABLE',
    );
  });

  it('in monitor mode makes every action but Release a dry run, and reports each once', async () => {
    const inner = new MemoryEnforcer();
    const seen: Decision[] = [];
    const enforcer = new ObservedEnforcer(inner, { enforce: false, onDecision: (d) => seen.push(d) });
    for (const kind of ['Quarantine', 'TerminateGraceful', 'Terminate', 'Snapshot'])
      assert.equal((await enforcer.submit(request(`a-${kind}`, kind))).spec.dryRun, true, kind);
    assert.equal((await enforcer.submit(request('a-release', 'Release'))).spec.dryRun, false);
    assert.deepEqual(
      inner.received.map((a) => [a.spec.action, a.spec.dryRun]),
      [
        ['Quarantine', true],
        ['TerminateGraceful', true],
        ['Terminate', true],
        ['Snapshot', true],
        ['Release', false],
      ],
    );
    // A retry of a known id is answered but not reported again.
    await enforcer.submit(request('a-Quarantine', 'Quarantine'));
    assert.deepEqual(
      seen.map((d) => [d.action, d.outcome]),
      [
        ['Quarantine', 'dry-run'],
        ['TerminateGraceful', 'dry-run'],
        ['Terminate', 'dry-run'],
        ['Snapshot', 'dry-run'],
        ['Release', 'done'],
      ],
    );
    assert.deepEqual(seen[0], {
      time: '2026-05-01T12:03:04.000Z',
      workload: 'local/web-1',
      finding: 'remote shell: remote_shell_installed (/usr/sbin/sshd)',
      requestedBy: 'policy/quarantine-or-terminate',
      action: 'Quarantine',
      outcome: 'dry-run',
      id: 'a-Quarantine',
      message: 'done it',
    });
  });

  it('in enforce mode passes actions through as asked, and reports failures and refusals', async () => {
    const inner = new MemoryEnforcer();
    const seen: Decision[] = [];
    const enforcer = new ObservedEnforcer(inner, { enforce: true, onDecision: (d) => seen.push(d) });
    assert.equal((await enforcer.submit(request('b-1', 'Quarantine'))).spec.dryRun, false);
    assert.equal((await enforcer.submit(request('b-2', 'Quarantine', 'web-2', true))).spec.dryRun, true);
    await enforcer.submit(request('b-3', 'Terminate', 'gone'));
    // Bad input is refused by the inner enforcer with its own error, and is no decision.
    await assert.rejects(enforcer.submit({ spec: {} }), { code: ErrorCodes.ACTION_INVALID });
    const off = new ObservedEnforcer(new UnavailableEnforcer('no engine here'), {
      enforce: true,
      onDecision: (d) => seen.push(d),
    });
    await assert.rejects(off.submit(request('b-4', 'Quarantine', 'web-4')), {
      code: ErrorCodes.ENGINE_UNAVAILABLE,
    });
    assert.deepEqual(
      seen.map((d) => [d.workload, d.outcome]),
      [
        ['local/web-1', 'done'],
        ['local/web-2', 'dry-run'],
        ['local/gone', 'failed'],
        ['local/web-4', 'refused'],
      ],
    );
    assert.match(seen[3]?.message ?? '', /enforcement is off \(no engine here\)/);
    assert.equal(seen[3]?.id, undefined);
  });

  it('never lets a failing printer change the answer', async () => {
    const enforcer = new ObservedEnforcer(new MemoryEnforcer(), {
      enforce: true,
      onDecision: () => {
        throw new Error('stdout closed');
      },
    });
    assert.equal((await enforcer.submit(request('c-1', 'Quarantine'))).status?.phase, 'Succeeded');
  });
});

describe('decision lines', () => {
  const action = parseSecurityAction({
    ...request('d-1', 'Quarantine'),
    status: { phase: 'Succeeded', completedAt: '2026-05-01T12:03:04.000Z', message: 'dry run: would …' },
  });
  action.spec.dryRun = true;
  const d = decisionOf(action, new Date());

  it('one line: time, workload, finding, policy, action, outcome', () => {
    const t = new Date(d.time);
    const hhmmss = [t.getHours(), t.getMinutes(), t.getSeconds()]
      .map((n) => String(n).padStart(2, '0'))
      .join(':');
    assert.equal(
      formatDecision(d),
      `${hhmmss} local/web-1  remote shell: remote_shell_installed (/usr/sbin/sshd)  policy/quarantine-or-terminate  Quarantine  dry-run`,
    );
    const failed = decisionOf(
      { ...action, status: { ...action.status!, phase: 'Failed', message: 'container is not running' } },
      new Date(),
    );
    assert.match(formatDecision(failed), /Quarantine {2}failed: container is not running$/);
    const manual = decisionOf(
      { ...action, spec: { ...action.spec, requestedBy: undefined, reason: '' } },
      new Date(),
    );
    assert.match(formatDecision(manual), /local\/web-1 {2}\(no reason given\) {2}manual {2}Quarantine/);
  });

  it('--json is one object per line, --quiet keeps only problems (on stderr)', () => {
    const json = decisionOutput('json', d);
    assert.equal(json?.stream, 'stdout');
    assert.deepEqual(JSON.parse(json?.line ?? ''), { event: 'decision', ...d });
    assert.ok(!json?.line.includes('\n'));
    assert.equal(decisionOutput('quiet', d), undefined);
    const refused = decisionOf(action, new Date(), 'cannot Quarantine: enforcement is off');
    assert.equal(decisionOutput('quiet', refused)?.stream, 'stderr');
    assert.match(decisionOutput('text', refused)?.line ?? '', /refused: cannot Quarantine/);
  });
});

describe('enforce setting', () => {
  it('flags > CONTAINMENT_ENFORCE > config file > monitor', () => {
    assert.equal(enforceSetting({}, {}, {}), false);
    assert.equal(enforceSetting({}, {}, { enforce: true }), true);
    assert.equal(enforceSetting({}, { CONTAINMENT_ENFORCE: 'false' }, { enforce: true }), false);
    assert.equal(enforceSetting({}, { CONTAINMENT_ENFORCE: '1' }, {}), true);
    assert.equal(enforceSetting({}, { CONTAINMENT_ENFORCE: '' }, { enforce: true }), true);
    assert.equal(enforceSetting({ monitor: true }, { CONTAINMENT_ENFORCE: 'yes' }, { enforce: true }), false);
    assert.equal(enforceSetting({ enforce: true }, { CONTAINMENT_ENFORCE: 'no' }, {}), true);
    assert.throws(
      () => enforceSetting({}, { CONTAINMENT_ENFORCE: 'maybe' }, {}),
      (e: unknown) =>
        e instanceof ContainmentError && e.code === ErrorCodes.USAGE && /CONTAINMENT_ENFORCE/.test(e.message),
    );
  });
});
