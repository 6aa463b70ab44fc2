/**
 * The Sandbox on QuickJS-in-WebAssembly, run by a small pool of worker threads.
 *
 * Layers: (1) QuickJS — the guest has no host objects at all, only built-ins, `console` and SDK stubs,
 * with a memory limit, a stack limit and an interrupt deadline per runtime; (2) the worker thread —
 * `resourceLimits` on its own heap, and this host terminates it when an invocation overruns its deadline
 * by `hostGraceMs` (guest stuck in a native loop the interrupt handler cannot reach); a dead worker is
 * replaced and its in-flight invocations fail. Only JSON text crosses either boundary.
 *
 * Warm reuse, as OpenWhisk's warm containers: an action's initialized instance (its QuickJS runtime with
 * the module evaluated) is kept after a success or application error and reused by the next invocation
 * of the same actionKey + code, so module-level state persists between those invocations — and only
 * those: every action (and namespace, which is part of the key) has its own QuickJS runtime. An action is
 * always routed to the same worker so its warm instances are found.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { firstLine, toJsonText } from './json.js';
import { Messages, type FromWorker, type ToWorker, type WorkerOptions } from './protocol.js';
import {
  PAYLOAD_LIMIT_BYTES,
  validateLimits,
  type InvokeRequest,
  type InvokeResult,
  type JsonValue,
  type Sandbox,
  type SdkHandler,
} from './sandbox.js';
import { SDK_METHODS } from './sdk-methods.js';

export interface QuickJsSandboxOptions {
  /** Worker threads (default: up to 2, one per core). */
  workers?: number;
  /** Idle warm instances per worker (default 32). */
  maxWarmPerWorker?: number;
  /** SDK calls allowed per invocation (default 1000). */
  maxSdkCalls?: number;
  /** How long past its deadline an invocation may go before its worker is terminated (default 1000 ms). */
  hostGraceMs?: number;
}

interface Pending {
  id: number;
  timeoutMs: number;
  deadline: number;
  startedAt: number;
  sdk: SdkHandler;
  resolve: (result: InvokeResult) => void;
  timer: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  /** Resolves true once QuickJS is loaded in the worker, false if it died before that. */
  ready: Promise<boolean>;
  /** Settles `ready` (also from close(), which removes the 'exit' listener that would). */
  settleReady: (ok: boolean) => void;
  pending: Map<number, Pending>;
}

const SDK_METHOD_SET: ReadonlySet<string> = new Set(SDK_METHODS);
/**
 * Built, the worker is worker.js beside this file. Run from sources under tsx (tests, `tsx` CLI), Node 20
 * does not apply tsx's loader to a worker's entry module, so a tiny bootstrap registers it first.
 */
function workerEntry(): { entry: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts'))
    return { entry: new URL('./worker.js', import.meta.url), eval: false };
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const worker = JSON.stringify(new URL('./worker.ts', import.meta.url).href);
  return {
    entry: `import(${tsx}).then((api) => { api.register(); return import(${worker}); });`,
    eval: true,
  };
}
const WORKER = workerEntry();

export class QuickJsSandbox implements Sandbox {
  private readonly slots: Slot[] = [];
  private readonly workerOptions: WorkerOptions;
  private readonly hostGraceMs: number;
  private nextId = 0;
  private closed = false;

  constructor(options: QuickJsSandboxOptions = {}) {
    this.workerOptions = {
      maxWarm: options.maxWarmPerWorker ?? 32,
      maxSdkCalls: options.maxSdkCalls ?? 1000,
    };
    this.hostGraceMs = options.hostGraceMs ?? 1000;
    const count = options.workers ?? Math.min(2, availableParallelism());
    for (let i = 0; i < count; i++) this.slots.push(this.spawn());
  }

  async invoke(request: InvokeRequest): Promise<InvokeResult> {
    const limits = validateLimits(request.limits);
    if (request.params === null || typeof request.params !== 'object' || Array.isArray(request.params)) {
      throw new ContainmentError(ErrorCodes.POLICY_PARAMS_INVALID, 'parameters must be a JSON object');
    }
    let paramsJson: string;
    try {
      paramsJson = toJsonText(request.params, PAYLOAD_LIMIT_BYTES);
    } catch (e) {
      throw new ContainmentError(ErrorCodes.POLICY_PARAMS_INVALID, `parameters: ${firstLine(e)}`);
    }
    if (this.closed) return internalError('the sandbox is closed', 0);

    const index = affinity(request.actionKey, this.slots.length);
    let current: Slot;
    for (;;) {
      current = this.slots[index]!;
      if (!(await current.ready)) return internalError('the sandbox worker failed to start', 0);
      if (this.closed) return internalError('the sandbox is closed', 0);
      if (this.slots[index] === current) break; // else it was replaced while we waited
    }
    const id = ++this.nextId;
    const startedAt = performance.now();
    return new Promise<InvokeResult>((resolve) => {
      const pending: Pending = {
        id,
        timeoutMs: limits.timeoutMs,
        deadline: Date.now() + limits.timeoutMs,
        startedAt,
        sdk: request.sdk,
        resolve,
        timer: setTimeout(() => this.overrun(current, pending), limits.timeoutMs + this.hostGraceMs),
      };
      current.pending.set(id, pending);
      const message: ToWorker = {
        type: 'invoke',
        id,
        actionKey: request.actionKey,
        codeHash: createHash('sha256').update(request.code).digest('base64'),
        code: request.code,
        paramsJson,
        limits,
      };
      current.worker.postMessage(message);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        const worker = slot.worker;
        worker.removeAllListeners('exit');
        // An invocation still waiting for this worker to start must not wait forever.
        slot.settleReady(false);
        this.failAll(slot, () => internalFields('the sandbox was closed'));
        await worker.terminate();
      }),
    );
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER.entry, {
      eval: WORKER.eval,
      workerData: this.workerOptions,
      // A second fence around the worker's own JS heap; QuickJS's heap is bounded by its memory limit.
      resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 },
    });
    let settleReady!: (ok: boolean) => void;
    let started = false;
    const ready = new Promise<boolean>((r) => (settleReady = r));
    const slot: Slot = { worker, ready, settleReady, pending: new Map() };
    worker.on('message', (msg: FromWorker) => {
      if (msg.type === 'ready') {
        started = true;
        settleReady(true);
      } else if (msg.type === 'done') this.complete(slot, msg);
      else this.sdkCall(slot, msg);
    });
    worker.on('error', () => {
      // An uncaught error ends the worker; 'exit' follows and does the replacing.
    });
    worker.on('exit', () => {
      settleReady(false);
      // A worker that cannot even start would fail again: leave the slot failing instead of respawning.
      if (started) this.replace(slot, () => internalFields(Messages.abnormalRun, 'action developer error'));
    });
    return slot;
  }

  /** Swaps a dead worker for a fresh one; invocations that were running in it end with `fields()`. */
  private replace(slot: Slot, fields: (p: Pending) => Omit<InvokeResult, 'durationMs'>): void {
    this.failAll(slot, fields);
    if (this.closed) return;
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots[index] = this.spawn();
  }

  private failAll(slot: Slot, fields: (p: Pending) => Omit<InvokeResult, 'durationMs'>): void {
    for (const p of slot.pending.values()) {
      clearTimeout(p.timer);
      p.resolve({ ...fields(p), durationMs: performance.now() - p.startedAt });
    }
    slot.pending.clear();
  }

  /** The worker did not answer by deadline + grace: the guest is stuck where the interrupt cannot reach. */
  private overrun(slot: Slot, late: Pending): void {
    if (!slot.pending.has(late.id)) return;
    slot.worker.removeAllListeners('exit');
    void slot.worker.terminate();
    this.replace(slot, (p) =>
      p === late
        ? internalFields(Messages.timeout(p.timeoutMs, false), 'action developer error')
        : internalFields('the sandbox worker was restarted because another action overran its deadline'),
    );
  }

  private complete(slot: Slot, msg: Extract<FromWorker, { type: 'done' }>): void {
    const p = slot.pending.get(msg.id);
    if (!p) return;
    slot.pending.delete(msg.id);
    clearTimeout(p.timer);
    const { status, result, error, logs, coldStart } = msg;
    p.resolve({
      status,
      result,
      ...(error === undefined ? {} : { error }),
      logs,
      coldStart,
      durationMs: performance.now() - p.startedAt,
    });
  }

  /** Runs one SDK call for a live invocation; after its deadline the host callback is never reached. */
  private sdkCall(slot: Slot, msg: Extract<FromWorker, { type: 'sdk-call' }>): void {
    const answer = (reply: { ok: true; json: string } | { ok: false; message: string }): void => {
      if (slot.pending.has(msg.id))
        slot.worker.postMessage({ type: 'sdk-result', id: msg.id, callId: msg.callId, ...reply });
    };
    const p = slot.pending.get(msg.id);
    if (!p || Date.now() > p.deadline)
      return answer({ ok: false, message: 'the invocation has ended; SDK calls are refused' });
    if (!SDK_METHOD_SET.has(msg.method))
      return answer({ ok: false, message: `unknown SDK method ${msg.method}` });
    let args: JsonValue[];
    try {
      const parsed: unknown = JSON.parse(msg.argsJson);
      if (!Array.isArray(parsed)) throw new Error('not an array');
      args = parsed as JsonValue[];
    } catch {
      return answer({ ok: false, message: 'SDK arguments must be a JSON array' });
    }
    Promise.resolve()
      .then(() => p.sdk(msg.method, args))
      .then(
        (value) => {
          let json: string;
          try {
            json = toJsonText(value, PAYLOAD_LIMIT_BYTES);
          } catch (e) {
            return answer({ ok: false, message: `SDK result: ${firstLine(e)}` });
          }
          answer({ ok: true, json });
        },
        (e: unknown) => answer({ ok: false, message: firstLine(e) }),
      );
  }
}

function internalFields(
  message: string,
  status: InvokeResult['status'] = 'whisk internal error',
): Omit<InvokeResult, 'durationMs'> {
  return { status, result: { error: message }, error: message, logs: [], coldStart: false };
}

function internalError(message: string, durationMs: number): InvokeResult {
  return { ...internalFields(message), durationMs };
}

/** FNV-1a: the same action always lands on the same worker, where its warm instances live. */
function affinity(key: string, buckets: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % buckets;
}
