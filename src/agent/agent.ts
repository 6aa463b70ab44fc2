/**
 * The node agent: finds the running containers through a `WorkloadDiscovery` (the engine API and
 * its event stream on one machine, `/proc/*\/cgroup` and the API server's pods on a Kubernetes
 * node, see `discovery.ts`), scans each one's RUNNING filesystem through `/proc/<pid>/root` with the safe reader (nothing is
 * ever executed in a container, so containers without a shell are scanned the same), and reports
 * every scan to the scanner service.
 *
 * When a container is scanned: when it starts (or is found running at agent start), every
 * `rescanIntervalMs`, and as soon as its writable layer changed (`layer-signature.ts`, checked
 * every `driftCheckIntervalMs`). A periodic rescan whose layer signature is unchanged reuses the
 * last walk's inventory instead of walking again (a walk of a Debian container costs ~200 ms, a
 * signature well under 1 ms; 50 idle containers rescanned every 30 s by walking would take a
 * third of a core). Changes the upper dir cannot show — files in volumes or bind mounts — are
 * still found by a real walk at least every FULL_WALK_EVERY periodic rescans. Such a rescan also
 * skips asking the engine about the container again while its main process (pid and start time)
 * is the one it resolved last (the engine's inspect costs more than the rest of an unchanged
 * rescan), and reuses the report built from that inventory (sorted, hashed once).
 * Every scan is reported with its inventory hash, and with the inventory itself only when the hash
 * differs from the last one the server accepted for the container: the server records an unchanged
 * hash as a check-in without matching or storing anything again. A server that does not know the
 * hash (it lost its state, or never saw the first report) answers 409 INVENTORY_REQUIRED, and the
 * report is sent again in full.
 *
 * Scans run at most `concurrency` at a time, in arrival order, one per container at once (a
 * request during its scan queues exactly one more), so a burst of starts does not swamp the node.
 * The inventory walk uses synchronous file calls (see `directory-root-fs.ts`): a container scan
 * holds the event loop for its walk, tens of milliseconds for a distribution image. A container on
 * overlay layers is scanned from them (`scan/container-layers.ts`): its image's layers are walked
 * and inventoried once for every container of that image on the node, and a scan walks only the
 * container's writable layer; when that changed in no way that matters to the inventory, nothing
 * is extracted again. Other containers (volumes, other storage) are walked through their root.
 *
 * A container that stops before or during its scan is "gone": logged at info, counted, and not
 * reported (a vanished `/proc/<pid>/root` would otherwise read as an empty inventory). The
 * process is identified by pid and start time, so a reused pid is not mistaken for it.
 */
import { randomUUID } from 'node:crypto';
import { readlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { ContainerEngine } from '../engine/container-engine.js';
import { ErrorCodes, isContainmentError } from '../errors.js';
import { collectInventory } from '../inventory/collect.js';
import { DirectoryRootFs } from '../inventory/fs/directory-root-fs.js';
import type { Inventory } from '../inventory/types.js';
import { LayerScans } from '../scan/container-layers.js';
import { reportParts } from '../scanner/agent-report.js';
import { ApiErrorCodes } from '../scanner/api-error.js';
import type { AgentReport, IngestResult } from '../scanner/ingest.js';
import type { DiscoveredWorkload, WorkloadDiscovery } from './discovery.js';
import { EngineDiscovery } from './engine-discovery.js';
import { layerSignature } from './layer-signature.js';
import { processStartTime } from './process-start.js';
import { startRuntimeDetection } from './runtime-forwarder.js';
import type {
  DetectionSink,
  RunningRuntimeDetection,
  RuntimeDetectionOptions,
  RuntimeDetectionStatus,
} from './runtime-forwarder.js';

/**
 * Where reports go: the scanner API client (`ScannerClient`) in practice. An API error rejects with
 * an error carrying the server's `code` (ApiError).
 */
export interface ReportSink {
  sendReport(report: AgentReport): Promise<IngestResult>;
}

function inventoryRequired(e: unknown): boolean {
  return (e as { code?: unknown } | undefined)?.code === ApiErrorCodes.INVENTORY_REQUIRED;
}

/** The subset of a pino logger the agent uses. */
export type { AgentLogger } from './logger.js';
import type { AgentLogger } from './logger.js';
import {
  DEFAULT_DRIFT_CHECK_INTERVAL_MS,
  DEFAULT_RESCAN_INTERVAL_MS,
  DEFAULT_SCAN_CONCURRENCY,
} from './defaults.js';

export interface AgentOptions {
  /** Where containers are found. Without it, `engine` (with `cluster`, `node`, `labels`) is used. */
  discovery?: WorkloadDiscovery;
  engine?: ContainerEngine;
  sink: ReportSink;
  logger: AgentLogger;
  /** Default `local` (engine discovery). */
  cluster?: string;
  /** Default: this host's name (engine discovery). */
  node?: string;
  /** Default DEFAULT_RESCAN_INTERVAL_MS. */
  rescanIntervalMs?: number;
  /** How often writable layers are checked for changes; 0 = never. Default DEFAULT_DRIFT_CHECK_INTERVAL_MS. */
  driftCheckIntervalMs?: number;
  /** Scans at once; default DEFAULT_SCAN_CONCURRENCY. */
  concurrency?: number;
  /** Engine discovery: watch only containers carrying all these labels (default: every container). */
  labels?: Record<string, string>;
  /**
   * Run the runtime sensor (`src/runtime/`) on the watched containers (engine or pod containers, as
   * the discovery names them) and forward its detections to `detections` (default `off` here; the
   * CLI and `up` default to `on`).
   */
  runtimeDetection?: 'on' | 'off';
  /** Where detections go (the ScannerClient); needed with `runtimeDetection: 'on'`. */
  detections?: DetectionSink;
  /** Sensor and forwarder tuning (tests). */
  runtimeTuning?: Pick<RuntimeDetectionOptions, 'forwarder' | 'detector'>;
  /** With runtime detection: behaviour baselines per image, kept by the scanner (none without). */
  baselines?: RuntimeDetectionOptions['baselines'];
}

/** A periodic rescan walks the filesystem even with an unchanged layer after this many intervals. */
export const FULL_WALK_EVERY = 10;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30_000;

export interface AgentStats {
  /** Inventories taken (walked, or reused from the last walk when the layer did not change). */
  scans: number;
  /** Inventories taken afresh (a walk of the merged view, or of the writable layer over its image's). */
  walks: number;
  /** Reports the server matched (new or changed inventory). */
  fullReports: number;
  /** Reports the server recorded as a check-in (unchanged inventory hash). */
  checkIns: number;
  /** Containers that stopped before or during their scan (not reported). */
  gone: number;
  failedReports: number;
  /** Unexpected failures (logged at error). */
  errors: number;
}

export type ScanReason = 'discovered' | 'start' | 'periodic' | 'drift';

interface Tracked {
  id: string;
  lastScanAt: number;
  /** Writable-layer signature taken before the last scan. */
  layer?: string;
  /**
   * The last walk's inventory, reused while the layer does not change; with the workload it was
   * resolved as (pid and start time say whether that is still the same process) and, once built,
   * its report's inventory and hash.
   */
  walked?: {
    inventory: Inventory;
    at: number;
    workload: DiscoveredWorkload;
    startTime: string;
    report?: Pick<AgentReport, 'inventory' | 'inventoryHash'>;
  };
  upperDir?: string;
  /** The inventory hash of the last report the server accepted: the next one equal to it goes without inventory. */
  acceptedHash?: string;
  queued?: ScanReason;
  running: boolean;
  /** Asked again while running: scan once more afterwards. */
  again?: ScanReason;
}

class Gone extends Error {}

export class Agent {
  readonly stats: AgentStats = {
    scans: 0,
    walks: 0,
    fullReports: 0,
    checkIns: 0,
    gone: 0,
    failedReports: 0,
    errors: 0,
  };
  private readonly discovery: WorkloadDiscovery;
  private readonly log: AgentLogger;
  private readonly rescanMs: number;
  private readonly driftMs: number;
  private readonly concurrency: number;
  private readonly tracked = new Map<string, Tracked>();
  /** Infra containers and containers the label selector excludes: never scanned, never re-added. */
  private readonly ignored = new Set<string>();
  private readonly queue: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private lastResync = 0;
  private eventLoop: Promise<void> | undefined;
  private runtime: RunningRuntimeDetection | undefined;
  /** Image layers inventoried once per node, and each container's writable layer as last scanned. */
  readonly layers: LayerScans;

  constructor(private readonly options: AgentOptions) {
    if (options.discovery) this.discovery = options.discovery;
    else if (options.engine)
      this.discovery = new EngineDiscovery({
        engine: options.engine,
        place: { cluster: options.cluster ?? 'local', node: options.node ?? hostname() },
        ...(options.labels === undefined ? {} : { labels: options.labels }),
      });
    else throw new TypeError('Agent needs a discovery or an engine');
    this.log = options.logger;
    this.layers = new LayerScans({ logger: options.logger });
    this.rescanMs = options.rescanIntervalMs ?? DEFAULT_RESCAN_INTERVAL_MS;
    this.driftMs = options.driftCheckIntervalMs ?? DEFAULT_DRIFT_CHECK_INTERVAL_MS;
    this.concurrency = Math.max(1, options.concurrency ?? DEFAULT_SCAN_CONCURRENCY);
  }

  /** Checks the discovery's source answers (ENGINE_UNAVAILABLE etc. otherwise), then watches and scans until `stop`. */
  async start(): Promise<void> {
    await this.discovery.start();
    this.eventLoop = this.watchEvents();
    await this.resync();
    const tickMs = this.driftMs > 0 ? Math.min(this.driftMs, this.rescanMs) : this.rescanMs;
    this.timer = setInterval(() => void this.tick(), tickMs);
    await this.startRuntime();
  }

  /** The runtime sensor's and the forwarding's status; undefined when it does not run. */
  runtimeStatus(): RuntimeDetectionStatus | undefined {
    return this.runtime?.status();
  }

  private async startRuntime(): Promise<void> {
    const { runtimeDetection, detections } = this.options;
    if (runtimeDetection !== 'on') return;
    if (!detections) {
      this.log.warn({}, 'runtime detection off: no scanner to report detections to');
      return;
    }
    try {
      this.runtime = await startRuntimeDetection({
        discovery: this.discovery,
        sink: detections,
        logger: this.log,
        cluster: this.options.cluster ?? 'local',
        node: this.options.node ?? hostname(),
        ...(this.options.baselines === undefined ? {} : { baselines: this.options.baselines }),
        ...this.options.runtimeTuning,
      });
    } catch (e) {
      // The scanner does not depend on it: carry on without it, said once.
      this.failed(e, 'runtime detection failed to start; continuing without it');
    }
  }

  /** Stops watching; waits for the scans in progress (their reports included). */
  async stop(): Promise<void> {
    this.abort.abort();
    clearInterval(this.timer);
    this.queue.length = 0;
    await this.eventLoop;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.runtime?.stop();
    await this.discovery.close();
  }

  /** Containers currently watched (running, not ignored), by id. */
  watched(): string[] {
    return [...this.tracked.keys()];
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** The running containers, listed: adds new ones, drops those that went unnoticed. */
  private async resync(): Promise<void> {
    this.lastResync = Date.now();
    let running: string[];
    try {
      running = await this.discovery.running();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cannot list containers; will retry');
      return;
    }
    const ids = new Set(running);
    // One waiting for its scan may have started after the list was taken: its scan will tell.
    for (const [id, t] of this.tracked) if (!ids.has(id) && !t.queued && !t.running) this.forget(id);
    for (const id of running) if (!this.tracked.has(id)) this.request(id, 'discovered');
  }

  private async watchEvents(): Promise<void> {
    let delay = RECONNECT_MIN_MS;
    while (!this.stopped) {
      try {
        for await (const event of this.discovery.events(this.abort.signal)) {
          delay = RECONNECT_MIN_MS;
          if (event.kind === 'started') this.request(event.id, 'start');
          else this.forget(event.id);
          if (event.kind === 'removed') this.ignored.delete(event.id);
        }
      } catch (e) {
        if (this.stopped) break;
        this.log.warn(
          { err: (e as Error).message, retryInMs: delay, source: this.discovery.endpoint },
          'container event stream lost',
        );
      }
      if (this.stopped) break;
      await new Promise((r) => setTimeout(r, delay).unref());
      delay = Math.min(delay * 2, RECONNECT_MAX_MS);
      // Events may have been missed meanwhile.
      await this.resync();
    }
  }

  private forget(id: string): void {
    const upperDir = this.tracked.get(id)?.upperDir;
    if (upperDir !== undefined) this.layers.forget(upperDir);
    this.tracked.delete(id);
    this.discovery.forget(id);
  }

  private request(id: string, reason: ScanReason): void {
    if (this.stopped || this.ignored.has(id)) return;
    let t = this.tracked.get(id);
    if (!t) {
      t = { id, lastScanAt: 0, running: false };
      this.tracked.set(id, t);
    }
    if (t.running) t.again ??= reason;
    else if (!t.queued) {
      t.queued = reason;
      this.queue.push(id);
      this.pump();
    }
  }

  private pump(): void {
    while (!this.stopped && this.inFlight.size < this.concurrency && this.queue.length > 0) {
      const t = this.tracked.get(this.queue.shift() as string);
      if (!t?.queued) continue; // forgotten while waiting
      const reason = t.queued;
      t.queued = undefined;
      t.running = true;
      const job: Promise<void> = this.scanAndReport(t, reason).finally(() => {
        this.inFlight.delete(job);
        t.running = false;
        const again = t.again;
        t.again = undefined;
        if (again && this.tracked.get(t.id) === t) this.request(t.id, again);
        this.pump();
      });
      this.inFlight.add(job);
    }
  }

  /** Periodic rescans, drift checks, and a resync now and then (events can be missed). */
  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      const now = Date.now();
      if (now - this.lastResync >= this.rescanMs) await this.resync();
      for (const t of [...this.tracked.values()]) {
        if (t.queued || t.running || t.lastScanAt === 0) continue;
        if (now - t.lastScanAt >= this.rescanMs) this.request(t.id, 'periodic');
        else if (this.driftMs > 0 && t.upperDir && t.layer !== undefined) {
          const layer = await layerSignature(t.upperDir);
          if (layer !== undefined && layer !== t.layer) this.request(t.id, 'drift');
        }
      }
    } catch (e) {
      this.failed(e, 'periodic check failed');
    } finally {
      this.ticking = false;
    }
  }

  private failed(e: unknown, msg: string, fields: object = {}): void {
    this.stats.errors += 1;
    this.log.error({ ...fields, err: (e as Error).message }, msg);
  }

  private async scanAndReport(t: Tracked, reason: ScanReason): Promise<void> {
    const started = Date.now();
    let scanned: { workload: DiscoveredWorkload; inventory: Inventory; scanTime: string };
    try {
      const result = await this.scan(t);
      if (!result) return;
      scanned = result;
    } catch (e) {
      if (e instanceof Gone) {
        this.stats.gone += 1;
        if (this.tracked.get(t.id) === t) this.forget(t.id);
        this.log.info({ container: t.id, reason, when: e.message }, 'container gone; not reported');
        return;
      }
      if (isContainmentError(e) && e.code === ErrorCodes.ENGINE_UNAVAILABLE) {
        // Not this container's fault; the event stream's reconnect logs the outage.
        this.log.warn({ container: t.id, err: e.message }, 'engine unavailable; scan skipped');
        return;
      }
      this.failed(e, 'scan failed', { container: t.id, reason });
      return;
    }
    const { workload, inventory, scanTime } = scanned;
    this.stats.scans += 1;
    // The walk's report parts are built once and reused while its inventory is.
    const walked = t.walked?.inventory === inventory ? t.walked : undefined;
    const parts = walked?.report ?? reportParts(inventory);
    if (walked) walked.report = parts;
    const full: AgentReport = {
      reportId: randomUUID(),
      workload: workload.identity,
      scanTime,
      ...parts,
    };
    const fields = {
      container: workload.name,
      reason,
      packages: inventory.packages.length,
      insecureConfigurations: inventory.insecureConfigurations.length,
      scanMs: Date.now() - started,
    };
    const { sink } = this.options;
    let result: IngestResult;
    try {
      if (t.acceptedHash === full.inventoryHash) {
        const { inventory: _unchanged, ...hashOnly } = full;
        result = await sink.sendReport(hashOnly).catch((e: unknown) => {
          if (!inventoryRequired(e)) throw e;
          this.log.info(fields, 'server does not know the inventory hash; sending the inventory');
          return sink.sendReport(full);
        });
      } else {
        result = await sink.sendReport(full);
      }
      t.acceptedHash = full.inventoryHash;
    } catch (e) {
      // The server being down is an outage, not a bug; the next rescan reports again.
      this.stats.failedReports += 1;
      this.log.warn({ ...fields, err: (e as Error).message }, 'report not accepted');
      return;
    }
    if (result.kind === 'check-in') this.stats.checkIns += 1;
    else this.stats.fullReports += 1;
    this.log.info(
      { ...fields, kind: result.kind, scanId: result.scanId, totalMs: Date.now() - started },
      'container scanned',
    );
  }

  /** Undefined when the container is not to be scanned (not selected, or a pod's infra container). Throws Gone. */
  private async scan(
    t: Tracked,
  ): Promise<{ workload: DiscoveredWorkload; inventory: Inventory; scanTime: string } | undefined> {
    const last = t.walked;
    const fresh = last !== undefined && Date.now() - last.at < this.rescanMs * FULL_WALK_EVERY;
    // Still the process resolved last: the engine would say the same (a stop or restart changes it).
    const workload =
      fresh && processStartTime(last.workload.pid) === last.startTime
        ? last.workload
        : await this.discovery.resolve(t.id);
    if (workload === 'gone') throw new Gone('before scan');
    if (workload === 'ignore') {
      this.ignored.add(t.id);
      this.forget(t.id);
      return undefined;
    }
    const pid = workload.pid;
    const startTime = processStartTime(pid);
    if (startTime === undefined) throw new Gone('before scan');
    // An exiting process loses its root a moment before it shows as a zombie: check both.
    const alive = async (): Promise<boolean> => processStartTime(pid) === startTime && (await hasRoot(pid));
    // Taken before the scan: a change made while scanning shows as drift on the next check.
    t.upperDir = workload.upperDir;
    const layer = workload.upperDir ? await layerSignature(workload.upperDir) : undefined;
    const scanTime = new Date().toISOString();
    const reuse = fresh && last.workload === workload && layer !== undefined && layer === t.layer;
    const inventory = reuse ? last.inventory : await this.walk(workload, alive);
    // Files of an exited process read as missing, not as errors: only this check tells.
    if (!(await alive())) throw new Gone('during scan');
    t.lastScanAt = Date.now();
    t.layer = layer;
    if (!reuse) {
      // The layers may give the very inventory back: its report parts stand too.
      const report = last?.inventory === inventory ? last.report : undefined;
      t.walked = { inventory, at: t.lastScanAt, workload, startTime, ...(report ? { report } : {}) };
    }
    return { workload, inventory, scanTime };
  }

  private async walk(workload: DiscoveredWorkload, alive: () => Promise<boolean>): Promise<Inventory> {
    this.stats.walks += 1;
    const image = { User: workload.user ?? '' };
    const layered = await this.layers.inventory({
      pid: workload.pid,
      name: workload.name,
      image,
      ...(workload.upperDir === undefined ? {} : { upperDir: workload.upperDir }),
    });
    if (layered) return layered.inventory;
    try {
      const fs = await DirectoryRootFs.open(`/proc/${workload.pid}/root`, `container ${workload.name}`);
      try {
        return await collectInventory(fs, { image });
      } finally {
        fs.close();
      }
    } catch (e) {
      if (!(await alive())) throw new Gone('during scan');
      throw e;
    }
  }
}

async function hasRoot(pid: number): Promise<boolean> {
  try {
    await readlink(`/proc/${pid}/root`);
    return true;
  } catch {
    return false;
  }
}
