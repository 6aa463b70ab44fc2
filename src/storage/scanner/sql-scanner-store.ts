/**
 * `ScannerStore` over the dialect seam: the parts (clusters, scans and results, re-match,
 * triggers, detections) each written once, put together over one engine's connection. The
 * engine-specific hooks are what `ScannerEngine` holds: the transaction (with the outbox on its
 * connection) and how many re-matches commit together. `SqliteScannerStore` and
 * `PostgresScannerStore` (beside this file) open an engine and hand it here.
 */
import type { DeliveryTarget } from '../../events/deliverer.js';
import type { WorkloadIdentity } from '../../events/cloud-event.js';
import type { DeadLetter, DeadLetterFilter, DeliveryQueue } from '../../events/outbox.js';
import { ResultCodec } from './result-codec.js';
import type {
  ClusterListing,
  ClusterRecord,
  ImageQuery,
  NamespaceSummary,
  NewTrigger,
  RecordRematchInput,
  RecordRematchOutcome,
  RecordScanInput,
  RecordScanOutcome,
  RematchTarget,
  ReportRef,
  ScanDetail,
  ScannerStore,
  ScanRecord,
  TriggerRecord,
  WorkloadRecord,
} from '../../scanner/scanner-store.js';
import type { SqlDb } from '../sql.js';
import { ClusterStore } from './clusters.js';
import { DetectionStore } from './detections.js';
import { ScanWriter } from './ingest.js';
import { RematchStore } from './rematch.js';
import { ResultStore } from './results.js';
import { ScanReads } from './scans.js';
import type { InTransaction } from './transaction.js';
import { TriggerStore } from './triggers.js';
import type { Page, Visibility, WorkloadFilter } from './visibility.js';

export interface ScannerEngine {
  /** Reads and single statements, outside any transaction. */
  db: SqlDb;
  transaction: InTransaction;
  /** The outbox on the same connection(s): events commit with the scans that caused them. */
  queue: DeliveryQueue & {
    listDeadLetters(filter: DeadLetterFilter & { limit?: number }): Promise<DeadLetter[]>;
    replayDeadLetters(filter: DeadLetterFilter): Promise<number>;
  };
  /** Re-matches per transaction (`RematchStore`). */
  rematchesPerTransaction: number;
  /** Clock, epoch ms (tests set it). */
  now: () => number;
}

export class SqlScannerStore implements ScannerStore {
  readonly queue: ScannerEngine['queue'];
  readonly detections: DetectionStore;
  private readonly results = new ResultStore(new ResultCodec());
  private readonly clusters: ClusterStore;
  private readonly triggers: TriggerStore;
  private readonly reads: ScanReads;
  private readonly writer: ScanWriter;
  private readonly rematches: RematchStore;

  constructor(private readonly engine: ScannerEngine) {
    const { db, transaction, now } = engine;
    const codec = this.results.codec;
    this.queue = engine.queue;
    this.clusters = new ClusterStore(db, now);
    this.triggers = new TriggerStore(db, now);
    this.detections = new DetectionStore(db, transaction);
    this.reads = new ScanReads(db, this.results);
    this.writer = new ScanWriter(transaction, codec, this.results, this.reads, now);
    this.rematches = new RematchStore(
      db,
      transaction,
      codec,
      this.results,
      now,
      engine.rematchesPerTransaction,
    );
  }

  async ping(): Promise<void> {
    await this.engine.db.get('SELECT 1');
  }

  createCluster(name: string): Promise<ClusterRecord> {
    return this.clusters.create(name);
  }
  getCluster(name: string): Promise<ClusterRecord | undefined> {
    return this.clusters.get(name);
  }
  listClusters(visibility: Visibility): Promise<ClusterListing[]> {
    return this.clusters.list(visibility);
  }
  deleteCluster(name: string): Promise<boolean> {
    return this.clusters.delete(name);
  }

  findReport(cluster: string, reportId: string): Promise<ReportRef | undefined> {
    return this.reads.report(this.engine.db, { name: cluster }, reportId);
  }
  lastInventoryHash(workload: WorkloadIdentity): Promise<string | undefined> {
    return this.reads.lastInventoryHash(workload);
  }
  recordScan(input: RecordScanInput): Promise<RecordScanOutcome> {
    return this.writer.recordScan(input);
  }

  latestScans(
    cluster: string,
    visibility: Visibility,
    filter: WorkloadFilter & { pod: string },
    at: Date,
  ): Promise<ScanDetail[]> {
    return this.reads.latestScans(cluster, visibility, filter, at);
  }
  listWorkloads(visibility: Visibility, filter: WorkloadFilter, page: Page): Promise<WorkloadRecord[]> {
    return this.reads.listWorkloads(visibility, filter, page);
  }
  listScans(visibility: Visibility, filter: WorkloadFilter, page: Page): Promise<ScanRecord[]> {
    return this.reads.listScans(visibility, filter, page);
  }
  getScan(id: number, visibility: Visibility): Promise<ScanDetail | undefined> {
    return this.reads.getScan(id, visibility);
  }
  imageScans(visibility: Visibility, query: ImageQuery, limit: number): Promise<ScanRecord[]> {
    return this.reads.imageScans(visibility, query, limit);
  }
  summary(visibility: Visibility, filter: { namespace?: string }): Promise<NamespaceSummary[]> {
    return this.reads.summary(visibility, filter);
  }

  createTrigger(input: NewTrigger): Promise<TriggerRecord> {
    return this.triggers.create(input);
  }
  getTrigger(id: string): Promise<TriggerRecord | undefined> {
    return this.triggers.get(id);
  }
  listTriggers(): Promise<TriggerRecord[]> {
    return this.triggers.list();
  }
  deleteTrigger(id: string): Promise<boolean> {
    return this.triggers.delete(id);
  }
  triggerTarget(id: string): Promise<DeliveryTarget | undefined> {
    return this.triggers.target(id);
  }

  rematchCandidates(keys: readonly string[]): Promise<number[]> {
    return this.rematches.candidates(keys);
  }
  rematchTargets(workloadIds: readonly number[]): Promise<RematchTarget[]> {
    return this.rematches.targets(workloadIds);
  }
  async recordRematch(input: RecordRematchInput): Promise<RecordRematchOutcome> {
    const [outcome] = await this.rematches.record([input]);
    return outcome as RecordRematchOutcome;
  }
  recordRematches(inputs: readonly RecordRematchInput[]): Promise<RecordRematchOutcome[]> {
    return this.rematches.record(inputs);
  }
  rematchCursor(): Promise<number | undefined> {
    return this.rematches.cursor();
  }
  setRematchCursor(importId: number): Promise<void> {
    return this.rematches.setCursor(importId);
  }

  listDeadLetters(filter: DeadLetterFilter & { limit?: number }): Promise<DeadLetter[]> {
    return this.engine.queue.listDeadLetters(filter);
  }
  replayDeadLetters(filter: DeadLetterFilter): Promise<number> {
    return this.engine.queue.replayDeadLetters(filter);
  }

  /** The engine's connection is its opener's to close (overridden where the store owns it). */
  async close(): Promise<void> {}
}
