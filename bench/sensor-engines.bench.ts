/**
 * `npm run bench:sensor-engines`: the runtime sensor's two kernel-side engines side by side in one
 * sitting, alternating — bpftrace with probes.bt and the native engine (native/sensor, built by
 * `npm run build:sensor`). Each round starts a RuntimeDetector on one engine, runs tight loops of
 * /bin/true in a Podman container (every exec a detection, as in bench:runtime section 3) and
 * reports the CPU per exec of the engine process (all its threads, from /proc/<pid>/task/*\/schedstat,
 * ns) and of this Node process (the decoder and the detector, process.cpuUsage), measured over the
 * loop and the drain after it. Knobs: BENCH_ENGINES_EXECS (per round, default 3000),
 * BENCH_ENGINES_ROUNDS (pairs, default 3), BENCH_ENGINES_NATIVE (the binary).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { RuntimeDetector } from '../src/runtime/detector.js';
import { RuleRegistry } from '../src/runtime/rules/registry.js';
import { parseRuleFile } from '../src/runtime/rules/user-rules.js';
import { RuntimeFixture, ebpfMissing } from '../src/runtime/runtime-fixture.test-helper.js';
import { NATIVE_SENSOR_BIN } from '../src/runtime/sensor/native.js';
import { poll } from '../src/testing/wait.js';

const EXECS = Number(process.env.BENCH_ENGINES_EXECS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ENGINES_ROUNDS ?? 3);
const NATIVE = process.env.BENCH_ENGINES_NATIVE ?? NATIVE_SENSOR_BIN;
/** One engine only (e.g. under --cpu-prof). */
const ONLY = process.env.BENCH_ENGINES_ONLY;
/** Write a CPU profile of this process over each round's measured window to this directory. */
const PROFILE = process.env.BENCH_ENGINES_PROFILE;

const missing = ebpfMissing() ?? (existsSync(NATIVE) ? undefined : `${NATIVE} (npm run build:sensor)`);
if (missing) {
  console.error(`bench:sensor-engines needs ${missing}`);
  process.exit(1);
}

/** CPU time (ns) of every live thread of `pid`. */
function taskNs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns;
}
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function podmanExec(name: string, script: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn('podman', ['exec', name, 'sh', '-c', script], { stdio: 'ignore' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exec loop exited ${code}`))));
  });
}
const loop = (n: number): string => `n=0; while [ $n -lt ${n} ]; do /bin/true; n=$((n+1)); done`;

const rules = new RuleRegistry();
for (const r of parseRuleFile(
  `rules:
  - { id: bench_true, title: bench loop exec, severity: LOW, event: exec, condition: { proc.name: "true" } }`,
  'bench',
).rules)
  rules.add(r);

interface Round {
  engine: 'bpftrace' | 'native';
  execsPerS: number;
  engineUs: number;
  nodeUs: number;
  /** Of nodeUs, in the kernel (pipe reads, wake-ups). */
  nodeSysUs: number;
  seen: number;
  lost: number;
  load: string;
}

async function round(engine: Round['engine'], name: string, id: string): Promise<Round> {
  const detector = new RuntimeDetector({
    mode: 'ebpf',
    rules,
    aggregateWindowMs: 0,
    ...(engine === 'native' ? { nativeSensor: NATIVE } : {}),
  });
  let seen = 0;
  detector.onDetection((d) => {
    if (d.workload.containerId === id && d.ruleId === 'bench_true') seen++;
  });
  await detector.start();
  try {
    const pid = detector.status().pid as number;
    // Warm-up: the container's facts, the JIT, the engine's first batches.
    await podmanExec(name, loop(200));
    await poll(
      () => seen,
      (n) => n >= 200,
      { ms: 30_000, every: 50 },
    );
    seen = 0;
    const lost0 = detector.status().lostEvents;
    const session = PROFILE === undefined ? undefined : new Session();
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const e0 = taskNs(pid);
    const n0 = process.cpuUsage();
    const t0 = Date.now();
    await podmanExec(name, `for p in 0 1; do (${loop(EXECS / 2)}) & done; wait`);
    const secs = (Date.now() - t0) / 1000;
    await poll(
      () => seen,
      (n) => n >= EXECS,
      { ms: 10_000, every: 20 },
    ).catch(() => undefined);
    await sleep(500);
    const n1 = process.cpuUsage(n0);
    const engineNs = taskNs(pid) - e0;
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(`${PROFILE}/${engine}-${Date.now()}.cpuprofile`, JSON.stringify(profile));
      session.disconnect();
    }
    return {
      engine,
      execsPerS: EXECS / secs,
      engineUs: engineNs / 1000 / EXECS,
      nodeUs: (n1.user + n1.system) / EXECS,
      nodeSysUs: n1.system / EXECS,
      seen,
      lost: detector.status().lostEvents - lost0,
      load: loadavg(),
    };
  } finally {
    await detector.stop();
  }
}

const fixture = RuntimeFixture.create();
try {
  const c = fixture.run();
  const results: Round[] = [];
  for (let i = 0; i < ROUNDS; i++)
    for (const engine of i % 2 === 0 ? (['bpftrace', 'native'] as const) : (['native', 'bpftrace'] as const)) {
      if (ONLY !== undefined && engine !== ONLY) continue;
      const r = await round(engine, c.name, c.id);
      results.push(r);
      console.log(
        `${r.engine.padEnd(8)} ${EXECS} execs at ${r.execsPerS.toFixed(0)}/s: engine ${r.engineUs.toFixed(0)} µs/exec, node ${r.nodeUs.toFixed(0)} µs/exec (${r.nodeSysUs.toFixed(0)} system), total ${(r.engineUs + r.nodeUs).toFixed(0)} µs/exec; detected ${r.seen}, lost ${r.lost}; load ${r.load}`,
      );
    }
  for (const engine of ['bpftrace', 'native'] as const) {
    const rs = results.filter((r) => r.engine === engine);
    if (rs.length === 0) continue;
    const range = (f: (r: Round) => number): string =>
      `${Math.min(...rs.map(f)).toFixed(0)}–${Math.max(...rs.map(f)).toFixed(0)}`;
    console.log(
      `${engine}: engine ${range((r) => r.engineUs)} µs/exec, node ${range((r) => r.nodeUs)} µs/exec, total ${range((r) => r.engineUs + r.nodeUs)} µs/exec over ${rs.length} rounds`,
    );
  }
} finally {
  fixture.cleanup();
}
