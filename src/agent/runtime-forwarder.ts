/**
 * Runtime detections from the agent's sensor to the scanner (`POST /v1/detections`): batched for
 * a moment, sent one batch at a time, retried with backoff while the scanner is unreachable or
 * failing (5xx), dropped (and counted) when it refuses them (4xx: retrying cannot help). `add`
 * never waits, so the sensor and the agent's scan loop are never held up by the network; the queue
 * is bounded and the oldest detections are dropped, counted, when the scanner stays away.
 */
import { BaselineBook } from '../runtime/baseline/baseline.js';
import type { LearningPolicy, RuntimeDetection, RuntimeWorkload } from '../runtime/contracts.js';
import { RuntimeDetector } from '../runtime/detector.js';
import type { DetectorStatus, RuntimeDetectorOptions } from '../runtime/detector.js';
import type { ContainerRef } from '../runtime/sensor/cgroups.js';
import { BaselineSync } from './baseline-sync.js';
import type { BaselineSyncClient, BaselineSyncStatus } from './baseline-sync.js';
import type { AgentLogger } from './logger.js';
import type { WorkloadDiscovery } from './discovery.js';

export interface DetectionSink {
  reportDetections(detections: readonly RuntimeDetection[]): Promise<unknown>;
}

export interface ForwarderOptions {
  sink: DetectionSink;
  logger: AgentLogger;
  /** How long a detection waits for others to share its request (default 250 ms). */
  batchMs?: number;
  /** At most this many per request (the API takes 1–1000; default 500). */
  maxBatch?: number;
  /** Detections kept while the scanner is away (default 10,000). */
  maxQueue?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
}

export interface ForwarderStats {
  forwarded: number;
  /** Send attempts that failed (each retried batch counts once per attempt). */
  failedSends: number;
  /** Refused by the scanner (4xx) or pushed out of a full queue. */
  dropped: number;
}

export class DetectionForwarder {
  readonly stats: ForwarderStats = { forwarded: 0, failedSends: 0, dropped: 0 };
  private readonly queue: RuntimeDetection[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private retryMs: number;
  private stopped = false;

  constructor(private readonly options: ForwarderOptions) {
    this.retryMs = options.retryMinMs ?? 500;
  }

  add(detection: RuntimeDetection): void {
    if (this.stopped) return;
    this.queue.push(detection);
    const over = this.queue.length - (this.options.maxQueue ?? 10_000);
    if (over > 0) {
      this.queue.splice(0, over);
      this.stats.dropped += over;
    }
    this.schedule(this.options.batchMs ?? 250);
  }

  /** Sends what is queued (one attempt) and stops taking detections. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.sending;
    while (this.queue.length > 0) await this.send();
  }

  private schedule(delayMs: number): void {
    if (this.timer || this.sending || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending = this.send().then((retryInMs) => {
        this.sending = undefined;
        if (this.queue.length > 0) this.schedule(retryInMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  /** One request; the delay before the next one (0 after a success, the backoff after a failure). */
  private async send(): Promise<number> {
    const batch = this.queue.splice(0, this.options.maxBatch ?? 500);
    if (batch.length === 0) return 0;
    try {
      await this.options.sink.reportDetections(batch);
      this.stats.forwarded += batch.length;
      this.retryMs = this.options.retryMinMs ?? 500;
      return 0;
    } catch (e) {
      this.stats.failedSends += 1;
      const status = (e as { status?: unknown }).status;
      const refused = typeof status === 'number' && status >= 400 && status < 500;
      const fields = { detections: batch.length, err: (e as Error).message };
      if (refused || this.stopped) {
        this.stats.dropped += batch.length;
        this.log(
          'warn',
          fields,
          refused ? 'detections refused by the scanner; dropped' : 'detections not sent',
        );
        return 0;
      }
      this.queue.unshift(...batch);
      const retryInMs = this.retryMs;
      this.log('warn', { ...fields, retryInMs }, 'detections not sent; will retry');
      this.retryMs = Math.min(this.retryMs * 2, this.options.retryMaxMs ?? 30_000);
      return retryInMs;
    }
  }

  private log(level: 'warn', fields: object, msg: string): void {
    this.options.logger[level](fields, msg);
  }
}

export interface RuntimeDetectionOptions {
  discovery: WorkloadDiscovery;
  sink: DetectionSink;
  logger: AgentLogger;
  cluster: string;
  node: string;
  /** Forwarder tuning (tests; `up` sends at once). */
  forwarder?: Omit<ForwarderOptions, 'sink' | 'logger'>;
  /** Detector options beyond identity (tests: mode, aggregation window). */
  detector?: Pick<
    RuntimeDetectorOptions,
    'mode' | 'aggregateWindowMs' | 'pollIntervalMs' | 'sensorBinary' | 'redescribeMs'
  >;
  /** Behaviour baselines per image, kept by the scanner; none without. */
  baselines?: RuntimeBaselineOptions;
}

export interface RuntimeBaselineOptions {
  learning: LearningPolicy;
  client: BaselineSyncClient;
  /** Debounce of pushes and scanner polling (tests); see BaselineSync. */
  pushMs?: number;
  pollMs?: number;
}

export interface RuntimeDetectionStatus {
  detector: DetectorStatus;
  forwarder: ForwarderStats;
  /** Detections of containers the agent does not manage (label filter, infra, gone): not sent. */
  unmanaged: number;
  /** With baselines: what is held and how syncing with the scanner goes. */
  baselines?: BaselineSyncStatus;
}

export interface RunningRuntimeDetection {
  status(): RuntimeDetectionStatus;
  stop(): Promise<void>;
}

/**
 * Starts the runtime sensor for the agent's containers, or says in one line why it cannot (the
 * /proc fallback needs root too) and returns undefined. Workloads are named by the agent's own
 * discovery (`identify`: the engine, or the pod index in Kubernetes mode), so a detection and a
 * scan of one container carry the same identity; containers the discovery ignores (label filter,
 * infra containers, in Kubernetes mode anything that is not a pod's container) never leave the node.
 */
export async function startRuntimeDetection(
  options: RuntimeDetectionOptions,
): Promise<RunningRuntimeDetection | undefined> {
  const { discovery, logger } = options;
  if (process.getuid?.() !== 0) {
    logger.warn({ uid: process.getuid?.() }, 'runtime detection off: the sensor needs root (eBPF or /proc)');
    return undefined;
  }
  const managed = new Set<string>();
  let unmanaged = 0;
  // Baseline keys (digests) → the image reference they run under, for people reading them.
  const refs = new Map<string, string>();
  // The one thing engine and Kubernetes mode do differently: who names a container (the engine's
  // inspect, or the pod index by the cgroup's pod UID and container id).
  const describe = async (ref: ContainerRef): Promise<Partial<RuntimeWorkload>> => {
    const identity = await discovery.identify(ref);
    // The detector falls back to a placeholder identity; the filter below drops its detections.
    if (identity === 'ignore' || identity === 'gone') throw new Error(`container ${identity}`);
    managed.add(ref.containerId);
    if (identity.imageDigest !== undefined) refs.set(identity.imageDigest, identity.image);
    return {
      cluster: identity.cluster,
      namespace: identity.namespace,
      pod: identity.pod,
      ...(identity.container === undefined ? {} : { container: identity.container }),
      node: identity.node,
      image: identity.image,
      ...(identity.imageDigest === undefined ? {} : { imageDigest: identity.imageDigest }),
    };
  };
  const forwarder = new DetectionForwarder({ sink: options.sink, logger, ...options.forwarder });
  const book = options.baselines && new BaselineBook(options.baselines.learning);
  const sync =
    book &&
    options.baselines &&
    new BaselineSync({
      client: options.baselines.client,
      book,
      cluster: options.cluster,
      logger,
      refOf: (image) => refs.get(image),
      ...(options.baselines.pushMs === undefined ? {} : { pushMs: options.baselines.pushMs }),
      ...(options.baselines.pollMs === undefined ? {} : { pollMs: options.baselines.pollMs }),
    });
  // Before the sensor: what the cluster learned already is the reference from the first event on.
  await sync?.start();
  const detector = new RuntimeDetector({
    describe,
    logger,
    cluster: options.cluster,
    node: options.node,
    ...(book ? { baselines: book } : {}),
    ...options.detector,
  });
  detector.onDetection((d) => {
    if (managed.has(d.workload.containerId)) forwarder.add(d);
    else unmanaged += 1;
  });
  try {
    await detector.start();
  } catch (e) {
    await sync?.stop();
    throw e;
  }
  return {
    status: () => ({
      detector: detector.status(),
      forwarder: { ...forwarder.stats },
      unmanaged,
      ...(sync ? { baselines: sync.status() } : {}),
    }),
    stop: async () => {
      await detector.stop();
      await forwarder.stop();
      await sync?.stop();
    },
  };
}
