/**
 * Behaviour baselines end to end: real Podman, real eBPF (bpftrace), the real agent and scanner.
 * An agent learns a quiet container's image; the baseline is stored by the scanner and survives an
 * agent restart (the new agent loads it before its sensor starts); after `containment baseline
 * lock` the agent takes the lock on its next sync, and a new executable is an `anomaly_executable`
 * detection in protect mode, while what was learned stays quiet. Needs root, bpftrace and podman:
 * fails under CI=true without them, skips loudly otherwise (hooks too).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { Agent } from '../../src/agent/agent.js';
import { runMain } from '../../src/cli/run-main.test-helper.js';
import type { ScannerClient } from '../../src/clients/scanner-client.js';
import { DockerEngine } from '../../src/engine/docker/docker-engine.js';
import { findEngineSocket } from '../../src/engine/socket.js';
import type { StoredBaseline } from '../../src/runtime/contracts.js';
import { RuntimeFixture, agentRuntimeMissing } from '../../src/runtime/runtime-fixture.test-helper.js';
import type { Ctr } from '../../src/runtime/runtime-fixture.test-helper.js';
import { startTestScanner } from '../../src/testing/scanner.js';
import type { TestScanner } from '../../src/testing/scanner.js';
import { waitFor } from '../../src/testing/wait.js';
import { requireOrSkip } from '../../src/testing/shared-data.js';

const RUN = randomBytes(4).toString('hex');
const LABEL = 'containment-baseline-e2e';

describe(
  'behaviour baselines: learned by the agent, kept by the scanner, locked by the CLI',
  { concurrency: false },
  () => {
    const missing = agentRuntimeMissing();
    let fixture: RuntimeFixture | undefined;
    let scanner: TestScanner<'local'> | undefined;
    let agent: Agent | undefined;
    let admin: ScannerClient;
    let agentClient: ScannerClient;
    let adminToken = '';
    let ctr: Ctr;
    let older: RuntimeFixture | undefined;

    const detectionsOf = (pod: string) => (scanner as TestScanner<'local'>).detectionsOf(pod);

    const need = (t: TestContext): boolean =>
      requireOrSkip(t, missing === undefined && fixture !== undefined, missing ?? 'the fixture');

    const startAgent = async (learningMs = 3_600_000): Promise<Agent> => {
      const a = new Agent({
        engine: new DockerEngine(findEngineSocket(undefined, process.env) as string),
        sink: agentClient,
        detections: agentClient,
        runtimeDetection: 'on',
        runtimeTuning: { detector: { mode: 'ebpf', aggregateWindowMs: 1000 }, forwarder: { batchMs: 100 } },
        // By default a long window: the image stays learning until the operator locks it.
        baselines: { learning: { durationMs: learningMs }, client: agentClient, pushMs: 200, pollMs: 500 },
        logger: pino({ level: 'warn' }),
        labels: { [LABEL]: RUN },
        rescanIntervalMs: 600_000,
        driftCheckIntervalMs: 0,
      });
      await a.start();
      return a;
    };

    const baselines = (): Promise<StoredBaseline[]> => admin.baselines({ cluster: 'local' });

    before(async () => {
      if (missing !== undefined) {
        requireOrSkip({ skip() {} } as unknown as TestContext, false, missing);
        return;
      }
      scanner = await startTestScanner();
      ({ admin, adminToken, agent: agentClient } = scanner);
      fixture = RuntimeFixture.create();
    });

    after(async () => {
      await agent?.stop();
      fixture?.cleanup();
      older?.cleanup();
      await scanner?.close();
    });

    test('a quiet container’s image is learned and stored by the scanner', async (t) => {
      if (!need(t) || !fixture) return;
      agent = await startAgent();
      assert.equal(agent.runtimeStatus()?.detector.mode, 'ebpf');
      ctr = fixture.run(['--label', `${LABEL}=${RUN}`]);
      // A container the agent does not manage (no label): its behaviour must not be learned.
      const stranger = fixture.run();
      fixture.exec(stranger, ['/bin/true']);
      fixture.exec(ctr, ['/bin/true']);
      const [learned] = await waitFor(
        baselines,
        (list) => list.length === 1 && (list[0]?.executables.length ?? 0) > 0,
        'the learned baseline reaches the scanner',
      );
      assert.equal(learned?.state, 'learning');
      assert.equal(learned?.cluster, 'local');
      assert.notEqual(learned?.image, 'unknown');
      assert.ok(learned?.executables.includes('/bin/busybox'), JSON.stringify(learned));
      assert.deepEqual(
        (await detectionsOf(ctr.name)).filter((d) => d.ruleId.startsWith('anomaly_')),
        [],
        'nothing is an anomaly while learning',
      );
    });

    test('the baseline survives an agent restart: the new agent loads it before its sensor starts', async (t) => {
      if (!need(t) || !agent) return;
      const before = await baselines();
      await agent.stop();
      agent = await startAgent();
      assert.equal(agent.runtimeStatus()?.baselines?.images, 1, 'loaded at start');
      assert.equal(agent.runtimeStatus()?.baselines?.failedSyncs, 0);
      // The restarted agent's pushes keep what was learned.
      fixture?.exec(ctr, ['/bin/true']);
      await new Promise((r) => setTimeout(r, 1000));
      const [now] = await baselines();
      assert.deepEqual(now?.executables, before[0]?.executables);
    });

    test('after `containment baseline lock` a new executable is an anomaly (protect); learned ones stay quiet', async (t) => {
      if (!need(t) || !agent || !fixture) return;
      const server_ = scanner as TestScanner<'local'>;
      const [stored] = await baselines();
      const lock = await runMain([
        'baseline',
        'lock',
        stored?.imageRef ?? (stored?.image as string),
        '--cluster',
        'local',
        '--server',
        server_.url,
        '--token',
        adminToken,
      ]);
      assert.equal(lock.status, 0, lock.stderr);
      assert.match(lock.stdout, /state:\s+protect/);
      await waitFor(
        () => agent?.runtimeStatus()?.baselines?.operatorChanges ?? 0,
        (n) => n >= 1,
        'the agent takes the lock on its next sync',
        10_000,
      );
      const show = await runMain([
        'baseline',
        'show',
        stored?.image as string,
        '--cluster',
        'local',
        '--format',
        'json',
        '--server',
        server_.url,
        '--token',
        adminToken,
      ]);
      assert.equal(show.status, 0, show.stderr);
      assert.equal((JSON.parse(show.stdout) as StoredBaseline[])[0]?.state, 'protect');

      // Learned: busybox (its applets). New: a copy of it written into the writable layer (run as its echo applet).
      fixture.exec(ctr, ['/bin/busybox', 'cp', '/bin/busybox', '/tmp/echo']);
      fixture.exec(ctr, ['/tmp/echo', 'dropped']);
      const anomaly = await waitFor(
        async () => (await detectionsOf(ctr.name)).find((d) => d.ruleId === 'anomaly_executable'),
        (d) => d !== undefined,
        'an anomaly_executable detection of the new executable reaches the scanner',
      );
      assert.equal(anomaly?.evidence.executable, '/tmp/echo');
      assert.equal(anomaly?.evidence.protect, true);
      assert.equal(anomaly?.severity, 'HIGH');
      assert.equal(anomaly?.baseline.state, 'protect');
      assert.equal(anomaly?.workload.containerId, ctr.id);
      const anomalies = (await detectionsOf(ctr.name)).filter((d) => d.ruleId === 'anomaly_executable');
      assert.deepEqual(
        anomalies.map((d) => d.evidence.executable),
        ['/tmp/echo'],
        'the learned executable is no anomaly',
      );
      // The lock holds on the scanner: the agent's pushes did not undo it.
      assert.equal((await baselines())[0]?.state, 'protect');
    });

    test('a container older than the learning window learns from its first event, with what it already runs', async (t) => {
      if (!need(t) || !agent) return;
      await agent.stop();
      const WINDOW = 2000;
      older = RuntimeFixture.create();
      const c = older.run(['--label', `${LABEL}=${RUN}`]);
      // Both the container and the agent are older than the window when the first event comes.
      await new Promise((r) => setTimeout(r, WINDOW + 500));
      agent = await startAgent(WINDOW);
      await new Promise((r) => setTimeout(r, WINDOW + 500));
      const known = new Set((await baselines()).map((b) => b.image));
      older.exec(c, ['/bin/true']);
      const learned = await waitFor(
        async () => (await baselines()).find((b) => !known.has(b.image)),
        (b) => b !== undefined && b.executables.includes('/bin/busybox'),
        'the older container’s image is learned, its running entrypoint included',
      );
      assert.equal(learned?.state, 'learning', JSON.stringify(learned));
      await new Promise((r) => setTimeout(r, WINDOW + 200));
      older.exec(c, ['/bin/busybox', 'cp', '/bin/busybox', '/tmp/echo']);
      older.exec(c, ['/tmp/echo', 'new']);
      await waitFor(
        async () => (await detectionsOf(c.name)).filter((d) => d.ruleId === 'anomaly_executable'),
        (list) => list.length > 0,
        'after the window a new executable is an anomaly',
      );
      const anomalies = (await detectionsOf(c.name)).filter((d) => d.ruleId === 'anomaly_executable');
      assert.deepEqual(
        anomalies.map((d) => d.evidence.executable),
        ['/tmp/echo'],
        'what it ran before and during the window is no anomaly',
      );
      assert.equal(anomalies[0]?.baseline.state, 'monitor');
    });
  },
);
