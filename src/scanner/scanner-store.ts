/**
 * The scanner service's persistence seam: clusters, workloads, scans (with history), idempotent
 * report ids and event triggers. Methods are async so a PostgreSQL implementation fits the same
 * interface. The store owns the transaction in which a scan and its events are written; the
 * decision of WHICH events a scan causes stays with the caller (`events` callback, pure).
 */
import type { CloudEvent } from 'cloudevents';
import type { DeliveryTarget } from '../events/deliverer.js';
import type { WorkloadIdentity } from '../events/cloud-event.js';
import type { DeadLetter, DeadLetterFilter, DeliveryQueue } from '../events/outbox.js';
import type {
  Completeness,
  InsecureConfiguration,
  InventoryGap,
  OsInfo,
  Package,
} from '../inventory/types.js';
import type { ScanSummary, VulnerabilityFinding } from '../matching/types.js';
import type { FindingSet } from './finding-sets.js';
import type { DetectionStore } from '../storage/scanner/detections.js';

/** What a reader may see: one cluster or all, and a namespace list or all. */
export type { Page, Visibility, WorkloadFilter } from '../storage/scanner/visibility.js';
import type { Page, Visibility, WorkloadFilter } from '../storage/scanner/visibility.js';

export interface ClusterRecord {
  name: string;
  /** RFC 3339. */
  createdAt: string;
}

export interface ClusterListing extends ClusterRecord {
  /** Workloads the reader can see in this cluster. */
  workloads: number;
}

export interface StoredInventory {
  os?: OsInfo;
  packages: Package[];
  insecureConfigurations: InsecureConfiguration[];
  /** Stored inside the inventory JSON; absent (inventories stored before it existed) = complete. */
  completeness?: Completeness;
  gaps?: InventoryGap[];
}

export type ScanKind = 'full' | 'check-in' | 'rematch';

export interface ScanRecord {
  id: number;
  reportId: string;
  workload: WorkloadIdentity;
  /** RFC 3339 (UTC). */
  scanTime: string;
  receivedAt: string;
  inventoryHash: string;
  /**
   * `check-in`: the hash was unchanged, findings are those of the last full scan. `rematch`: the
   * server re-derived the findings of the previous scan's inventory after an advisory update.
   */
  kind: ScanKind;
  summary: ScanSummary;
}

export interface ScanDetail extends ScanRecord {
  vulnerabilities: VulnerabilityFinding[];
  insecureConfigurations: InsecureConfiguration[];
  inventory: StoredInventory;
}

export interface WorkloadRecord {
  workload: WorkloadIdentity;
  firstSeen: string;
  lastSeen: string;
  lastScan?: { id: number; scanTime: string; kind: ScanKind; summary: ScanSummary };
}

export interface NamespaceSummary {
  cluster: string;
  namespace: string;
  workloads: number;
  /** Workloads whose latest scan has at least one vulnerability. */
  vulnerableWorkloads: number;
  /** Workloads whose latest scan passed compliance (the rest of `workloads` did not). */
  compliantWorkloads: number;
  counts: ScanSummary['counts'];
  configurationCounts: ScanSummary['configurationCounts'];
}

export type TriggerKind = 'cloudevents' | 'openwhisk';

export interface TriggerRecord {
  id: string;
  cluster: string;
  namespaces: readonly string[] | '*';
  url: string;
  kind: TriggerKind;
  /** Events for every scan, not only for the first and for changed findings. */
  everyScan: boolean;
  createdAt: string;
}

export interface NewTrigger {
  cluster: string;
  namespaces: readonly string[] | '*';
  url: string;
  kind: TriggerKind;
  secret: string;
  /** OpenWhisk API key `uuid:key`; required for `openwhisk`. */
  auth?: string;
  everyScan: boolean;
}

/** Workloads running an image: its reference (exact string) or its digest. */
export interface ImageQuery {
  image: string;
  digest?: string;
}

/** A matched scan's content; absent on a check-in. */
export interface ScanContent {
  inventory: StoredInventory;
  vulnerabilities: VulnerabilityFinding[];
  insecureConfigurations: InsecureConfiguration[];
  summary: ScanSummary;
  /** Stable keys of every finding, for diffing scans. */
  findingKeys: string[];
  /**
   * The findings as one set per inventory package (index-aligned with `inventory.packages`),
   * when the producer has them (matcher, re-match); otherwise the store splits `vulnerabilities`.
   */
  sets?: readonly (FindingSet | undefined)[];
}

/**
 * What the event callback learns inside the transaction. `previousKeys` and `content` may be
 * computed on first access (a check-in without triggers never decodes any findings).
 */
export interface ScanEventContext {
  scanId: number;
  /** The finding keys of the workload's previous scan; undefined on its first scan. */
  previousKeys: readonly string[] | undefined;
  /** This scan's content (for a check-in, that of the last full scan). */
  content: Pick<ScanContent, 'findingKeys' | 'vulnerabilities' | 'insecureConfigurations' | 'summary'>;
  checkIn: boolean;
  /** Triggers of the workload's cluster covering its namespace. */
  triggers: readonly Pick<TriggerRecord, 'id' | 'everyScan'>[];
}

export interface PlannedEvent {
  event: CloudEvent<unknown>;
  triggerIds: readonly string[];
}

export interface RecordScanInput {
  reportId: string;
  workload: WorkloadIdentity;
  scanTime: Date;
  inventoryHash: string;
  /** Omitted for a check-in: then the workload's last hash must equal `inventoryHash`. */
  content?: ScanContent;
  /** Pure: which events this scan causes. Runs inside the transaction. */
  events: (context: ScanEventContext) => readonly PlannedEvent[];
}

export type RecordScanOutcome =
  | { status: 'recorded'; scanId: number; kind: 'full' | 'check-in'; events: number }
  /** The report id was seen before in this cluster; nothing was written. */
  | { status: 'duplicate'; scanId: number; kind: 'full' | 'check-in'; workload: WorkloadIdentity }
  /** A check-in whose hash is no longer the workload's last one; nothing was written. */
  | { status: 'hash-changed' };

/** The scan an earlier report produced. */
export interface ReportRef {
  scanId: number;
  kind: 'full' | 'check-in';
  workload: WorkloadIdentity;
}

/** A workload's latest stored content, to re-match after an advisory update (`rematch.ts`). */
export interface RematchTarget {
  workloadId: number;
  workload: WorkloadIdentity;
  /** The workload's latest scan; a re-match is recorded only while it still is. */
  scanId: number;
  /** RFC 3339. */
  scanTime: string;
  inventoryHash: string;
  inventory: StoredInventory;
  /** Computed on first access. */
  readonly findingKeys: string[];
  /** The stored findings, decoded on demand (most targets never need them). */
  loadVulnerabilities(): VulnerabilityFinding[];
  /** The stored findings as one set per package, index-aligned with `inventory.packages`. */
  sets(): readonly (FindingSet | undefined)[];
}

export interface RecordRematchInput {
  workloadId: number;
  /** `RematchTarget.scanId`: when another scan has become the latest since, nothing is written. */
  basedOnScanId: number;
  scanTime: Date;
  /** The target's inventory with the re-derived findings. */
  content: ScanContent;
  /** Pure: which events this re-match causes. Runs inside the transaction. */
  events: (context: ScanEventContext) => readonly PlannedEvent[];
}

export type RecordRematchOutcome =
  { status: 'recorded'; scanId: number; events: number } | { status: 'stale' };

export interface ScannerStore {
  /** The delivery side of the outbox the store writes events into. */
  readonly queue: DeliveryQueue;
  /** Runtime detections, aggregated; their events go into `queue`'s outbox. */
  readonly detections: DetectionStore;
  ping(): Promise<void>;

  /** Throws CLUSTER_EXISTS (ConflictError) when the name is taken. */
  createCluster(name: string): Promise<ClusterRecord>;
  getCluster(name: string): Promise<ClusterRecord | undefined>;
  listClusters(visibility: Visibility): Promise<ClusterListing[]>;
  /** Deletes the cluster with its workloads, scans and triggers. */
  deleteCluster(name: string): Promise<boolean>;

  /** The scan an earlier report with this id produced in the cluster. */
  findReport(cluster: string, reportId: string): Promise<ReportRef | undefined>;
  /** The inventory hash of the workload's latest recorded scan. */
  lastInventoryHash(workload: WorkloadIdentity): Promise<string | undefined>;
  /** Throws CLUSTER_NOT_FOUND when the workload's cluster is not registered. */
  recordScan(input: RecordScanInput): Promise<RecordScanOutcome>;

  /** Per matching workload, its latest scan at or before `at`. */
  latestScans(
    cluster: string,
    visibility: Visibility,
    filter: WorkloadFilter & { pod: string },
    at: Date,
  ): Promise<ScanDetail[]>;
  listWorkloads(visibility: Visibility, filter: WorkloadFilter, page: Page): Promise<WorkloadRecord[]>;
  listScans(visibility: Visibility, filter: WorkloadFilter, page: Page): Promise<ScanRecord[]>;
  getScan(id: number, visibility: Visibility): Promise<ScanDetail | undefined>;
  /**
   * The latest scan of each visible workload whose image equals `query.image` or whose image
   * digest equals `query.digest`, newest first.
   */
  imageScans(visibility: Visibility, query: ImageQuery, limit: number): Promise<ScanRecord[]>;
  summary(visibility: Visibility, filter: { namespace?: string }): Promise<NamespaceSummary[]>;

  createTrigger(input: NewTrigger): Promise<TriggerRecord>;
  getTrigger(id: string): Promise<TriggerRecord | undefined>;
  listTriggers(): Promise<TriggerRecord[]>;
  deleteTrigger(id: string): Promise<boolean>;
  /** The deliverer's view of a trigger; undefined once it is deleted. */
  triggerTarget(id: string): Promise<DeliveryTarget | undefined>;

  /*
   * Re-matching after advisory updates (`rematch.ts`). A store indexes each distinct inventory by
   * its package keys (`inventoryPackageKey`, written once with the inventory) and remembers, for
   * every advisory id a stored finding cites, the package key it was found on; a workload points
   * at the inventory of its latest result. Nothing is re-indexed per scan.
   */
  /**
   * Ids of workloads whose latest inventory holds a package key among `keys`, or a package a
   * stored finding citing an advisory key among `keys` was found on; ascending.
   */
  rematchCandidates(keys: readonly string[]): Promise<number[]>;
  /** The latest content of these workloads (those without a scan or gone are left out). */
  rematchTargets(workloadIds: readonly number[]): Promise<RematchTarget[]>;
  /**
   * In one transaction: unless `basedOnScanId` is no longer the workload's latest scan (`stale`),
   * stores the content as a new result and a scan of kind `rematch` (report id `rematch:<based-on id>`,
   * not registered as a report; node, image and inventory hash as in the based-on scan) and
   * enqueues the planned events (`checkIn` false).
   */
  recordRematch(input: RecordRematchInput): Promise<RecordRematchOutcome>;
  /**
   * `recordRematch` for each input, in one transaction (fewer commits for a large re-match);
   * outcomes in input order. Optional: callers fall back to `recordRematch`.
   */
  recordRematches?(inputs: readonly RecordRematchInput[]): Promise<RecordRematchOutcome[]>;
  /** The advisory import id the last completed re-match covered; undefined before the first. */
  rematchCursor(): Promise<number | undefined>;
  setRematchCursor(importId: number): Promise<void>;

  listDeadLetters(filter: DeadLetterFilter & { limit?: number }): Promise<DeadLetter[]>;
  replayDeadLetters(filter: DeadLetterFilter): Promise<number>;

  close(): Promise<void>;
}
