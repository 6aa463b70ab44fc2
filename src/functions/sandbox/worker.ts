/**
 * Worker thread of QuickJsSandbox: runs policies in QuickJS (WebAssembly). One QuickJS runtime per warm
 * instance, so each action has its own heap, memory limit, stack limit and interrupt deadline; the guest
 * sees only the built-ins, `console` and the SDK stubs (no module loader is installed, and this build of
 * QuickJS has no std/os modules). Everything the guest hands over is checked here before it leaves.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import {
  DefaultIntrinsics,
  RELEASE_SYNC,
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSContext,
  type QuickJSDeferredPromise,
  type QuickJSHandle,
  type QuickJSRuntime,
} from 'quickjs-emscripten';
import { GUEST_HARNESS } from './guest-harness.js';
import { firstLine } from './json.js';
import { Messages, type FromWorker, type ToWorker, type WorkerOptions } from './protocol.js';
import { PAYLOAD_LIMIT_BYTES, type ActivationStatus, type JsonValue, type SandboxLimits } from './sandbox.js';
import { SDK_METHODS } from './sdk-methods.js';

const port = parentPort;
if (!port) throw new Error('worker.ts runs only as a worker thread');
const options = workerData as WorkerOptions;
const MB = 1024 * 1024;

/** QuickJS stack limit: far below the WebAssembly stack, so deep recursion is a catchable RangeError. */
const STACK_BYTES = 256 * 1024;
/** Jobs run per slice before the worker yields to its event loop (SDK answers, other invocations). */
const JOBS_PER_SLICE = 512;
const MAX_DESCRIPTION = 1000;
/**
 * QuickJS's own memory limit misses much of what a policy can allocate in this WebAssembly build
 * (measured: with a 128 MB limit, arrays reached 160 MB of "memory_used_size" and a string bomb grew
 * the module's memory past 2 GB). So every instance gets its own WebAssembly module whose linear
 * memory has a hard maximum: the module's initial 16 MB plus the action's memory limit. At the
 * maximum, QuickJS's allocator fails, the guest sees "out of memory", and the activation ends as
 * OpenWhisk ends it; nothing grows past the bound, whatever the kind of allocation. An instance's
 * memory is freed with it, so one action's bomb never costs another action or namespace anything.
 */
const OUT_OF_MEMORY = 'InternalError: out of memory';
const PAGE = 64 * 1024;
/** The release build's INITIAL_MEMORY (16 MB): a module cannot start with less. */
const BASE_PAGES = (16 * MB) / PAGE;
/** The two WebAssembly constructors used here (the ES2023 lib this project compiles against has no types for them). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
const Wasm = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (descriptor: { initial: number; maximum: number }) => WasmMemory;
      Module: new (bytes: Uint8Array) => object;
    };
  }
).WebAssembly;
/** Compiled once per worker; instantiating it per instance takes a few milliseconds. */
const QUICKJS_WASM = new Wasm.Module(
  readFileSync(
    fileURLToPath(
      new URL('emscripten-module.wasm', import.meta.resolve('@jitl/quickjs-wasmfile-release-sync')),
    ),
  ),
);
const SDK_METHOD_SET: ReadonlySet<string> = new Set(SDK_METHODS);

interface Outcome {
  status: ActivationStatus;
  result: JsonValue;
  error?: string;
}

interface Instance {
  actionKey: string;
  codeHash: string;
  memoryMb: number;
  runtime: QuickJSRuntime;
  context: QuickJSContext;
  /** Harness `start` and the original String.prototype.slice, captured before any policy code ran. */
  start?: QuickJSHandle;
  slice?: QuickJSHandle;
  /** The instance's own linear memory, whose maximum is the memory limit (see QUICKJS_WASM). */
  memory: WasmMemory;
  /** Read by the interrupt handler. */
  deadline: number;
  current: Invocation | undefined;
  tokens: number;
  lastUsed: number;
}

interface Invocation {
  id: number;
  limits: SandboxLimits;
  deadline: number;
  coldStart: boolean;
  initializing: boolean;
  instance?: Instance;
  token: number;
  logs: string[];
  logBytes: number;
  logsFull: boolean;
  calls: Map<number, QuickJSDeferredPromise>;
  callCount: number;
  outcome?: Outcome;
  timer?: NodeJS.Timeout;
  finished: boolean;
}

const invocations = new Map<number, Invocation>();
const warm = new Map<string, Instance[]>();
let useCounter = 0;

const developerError = (message: string): Outcome => ({
  status: 'action developer error',
  result: { error: message },
  error: message,
});

/** An instance that could not be initialized, and why. */
class InitFailure extends Error {
  constructor(readonly outcome: Outcome) {
    super(outcome.error);
  }
}

function post(message: FromWorker): void {
  port!.postMessage(message);
}

// ---------------------------------------------------------------------------------------------------
// Reading guest values: only strings and numbers, length-checked before they are copied out.

function guestString(
  inst: Instance,
  handle: QuickJSHandle,
  maxUnits: number,
): { text: string; length: number } | undefined {
  const { context } = inst;
  if (context.typeof(handle) !== 'string') return undefined;
  const lengthHandle = context.getProp(handle, 'length');
  const length = context.getNumber(lengthHandle);
  lengthHandle.dispose();
  if (length <= maxUnits) return { text: context.getString(handle), length };
  const from = context.newNumber(0);
  const to = context.newNumber(maxUnits);
  const cut = context.callFunction(inst.slice!, handle, from, to);
  from.dispose();
  to.dispose();
  if (cut.error) {
    cut.error.dispose();
    return undefined;
  }
  const text = context.getString(cut.value);
  cut.value.dispose();
  return { text, length };
}

function describeError(inst: Instance, handle: QuickJSHandle): string {
  const { context } = inst;
  try {
    if (context.typeof(handle) !== 'object') {
      return guestString(inst, handle, MAX_DESCRIPTION)?.text ?? context.typeof(handle);
    }
    const part = (key: string): string => {
      const value = context.getProp(handle, key);
      const text = guestString(inst, value, MAX_DESCRIPTION)?.text ?? '';
      value.dispose();
      return text;
    };
    const name = part('name');
    const message = part('message');
    return name && message ? `${name}: ${message}` : name || message || 'unknown error';
  } catch {
    return 'unknown error';
  }
}

/** Classifies an exception that escaped guest code (uncatchable interrupt, out of memory, init errors). */
function failureOf(inst: Instance, inv: Invocation, error: QuickJSHandle, phase: 'init' | 'run'): Outcome {
  if (atMemoryMaximum(inst)) {
    error.dispose();
    return developerError(Messages.memoryExhausted);
  }
  if (Date.now() > inv.deadline) {
    error.dispose();
    return developerError(Messages.timeout(inv.limits.timeoutMs, phase === 'init'));
  }
  const text = describeError(inst, error);
  error.dispose();
  if (text === OUT_OF_MEMORY) return developerError(Messages.memoryExhausted);
  return developerError(phase === 'init' ? Messages.initFailed(text) : Messages.threw(text));
}

// ---------------------------------------------------------------------------------------------------
// Host functions handed to the harness.

function onLog(inst: Instance, streamHandle: QuickJSHandle, textHandle: QuickJSHandle): void {
  const inv = inst.current;
  if (!inv || inv.finished || inv.logsFull) return;
  const limit = inv.limits.logLimitBytes;
  // UTF-8 never has fewer bytes than UTF-16 code units, so reading `room + 1` units is enough to know.
  const piece = guestString(inst, textHandle, limit - inv.logBytes + 1);
  if (!piece) return;
  const stream = inst.context.getNumber(streamHandle) === 1 ? 'stderr' : 'stdout';
  const time = new Date().toISOString();
  for (const line of piece.text.split('\n')) {
    const bytes = Buffer.byteLength(line) + 1;
    if (inv.logBytes + bytes > limit) {
      inv.logsFull = true;
      inv.logs.push(`${time} stderr: ${Messages.logsTruncated(limit)}`);
      return;
    }
    inv.logBytes += bytes;
    inv.logs.push(`${time} ${stream}: ${line}`);
  }
}

function onBridge(inst: Instance, methodHandle: QuickJSHandle, argsHandle: QuickJSHandle): QuickJSHandle {
  const { context } = inst;
  const inv = inst.current;
  const deferred = context.newPromise();
  const promise = deferred.handle.dup();
  const refuse = (message: string): QuickJSHandle => {
    const error = context.newError(message);
    deferred.reject(error);
    error.dispose();
    deferred.dispose();
    return promise;
  };
  if (!inv || inv.finished || inv.outcome || Date.now() > inv.deadline) {
    return refuse('the invocation has ended; SDK calls are refused');
  }
  const method = guestString(inst, methodHandle, 100)?.text;
  if (method === undefined || !SDK_METHOD_SET.has(method))
    return refuse(`unknown SDK method ${String(method)}`);
  if (inv.callCount >= options.maxSdkCalls) {
    return refuse(`an invocation may make at most ${options.maxSdkCalls} SDK calls`);
  }
  const args = guestString(inst, argsHandle, PAYLOAD_LIMIT_BYTES + 1);
  if (!args || args.length > PAYLOAD_LIMIT_BYTES || Buffer.byteLength(args.text) > PAYLOAD_LIMIT_BYTES) {
    return refuse(`SDK arguments must be JSON of at most ${PAYLOAD_LIMIT_BYTES} bytes`);
  }
  try {
    if (!Array.isArray(JSON.parse(args.text))) return refuse('SDK arguments must be a JSON array');
  } catch {
    return refuse('SDK arguments must be JSON');
  }
  const callId = ++inv.callCount;
  inv.calls.set(callId, deferred);
  post({ type: 'sdk-call', id: inv.id, callId, method, argsJson: args.text });
  return promise;
}

function onSettle(
  inst: Instance,
  tokenHandle: QuickJSHandle,
  kindHandle: QuickJSHandle,
  payloadHandle: QuickJSHandle,
): void {
  const { context } = inst;
  const inv = inst.current;
  if (!inv || inv.outcome || context.typeof(tokenHandle) !== 'number') return;
  if (context.getNumber(tokenHandle) !== inv.token) return;
  const kind = guestString(inst, kindHandle, 16)?.text;
  if (kind === 'resolved' || kind === 'rejected') {
    const limit = inv.limits.resultLimitBytes;
    const payload = guestString(inst, payloadHandle, limit);
    if (!payload) {
      inv.outcome = developerError(Messages.invalidJson('no result'));
      return;
    }
    const bytes = payload.length > limit ? payload.length : Buffer.byteLength(payload.text);
    inv.outcome =
      bytes > limit
        ? developerError(Messages.resultTooLarge(bytes, limit))
        : resultOutcome(payload.text, kind);
  } else if (kind === 'threw' || kind === 'invalid') {
    const why = guestString(inst, payloadHandle, MAX_DESCRIPTION)?.text ?? 'unknown error';
    if (why === OUT_OF_MEMORY || atMemoryMaximum(inst))
      inv.outcome = developerError(Messages.memoryExhausted);
    else inv.outcome = developerError(kind === 'threw' ? Messages.threw(why) : Messages.invalidJson(why));
  }
}

/** OpenWhisk: a dictionary is a result; one with an `error` field, or a rejection, is an application error. */
function resultOutcome(json: string, kind: 'resolved' | 'rejected'): Outcome {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    return developerError(Messages.invalidJson(firstLine(e)));
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return developerError(Messages.notADictionary);
  const result = value as { [key: string]: JsonValue };
  // QuickJS lets a policy catch its own out-of-memory error; OpenWhisk ends such an action as a developer error.
  const error = result.error as { name?: unknown; message?: unknown } | undefined;
  if (kind === 'rejected' && `${String(error?.name)}: ${String(error?.message)}` === OUT_OF_MEMORY) {
    return developerError(Messages.memoryExhausted);
  }
  if (kind === 'rejected' || Object.hasOwn(result, 'error')) {
    return { status: 'application error', result, error: summarize(result.error) };
  }
  return { status: 'success', result };
}

function summarize(error: JsonValue | undefined): string {
  const message =
    typeof error === 'string'
      ? error
      : error && typeof error === 'object' && !Array.isArray(error) && typeof error.message === 'string'
        ? error.message
        : JSON.stringify(error ?? null);
  return (message.split('\n', 1)[0] ?? '').slice(0, MAX_DESCRIPTION);
}

// ---------------------------------------------------------------------------------------------------
// Instances: one QuickJS runtime + context per warm instance of an action.

/** A fresh QuickJS module with its own memory, bounded by the action's memory limit. */
async function newEngine(memoryMb: number): Promise<Engine> {
  const memory = new Wasm.Memory({
    initial: BASE_PAGES,
    maximum: BASE_PAGES + (memoryMb * MB) / PAGE,
  });
  const variant = newVariant(RELEASE_SYNC, {
    wasmModule: QUICKJS_WASM as never,
    wasmMemory: memory as never,
  });
  return { module: await newQuickJSWASMModuleFromVariant(variant), memory };
}

interface Engine {
  module: Awaited<ReturnType<typeof newQuickJSWASMModuleFromVariant>>;
  memory: WasmMemory;
}

/**
 * True when the instance's memory is within 16 MB of its maximum. A failure there is memory
 * exhaustion even when QuickJS could not say so: at its own limit it may have no memory left to
 * build the error, and throws null instead.
 */
function atMemoryMaximum(inst: Instance): boolean {
  return inst.memory.buffer.byteLength + 16 * MB >= BASE_PAGES * PAGE + inst.memoryMb * MB;
}

function createInstance(
  msg: Extract<ToWorker, { type: 'invoke' }>,
  inv: Invocation,
  engine: Engine,
): Instance {
  const runtime = engine.module.newRuntime();
  runtime.setMemoryLimit(msg.limits.memoryMb * MB);
  runtime.setMaxStackSize(STACK_BYTES);
  // Typed arrays are of no use to a JSON-in, JSON-out policy and are the cheapest way to large buffers.
  const context = runtime.newContext({ intrinsics: { ...DefaultIntrinsics, TypedArrays: false } });
  const inst: Instance = {
    actionKey: msg.actionKey,
    codeHash: msg.codeHash,
    memoryMb: msg.limits.memoryMb,
    runtime,
    context,
    memory: engine.memory,
    deadline: inv.deadline,
    current: inv,
    tokens: 0,
    lastUsed: 0,
  };
  runtime.setInterruptHandler(() => Date.now() > inst.deadline);
  try {
    inst.slice = context.unwrapResult(context.evalCode('String.prototype.slice', 'harness.js'));
    const factory = context.unwrapResult(context.evalCode(GUEST_HARNESS, 'harness.js'));
    const fns = [
      context.newFunction('bridge', (m, a) => onBridge(inst, m, a)),
      context.newFunction('log', (s, t) => onLog(inst, s, t)),
      context.newFunction('settle', (t, k, p) => onSettle(inst, t, k, p)),
      context.unwrapResult(context.evalCode(JSON.stringify(SDK_METHODS), 'harness.js')),
    ];
    const api = context.unwrapResult(context.callFunction(factory, context.undefined, fns));
    for (const handle of [factory, ...fns]) handle.dispose();
    const init = context.getProp(api, 'init');
    inst.start = context.getProp(api, 'start');
    api.dispose();

    try {
      const evaluated = context.evalCode(msg.code, 'policy.js');
      if (evaluated.error) throw new InitFailure(failureOf(inst, inv, evaluated.error, 'init'));
      evaluated.value.dispose();
      const ready = context.callFunction(init, context.undefined);
      if (ready.error) throw new InitFailure(failureOf(inst, inv, ready.error, 'init'));
      ready.value.dispose();
    } finally {
      init.dispose();
    }
    return inst;
  } catch (e) {
    disposeInstance(inst);
    throw e;
  }
}

function disposeInstance(inst: Instance): void {
  inst.start?.dispose();
  inst.slice?.dispose();
  inst.context.dispose();
  inst.runtime.dispose();
}

function takeWarm(actionKey: string, codeHash: string, memoryMb: number): Instance | undefined {
  const idle = warm.get(actionKey);
  if (!idle) return undefined;
  // Instances of an older deployment of the action are of no further use.
  const fresh = idle.filter((i) => i.codeHash === codeHash && i.memoryMb === memoryMb);
  for (const stale of idle) if (!fresh.includes(stale)) disposeInstance(stale);
  const inst = fresh.pop();
  if (fresh.length > 0) warm.set(actionKey, fresh);
  else warm.delete(actionKey);
  return inst;
}

function keepWarm(inst: Instance): void {
  inst.lastUsed = ++useCounter;
  const idle = warm.get(inst.actionKey) ?? [];
  idle.push(inst);
  warm.set(inst.actionKey, idle);
  let total = 0;
  for (const list of warm.values()) total += list.length;
  while (total-- > options.maxWarm) {
    let oldest: Instance | undefined;
    for (const list of warm.values())
      for (const i of list) if (!oldest || i.lastUsed < oldest.lastUsed) oldest = i;
    if (!oldest) break;
    const list = warm.get(oldest.actionKey)!;
    list.splice(list.indexOf(oldest), 1);
    if (list.length === 0) warm.delete(oldest.actionKey);
    disposeInstance(oldest);
  }
}

// ---------------------------------------------------------------------------------------------------
// Invocations.

function onInvoke(msg: Extract<ToWorker, { type: 'invoke' }>): void {
  const inv: Invocation = {
    id: msg.id,
    limits: msg.limits,
    deadline: Date.now() + msg.limits.timeoutMs,
    coldStart: false,
    initializing: false,
    token: 0,
    logs: [],
    logBytes: 0,
    logsFull: false,
    calls: new Map(),
    callCount: 0,
    finished: false,
  };
  invocations.set(inv.id, inv);
  // Covers time spent waiting on the SDK; guest code that is running is stopped by the interrupt handler.
  inv.timer = setTimeout(
    () => guarded(inv.id, () => finish(inv, developerError(Messages.timeout(inv.limits.timeoutMs, false)))),
    msg.limits.timeoutMs + 1,
  );

  const inst = takeWarm(msg.actionKey, msg.codeHash, msg.limits.memoryMb);
  if (inst) {
    inst.current = inv;
    inst.deadline = inv.deadline;
    return start(msg, inv, inst);
  }
  inv.coldStart = true;
  newEngine(msg.limits.memoryMb).then(
    (engine) =>
      guarded(inv.id, () => {
        if (inv.finished) return; // timed out while the module was instantiated
        try {
          start(msg, inv, createInstance(msg, inv, engine));
        } catch (e) {
          if (e instanceof InitFailure) return finish(inv, e.outcome);
          throw e;
        }
      }),
    (e: unknown) =>
      guarded(inv.id, () => {
        throw e;
      }),
  );
}

function start(msg: Extract<ToWorker, { type: 'invoke' }>, inv: Invocation, inst: Instance): void {
  inv.instance = inst;
  inv.token = ++inst.tokens;
  const { context } = inst;
  const token = context.newNumber(inv.token);
  const params = context.newString(msg.paramsJson);
  const started = context.callFunction(inst.start!, context.undefined, token, params);
  token.dispose();
  params.dispose();
  if (started.error) return finish(inv, failureOf(inst, inv, started.error, 'run'));
  started.value.dispose();
  pump(inv);
}

/** Runs the guest's promise jobs in slices until `main` settles, then reports; waits while SDK calls are out. */
function pump(inv: Invocation): void {
  const inst = inv.instance!;
  for (let slice = 0; !inv.finished; slice++) {
    if (inv.outcome) return finish(inv, inv.outcome);
    if (!inst.runtime.hasPendingJob()) return;
    if (slice === 8) {
      setImmediate(() => guarded(inv.id, () => pump(inv)));
      return;
    }
    const ran = inst.runtime.executePendingJobs(JOBS_PER_SLICE);
    if (ran.error) return finish(inv, failureOf(inst, inv, ran.error, 'run'));
  }
}

function finish(inv: Invocation, outcome: Outcome): void {
  if (inv.finished) return;
  inv.finished = true;
  clearTimeout(inv.timer);
  invocations.delete(inv.id);
  // Report first: freeing a runtime whose jobs were interrupted can abort QuickJS (an assertion on leftover
  // objects in JS_FreeRuntime), which must not cost this invocation its result.
  post({ type: 'done', id: inv.id, ...outcome, logs: inv.logs, coldStart: inv.coldStart });
  const inst = inv.instance;
  if (!inst) return;
  inst.current = undefined;
  // Reuse only an instance that is quiet: nothing queued, no SDK call out, not failed. Anything left
  // running would otherwise wake up inside a later invocation.
  const quiet =
    inv.calls.size === 0 && !inst.runtime.hasPendingJob() && outcome.status !== 'action developer error';
  for (const deferred of inv.calls.values()) deferred.dispose();
  inv.calls.clear();
  if (quiet) keepWarm(inst);
  else disposeInstance(inst);
}

function onSdkResult(msg: Extract<ToWorker, { type: 'sdk-result' }>): void {
  const inv = invocations.get(msg.id);
  const deferred = inv?.calls.get(msg.callId);
  if (!inv || !deferred || inv.finished) return;
  inv.calls.delete(msg.callId);
  const { context } = inv.instance!;
  const value = msg.ok ? context.newString(msg.json) : context.newError(msg.message);
  if (msg.ok) deferred.resolve(value);
  else deferred.reject(value);
  value.dispose();
  deferred.dispose();
  pump(inv);
}

/**
 * A failure of the worker itself (a WebAssembly trap, a bug here) leaves QuickJS in an unknown state: report
 * the invocation and exit; the host replaces this worker and fails whatever else was running in it.
 */
function guarded(id: number, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    const trap = e instanceof Error && e.name === 'RuntimeError'; // WebAssembly.RuntimeError
    const message = trap ? Messages.abnormalRun : `sandbox worker failed: ${firstLine(e)}`;
    const inv = invocations.get(id);
    if (inv)
      post({
        type: 'done',
        id,
        status: trap ? 'action developer error' : 'whisk internal error',
        result: { error: message },
        error: message,
        logs: inv.logs,
        coldStart: inv.coldStart,
      });
    setImmediate(() => process.exit(1));
  }
}

port.on('message', (msg: ToWorker) => {
  guarded(msg.id, () => (msg.type === 'invoke' ? onInvoke(msg) : onSdkResult(msg)));
});
post({ type: 'ready' });
