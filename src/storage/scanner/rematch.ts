/**
 * The re-match side of the scanner's storage (`rematch.ts` drives it), for both engines: which
 * workloads an advisory change touches (through the index written with each inventory and
 * result), their latest content, and re-derived results recorded as scans of kind `rematch`.
 */
import type { RematchTarget, RecordRematchInput, RecordRematchOutcome } from '../../scanner/scanner-store.js';
import type { EncodedContent, ResultCodec, StoredBlobs } from './result-codec.js';
import { rematchTarget } from './result-codec.js';
import { identityOf } from './workload-row.js';
import type { WorkloadRow } from './workload-row.js';
import type { InsecureConfiguration } from '../../inventory/types.js';
import { epochMs, int, isoTime } from '../sql.js';
import type { SqlDb } from '../sql.js';
import { insertScan, planEvents, triggersFor } from './ingest.js';
import type { ResultColumns, ResultStore } from './results.js';
import { Rollback } from './transaction.js';
import type { InTransaction } from './transaction.js';

type Time = number | Date;

export class RematchStore {
  constructor(
    private readonly db: SqlDb,
    private readonly transaction: InTransaction,
    private readonly codec: ResultCodec,
    private readonly results: ResultStore,
    /** Epoch ms. */
    private readonly now: () => number,
    /**
     * Re-matches written per transaction. SQLite: a few dozen (fewer commits, yet the event loop
     * is never held for long). PostgreSQL: one, so row locks that reports wait for are brief.
     */
    private readonly perTransaction: number,
  ) {}

  /** Ids of workloads whose latest inventory holds one of the keys, or a package an advisory key was found on. */
  async candidates(keys: readonly string[]): Promise<number[]> {
    const rows = await this.db.all<{ id: number | string }>(
      `WITH k(key) AS (SELECT value FROM ${this.db.elements('$1', 'text')}),
         pk(key) AS (SELECT key FROM k
                     UNION SELECT ap.package_key FROM scanner_advisory_packages ap JOIN k ON ap.advisory_key = k.key)
       SELECT DISTINCT w.id FROM pk
       JOIN scanner_inventory_keys ik ON ik.key = pk.key
       JOIN scanner_workloads w ON w.inventory_id = ik.inventory_id
       ORDER BY w.id`,
      [this.db.array(keys)],
    );
    return rows.map((r) => int(r.id));
  }

  async targets(workloadIds: readonly number[]): Promise<RematchTarget[]> {
    const rows = await this.db.all<
      WorkloadRow &
        ResultColumns & {
          workload_id: number | string;
          scan_id: number | string;
          scan_time: Time;
          inventory_hash: string;
        }
    >(
      `SELECT w.id AS workload_id, s.id AS scan_id, s.scan_time, s.inventory_hash, c.name AS cluster,
         w.namespace, w.pod, w.container, s.node, s.image, s.image_digest,
         r.inventory_id, r.runs, r.insecure_configurations
       FROM scanner_workloads w
       JOIN scanner_clusters c ON c.id = w.cluster_id
       JOIN scanner_scans s ON s.id = w.last_scan_id
       JOIN scanner_results r ON r.id = s.result_id
       WHERE ${this.db.inArray('w.id', '$1', 'bigint')}
       ORDER BY w.id`,
      [this.db.array(workloadIds)],
    );
    // Every set of the batch in one query.
    const sets = await this.results.sets(this.db, [
      ...new Set(rows.flatMap((r) => this.codec.setIdsOf(r.runs))),
    ]);
    const targets: RematchTarget[] = [];
    for (const row of rows) {
      const inventory = await this.results.inventory(this.db, row.inventory_id);
      targets.push(
        rematchTarget({
          workloadId: int(row.workload_id),
          workload: identityOf(row),
          scanId: int(row.scan_id),
          scanTime: isoTime(row.scan_time),
          inventoryHash: row.inventory_hash,
          inventory,
          runs: this.codec.runs(inventory.packages, row.runs, sets),
          insecureConfigurations: this.db.json<InsecureConfiguration[]>(row.insecure_configurations),
        }),
      );
    }
    return targets;
  }

  /** Outcomes in input order; `perTransaction` re-matches commit together. */
  async record(inputs: readonly RecordRematchInput[]): Promise<RecordRematchOutcome[]> {
    const outcomes: RecordRematchOutcome[] = [];
    for (let start = 0; start < inputs.length; start += this.perTransaction) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      const chunk = inputs.slice(start, start + this.perTransaction);
      const encoded = chunk.map((input) => this.codec.encode(input.content));
      const results = await this.transaction(async (tx) => {
        const done: { outcome: RecordRematchOutcome; stored?: StoredBlobs }[] = [];
        for (const [i, input] of chunk.entries())
          done.push(await this.one(tx, input, encoded[i] as EncodedContent));
        // One re-match alone that is stale wrote nothing: no commit needed.
        return done.length === 1 && done[0]?.outcome.status === 'stale' ? new Rollback(done) : done;
      });
      for (const [i, r] of results.entries()) {
        if (r.stored)
          this.codec.rememberStored(encoded[i] as EncodedContent, r.stored.inventoryId, r.stored.setIds);
        outcomes.push(r.outcome);
      }
    }
    return outcomes;
  }

  /** One re-match, inside the caller's transaction. */
  private async one(
    { db, enqueue }: Parameters<Parameters<InTransaction>[0]>[0],
    input: RecordRematchInput,
    encoded: EncodedContent,
  ): Promise<{ outcome: RecordRematchOutcome; stored?: StoredBlobs }> {
    // FOR UPDATE: a report for this workload waits, so "still the latest scan" holds until commit.
    const base = await db.get<
      ResultColumns & {
        cluster_id: number | string;
        namespace: string;
        last_scan_id: number | string;
        scan_time: Time;
        inventory_hash: string;
        node: string;
        image: string;
        image_digest: string | null;
      }
    >(
      `SELECT w.cluster_id, w.namespace, w.last_scan_id, s.scan_time, s.inventory_hash, s.node, s.image,
         s.image_digest, r.inventory_id, r.runs, r.insecure_configurations
       FROM scanner_workloads w
       JOIN scanner_scans s ON s.id = w.last_scan_id
       JOIN scanner_results r ON r.id = s.result_id
       WHERE w.id = $1${db.locking('FOR UPDATE OF w')}`,
      [input.workloadId],
    );
    if (base === undefined || int(base.last_scan_id) !== input.basedOnScanId)
      return { outcome: { status: 'stale' } };
    const stored = await this.results.storeBlobs(db, encoded);
    const resultId = await this.results.insert(
      db,
      input.workloadId,
      stored.inventoryId,
      this.codec.runsJson(encoded, stored.setIds),
      input.content,
    );
    // Never before the scan it re-derives, or `latestScans` would still pick that one.
    const scanTime = new Date(Math.max(input.scanTime.getTime(), epochMs(base.scan_time)));
    const scanId = await insertScan(db, {
      workloadId: input.workloadId,
      resultId,
      inventoryId: Number(stored.inventoryId),
      reportId: `rematch:${input.basedOnScanId}`,
      kind: 'rematch',
      scanTime,
      receivedAt: new Date(this.now()),
      inventoryHash: base.inventory_hash,
      node: base.node,
      image: base.image,
      imageDigest: base.image_digest,
    });
    const planned = await planEvents(
      input.events,
      {
        scanId,
        checkIn: false,
        triggers: await triggersFor(db, int(base.cluster_id), base.namespace),
        content: () => input.content,
      },
      () => this.results.decoder(db, base),
    );
    for (const { event, triggerIds } of planned) await enqueue(event, triggerIds);
    return { outcome: { status: 'recorded', scanId, events: planned.length }, stored };
  }

  async cursor(): Promise<number | undefined> {
    const row = await this.db.get<{ value: string }>(
      `SELECT value FROM scanner_meta WHERE key = 'rematch_cursor'`,
    );
    return row === undefined ? undefined : Number(row.value);
  }

  async setCursor(importId: number): Promise<void> {
    await this.db.run(
      `INSERT INTO scanner_meta (key, value) VALUES ('rematch_cursor', $1)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      [String(importId)],
    );
  }
}
