/**
 * The agent against real Podman (its Docker-compatible socket) and a real scanner service started
 * in-process on loopback, with the real npm OSV records. The test image has no shell at all (only
 * `/bin/busybox`, no applet links), so nothing could be executed in it even by mistake. Each agent
 * watches only containers carrying this run's label: other work on the machine is left alone.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { ScannerClient } from '../clients/scanner-client.js';
import { DockerEngine } from '../engine/docker/docker-engine.js';
import { findEngineSocket } from '../engine/socket.js';
import { eventually } from '../enforcement/podman-fixture.test-helper.js';
import type { RunningServer } from '../scanner/run-server.js';
import { startTestScanner } from '../testing/scanner.js';
import { setUpOrSkip, sharedDataDir } from '../testing/shared-data.js';
import { Agent } from './agent.js';
import type { AgentOptions, ReportSink } from './agent.js';

const BUSYBOX = '/usr/bin/busybox';
const NPM_RECORDS = join(sharedDataDir, 'osv', 'npm');
const RUN = randomBytes(4).toString('hex');
const LABEL = 'containment-agent-test';

interface Env {
  socket: string;
  image: string;
  tmp: string;
  server: RunningServer;
  adminToken: string;
  agentClient: ScannerClient;
  names: string[];
}

function minimistJson(version: string): string {
  return JSON.stringify({ name: 'minimist', version });
}

async function setup(): Promise<Env | string> {
  const socket = findEngineSocket(undefined, process.env);
  if (!socket) return 'a container engine socket (podman system service)';
  if (!existsSync(BUSYBOX)) return BUSYBOX;
  if (!existsSync(NPM_RECORDS)) return `${NPM_RECORDS} (shared test data)`;
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' });
    await new DockerEngine(socket).ping();
  } catch (e) {
    return `podman (${(e as Error).message})`;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'containment-agent-'));
  // The image: busybox without a single applet link (so no /bin/sh), and one safe npm package.
  const root = join(tmp, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'app', 'node_modules', 'minimist'), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  writeFileSync(join(root, 'app', 'node_modules', 'minimist', 'package.json'), minimistJson('1.2.8'));
  execFileSync('tar', ['-C', root, '-cf', join(tmp, 'rootfs.tar'), '.']);
  const image = `localhost/containment-agent-test:${RUN}`;
  execFileSync('podman', ['import', '--quiet', join(tmp, 'rootfs.tar'), image], { stdio: 'pipe' });

  const scanner = await startTestScanner({ dataDir: join(tmp, 'data'), records: NPM_RECORDS });
  return {
    socket,
    image,
    tmp,
    server: scanner.server,
    adminToken: scanner.adminToken,
    agentClient: scanner.agent,
    names: [],
  };
}

let env: Env | string = 'not set up';

const need = (t: TestContext): Env | undefined => setUpOrSkip(t, env);

function runArgs(e: Env, group: string, args: string[]): { name: string; argv: string[] } {
  const name = `containment-agent-${RUN}-${randomBytes(3).toString('hex')}`;
  e.names.push(name);
  const label = `${LABEL}=${RUN}-${group}`;
  return { name, argv: ['run', '-d', '--name', name, '--label', label, e.image, '/bin/busybox', ...args] };
}

/** `podman run -d` of `/bin/busybox <args>` in the shell-less image, labelled for `group`. */
function run(e: Env, group: string, args: string[]): { name: string; pid: number } {
  const { name, argv } = runArgs(e, group, args);
  execFileSync('podman', argv, { stdio: 'pipe' });
  const pid = Number(
    execFileSync('podman', ['inspect', '--format', '{{.State.Pid}}', name], { encoding: 'utf8' }),
  );
  return { name, pid };
}

async function api<T>(e: Env, path: string): Promise<T> {
  const res = await fetch(`${e.server.url}${path}`, { headers: { authorization: `Bearer ${e.adminToken}` } });
  assert.ok(res.ok || res.status === 404, `GET ${path}: HTTP ${res.status}`);
  return (res.ok ? await res.json() : undefined) as T;
}

interface ScanRow {
  id: number;
  kind: string;
  workload: { pod: string; namespace: string; node: string; image: string; container?: string };
}

function scansOf(e: Env, pod: string): Promise<ScanRow[]> {
  return api<{ scans: ScanRow[] }>(e, `/v1/scans?cluster=local&pod=${pod}&limit=1000`).then((r) => r.scans);
}

async function findingIds(e: Env, pod: string): Promise<string[]> {
  const body = await api<{ vulnerablePackages: { id: string; aliases: string[] }[] } | undefined>(
    e,
    `/v1/findings?cluster=local&namespace=local&pod=${pod}`,
  );
  return (body?.vulnerablePackages ?? []).flatMap((v) => [v.id, ...v.aliases]);
}

interface LogLine {
  level: number;
  msg: string;
  container?: string;
  reason?: string;
}

function startAgent(
  e: Env,
  group: string,
  options: Partial<AgentOptions>,
): { agent: Agent; logs: LogLine[]; started: Promise<void> } {
  const logs: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => logs.push(JSON.parse(line) as LogLine) },
  );
  const agent = new Agent({
    engine: new DockerEngine(e.socket),
    sink: e.agentClient,
    logger,
    labels: { [LABEL]: `${RUN}-${group}` },
    ...options,
  });
  return { agent, logs, started: agent.start() };
}

const SEC = 1000;
/** Polls up to `ms` (containers and scans take a moment). */
const within = (ms: number, check: () => Promise<boolean>): Promise<boolean> =>
  eventually(check, Math.ceil(ms / 100), 100);

describe('node agent on real podman', () => {
  before(async () => {
    env = await setup();
  });
  after(async () => {
    if (typeof env === 'string') return;
    if (env.names.length > 0) {
      execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', ...env.names], { stdio: 'ignore' });
    }
    execFileSync('podman', ['rmi', '--force', '--ignore', env.image], { stdio: 'ignore' });
    await env.server.close();
    rmSync(env.tmp, { recursive: true, force: true });
  });

  test('reports a started container, finds a package installed after start, checks in when unchanged, stops quietly', async (t) => {
    const e = need(t);
    if (!e) return;
    const { agent, logs, started } = startAgent(e, 'main', {
      rescanIntervalMs: SEC,
      driftCheckIntervalMs: 0,
    });
    await started;
    try {
      const c = run(e, 'main', ['sleep', '600']);
      // No shell in there: whatever the agent does, it cannot be exec'ing one.
      assert.equal(existsSync(`/proc/${c.pid}/root/bin/sh`), false);
      assert.ok(
        await within(8 * SEC, async () => (await scansOf(e, c.name)).length > 0),
        'a report for the new container reaches the scanner',
      );
      const workloads = await api<{ workloads: { workload: ScanRow['workload'] }[] }>(
        e,
        `/v1/workloads?cluster=local&pod=${c.name}`,
      );
      assert.deepEqual(
        workloads.workloads.map((w) => [w.workload.namespace, w.workload.container, w.workload.image]),
        [['local', c.name, e.image]],
      );
      const [first] = await scansOf(e, c.name);
      const detail = await api<{
        inventory: { packages: { name: string; version: string }[] };
      }>(e, `/v1/scans/${first?.id}`);
      assert.deepEqual(
        detail.inventory.packages.map((p) => `${p.name}@${p.version}`),
        ['minimist@1.2.8'],
      );
      assert.deepEqual(await findingIds(e, c.name), []);

      // Unchanged: the periodic rescans are check-ins, not new full scans.
      assert.ok(
        await within(6 * SEC, async () => (await scansOf(e, c.name)).some((s) => s.kind === 'check-in')),
        'an unchanged rescan is recorded as a check-in',
      );
      assert.equal((await scansOf(e, c.name)).filter((s) => s.kind === 'full').length, 1);
      // ... and cheap: the layer did not change, so the filesystem was walked once.
      assert.equal(agent.stats.walks, 1);

      // "Install" a vulnerable version into the running container, from the host side.
      writeFileSync(`/proc/${c.pid}/root/app/node_modules/minimist/package.json`, minimistJson('1.2.5'));
      assert.ok(
        await within(8 * SEC, async () => (await findingIds(e, c.name)).includes('CVE-2021-44906')),
        'the next rescan reports minimist 1.2.5 and the scanner finds CVE-2021-44906',
      );
      assert.equal((await scansOf(e, c.name)).filter((s) => s.kind === 'full').length, 2);
      assert.equal(agent.stats.walks, 2, 'the changed layer made the periodic rescan walk again');

      const scansBefore = agent.stats.scans;
      execFileSync('podman', ['stop', '--time', '0', c.name], { stdio: 'ignore' });
      assert.ok(
        await within(5 * SEC, async () => !agent.watched().length),
        'the stopped container is dropped',
      );
      // Two more rescan intervals: nothing is scanned or reported for the stopped container.
      const reports = (await scansOf(e, c.name)).length;
      await new Promise((r) => setTimeout(r, 2.5 * SEC));
      assert.equal((await scansOf(e, c.name)).length, reports);
      assert.ok(agent.stats.scans - scansBefore <= 1, 'at most the scan in flight at the stop');
    } finally {
      await agent.stop();
    }
    assert.equal(agent.stats.errors, 0);
    assert.equal(agent.stats.failedReports, 0);
    assert.deepEqual(
      logs.filter((l) => l.level >= 40),
      [],
      'no warning or error logged',
    );
  });

  test('a change in the writable layer triggers a rescan long before the periodic one', async (t) => {
    const e = need(t);
    if (!e) return;
    const { agent, logs, started } = startAgent(e, 'drift', {
      rescanIntervalMs: 10 * 60 * SEC,
      driftCheckIntervalMs: 200,
    });
    await started;
    try {
      const c = run(e, 'drift', ['sleep', '600']);
      assert.ok(await within(8 * SEC, async () => (await scansOf(e, c.name)).length === 1));
      writeFileSync(`/proc/${c.pid}/root/app/node_modules/minimist/package.json`, minimistJson('1.2.5'));
      assert.ok(
        await within(8 * SEC, async () => (await findingIds(e, c.name)).includes('CVE-2021-44906')),
        'the drift rescan reports the new version',
      );
      assert.ok(logs.some((l) => l.msg === 'container scanned' && l.reason === 'drift'));
      // An idle container's layer does not change: no rescans without a write.
      const count = agent.stats.scans;
      await new Promise((r) => setTimeout(r, SEC));
      assert.equal(agent.stats.scans, count);
    } finally {
      await agent.stop();
    }
    assert.equal(agent.stats.errors, 0);
    assert.equal(agent.stats.failedReports, 0);
  });

  test('unchanged rescans send no inventory; after the server loses its state the inventory is sent again', async (t) => {
    const e = need(t);
    if (!e) return;
    const cluster = `resend-${RUN}`;
    const admin = new ScannerClient({ server: e.server.url, token: e.adminToken });
    const register = async (): Promise<ScannerClient> =>
      new ScannerClient({ server: e.server.url, token: (await admin.createCluster(cluster)).agentToken });
    let client = await register();
    // The real client, wrapped to record what each report carried and what the server answered.
    const sent: { inventory: boolean; outcome: string }[] = [];
    let wipeBeforeNext = false;
    const sink: ReportSink = {
      async sendReport(report) {
        if (wipeBeforeNext) {
          // The server forgets everything about the cluster (its scans and the agent's token).
          wipeBeforeNext = false;
          await admin.removeCluster(cluster);
          client = await register();
        }
        const entry = { inventory: report.inventory !== undefined, outcome: 'pending' };
        sent.push(entry);
        try {
          const result = await client.sendReport(report);
          entry.outcome = result.kind;
          return result;
        } catch (err) {
          entry.outcome = (err as { code?: string }).code ?? 'failed';
          throw err;
        }
      },
    };
    const scans = (pod: string): Promise<ScanRow[]> =>
      api<{ scans: ScanRow[] }>(e, `/v1/scans?cluster=${cluster}&pod=${pod}&limit=1000`).then((r) => r.scans);
    const { agent, logs, started } = startAgent(e, 'resend', {
      cluster,
      sink,
      rescanIntervalMs: SEC,
      driftCheckIntervalMs: 0,
    });
    await started;
    try {
      const c = run(e, 'resend', ['sleep', '600']);
      assert.ok(
        await within(10 * SEC, async () => sent.length >= 3 && !sent.some((s) => s.outcome === 'pending')),
      );
      assert.deepEqual(sent[0], { inventory: true, outcome: 'full' });
      assert.deepEqual(
        sent.slice(1).filter((s) => s.inventory || s.outcome !== 'check-in'),
        [],
        'every unchanged rescan is a check-in without inventory',
      );
      // Newest first: one full scan, then only check-ins.
      const kinds = (await scans(c.name)).map((s) => s.kind);
      assert.equal(kinds.at(-1), 'full');
      assert.ok(kinds.length >= 3 && kinds.slice(0, -1).every((k) => k === 'check-in'), kinds.join());

      const before = sent.length;
      wipeBeforeNext = true;
      assert.ok(
        await within(10 * SEC, async () => {
          const later = sent.slice(before);
          return later.length >= 3 && !later.some((s) => s.outcome === 'pending');
        }),
      );
      const later = sent.slice(before);
      // The hash-only report is refused by the emptied server, then sent again in full; then check-ins again.
      assert.deepEqual(later.slice(0, 3), [
        { inventory: false, outcome: 'INVENTORY_REQUIRED' },
        { inventory: true, outcome: 'full' },
        { inventory: false, outcome: 'check-in' },
      ]);
      const after = await scans(c.name);
      assert.equal(after.filter((s) => s.kind === 'full').length, 1, 'only the resent report was matched');
      const detail = await api<{ inventory: { packages: { name: string; version: string }[] } }>(
        e,
        `/v1/scans/${after.find((s) => s.kind === 'full')?.id}`,
      );
      assert.deepEqual(
        detail.inventory.packages.map((p) => `${p.name}@${p.version}`),
        ['minimist@1.2.8'],
      );
    } finally {
      await agent.stop();
    }
    assert.equal(agent.stats.errors, 0);
    assert.equal(agent.stats.failedReports, 0);
    assert.ok(logs.some((l) => l.msg === 'server does not know the inventory hash; sending the inventory'));
    assert.deepEqual(
      logs.filter((l) => l.level >= 40),
      [],
    );
  });

  test('containers of one image share one scan of its layers', async (t) => {
    const e = need(t);
    if (!e) return;
    const { agent, logs, started } = startAgent(e, 'layers', {
      rescanIntervalMs: 10 * 60 * SEC,
      driftCheckIntervalMs: 0,
    });
    await started;
    try {
      const containers = [run(e, 'layers', ['sleep', '600']), run(e, 'layers', ['sleep', '600'])];
      for (const c of containers) {
        assert.ok(await within(8 * SEC, async () => (await scansOf(e, c.name)).length === 1));
        const [scan] = await scansOf(e, c.name);
        const detail: { inventory: { packages: { name: string; version: string }[] } } = await api(
          e,
          `/v1/scans/${scan?.id}`,
        );
        assert.deepEqual(
          detail.inventory.packages.map((p) => `${p.name}@${p.version}`),
          ['minimist@1.2.8'],
        );
      }
      assert.equal(agent.layers.stats.lowerScans, 1, 'the image layer is walked and inventoried once');
      assert.equal(agent.layers.stats.lowerHits, 1, 'the second container found it done');
      assert.equal(agent.layers.stats.fallbacks, 0);
      assert.equal(agent.layers.stats.extractions, 0, 'nothing in their writable layers matters');
    } finally {
      await agent.stop();
    }
    assert.equal(agent.stats.errors, 0);
    assert.deepEqual(
      logs.filter((l) => l.level >= 40),
      [],
    );
  });

  test('containers exiting right after start are never reported with an empty inventory', async (t) => {
    const e = need(t);
    if (!e) return;
    // One scan at a time and a burst of short-lived containers: most are gone before or during their scan.
    const { agent, logs, started } = startAgent(e, 'burst', { rescanIntervalMs: SEC, concurrency: 1 });
    await started;
    const runs = Array.from({ length: 6 }, () => runArgs(e, 'burst', ['sleep', '0.3']));
    const names = runs.map((r) => r.name);
    try {
      await Promise.all(runs.map((r) => promisify(execFile)('podman', r.argv)));
      assert.ok(await within(10 * SEC, async () => agent.watched().length === 0));
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await agent.stop();
    }
    for (const name of names) {
      for (const scan of await scansOf(e, name)) {
        const detail: { inventory: { packages: unknown[] } } = await api(e, `/v1/scans/${scan.id}`);
        assert.equal(detail.inventory.packages.length, 1, `scan ${scan.id} of ${name} has its package`);
      }
    }
    assert.deepEqual(
      logs.filter((l) => l.level >= 40),
      [],
    );
    assert.equal(agent.stats.errors, 0);
    assert.equal(agent.stats.failedReports, 0);
    // Every container was either reported or found gone (never an error).
    assert.ok(agent.stats.gone + agent.stats.fullReports + agent.stats.checkIns >= 1);
  });
});
