/**
 * The single-machine loop benchmark (`npm run bench:loop`, issue 5): the real `containment up`
 * process on real Podman and nftables, watching only containers with this run's label.
 *
 * 1. Time to contain from container start: N containers (default 20) whose filesystem has a remote
 *    shell daemon (`/usr/sbin/sshd`, a busybox copy) are started one after another; each is
 *    measured from the engine's `State.StartedAt` to the Quarantine action's `completedAt` (set
 *    once nft has applied the table and listed it back in the container's netns), with the stages
 *    in between (scan recorded by the scanner, action started by the policy). The reference policy.
 * 2. Time to contain from an advisory import: N running clean containers with a package no
 *    advisory names; a bench policy that quarantines on any vulnerable package replaces the
 *    reference one (which terminates instead, and a terminate's snapshot and grace period are not
 *    "containment"); an advisory for the package is imported by `containment db import --data-dir`
 *    in another process; each container is measured from the moment that process exited (the
 *    record committed) — and, for reference, from its start — to its Quarantine's `completedAt`.
 * 3. Overhead with M idle containers watched (default 50; the quarantined ones count, they are
 *    idle too), over S seconds (default 60): CPU (utime+stime from /proc/<pid>/stat) and RSS
 *    (VmRSS, max of samples every 2 s) of three processes: `containment agent` as users run it,
 *    a bare Agent process (`loop-agent-child.ts`: the agent without the rest of the CLI), both
 *    beside up and reporting to its scanner with up's rescan interval, and `up` as a whole.
 *
 * Afterwards every quarantine is checked live with `nft list table` in the container's netns.
 * Figures, not a test: exit 1 only when a container was not contained at all.
 * Env: BENCH_LOOP_CONTAINERS, BENCH_LOOP_IDLE, BENCH_LOOP_IDLE_SECONDS, BENCH_LOOP_UP_NODE_ARGS.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import type { SecurityAction } from '../src/enforcement/security-action.js';
import { findEngineSocket } from '../src/engine/socket.js';
import { hasCommand } from '../src/testing/tools.js';
import { poll } from '../src/testing/wait.js';

const CONTAINERS = Number(process.env.BENCH_LOOP_CONTAINERS ?? 20);
const IDLE = Number(process.env.BENCH_LOOP_IDLE ?? 50);
const IDLE_SECONDS = Number(process.env.BENCH_LOOP_IDLE_SECONDS ?? 60);
const TARGET = { fromStartP99Ms: 2000, fromImportP99Ms: 1000, cpuPercent: 2, rssMb: 150 };
const BUSYBOX = '/usr/bin/busybox';
const REPO = new URL('..', import.meta.url).pathname;
const BIN = join(REPO, 'bin', 'containment.js');
const CLK_TCK = 100;

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = randomBytes(4).toString('hex');
const label = `containment-bench-loop=${run}`;
const dependency = `containment-bench-dep-${run}`;
const images = {
  sshd: `localhost/containment-bench-loop:sshd-${run}`,
  dep: `localhost/containment-bench-loop:dep-${run}`,
  clean: `localhost/containment-bench-loop:clean-${run}`,
};
const started: string[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'containment-bench-loop-'));

const BENCH_POLICY = `import { kubernetes, vs } from '@containment/policy-sdk';
// bench:loop: quarantine on any vulnerable package (the reference policy terminates instead).
export async function main(params: Record<string, any>) {
  const data = typeof params.data === 'object' && params.data !== null ? params.data : params;
  const w = data.workload;
  const pod = w.container === undefined
    ? { namespace: w.namespace, name: w.pod }
    : { namespace: w.namespace, name: w.pod, container: w.container };
  const findings = await vs.getFindings(pod, data.scanTime);
  if (findings === null || findings.vulnerablePackages.length === 0) return { decision: 'none' };
  const done = await kubernetes.quarantine(pod, {
    wait: true,
    reason: 'bench: vulnerable packages',
    findingsRef: 'scan/' + findings.scanId,
  });
  return { decision: 'Quarantine', phase: done.status ? done.status.phase : null };
}
`;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port > 65_000 ? 40_000 + (port % 20_000) : port));
    });
  });
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function buildImage(image: string, extra: Record<string, string | 'busybox'>): void {
  const root = join(tmp, image.replace(/\W/g, '_'));
  for (const d of ['bin', 'www', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  for (const applet of ['sh', 'sleep', 'httpd']) symlinkSync('busybox', join(root, 'bin', applet));
  writeFileSync(join(root, 'www', 'index.html'), 'bench\n');
  for (const [path, content] of Object.entries(extra)) {
    const file = join(root, path);
    mkdirSync(join(file, '..'), { recursive: true });
    if (content === 'busybox') copyFileSync(BUSYBOX, file);
    else writeFileSync(file, content);
  }
  execFileSync('tar', ['-C', root, '-cf', `${root}.tar`, '.']);
  execFileSync('podman', ['import', '--quiet', `${root}.tar`, image], { stdio: 'pipe' });
}

function startContainer(image: string, name: string): void {
  started.push(name);
  execFileSync(
    'podman',
    ['run', '-d', '--name', name, '--label', label, image, '/bin/httpd', '-f', '-p', '80', '-h', '/www'],
    { stdio: 'pipe' },
  );
}

function inspect(names: string[]): Map<string, { startedAt: number; pid: number }> {
  const out = JSON.parse(execFileSync('podman', ['inspect', ...names], { encoding: 'utf8' })) as {
    Name: string;
    State: { StartedAt: string; Pid: number };
  }[];
  return new Map(out.map((c) => [c.Name, { startedAt: Date.parse(c.State.StartedAt), pid: c.State.Pid }]));
}

interface Up {
  scanner: string;
  functions: string;
  functionsAuth: string;
  actions: string;
  token: string;
  pid: number;
  stop(): Promise<void>;
}

async function startUp(dataDir: string): Promise<Up> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    // BENCH_LOOP_UP_NODE_ARGS: e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where up spends its time.
    [
      ...(process.env.BENCH_LOOP_UP_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ...[BIN, 'up', '--enforce', '--data-dir', dataDir, '--port', String(port), '--label', label],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONTAINMENT_LOG_LEVEL: 'warn' } },
  );
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`up did not start: ${stderr}`)), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`up exited with ${code}: ${stderr}`)));
  });
  const field = (re: RegExp) => re.exec(stdout)?.[1] ?? '';
  return {
    scanner: field(/scanner API:\s+(http\S+)/),
    functions: field(/functions API:\s+(http\S+)/),
    functionsAuth: field(/auth (\S+)\)/),
    actions: field(/action API:\s+(http\S+)/),
    token: field(/admin token:\s+(\S+)/),
    pid: child.pid ?? 0,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function getJson<T>(url: string, token: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as T };
}

async function quarantines(up: Up): Promise<Map<string, SecurityAction>> {
  const { body } = await getJson<{ actions: SecurityAction[] }>(
    `${up.actions}/v1/actions?namespace=local&limit=1000`,
    up.token,
  );
  const done = new Map<string, SecurityAction>();
  for (const a of body.actions)
    if (a.spec.action === 'Quarantine' && a.status?.phase === 'Succeeded') done.set(a.spec.target.pod, a);
  return done;
}

/** Polls `check`; false (logged, a figure then missing) when it does not hold within `ms`. */
async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const { ok } = await poll(check, Boolean, { ms, every: 100 });
  if (!ok) log(`timed out after ${ms} ms waiting for ${what}`);
  return ok;
}

/** The scanner's first scan of a pod (what the agent reported), oldest first. */
async function firstScan(up: Up, pod: string, kind?: string): Promise<number | undefined> {
  const query = new URLSearchParams({ cluster: 'local', namespace: 'local', pod, limit: '1000' });
  const { body } = await getJson<{ scans: { id: number; kind: string; receivedAt: string }[] }>(
    `${up.scanner}/v1/scans?${query}`,
    up.token,
  );
  const scans = body.scans.filter((s) => kind === undefined || s.kind === kind).sort((a, b) => a.id - b.id);
  return scans[0] === undefined ? undefined : Date.parse(scans[0].receivedAt);
}

function netnsQuarantined(pid: number): boolean {
  try {
    execFileSync(
      'nsenter',
      ['-t', String(pid), '-n', 'nft', 'list', 'table', 'inet', 'containment_quarantine'],
      {
        stdio: 'ignore',
      },
    );
    return true;
  } catch {
    return false;
  }
}

function procStat(pid: number): { cpuTicks: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat (utime, stime), counted from after the command name.
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cpuTicks, rssMb: Number(rss ?? 0) / 1024 };
}

interface Row {
  what: string;
  n: number;
  p50: string;
  p99: string;
  max: string;
  target: string;
}

const ms = (v: number) => `${Math.round(v)} ms`;
function row(what: string, values: number[], target = ''): Row {
  return {
    what,
    n: values.length,
    p50: ms(percentile(values, 50)),
    p99: ms(percentile(values, 99)),
    max: ms(Math.max(...values)),
    target,
  };
}

async function main(): Promise<number> {
  const missing = [
    ...['podman', 'nft', 'nsenter', 'tar'].filter((t) => !hasCommand(t)),
    ...(findEngineSocket(undefined, process.env) === undefined ? ['a podman API socket'] : []),
  ];
  if (missing.length > 0) {
    log(`cannot run: missing ${missing.join(', ')}`);
    return 1;
  }
  log(
    `${cpus().length} cores, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; run ${run}`,
  );
  buildImage(images.sshd, { 'usr/sbin/sshd': 'busybox' });
  buildImage(images.clean, {});
  buildImage(images.dep, {
    [`app/node_modules/${dependency}/package.json`]: JSON.stringify({ name: dependency, version: '1.0.0' }),
  });
  const dataDir = join(tmp, 'data');
  const rows: Row[] = [];
  const overhead: { what: string; value: string; target: string }[] = [];
  let uncontained = 0;
  let stopUp: (() => Promise<void>) | undefined;
  try {
    const up = await startUp(dataDir);
    stopUp = up.stop;
    log(`up running (pid ${up.pid}, ${up.scanner})`);
    // 1. From container start.
    const sshd = Array.from({ length: CONTAINERS }, (_, i) => `bench-loop-sshd-${i}-${run}`);
    const t0 = Date.now();
    for (const name of sshd) startContainer(images.sshd, name);
    log(`${CONTAINERS} sshd containers started in ${Date.now() - t0} ms; waiting for their quarantine`);
    await waitUntil('every sshd container quarantined', 120_000, async () => {
      const done = await quarantines(up);
      return sshd.every((n) => done.has(n));
    });
    const info = inspect(sshd);
    const done = await quarantines(up);
    const total: number[] = [];
    const toScan: number[] = [];
    const toAction: number[] = [];
    const inNft: number[] = [];
    for (const name of sshd) {
      const action = done.get(name);
      const c = info.get(name);
      if (!action?.status?.completedAt || !c) {
        uncontained += 1;
        continue;
      }
      const completed = Date.parse(action.status.completedAt);
      const actionStarted = Date.parse(action.status.startedAt ?? action.status.completedAt);
      const scanned = (await firstScan(up, name)) ?? Number.NaN;
      total.push(completed - c.startedAt);
      toScan.push(scanned - c.startedAt);
      toAction.push(actionStarted - scanned);
      inNft.push(completed - actionStarted);
    }
    rows.push(row('start → quarantine live', total, `p99 < ${TARGET.fromStartP99Ms} ms`));
    rows.push(row('  start → scan recorded (agent)', toScan));
    rows.push(row('  scan → action started (event, policy)', toAction));
    rows.push(row('  action started → table live (nft)', inNft));

    // 2. From an advisory import.
    const deps = Array.from({ length: CONTAINERS }, (_, i) => `bench-loop-dep-${i}-${run}`);
    for (const name of deps) startContainer(images.dep, name);
    await waitUntil('every dependency container scanned', 120_000, async () => {
      for (const name of deps) if ((await firstScan(up, name)) === undefined) return false;
      return true;
    });
    const put = await fetch(
      `${up.functions}/api/v1/namespaces/local/actions/quarantine-or-terminate?overwrite=true`,
      {
        method: 'PUT',
        headers: {
          authorization: `Basic ${Buffer.from(up.functionsAuth).toString('base64')}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          exec: { kind: 'typescript', code: BENCH_POLICY },
          limits: { timeout: 300_000 },
        }),
      },
    );
    if (!put.ok) throw new Error(`deploying the bench policy: HTTP ${put.status} ${await put.text()}`);
    const osvDir = join(tmp, 'osv');
    mkdirSync(osvDir);
    writeFileSync(
      join(osvDir, `CTM-BENCH-${run}.json`),
      JSON.stringify({
        schema_version: '1.6.0',
        id: `CTM-BENCH-${run}`,
        modified: new Date().toISOString(),
        published: new Date().toISOString(),
        summary: 'bench advisory',
        affected: [
          {
            package: { ecosystem: 'npm', name: dependency },
            ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '2.0.0' }] }],
          },
        ],
        database_specific: { severity: 'HIGH' },
      }),
    );
    const importStarted = Date.now();
    await promisify(execFile)(process.execPath, [BIN, 'db', 'import', osvDir, '--data-dir', dataDir]);
    const exited = Date.now();
    // The commit: `imports.finished_at` is written in the import's transaction, just before COMMIT.
    const vulndb = new Database(join(dataDir, 'vulndb.sqlite'), { readonly: true });
    const finished = vulndb
      .prepare('SELECT finished_at FROM imports ORDER BY id DESC LIMIT 1')
      .pluck()
      .get() as string;
    vulndb.close();
    const imported = Date.parse(finished);
    log(
      `db import: the process ran ${exited - importStarted} ms and committed ${exited - imported} ms before exiting`,
    );
    const contained = await waitUntil('every dependency container quarantined', 60_000, async () => {
      const q = await quarantines(up);
      return deps.every((n) => q.has(n));
    });
    if (!contained) {
      // Say where the chain stopped: the re-match scans, and what the policy's activations returned.
      const query = new URLSearchParams({ cluster: 'local', namespace: 'local', pod: deps[0] ?? '' });
      log(
        `scans of ${deps[0]}: ${JSON.stringify((await getJson(`${up.scanner}/v1/scans?${query}`, up.token)).body)}`,
      );
      const res = await fetch(`${up.functions}/api/v1/namespaces/local/activations?docs=true&limit=3`, {
        headers: { authorization: `Basic ${Buffer.from(up.functionsAuth).toString('base64')}` },
      });
      log(`latest activations: ${(await res.text()).slice(0, 3000)}`);
    }
    const afterImport = await quarantines(up);
    const fromImport: number[] = [];
    const fromCommand: number[] = [];
    const toRematch: number[] = [];
    const rematchToAction: number[] = [];
    for (const name of deps) {
      const action = afterImport.get(name);
      if (!action?.status?.completedAt) {
        uncontained += 1;
        continue;
      }
      const completed = Date.parse(action.status.completedAt);
      const rematched = (await firstScan(up, name, 'rematch')) ?? Number.NaN;
      fromImport.push(completed - imported);
      fromCommand.push(completed - importStarted);
      toRematch.push(rematched - imported);
      rematchToAction.push(Date.parse(action.status.startedAt ?? '') - rematched);
    }
    rows.push(row('import committed → quarantine live', fromImport, `p99 < ${TARGET.fromImportP99Ms} ms`));
    rows.push(row('  import committed → re-match recorded', toRematch));
    rows.push(row('  re-match → action started (event, policy)', rematchToAction));
    rows.push(row('import command started → quarantine live', fromCommand, '(incl. CLI start-up)'));

    const all = inspect([...sshd, ...deps]);
    const live = [...all.values()].filter((c) => netnsQuarantined(c.pid)).length;
    log(`nft check: ${live} of ${all.size} quarantine tables live in their netns`);
    uncontained += all.size - live;

    // 3. Overhead with IDLE watched containers (the quarantined ones count: they are idle too).
    const extra = Array.from(
      { length: Math.max(0, IDLE - started.length) },
      (_, i) => `bench-loop-idle-${i}-${run}`,
    );
    for (const name of extra) startContainer(images.clean, name);
    await waitUntil('every idle container scanned', 120_000, async () => {
      for (const name of extra) if ((await firstScan(up, name)) === undefined) return false;
      return true;
    });
    await sleep(5000); // let the quarantines those scans cause settle
    // The agent alone, in its own process, watching the same containers with up's rescan interval
    // and reporting to up's scanner (up's in-process agent keeps running too): once as users run
    // it (`containment agent`, the whole CLI loaded) and once as the bare Agent (loop-agent-child.ts).
    const env = { ...process.env, CONTAINMENT_TOKEN: up.token, CONTAINMENT_LOG_LEVEL: 'warn' };
    const children = {
      cli: spawn(
        process.execPath,
        [BIN, 'agent', '--server', up.scanner, '--label', label, '--rescan-interval', '10s'],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
          env,
        },
      ),
      bare: spawn(
        process.execPath,
        ['--import', 'tsx', join(REPO, 'bench', 'loop-agent-child.ts'), up.scanner, label, '10000'],
        { stdio: ['ignore', 'ignore', 'inherit'], env },
      ),
    };
    try {
      await sleep(15_000); // start-up (tsx), then a first scan of every container
      for (const [name, child] of Object.entries(children))
        if (child.exitCode !== null) throw new Error(`the ${name} agent exited with ${child.exitCode}`);
      log(`${started.length} containers watched; measuring up and the agents for ${IDLE_SECONDS} s`);
      const watched = { up: up.pid, cli: children.cli.pid ?? 0, bare: children.bare.pid ?? 0 };
      const keys = ['up', 'cli', 'bare'] as const;
      const before = Object.fromEntries(keys.map((k) => [k, procStat(watched[k])])) as Record<
        (typeof keys)[number],
        ReturnType<typeof procStat>
      >;
      const rssMax = { up: before.up.rssMb, cli: before.cli.rssMb, bare: before.bare.rssMb };
      const t = Date.now();
      while (Date.now() - t < IDLE_SECONDS * 1000) {
        await sleep(2000);
        for (const k of keys) rssMax[k] = Math.max(rssMax[k], procStat(watched[k]).rssMb);
      }
      const seconds = (Date.now() - t) / 1000;
      const cpu = (k: (typeof keys)[number]) =>
        `${(((procStat(watched[k]).cpuTicks - before[k].cpuTicks) / CLK_TCK / seconds) * 100).toFixed(2)} % of one core`;
      const n = `${started.length} idle containers, ${IDLE_SECONDS} s`;
      overhead.push(
        {
          what: `\`containment agent\` process: CPU (${n})`,
          value: cpu('cli'),
          target: `< ${TARGET.cpuPercent} %`,
        },
        {
          what: '`containment agent` process: RSS (max)',
          value: `${rssMax.cli.toFixed(0)} MB`,
          target: `< ${TARGET.rssMb} MB`,
        },
        { what: `bare Agent process: CPU (${n})`, value: cpu('bare'), target: `< ${TARGET.cpuPercent} %` },
        {
          what: 'bare Agent process: RSS (max)',
          value: `${rssMax.bare.toFixed(0)} MB`,
          target: `< ${TARGET.rssMb} MB`,
        },
        { what: 'up as a whole (incl. its own agent): CPU', value: cpu('up'), target: '' },
        { what: 'up as a whole: RSS (max)', value: `${rssMax.up.toFixed(0)} MB`, target: '' },
      );
    } finally {
      for (const child of Object.values(children)) child.kill('SIGTERM');
    }

    process.stdout.write(
      `\nbench:loop — ${CONTAINERS} containers per latency phase, ${cpus().length} cores, load ${loadavg()[0]?.toFixed(2)}\n`,
    );
    console.table(rows);
    console.table(overhead);
  } finally {
    await stopUp?.();
    if (started.length > 0)
      execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', ...started], { stdio: 'ignore' });
    for (const image of Object.values(images))
      execFileSync('podman', ['rmi', '--force', '--ignore', image], { stdio: 'ignore' });
    rmSync(tmp, { recursive: true, force: true });
  }
  if (uncontained > 0) log(`${uncontained} containers were not contained`);
  return uncontained > 0 ? 1 : 0;
}

process.exitCode = await main();
