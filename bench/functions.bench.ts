/**
 * The function runtime benchmark (`npm run bench:functions`, issue 4), on a small TypeScript policy that
 * makes one SDK call (`vs.getFindings`) answered by the host:
 *
 * 1. sandbox level (QuickJsSandbox.invoke): warm latency (same actionKey), cold latency (a new actionKey,
 *    so a fresh QuickJS runtime, each call), and memory per warm instance (process RSS across N warm
 *    instances; WebAssembly memory of N QuickJS runtimes set up as the worker sets them up, measured in
 *    this thread because the sandbox's own module lives in its workers).
 * 2. end to end through the OpenWhisk REST API of a real `runFunctions` server on loopback: blocking
 *    invoke latency (warm), and trigger fires with one active rule — fires/s accepted, fires/s until every
 *    rule activation is recorded, and lost activations (fires whose action activation never appeared).
 *
 * Each measurement runs BENCH_RUNS times (default 3) and the median of the runs is printed with the load
 * average. Figures, not a test: nothing fails on a missed target (exit code 1 only if an activation is lost
 * or an invocation fails).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import pino from 'pino';
import { DefaultIntrinsics, newQuickJSWASMModule } from 'quickjs-emscripten';
import type { PolicyHost } from '../src/functions/host/policy-host.js';
import { FUNCTIONS_DB_FILE, runFunctions } from '../src/functions/run-functions.js';
import { compilePolicy } from '../src/functions/sandbox/compile.js';
import { GUEST_HARNESS } from '../src/functions/sandbox/guest-harness.js';
import { QuickJsSandbox } from '../src/functions/sandbox/quickjs-sandbox.js';
import { DEFAULT_LIMITS } from '../src/functions/sandbox/sandbox.js';
import type { InvokeRequest, InvokeResult, JsonValue } from '../src/functions/sandbox/sandbox.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WARM_CALLS = 500;
const WARMUP_CALLS = 50;
const COLD_CALLS = 200;
const MEMORY_INSTANCES = 200;
/**
 * QuickJS runtimes created in this thread to see the WebAssembly memory grow: enough to pass its initial
 * 16 MB many times over, as it grows in steps (the figure is an upper bound by at most one step / N).
 */
const WASM_RUNTIMES = 1000;
const FIRES = Number(process.env.BENCH_FIRES ?? 3000);
const FIRE_CONCURRENCY = 32;
const DRAIN_TIMEOUT_MS = 60_000;
const TARGET = { warmP50Ms: 2, coldP50Ms: 20, firesPerSecond: 500 };
const AUTH = 'b3c1a6f0-4d1e-4a53-9c1e-5d0f1b2a3c4d:functions-bench-key-0123456789';
const NS = 'guest';
const MB = 1024 * 1024;

const POLICY = `import { vs } from '@containment/policy-sdk';

interface Params { pod?: string; scanTime?: string }
interface Findings { vulnerablePackages: { id: string }[] }

export async function main(params: Params) {
  const pod = params.pod ?? 'default/web';
  const findings = (await vs.getFindings(pod, params.scanTime)) as Findings | null;
  const count = findings === null ? 0 : findings.vulnerablePackages.length;
  return { pod, decision: count > 0 ? 'terminate' : 'none', count };
}
`;

/** What the host answers to the policy's one SDK call. */
const FINDINGS: JsonValue = {
  scanTime: '2026-11-27T09:00:00Z',
  vulnerablePackages: [{ id: 'CVE-2024-0001' }, { id: 'GHSA-aaaa-bbbb-cccc' }],
  insecureConfigurations: [],
};
const sdk: InvokeRequest['sdk'] = (method) =>
  method === 'vs.getFindings' ? Promise.resolve(FINDINGS) : Promise.reject(new Error(`unexpected ${method}`));
const policyHost: PolicyHost = { invokeSdk: (_ns, _action, method, args) => sdk(method, args) };

const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

// --- measurement helpers ---

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

interface Latency {
  p50: number;
  p99: number;
}

function latency(samples: readonly number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

/** Median of each field over the runs. */
function medianOf<T extends object>(runs: readonly T[]): T {
  const first = runs[0];
  if (first === undefined) throw new Error('no runs');
  const out: Record<string, number> = {};
  for (const key of Object.keys(first))
    out[key] = median(runs.map((r) => (r as Record<string, number>)[key] as number));
  return out as T;
}

let failures = 0;
function expectSuccess(r: InvokeResult, cold: boolean): void {
  if (r.status !== 'success' || r.coldStart !== cold) {
    failures++;
    throw new Error(`invocation: ${r.status} coldStart=${String(r.coldStart)} ${r.error ?? ''}`);
  }
}

/** A gc() for memory figures, without asking for --expose-gc on the command line. */
function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
const gc = gcFunction();
const settle = async (): Promise<void> => {
  gc();
  await new Promise((r) => setTimeout(r, 200));
  gc();
};

// --- 1. sandbox level ---

async function sandboxLatency(code: string): Promise<{ warm: Latency; cold: Latency }> {
  const warmRuns: Latency[] = [];
  const coldRuns: Latency[] = [];
  const sandbox = new QuickJsSandbox();
  const invoke = async (actionKey: string, cold: boolean): Promise<number> => {
    const t0 = performance.now();
    const r = await sandbox.invoke({
      actionKey,
      code,
      params: { pod: 'prod/web-1' },
      limits: DEFAULT_LIMITS,
      sdk,
    });
    const ms = performance.now() - t0;
    expectSuccess(r, cold);
    return ms;
  };
  try {
    for (let run = 0; run < RUNS; run++) {
      const key = `${NS}/warm-${run}@0.0.1`;
      await invoke(key, true);
      for (let i = 0; i < WARMUP_CALLS; i++) await invoke(key, false);
      const warm: number[] = [];
      for (let i = 0; i < WARM_CALLS; i++) warm.push(await invoke(key, false));
      warmRuns.push(latency(warm));

      const cold: number[] = [];
      for (let i = 0; i < COLD_CALLS; i++) cold.push(await invoke(`${NS}/cold-${run}-${i}@0.0.1`, true));
      coldRuns.push(latency(cold));
      log(
        `sandbox run ${run + 1}/${RUNS}: warm p50 ${fmt(warmRuns.at(-1)?.p50)} ms, cold p50 ${fmt(coldRuns.at(-1)?.p50)} ms (load ${load()})`,
      );
    }
  } finally {
    await sandbox.close();
  }
  return { warm: medianOf(warmRuns), cold: medianOf(coldRuns) };
}

interface MemoryFigures {
  rssPerInstanceMb: number;
  heapPerInstanceKb: number;
  wasmPerRuntimeKb: number;
  quickjsUsedKb: number;
}

async function sandboxMemory(code: string): Promise<MemoryFigures> {
  // Room for every instance to stay warm whichever worker its key hashes to.
  const sandbox = new QuickJsSandbox({ maxWarmPerWorker: MEMORY_INSTANCES });
  let rss: number;
  let heap: number;
  try {
    // Workers up, QuickJS loaded and one instance created per worker before the baseline.
    for (let i = 0; i < 8; i++)
      expectSuccess(
        await sandbox.invoke({
          actionKey: `${NS}/baseline-${i}@0`,
          code,
          params: {},
          limits: DEFAULT_LIMITS,
          sdk,
        }),
        true,
      );
    await settle();
    const before = process.memoryUsage();
    for (let i = 0; i < MEMORY_INSTANCES; i++) {
      const actionKey = `${NS}/memory-${i}@0`;
      expectSuccess(await sandbox.invoke({ actionKey, code, params: {}, limits: DEFAULT_LIMITS, sdk }), true);
    }
    // Each is still warm: a second call to every one is not a cold start.
    for (let i = 0; i < MEMORY_INSTANCES; i++) {
      const actionKey = `${NS}/memory-${i}@0`;
      expectSuccess(
        await sandbox.invoke({ actionKey, code, params: {}, limits: DEFAULT_LIMITS, sdk }),
        false,
      );
    }
    await settle();
    const after = process.memoryUsage();
    rss = (after.rss - before.rss) / MEMORY_INSTANCES;
    heap = (after.heapUsed - before.heapUsed) / MEMORY_INSTANCES;
  } finally {
    await sandbox.close();
  }

  // The workers' WebAssembly memory is not visible from here: set up the same runtimes in this thread,
  // enough of them to grow the module's linear memory past its initial size.
  const quickjs = await newQuickJSWASMModule();
  const memory = quickjs.getWasmMemory();
  const wasmBefore = memory.buffer.byteLength;
  const runtimes = [];
  for (let i = 0; i < WASM_RUNTIMES; i++) {
    const runtime = quickjs.newRuntime();
    runtime.setMemoryLimit(DEFAULT_LIMITS.memoryMb * MB);
    const context = runtime.newContext({ intrinsics: { ...DefaultIntrinsics, TypedArrays: false } });
    context.unwrapResult(context.evalCode(GUEST_HARNESS, 'harness.js')).dispose();
    // The sandbox gives every runtime an (empty here) SDK global the policy bundle refers to.
    const sdkGlobal = context.newObject();
    context.setProp(context.global, '__sdk', sdkGlobal);
    sdkGlobal.dispose();
    context.unwrapResult(context.evalCode(code, 'policy.js')).dispose();
    runtimes.push({ runtime, context });
  }
  const wasmPerRuntime = (memory.buffer.byteLength - wasmBefore) / WASM_RUNTIMES;
  // QuickJS's own count of the bytes one runtime holds ("memory used" in its dump).
  const used = /memory used\s+\d+\s+(\d+)/.exec(runtimes[0]?.runtime.dumpMemoryUsage() ?? '')?.[1];
  for (const { runtime, context } of runtimes) {
    context.dispose();
    runtime.dispose();
  }
  return {
    rssPerInstanceMb: rss / MB,
    heapPerInstanceKb: heap / 1024,
    wasmPerRuntimeKb: wasmPerRuntime / 1024,
    quickjsUsedKb: Number(used) / 1024,
  };
}

// --- 2. end to end ---

interface Response {
  status: number;
  body: unknown;
}

const agent = new Agent({ keepAlive: true, maxSockets: FIRE_CONCURRENCY });
const authorization = `Basic ${Buffer.from(AUTH).toString('base64')}`;

function api(base: string, method: string, path: string, body?: unknown): Promise<Response> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/api/v1/namespaces/${NS}${path}`,
      {
        method,
        agent,
        headers: {
          authorization,
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function expectStatus(r: Promise<Response>, status: number, what: string): Promise<Response> {
  const res = await r;
  if (res.status !== status)
    throw new Error(`${what}: HTTP ${res.status} (expected ${status}) ${JSON.stringify(res.body)}`);
  return res;
}

async function putAction(base: string, name: string): Promise<void> {
  await expectStatus(
    api(base, 'PUT', `/actions/${name}?overwrite=true`, { exec: { kind: 'typescript', code: POLICY } }),
    200,
    `create action ${name}`,
  );
}

async function blockingLatency(base: string): Promise<Latency> {
  await putAction(base, 'bench-invoke');
  const runs: Latency[] = [];
  const invoke = async (): Promise<number> => {
    const t0 = performance.now();
    const res = await api(base, 'POST', '/actions/bench-invoke?blocking=true&result=true', {
      pod: 'prod/web-1',
    });
    const ms = performance.now() - t0;
    if (res.status !== 200 || (res.body as { decision?: string }).decision !== 'terminate') {
      failures++;
      throw new Error(`blocking invoke: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    }
    return ms;
  };
  for (let i = 0; i < WARMUP_CALLS; i++) await invoke();
  for (let run = 0; run < RUNS; run++) {
    const samples: number[] = [];
    for (let i = 0; i < WARM_CALLS; i++) samples.push(await invoke());
    runs.push(latency(samples));
    log(`blocking invoke run ${run + 1}/${RUNS}: p50 ${fmt(runs.at(-1)?.p50)} ms (load ${load()})`);
  }
  return medianOf(runs);
}

interface FireFigures {
  acceptedPerSecond: number;
  endToEndPerSecond: number;
  drainMs: number;
  lost: number;
  failed: number;
}

/** Lists every activation of `name` (newest first, pages of 200) with its full record. */
async function allActivations(
  base: string,
  name: string,
): Promise<{ cause?: string; response: { success: boolean } }[]> {
  const out: { cause?: string; response: { success: boolean } }[] = [];
  for (let skip = 0; ; skip += 200) {
    const res = await expectStatus(
      api(base, 'GET', `/activations?name=${name}&limit=200&skip=${skip}&docs=true`),
      200,
      'list activations',
    );
    const page = res.body as { cause?: string; response: { success: boolean } }[];
    out.push(...page);
    if (page.length < 200) return out;
  }
}

async function fireRun(base: string, db: Database.Database, run: number): Promise<FireFigures> {
  const action = `bench-fired-${run}`;
  const trigger = `bench-events-${run}`;
  await putAction(base, action);
  await expectStatus(api(base, 'PUT', `/triggers/${trigger}?overwrite=true`, {}), 200, 'create trigger');
  await expectStatus(
    api(base, 'PUT', `/rules/bench-rule-${run}?overwrite=true`, {
      trigger: `/_/${trigger}`,
      action: `/_/${action}`,
    }),
    200,
    'create rule',
  );
  const count = db.prepare('SELECT count(*) AS n FROM activations WHERE namespace = ? AND path = ?');
  const recorded = (): number => (count.get(NS, action) as { n: number }).n;

  const fired = new Set<string>();
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: FIRE_CONCURRENCY }, async () => {
      while (next < FIRES) {
        const n = next++;
        const res = await expectStatus(
          api(base, 'POST', `/triggers/${trigger}`, { pod: `prod/web-${n}`, n }),
          202,
          'fire',
        );
        fired.add((res.body as { activationId: string }).activationId);
      }
    }),
  );
  const acceptedMs = performance.now() - t0;
  const until = Date.now() + DRAIN_TIMEOUT_MS;
  while (recorded() < FIRES && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  const doneMs = performance.now() - t0;

  // Every fire must have caused exactly one successful activation of the rule's action.
  const activations = await allActivations(base, action);
  const matched = new Set<string>();
  let failed = 0;
  for (const a of activations) {
    if (a.cause !== undefined && fired.has(a.cause)) matched.add(a.cause);
    if (!a.response.success) failed++;
  }
  failures += failed;
  const figures: FireFigures = {
    acceptedPerSecond: FIRES / (acceptedMs / 1000),
    endToEndPerSecond: FIRES / (doneMs / 1000),
    drainMs: doneMs - acceptedMs,
    lost: fired.size - matched.size + (FIRES - fired.size),
    failed,
  };
  log(
    `fire run ${run + 1}/${RUNS}: ${fmt(figures.acceptedPerSecond, 0)} accepted/s, ${fmt(figures.endToEndPerSecond, 0)} end-to-end/s, lost ${figures.lost}, failed ${failed} (load ${load()})`,
  );
  return figures;
}

// --- report ---

function fmt(n: number | undefined, digits = 2): string {
  return n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
}

function verdict(ok: boolean): string {
  return ok ? 'PASS' : 'MISS';
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadStart = load();
  log(`${cpus().length} cores, load ${loadStart}, ${RUNS} runs per measurement`);
  const { code } = await compilePolicy(POLICY, { filename: 'bench-policy.ts', loader: 'ts' });

  const sandboxFigures = await sandboxLatency(code);
  const memory = await sandboxMemory(code);
  log(`memory: ${fmt(memory.rssPerInstanceMb)} MB RSS per warm instance (load ${load()})`);

  const dataDir = mkdtempSync(join(tmpdir(), 'functions-bench-'));
  const running = await runFunctions({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    // Measures the runtime, not the per-source limit that would (rightly) stop 500 fires/s from one address.
    rateLimit: false,
    logger: pino({ level: 'silent' }),
    guestAuth: AUTH,
    policyHost,
  });
  const db = new Database(join(dataDir, FUNCTIONS_DB_FILE), { readonly: true });
  let blocking: Latency;
  let fires: FireFigures;
  try {
    blocking = await blockingLatency(running.url);
    const fireRuns: FireFigures[] = [];
    for (let run = 0; run < RUNS; run++) fireRuns.push(await fireRun(running.url, db, run));
    fires = medianOf(fireRuns);
    fires.lost = Math.max(...fireRuns.map((r) => r.lost));
    fires.failed = Math.max(...fireRuns.map((r) => r.failed));
  } finally {
    db.close();
    agent.destroy();
    await running.close();
    rmSync(dataDir, { recursive: true, force: true });
  }

  const { warm, cold } = sandboxFigures;
  const rows: [string, string, string, string][] = [
    [
      'sandbox warm invoke p50',
      `${fmt(warm.p50)} ms`,
      `< ${TARGET.warmP50Ms} ms`,
      verdict(warm.p50 < TARGET.warmP50Ms),
    ],
    ['sandbox warm invoke p99', `${fmt(warm.p99)} ms`, '', ''],
    [
      'sandbox cold invoke p50',
      `${fmt(cold.p50)} ms`,
      `< ${TARGET.coldP50Ms} ms`,
      verdict(cold.p50 < TARGET.coldP50Ms),
    ],
    ['sandbox cold invoke p99', `${fmt(cold.p99)} ms`, '', ''],
    ['REST blocking invoke p50 (warm)', `${fmt(blocking.p50)} ms`, '', ''],
    ['REST blocking invoke p99 (warm)', `${fmt(blocking.p99)} ms`, '', ''],
    ['trigger fires accepted', `${fmt(fires.acceptedPerSecond, 0)} /s`, '', ''],
    [
      'trigger fires end to end',
      `${fmt(fires.endToEndPerSecond, 0)} /s`,
      `>= ${TARGET.firesPerSecond} /s`,
      verdict(fires.endToEndPerSecond >= TARGET.firesPerSecond),
    ],
    ['  drain after last fire accepted', `${fmt(fires.drainMs, 0)} ms`, '', ''],
    ['lost activations (worst run)', String(fires.lost), '0', verdict(fires.lost === 0)],
    ['failed activations (worst run)', String(fires.failed), '0', verdict(fires.failed === 0)],
    ['RSS per warm instance', `${fmt(memory.rssPerInstanceMb)} MB`, '', ''],
    ['main-thread heap per warm instance', `${fmt(memory.heapPerInstanceKb)} KB`, '', ''],
    [`WebAssembly memory per runtime (of ${WASM_RUNTIMES})`, `${fmt(memory.wasmPerRuntimeKb)} KB`, '', ''],
    ['QuickJS heap used per runtime', `${fmt(memory.quickjsUsedKb)} KB`, '', ''],
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i as 0 | 1 | 2].length), 6));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (i < 3 ? c.padEnd(widths[i] as number) : c))
      .join('  ')
      .trimEnd();
  const out = [
    `functions benchmark — ${cpus().length} cores, node ${process.version}, median of ${RUNS} runs`,
    `  sandbox: ${WARM_CALLS} warm calls after ${WARMUP_CALLS} warm-up, ${COLD_CALLS} cold calls; memory over ${MEMORY_INSTANCES} warm instances`,
    `  REST: ${WARM_CALLS} blocking invokes; ${FIRES} fires at concurrency ${FIRE_CONCURRENCY}, one rule`,
    '',
    line(['measure', 'value', 'target', '']),
    ...rows.map(line),
    '',
    `load average: start ${loadStart}, end ${load()}; took ${fmt((performance.now() - started) / 1000, 1)} s`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  if (failures > 0 || fires.lost > 0) process.exitCode = 1;
}

await main();
