/**
 * The agent's runtime detection end to end: real Podman, real eBPF (bpftrace), the agent's own
 * engine discovery, and a real scanner service. A shell exec'd in a managed container reaches
 * `GET /v1/detections` for that pod; a container outside the agent's label filter sends nothing.
 * Needs root, bpftrace and podman: fails under CI=true without them, skips loudly otherwise
 * (hooks too).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { DockerEngine } from '../engine/docker/docker-engine.js';
import { findEngineSocket } from '../engine/socket.js';
import { RuntimeFixture, agentRuntimeMissing } from '../runtime/runtime-fixture.test-helper.js';
import type { Ctr } from '../runtime/runtime-fixture.test-helper.js';
import { startTestScanner } from '../testing/scanner.js';
import type { TestScanner } from '../testing/scanner.js';
import { waitFor } from '../testing/wait.js';
import { requireOrSkip } from '../testing/shared-data.js';
import { Agent } from './agent.js';

const RUN = randomBytes(4).toString('hex');
const LABEL = 'containment-rt-agent-test';

describe(
  'agent: runtime detections to the scanner (real Podman, eBPF, scanner)',
  { concurrency: false },
  () => {
    const missing = agentRuntimeMissing();
    let fixture: RuntimeFixture | undefined;
    let scanner: TestScanner<'local'> | undefined;
    let agent: Agent | undefined;
    let managed: Ctr;
    let unmanaged: Ctr;

    const detectionsOf = (pod: string) => (scanner as TestScanner<'local'>).detectionsOf(pod);

    const need = (t: TestContext): boolean =>
      requireOrSkip(t, missing === undefined && agent !== undefined, missing ?? 'the agent');

    before(async () => {
      if (missing !== undefined) {
        requireOrSkip({ skip() {} } as unknown as TestContext, false, missing);
        return;
      }
      scanner = await startTestScanner();
      const client = scanner.agent;
      fixture = RuntimeFixture.create();
      managed = fixture.run(['--label', `${LABEL}=${RUN}`]);
      unmanaged = fixture.run();
      agent = new Agent({
        engine: new DockerEngine(findEngineSocket(undefined, process.env) as string),
        sink: client,
        detections: client,
        runtimeDetection: 'on',
        runtimeTuning: { detector: { mode: 'ebpf' }, forwarder: { batchMs: 100 } },
        logger: pino({ level: 'warn' }),
        labels: { [LABEL]: RUN },
        rescanIntervalMs: 600_000,
        driftCheckIntervalMs: 0,
      });
      await agent.start();
    });

    after(async () => {
      await agent?.stop();
      fixture?.cleanup();
      await scanner?.close();
    });

    test('a shell exec’d in a managed container is a shell_in_container detection of that pod in the scanner', async (t) => {
      if (!need(t) || !fixture || !agent) return;
      assert.equal(agent.runtimeStatus()?.detector.mode, 'ebpf');
      fixture.exec(unmanaged, ['sh', '-c', 'true']);
      fixture.exec(managed, ['sh', '-c', 'true']);
      const found = await waitFor(
        async () => (await detectionsOf(managed.name)).find((d) => d.ruleId === 'shell_in_container'),
        (d) => d !== undefined,
        'a shell_in_container detection of the managed pod reaches the scanner',
        20_000,
      );
      assert.equal(found?.workload.containerId, managed.id);
      assert.equal(found?.workload.pod, managed.name);
      assert.equal(found?.workload.cluster, 'local');
      assert.equal(found?.source, 'ebpf');
      // The unlabelled container's shell was seen by the sensor but never left the node.
      await waitFor(
        async () => agent?.runtimeStatus()?.unmanaged ?? 0,
        (n) => n > 0,
        'the unmanaged container’s detection is counted as not sent',
        10_000,
      );
      assert.deepEqual(await detectionsOf(unmanaged.name), []);
      const status = agent.runtimeStatus();
      assert.ok((status?.forwarder.forwarded ?? 0) >= 1);
      assert.equal(status?.forwarder.dropped, 0);
    });
  },
);
