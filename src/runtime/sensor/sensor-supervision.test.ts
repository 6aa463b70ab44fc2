/**
 * The eBPF sensor's supervision with the real native engine: it is restarted (counted) after it
 * dies and events flow again; stop, the agent's SIGTERM and even the agent's SIGKILL leave no
 * engine (no probes) behind. Needs root, the built sensor (`npm run build:sensor`) and podman:
 * fails under CI=true without them, skips loudly otherwise.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { repoRoot, requireOrSkip } from '../../testing/shared-data.js';
import { waitUntil } from '../../testing/wait.js';
import type { SensorEvent } from '../contracts.js';
import { RuntimeDetector } from '../detector.js';
import { RuntimeFixture, ebpfMissing } from '../runtime-fixture.test-helper.js';
import type { Ctr } from '../runtime-fixture.test-helper.js';
import { EbpfSensor } from './ebpf-sensor.js';

const missing = ebpfMissing();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts a child Node that runs a sensor and prints the engine's pid once attached. */
async function agentChild(): Promise<{ child: ReturnType<typeof spawn>; enginePid: number }> {
  const script = `import { EbpfSensor } from ${JSON.stringify(join(repoRoot, 'src/runtime/sensor/ebpf-sensor.ts'))};
const s = new EbpfSensor(); await s.start(() => {}); console.log('PID', s.pid); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /PID (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', () => reject(new Error(`agent child exited early: ${out}`)));
  });
  return { child, enginePid: pid };
}

describe('eBPF sensor supervision (real native engine)', { concurrency: false }, () => {
  let fixture: RuntimeFixture | undefined;
  let c: Ctr;
  const need = (t: TestContext): boolean => requireOrSkip(t, missing === undefined, missing ?? '');

  before(() => {
    if (missing !== undefined) return;
    fixture = RuntimeFixture.create();
    c = fixture.run();
  });
  after(() => fixture?.cleanup());

  test('restarts the engine after it dies, counts it, and sees events again; stop detaches', async (t) => {
    if (!need(t)) return;
    const events: SensorEvent[] = [];
    const sensor = new EbpfSensor({ backoffMinMs: 200 });
    await sensor.start((e) => events.push(e));
    try {
      const first = sensor.pid as number;
      fixture!.exec(c, ['echo', 'one']);
      await waitUntil(
        () => events.some((e) => e.kind === 'exec' && e.argv?.[1] === 'one'),
        60_000,
        'exec seen',
      );
      process.kill(first, 'SIGKILL');
      await waitUntil(() => sensor.status().restarts === 1 && sensor.status().running, 60_000, 'restarted');
      assert.notEqual(sensor.pid, first);
      assert.equal(alive(first), false);
      fixture!.exec(c, ['echo', 'two']);
      await waitUntil(
        () => events.some((e) => e.kind === 'exec' && e.argv?.[1] === 'two'),
        30_000,
        'events after the restart',
      );
      assert.match(sensor.status().lastError ?? '', /SIGKILL/);
    } finally {
      const pid = sensor.pid as number;
      await sensor.stop();
      assert.equal(alive(pid), false, 'engine gone after stop');
      assert.equal(sensor.status().running, false);
    }
  });

  test('an engine that cannot load: the detector polls /proc and says why', async (t) => {
    if (!need(t)) return;
    const dir = mkdtempSync(join(tmpdir(), 'containment-sensor-'));
    const bin = join(dir, 'containment-sensor');
    writeFileSync(
      bin,
      '#!/bin/sh\necho "containment-sensor: loading the BPF program: load program: permission denied" >&2\necho "0: R1=ctx()" >&2\nexit 1\n',
      { mode: 0o755 },
    );
    const detector = new RuntimeDetector({ sensorBinary: bin, pollIntervalMs: 60_000 });
    try {
      await detector.start();
      const s = detector.status();
      assert.equal(s.mode, 'procfs');
      assert.deepEqual(s.reasons, [
        'the eBPF sensor failed to start: the sensor exited (code 1): containment-sensor: loading the BPF program: load program: permission denied',
      ]);
    } finally {
      await detector.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the agent's SIGTERM kills the engine's process group", async (t) => {
    if (!need(t)) return;
    const { child, enginePid } = await agentChild();
    assert.equal(alive(enginePid), true);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await waitUntil(() => !alive(enginePid), 10_000, 'the engine exited with the agent');
  });

  test("even the agent's SIGKILL leaves no engine behind (parent-death signal)", async (t) => {
    if (!need(t)) return;
    const { child, enginePid } = await agentChild();
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await waitUntil(() => !alive(enginePid), 10_000, 'the engine exited with the agent');
  });
});
