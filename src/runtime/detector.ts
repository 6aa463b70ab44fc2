/**
 * The runtime detector: a sensor's events → container attribution → rules and baselines →
 * aggregated `runtime.detected` data. This is the interface the agent uses:
 *
 *   const detector = new RuntimeDetector({ describe, rules, baselines, logger });
 *   await detector.start();                       // eBPF when possible, else /proc (said in status)
 *   for await (const d of detector.detections()) outbox.add(d);
 *   detector.status();                            // mode, blind spots, lost events, restarts, …
 *   await detector.stop();
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { BaselineState, RuntimeDetection, RuntimeWorkload, SensorEvent } from './contracts.js';
import type { BaselineBook, BaselineItem } from './baseline/baseline.js';
import { containerFacts, execFacts, kernelExecFacts, programName } from './container-facts.js';
import type { ContainerFacts } from './container-facts.js';
import { Aggregator } from './rules/aggregate.js';
import { maskArgv, maskText } from './rules/mask.js';
import { RuleRegistry } from './rules/registry.js';
import type { ContainerView, ProcessView, RuleOptions, RuntimeRule } from './rules/rule.js';
import { DEFAULT_RULE_OPTIONS } from './rules/rule.js';
import { EbpfSensor } from './sensor/ebpf-sensor.js';
import { CgroupResolver } from './sensor/cgroups.js';
import type { ContainerRef } from './sensor/cgroups.js';
import { preflight } from './sensor/preflight.js';
import { ProcPoller } from './sensor/proc-poller.js';
import type { Sensor, SensorLogger, SensorStatus } from './sensor/sensor.js';
import { silentLogger } from './sensor/sensor.js';

/** Identity fields of a container, from the engine or the pod index (the agent's discovery). */
export type DescribeContainer = (ref: ContainerRef) => Promise<Partial<RuntimeWorkload>>;

export interface RuntimeDetectorOptions {
  describe?: DescribeContainer;
  rules?: RuleRegistry;
  ruleOptions?: Partial<RuleOptions>;
  baselines?: BaselineBook;
  logger?: SensorLogger;
  /** Force a mode (tests, `--sensor procfs`); default: eBPF when preflight allows. */
  mode?: 'ebpf' | 'procfs';
  /** The native sensor binary (default NATIVE_SENSOR_BIN, built by `npm run build:sensor`). */
  sensorBinary?: string;
  pollIntervalMs?: number;
  aggregateWindowMs?: number;
  /** Default REDESCRIBE_MS. */
  redescribeMs?: number;
  /** Injected sensor (tests of the detector logic). */
  sensor?: Sensor;
  cluster?: string;
  node?: string;
}

export interface DetectorStatus extends SensorStatus {
  /** Events of processes in no container (dropped after parsing). */
  droppedNoContainer: number;
  detections: number;
  /** Repeats folded into an aggregate. */
  aggregated: number;
  containers: number;
}

interface ProcessInfo {
  name: string;
  exe?: string;
  argv: string[];
  ppid?: number;
}

interface ContainerState {
  ref: ContainerRef;
  facts: ContainerFacts;
  workload: Promise<RuntimeWorkload>;
  /** `workload` once it settled: events are then evaluated at once, without a promise each. */
  resolved?: RuntimeWorkload;
  /** When `describe` last failed (the made-up identity is in use): asked again after a while. */
  unnamedAt?: number;
  /** Events waiting for `workload`, evaluated in order through `queue`. */
  queued: number;
  queue: Promise<void>;
  /** Where its image's learning window starts, once its first event was offered to the baseline. */
  learnSince?: number;
}

const MAX_PROCESSES = 65_536;
/**
 * A container `describe` could not name is asked again on an event this long after (a pod whose
 * status the kubelet wrote late, an engine that was briefly away), not on every event.
 */
export const REDESCRIBE_MS = 10_000;

export class RuntimeDetector {
  private sensor: Sensor | undefined;
  private readonly resolver = new CgroupResolver();
  private readonly registry: RuleRegistry;
  private readonly aggregator: Aggregator;
  private readonly ruleOptions: RuleOptions;
  private readonly processes = new Map<number, ProcessInfo>();
  private readonly containers = new Map<string, ContainerState>();
  /** Identities made up for containers `describe` did not name: they never feed a baseline. */
  private readonly madeUp = new WeakSet<RuntimeWorkload>();
  /** When this detector began watching; no learning window starts before it. */
  private readonly startedAt = Date.now();
  private readonly log: SensorLogger;
  private readonly waiting: ((r: IteratorResult<RuntimeDetection>) => void)[] = [];
  private readonly buffered: RuntimeDetection[] = [];
  private readonly listeners: ((d: RuntimeDetection) => void)[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private iterating = false;
  private readonly latencies: number[] = [];
  private reasons: string[] = [];
  private counts = { droppedNoContainer: 0, detections: 0, aggregated: 0 };
  /** Detection identity (JSON) → fingerprint, bounded. */
  private readonly fingerprints = new Map<string, string>();

  constructor(private readonly options: RuntimeDetectorOptions = {}) {
    this.registry = options.rules ?? new RuleRegistry();
    this.aggregator = new Aggregator(options.aggregateWindowMs ?? 60_000);
    this.ruleOptions = { ...DEFAULT_RULE_OPTIONS, ...options.ruleOptions };
    this.log = options.logger ?? silentLogger;
  }

  /** Starts the sensor; says at start which mode it runs in and why. */
  async start(): Promise<void> {
    const pf = preflight(this.options.sensorBinary ? { sensor: this.options.sensorBinary } : {});
    const mode = this.options.mode ?? pf.mode;
    if (mode === 'procfs') this.reasons = pf.mode === 'ebpf' ? ['procfs mode requested'] : pf.reasons;
    const onEvent = (e: SensorEvent): void => this.onEvent(e);
    if (this.options.sensor) {
      await this.options.sensor.start(onEvent);
      this.sensor = this.options.sensor;
    } else if (mode === 'ebpf') {
      const bin = this.options.sensorBinary ? { binary: this.options.sensorBinary } : {};
      const sensor = new EbpfSensor({ hostPidLevel: pf.hostPidLevel, logger: this.log, ...bin });
      try {
        await sensor.start(onEvent);
        this.sensor = sensor;
      } catch (e) {
        await sensor.stop();
        this.reasons = [`the eBPF sensor failed to start: ${(e as Error).message.split('\n')[0]}`];
      }
    }
    if (!this.sensor) {
      const poller = new ProcPoller({
        reasons: this.reasons,
        logger: this.log,
        intervalMs: this.options.pollIntervalMs ?? 1000,
      });
      await poller.start(onEvent);
      this.sensor = poller;
    }
    this.log.info(
      { mode: this.status().mode, reasons: this.reasons, blindSpots: this.status().blindSpots },
      'runtime sensor started',
    );
    this.flushTimer = setInterval(
      () => this.flush(),
      Math.max(1000, Math.min(this.options.aggregateWindowMs ?? 60_000, 5000)),
    );
    this.flushTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.sensor?.stop();
    await Promise.all([...this.containers.values()].map((c) => c.queue));
    for (const d of this.aggregator.drain(Date.now())) this.emit(d);
    this.stopped = true;
    for (const w of this.waiting.splice(0)) w({ done: true, value: undefined });
  }

  /** Each detection once (first occurrence, then aggregates), until stop. */
  detections(): AsyncIterable<RuntimeDetection> {
    this.iterating = true;
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          const d = this.buffered.shift();
          if (d) return Promise.resolve({ done: false, value: d });
          if (this.stopped) return Promise.resolve({ done: true, value: undefined });
          return new Promise((resolve) => this.waiting.push(resolve));
        },
      }),
    };
  }

  /** A callback per detection (instead of, or with, `detections()`). */
  onDetection(listener: (d: RuntimeDetection) => void): void {
    this.listeners.push(listener);
  }

  /** Exec → detection latencies (ms) of the last 10,000 eBPF detections of an exec. */
  latencySamplesMs(): readonly number[] {
    return this.latencies;
  }

  rules(): { rule: RuntimeRule; enabled: boolean }[] {
    return this.registry.list();
  }

  status(): DetectorStatus {
    const base: SensorStatus = this.sensor?.status() ?? {
      mode: 'procfs',
      reasons: this.reasons,
      blindSpots: [],
      running: false,
      restarts: 0,
      lostEvents: 0,
      parseFailures: 0,
      events: 0,
    };
    return {
      ...base,
      reasons: base.reasons.length > 0 ? base.reasons : this.reasons,
      ...this.counts,
      containers: this.containers.size,
    };
  }

  private flush(): void {
    for (const d of this.aggregator.flush(Date.now())) this.emit(d);
  }

  private emit(d: RuntimeDetection): void {
    this.counts.detections++;
    for (const l of this.listeners) l(d);
    const w = this.waiting.shift();
    if (w) w({ done: false, value: d });
    else if (this.iterating) this.buffered.push(d);
    // Bound the buffer when the reader falls behind.
    if (this.buffered.length > 10_000) this.buffered.shift();
  }

  /** Synchronous part: attribution and everything that must be read while the process lives. */
  private onEvent(e: SensorEvent): void {
    const ref = this.resolver.resolve(e.cgroupId, e.pid);
    if (!ref) {
      this.counts.droppedNoContainer++;
      if (e.kind === 'exit') this.processes.delete(e.pid);
      return;
    }
    const state = this.container(ref, e.pid);
    if (e.kind === 'exit') {
      this.processes.delete(e.pid);
      return;
    }
    let drift: { upperLayer: boolean; memfd: boolean; deleted: boolean } | undefined;
    let proc: ProcessView;
    if (e.kind === 'exec') {
      const facts =
        e.exe === undefined
          ? execFacts(e.pid, e.path, e.exeName, state.facts.upperDir)
          : kernelExecFacts(e.exe, e.path, e.exeName, e.exeDeleted ?? false, e.upperLayer ?? false);
      drift = facts.drift;
      const info: ProcessInfo = {
        name: programName(e.path, e.argv ?? [], e.comm),
        argv: e.argv ?? [],
        ...(facts.exe ? { exe: facts.exe } : {}),
        ...(e.ppid === undefined ? {} : { ppid: e.ppid }),
      };
      if (this.processes.size >= MAX_PROCESSES)
        this.processes.delete(this.processes.keys().next().value as number);
      this.processes.set(e.pid, info);
      proc = this.view(e, info);
    } else {
      proc = this.view(e, this.processes.get(e.pid) ?? { name: e.comm, argv: [] });
    }
    // The identity is known (the usual case): evaluate now. Otherwise, and while earlier events
    // still wait for it, in arrival order behind them.
    if (state.resolved !== undefined && state.queued === 0) {
      this.evaluateSafely(e, state, proc, drift, state.resolved);
      return;
    }
    state.queued++;
    state.queue = state.queue.then(async () => {
      let workload: RuntimeWorkload | undefined;
      try {
        workload = await state.workload;
      } finally {
        state.queued--;
      }
      this.evaluateSafely(e, state, proc, drift, workload);
    });
  }

  private evaluateSafely(
    e: SensorEvent,
    state: ContainerState,
    proc: ProcessView,
    drift: RuleContextDrift,
    workload: RuntimeWorkload,
  ): void {
    try {
      this.evaluate(e, state, proc, drift, workload);
    } catch (err) {
      this.log.error({ error: (err as Error).message }, 'runtime detector: evaluating an event failed');
    }
  }

  private view(e: SensorEvent, info: ProcessInfo): ProcessView {
    const ppid = info.ppid ?? e.ppid;
    const parent = ppid === undefined ? undefined : this.processes.get(ppid);
    return {
      pid: e.pid,
      uid: e.uid,
      name: info.name,
      argv: info.argv,
      ...(e.euid === undefined ? {} : { euid: e.euid }),
      ...(ppid === undefined ? {} : { ppid }),
      ...(info.exe ? { exe: info.exe } : {}),
      ...(parent ? { parentName: parent.name } : {}),
    };
  }

  private container(ref: ContainerRef, pid: number): ContainerState {
    let state = this.containers.get(ref.containerId);
    if (!state) {
      const fallback = this.fallback(ref);
      state = {
        ref,
        facts: containerFacts(this.resolver.directory(ref), pid),
        workload: Promise.resolve(fallback),
        resolved: fallback,
        queued: 0,
        queue: Promise.resolve(),
      };
      this.describeInto(state);
      this.containers.set(ref.containerId, state);
    } else if (
      state.unnamedAt !== undefined &&
      Date.now() - state.unnamedAt >= (this.options.redescribeMs ?? REDESCRIBE_MS)
    ) {
      this.describeInto(state);
    }
    return state;
  }

  /** The identity made up for a container `describe` did not name (image `unknown`). */
  private fallback(ref: ContainerRef): RuntimeWorkload {
    const madeUp: RuntimeWorkload = {
      cluster: this.options.cluster ?? 'local',
      namespace: 'local',
      pod: ref.containerId.slice(0, 12),
      node: this.options.node ?? hostname(),
      image: 'unknown',
      containerId: ref.containerId,
      ...(ref.podUid ? { podUid: ref.podUid } : {}),
    };
    this.madeUp.add(madeUp);
    return madeUp;
  }

  private describeInto(state: ContainerState): void {
    const describe = this.options.describe;
    if (!describe) return;
    const { ref } = state;
    const fallback = this.fallback(ref);
    state.unnamedAt = undefined;
    state.resolved = undefined;
    const workload: Promise<RuntimeWorkload> = describe(ref).then(
      (w) => ({ ...fallback, ...w, containerId: ref.containerId }),
      () => {
        state.unnamedAt = Date.now();
        return fallback;
      },
    );
    state.workload = workload;
    void workload.then((w) => {
      if (state.workload === workload) state.resolved = w;
    });
  }

  private evaluate(
    e: SensorEvent,
    state: ContainerState,
    proc: ProcessView,
    drift: RuleContextDrift,
    workload: RuntimeWorkload,
  ): void {
    const baselineKey = workload.imageDigest ?? workload.image;
    const view: ContainerView = {
      containerId: state.ref.containerId,
      image: workload.image,
      initialListeners: state.facts.listeners,
      ...(state.facts.entrypointName ? { entrypointName: state.facts.entrypointName } : {}),
      ...(state.facts.startedAt ? { startedAt: state.facts.startedAt } : {}),
    };
    const ctx = {
      event: e,
      process: proc,
      container: view,
      options: this.ruleOptions,
      ...(drift ? { drift } : {}),
    };
    const hits = this.registry.evaluate(ctx);
    // A new listener becomes the container's own after its first report.
    if ((e.kind === 'listen' || e.kind === 'bind') && e.port !== undefined) state.facts.listeners.add(e.port);
    let baselineState: BaselineState = 'none';
    const anomalies = [];
    // An unnamed container (not managed, gone, or not yet known) would teach every such
    // container's behaviour to one made-up image, and that baseline would leave the node.
    const book = this.madeUp.has(workload) ? undefined : this.options.baselines;
    if (book) {
      // Learning starts with a container this detector saw start; an older one starts it at its
      // first event here, with what it already runs, or it would learn nothing and flag everything.
      if (state.learnSince === undefined) {
        const started = state.facts.startedAt;
        state.learnSince = started !== undefined && started >= this.startedAt ? started : e.time;
        for (const item of seedItems(state.facts)) book.observe(baselineKey, item, e.time, state.learnSince);
      }
      const since = state.learnSince;
      for (const item of baselineItems(e, proc)) {
        const a = book.observe(baselineKey, item, e.time, since);
        if (a) anomalies.push(a);
      }
      baselineState = book.state(baselineKey);
    }
    const baseline = { state: baselineState, ...(book ? { image: baselineKey } : {}) };
    for (const { rule, hit } of hits)
      this.record(
        e,
        workload,
        proc,
        baseline,
        { id: rule.id, title: rule.title, severity: rule.severity, kind: rule.kind },
        hit.evidence,
        hit.key,
      );
    for (const a of anomalies)
      this.record(
        e,
        workload,
        proc,
        baseline,
        {
          id: a.ruleId,
          title: `Not in the ${a.state === 'protect' ? 'locked ' : ''}baseline of ${baselineKey}: ${a.item.type} ${a.item.value}`,
          severity: a.state === 'protect' ? 'HIGH' : 'MEDIUM',
          kind: a.item.type === 'executable' ? 'process' : 'socket',
        },
        { [a.item.type]: a.item.value, protect: a.state === 'protect' },
        a.item.value,
      );
  }

  private fingerprint(identity: string): string {
    let fp = this.fingerprints.get(identity);
    if (fp === undefined) {
      fp = createHash('sha256').update(identity).digest('hex').slice(0, 32);
      if (this.fingerprints.size >= FINGERPRINT_CACHE) this.fingerprints.clear();
      this.fingerprints.set(identity, fp);
    }
    return fp;
  }

  private record(
    e: SensorEvent,
    workload: RuntimeWorkload,
    proc: ProcessView,
    baseline: RuntimeDetection['baseline'],
    rule: Pick<RuntimeDetection, 'severity' | 'kind' | 'title'> & { id: string },
    evidence: Record<string, string | number | boolean>,
    key: string | undefined,
  ): void {
    const at = new Date(e.time).toISOString();
    const masked: Record<string, string | number | boolean> = {};
    for (const k in evidence) {
      const v = evidence[k] as string | number | boolean;
      masked[k] = typeof v === 'string' ? maskText(v).slice(0, 512) : v;
    }
    const fingerprint = this.fingerprint(
      JSON.stringify([rule.id, workload.containerId, proc.exe ?? proc.name, key ?? masked]),
    );
    const detection: RuntimeDetection = {
      workload,
      ruleId: rule.id,
      kind: rule.kind,
      severity: rule.severity,
      title: rule.title,
      detectedAt: at,
      process: {
        pid: proc.pid,
        uid: proc.uid,
        name: proc.name,
        argv: maskArgv(proc.argv),
        ...(proc.ppid === undefined ? {} : { ppid: proc.ppid }),
        ...(proc.exe ? { exe: proc.exe } : {}),
      },
      evidence: masked,
      baseline,
      count: 1,
      firstSeen: at,
      lastSeen: at,
      fingerprint,
      source: e.source,
    };
    const out = this.aggregator.observe(detection, e.time);
    if (out && e.monotonicNs !== undefined) {
      // Kernel exec → detection emitted, both on CLOCK_MONOTONIC.
      if (this.latencies.length >= 10_000) this.latencies.shift();
      this.latencies.push(Number(process.hrtime.bigint() - BigInt(Math.round(e.monotonicNs))) / 1e6);
    }
    if (out) this.emit(out);
    else this.counts.aggregated++;
  }
}

/** Fingerprints remembered (a repeat, the usual case, costs a map lookup, not a SHA-256). */
const FINGERPRINT_CACHE = 4096;

type RuleContextDrift = { upperLayer: boolean; memfd: boolean; deleted: boolean } | undefined;

/** What a container already ran and listened on when first seen, as baseline observations. */
function seedItems(facts: ContainerFacts): BaselineItem[] {
  return [
    ...facts.executables.map((value): BaselineItem => ({ type: 'executable', value })),
    ...[...facts.listeners].map((port): BaselineItem => ({ type: 'listener', value: `tcp:${port}` })),
  ];
}

function baselineItems(e: SensorEvent, proc: ProcessView): BaselineItem[] {
  if (e.kind === 'exec') return [{ type: 'executable', value: proc.exe ?? proc.name }];
  if ((e.kind === 'listen' || e.kind === 'bind') && e.port)
    return [{ type: 'listener', value: `${e.kind === 'listen' ? 'tcp' : 'bind'}:${e.port}` }];
  if (e.kind === 'connect' && e.port && e.address)
    return [{ type: 'outbound', value: `${e.address}:${e.port}` }];
  return [];
}
