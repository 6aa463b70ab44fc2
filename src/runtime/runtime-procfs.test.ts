/**
 * Degraded mode with real Podman: the /proc poller says so, names its blind spots, and still
 * sees a long-lived shell, a new listener, and — with a baseline learned on the quiet container —
 * a new executable. Needs podman (root for other containers' /proc): fails under CI=true
 * without it, skips loudly otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { requireOrSkip } from '../testing/shared-data.js';
import { BaselineBook } from './baseline/baseline.js';
import { RuntimeDetector } from './detector.js';
import {
  Collector,
  RuntimeFixture,
  describeWithPodman,
  podmanMissing,
} from './runtime-fixture.test-helper.js';
import type { Ctr } from './runtime-fixture.test-helper.js';
import { PROCFS_BLIND_SPOTS } from './sensor/proc-poller.js';

const missing = podmanMissing() ?? (process.getuid?.() === 0 ? undefined : 'root');

describe('runtime detection: degraded /proc mode with Podman', { concurrency: false }, () => {
  let fixture: RuntimeFixture | undefined;
  let detector: RuntimeDetector | undefined;
  let c: Ctr;
  const seen = new Collector();
  const need = (t: TestContext): boolean => requireOrSkip(t, missing === undefined, missing ?? '');

  before(async () => {
    if (missing !== undefined) return;
    fixture = RuntimeFixture.create();
    c = fixture.run();
    detector = new RuntimeDetector({
      mode: 'procfs',
      pollIntervalMs: 200,
      describe: describeWithPodman,
      ruleOptions: { listenerGraceMs: 0 },
      baselines: new BaselineBook({ durationMs: 1500 }),
    });
    detector.onDetection((d) => seen.push(d));
    await detector.start();
  });
  after(async () => {
    await detector?.stop();
    fixture?.cleanup();
  });

  test('says it is degraded, and why, and what it cannot see', (t) => {
    if (!need(t)) return;
    const s = detector!.status();
    assert.equal(s.mode, 'procfs');
    assert.deepEqual(s.reasons, ['procfs mode requested']);
    assert.deepEqual(s.blindSpots, PROCFS_BLIND_SPOTS);
    assert.ok(s.blindSpots.some((b) => /file opens/.test(b)));
  });

  test('a long-lived shell and a new listener are seen; a baseline flags the new executable', async (t) => {
    if (!need(t)) return;
    const ofC = (d: { workload: { containerId: string } }): boolean => d.workload.containerId === c.id;
    seen.since();
    fixture!.exec(c, ['sh', '-c', 'sleep 3; echo first'], { detach: true });
    const shell = await seen.waitFor((d) => ofC(d) && d.ruleId === 'shell_in_container', 15_000);
    assert.ok(shell, 'shell seen by polling');
    assert.equal(shell.source, 'procfs');
    assert.equal(shell.workload.pod, c.name);
    // The container is older than the detector: its image learns from that first event on.
    assert.equal(shell.baseline.state, 'learning');
    await new Promise((r) => setTimeout(r, 1600)); // the learning window ends
    // busybox (every applet) was learned; a copy of it is a new executable.
    fixture!.exec(c, ['/bin/busybox', 'cp', '/bin/busybox', '/tmp/sh']);
    seen.since();
    fixture!.exec(c, ['/tmp/sh', '-c', 'sleep 4; echo done'], { detach: true });
    const anomaly = await seen.waitFor((d) => ofC(d) && d.ruleId === 'anomaly_executable', 15_000);
    assert.ok(anomaly, 'a new executable after learning is an anomaly');
    assert.equal(anomaly.baseline.state, 'monitor');
    assert.equal(anomaly.evidence.executable, '/tmp/sh');
    fixture!.exec(c, ['nc', '-l', '-p', '7072'], { detach: true });
    const listener = await seen.waitFor((d) => ofC(d) && d.ruleId === 'new_listener', 15_000);
    assert.ok(listener, 'listener seen by polling');
    assert.equal(listener.evidence.port, 7072);
  });
});
