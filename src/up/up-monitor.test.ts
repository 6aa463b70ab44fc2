/**
 * Monitor mode, the default of `containment up`, on real Podman and nftables: a container with a
 * remote shell daemon installed makes the reference policy decide to quarantine it; the decision
 * is recorded (a Succeeded Quarantine with `dryRun: true` and "dry run: would …"), reported as a
 * decision line and joined in the audit trail — and nothing happens to the container: it keeps
 * answering HTTP from the host and its network namespace holds no quarantine table.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { QUARANTINE_TABLE } from '../linux/netns-quarantine.js';
import { httpReachable } from '../enforcement/podman-fixture.test-helper.js';
import type { SecurityAction } from '../enforcement/security-action.js';
import { findEngineSocket } from '../engine/socket.js';
import { requireOrSkip } from '../testing/shared-data.js';
import { hasCommand, podmanAvailable } from '../testing/tools.js';
import type { AuditLink } from '../audit/trail.js';
import type { Decision } from './decision-log.js';
import { formatDecision } from './decision-log.js';
import { runUp } from './run-up.js';
import type { RunningUp } from './run-up.js';
import { freePortRun } from '../testing/ports.js';
import { waitForValue } from '../testing/wait.js';

const BUSYBOX = '/usr/bin/busybox';

function whyUnavailable(): string | undefined {
  const missing = [
    ...['podman', 'nft', 'nsenter', 'tar'].filter((tool) => !hasCommand(tool)),
    ...(existsSync(BUSYBOX) ? [] : [BUSYBOX]),
    ...(findEngineSocket(undefined, process.env) === undefined ? ['a podman API socket'] : []),
  ];
  if (missing.length > 0) return `${missing.join(', ')} (needed for containment up in monitor mode)`;
  return podmanAvailable() ? undefined : 'a working podman';
}

describe('containment up in monitor mode (the default)', () => {
  const unavailable = whyUnavailable();
  const run = randomBytes(4).toString('hex');
  const image = `localhost/containment-up-monitor:${run}`;
  const name = `containment-up-monitor-${run}`;
  let tmp = '';
  let up: RunningUp | undefined;
  const decisions: Decision[] = [];

  before(async () => {
    if (unavailable !== undefined) return;
    tmp = mkdtempSync(join(tmpdir(), 'containment-up-monitor-'));
    const root = join(tmp, 'rootfs');
    for (const d of ['bin', 'www', 'usr/sbin']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
    for (const applet of ['sh', 'httpd']) symlinkSync('busybox', join(root, 'bin', applet));
    // A binary at sshd's install path: the remote-shell rule goes by the executable.
    copyFileSync(BUSYBOX, join(root, 'usr', 'sbin', 'sshd'));
    writeFileSync(join(root, 'www', 'index.html'), 'monitor mode test page\n');
    execFileSync('tar', ['-C', root, '-cf', `${root}.tar`, '.']);
    execFileSync('podman', ['import', '--quiet', `${root}.tar`, image], { stdio: 'pipe' });
    up = await runUp({
      dataDir: join(tmp, 'data'),
      port: await freePortRun(),
      rescanIntervalMs: 600_000,
      rematchIntervalMs: 1_000,
      gracePeriodSeconds: 1,
      labels: { 'containment-up-monitor': run },
      onDecision: (d) => decisions.push(d),
      logger: pino({ level: 'silent' }),
      notice: () => {},
      env: process.env,
    });
  });

  after(async () => {
    if (unavailable !== undefined) return;
    await up?.close();
    execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', name], { stdio: 'ignore' });
    execFileSync('podman', ['rmi', '--force', '--ignore', image], { stdio: 'ignore' });
    if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  });

  it('records and prints the quarantine as a dry run, and the container stays reachable', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    assert.ok(up);
    assert.equal(up.mode, 'monitor');
    const { actionApiUrl, adminToken } = up;
    execFileSync(
      'podman',
      [
        ...['run', '-d', '--name', name, '--label', `containment-up-monitor=${run}`, image],
        ...['/bin/httpd', '-f', '-p', '80', '-h', '/www'],
      ],
      { stdio: 'pipe' },
    );
    const [info] = JSON.parse(execFileSync('podman', ['inspect', name], { encoding: 'utf8' })) as {
      State: { Pid: number };
      NetworkSettings: { Networks?: Record<string, { IPAddress: string }> };
    }[];
    const ip = Object.values(info?.NetworkSettings.Networks ?? {})[0]?.IPAddress ?? '';
    const pid = info?.State.Pid ?? 0;

    const quarantine = await waitForValue(
      async () => {
        const res = await fetch(`${actionApiUrl}/v1/actions?namespace=local`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });
        const { actions } = (await res.json()) as { actions: SecurityAction[] };
        return actions.find(
          (a) =>
            a.spec.target.pod === name && a.spec.action === 'Quarantine' && a.status?.phase === 'Succeeded',
        );
      },
      `a recorded Quarantine of ${name}`,
      60_000,
    );
    assert.equal(quarantine.spec.dryRun, true);
    assert.match(quarantine.spec.requestedBy ?? '', /^policy\/quarantine-or-terminate@/);
    assert.match(quarantine.status?.message ?? '', /^dry run: would drop all traffic of container/);

    // Nothing was done: the container answers and its network namespace has no quarantine table.
    assert.equal(await httpReachable(ip, 80), true, 'the monitored container stopped answering');
    const tables = execFileSync('nsenter', ['-t', String(pid), '-n', 'nft', 'list', 'tables'], {
      encoding: 'utf8',
    });
    assert.doesNotMatch(tables, new RegExp(QUARANTINE_TABLE));
    assert.equal(
      execFileSync('podman', ['inspect', '-f', '{{.State.Running}}', name], { encoding: 'utf8' }).trim(),
      'true',
    );

    // Printed as it happened: one decision line for it.
    const mine = decisions.filter((d) => d.workload === `local/${name}`);
    assert.deepEqual(
      mine.map((d) => [d.action, d.requestedBy, d.outcome, d.id]),
      [['Quarantine', 'policy/quarantine-or-terminate', 'dry-run', quarantine.metadata.name]],
    );
    assert.match(
      formatDecision(mine[0] as Decision),
      new RegExp(
        `^\\d\\d:\\d\\d:\\d\\d local/${name} {2}remote shell: remote_shell_installed .*Quarantine {2}dry-run$`,
      ),
    );

    // And recorded: the audit trail links it to its scan, event and policy activation.
    const trail = await waitForValue(
      async () => {
        const res = await fetch(`${actionApiUrl}/v1/audit?namespace=local&pod=${name}`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });
        const body = (await res.json()) as { trail: AuditLink[] };
        return body.trail.length > 0 && body.trail.every((l) => l.complete) ? body.trail : undefined;
      },
      `a complete audit trail of ${name}`,
      60_000,
    );
    assert.equal(trail[0]?.action.id, quarantine.metadata.name);
  });
});
