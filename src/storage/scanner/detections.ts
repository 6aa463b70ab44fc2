/**
 * Runtime detections (`scanner_detections`): one implementation for both engines over the dialect
 * seam. Identical detections are folded into one row per workload, rule and fingerprint (count,
 * first and last seen); only the first occurrence of an aggregate queues a
 * `dev.containment.runtime.detected` event, in the same transaction as the row (durable outbox).
 * The event's data is the detection plus `detectionId`, the aggregate's id
 * (`GET /v1/detections/{id}`): what a policy cites and the audit trail follows.
 */
import { ErrorCodes, NotFoundError } from '../../errors.js';
import { EventTypes, createEvent } from '../../events/cloud-event.js';
import type { RuntimeDetection } from '../../runtime/contracts.js';
import type { Page, Visibility } from './visibility.js';
import { int, isoTime } from '../sql.js';
import type { SqlDb } from '../sql.js';

import type { InTransaction } from './transaction.js';

export interface StoredDetection extends RuntimeDetection {
  /** The scanner's id of the aggregate. */
  id: number;
}

export interface DetectionFilter {
  /** One aggregate. */
  id?: number;
  namespace?: string;
  pod?: string;
  /** Aggregates last seen at or after this time. */
  since?: Date;
}

export interface DetectionsRecorded {
  /** Detections received. */
  received: number;
  /** Of which new aggregates. */
  created: number;
  /** Events queued (one per new aggregate with at least one trigger). */
  events: number;
}

interface DetectionRow {
  id: number | string;
  occurrences: number | string;
  first_seen: number | Date;
  last_seen: number | Date;
  detection: unknown;
}

const KEY = `cluster_id = (SELECT id FROM scanner_clusters WHERE name = $1)
  AND namespace = $2 AND pod = $3 AND container = $4 AND rule_id = $5 AND fingerprint = $6`;

export class DetectionStore {
  constructor(
    private readonly db: SqlDb,
    private readonly inTransaction: InTransaction,
  ) {}

  /** All of one request at once; throws CLUSTER_NOT_FOUND (nothing written) for an unregistered cluster. */
  record(detections: readonly RuntimeDetection[]): Promise<DetectionsRecorded> {
    return this.inTransaction(async (tx) => {
      let created = 0;
      let events = 0;
      for (const d of detections) {
        const detectionId = await this.upsert(tx.db, d);
        if (detectionId === undefined) continue;
        created++;
        const triggerIds = await this.triggersFor(tx.db, d.workload.cluster, d.workload.namespace);
        if (triggerIds.length === 0) continue;
        const event = createEvent(
          EventTypes.RUNTIME_DETECTED,
          d.workload.cluster,
          { ...d, detectionId },
          { time: new Date(d.detectedAt) },
        );
        await tx.enqueue(event, triggerIds);
        events++;
      }
      return { received: detections.length, created, events };
    });
  }

  /** The new aggregate's id when the detection started one, else undefined. */
  private async upsert(db: SqlDb, d: RuntimeDetection): Promise<number | undefined> {
    const w = d.workload;
    const key = [w.cluster, w.namespace, w.pod, w.container ?? '', d.ruleId, d.fingerprint];
    const firstSeen = new Date(d.firstSeen);
    const lastSeen = new Date(d.lastSeen);
    const inserted = await db.run(
      `INSERT INTO scanner_detections (cluster_id, namespace, pod, container, rule_id, fingerprint,
         severity, occurrences, first_seen, last_seen, agent_first_seen, agent_count, detection)
       SELECT c.id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $8, $12 FROM scanner_clusters c WHERE c.name = $1
       ON CONFLICT (cluster_id, namespace, pod, container, rule_id, fingerprint) DO NOTHING`,
      [...key, d.severity, d.count, firstSeen, lastSeen, d.firstSeen, JSON.stringify(d)],
    );
    if (inserted === 1) {
      const row = await db.get<{ id: number | string }>(
        `SELECT id FROM scanner_detections WHERE ${KEY}`,
        key,
      );
      return row === undefined ? undefined : int(row.id);
    }
    // An agent re-sends its aggregate with a growing count: add only the growth; a new agent
    // aggregate (another first-seen: a restart, or a Falco alert) adds its whole count.
    const updated = await db.run(
      `UPDATE scanner_detections SET
         occurrences = occurrences + CASE WHEN agent_first_seen <> $7 THEN $8
           WHEN $8 > agent_count THEN $8 - agent_count ELSE 0 END,
         agent_count = $8,
         agent_first_seen = $7,
         first_seen = CASE WHEN first_seen > $9 THEN $9 ELSE first_seen END,
         last_seen = CASE WHEN last_seen < $10 THEN $10 ELSE last_seen END,
         severity = $11,
         detection = $12
       WHERE ${KEY}`,
      [...key, d.firstSeen, d.count, firstSeen, lastSeen, d.severity, JSON.stringify(d)],
    );
    if (updated !== 1)
      throw new NotFoundError(ErrorCodes.CLUSTER_NOT_FOUND, `cluster ${w.cluster} is not registered`);
    return undefined;
  }

  /** Triggers of the cluster covering the namespace. */
  private async triggersFor(db: SqlDb, cluster: string, namespace: string): Promise<string[]> {
    const rows = await db.all<{ id: string; namespaces: unknown }>(
      `SELECT t.id, t.namespaces FROM scanner_triggers t JOIN scanner_clusters c ON c.id = t.cluster_id
       WHERE c.name = $1 ORDER BY t.id`,
      [cluster],
    );
    return rows
      .filter((t) => {
        const namespaces = db.json<string[] | '*'>(t.namespaces);
        return namespaces === '*' || namespaces.includes(namespace);
      })
      .map((t) => t.id);
  }

  /** Retention: deletes the aggregates last seen before `before`; how many. */
  prune(before: Date): Promise<number> {
    return this.db.run('DELETE FROM scanner_detections WHERE last_seen < $1', [before]);
  }

  /** One aggregate, when it exists and the reader may see it (the same answer otherwise). */
  async get(visibility: Visibility, id: number): Promise<StoredDetection | undefined> {
    return (await this.list(visibility, { id }, { limit: 1, offset: 0 }))[0];
  }

  /** Aggregates visible to the reader, most recently seen first. */
  async list(visibility: Visibility, filter: DetectionFilter, page: Page): Promise<StoredDetection[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (p: string) => string, value: unknown): void => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (visibility.cluster !== '*') add((p) => `c.name = ${p}`, visibility.cluster);
    if (visibility.namespaces !== '*') {
      if (visibility.namespaces.length === 0) return [];
      const marks = visibility.namespaces.map((ns) => {
        params.push(ns);
        return `$${params.length}`;
      });
      where.push(`d.namespace IN (${marks.join(', ')})`);
    }
    if (filter.id !== undefined) add((p) => `d.id = ${p}`, filter.id);
    if (filter.namespace !== undefined) add((p) => `d.namespace = ${p}`, filter.namespace);
    if (filter.pod !== undefined) add((p) => `d.pod = ${p}`, filter.pod);
    if (filter.since !== undefined) add((p) => `d.last_seen >= ${p}`, filter.since);
    params.push(page.limit, page.offset);
    const rows = await this.db.all<DetectionRow>(
      `SELECT d.id, d.occurrences, d.first_seen, d.last_seen, d.detection
       FROM scanner_detections d JOIN scanner_clusters c ON c.id = d.cluster_id
       WHERE ${where.length === 0 ? '1 = 1' : where.join(' AND ')}
       ORDER BY d.last_seen DESC, d.id DESC
       LIMIT $${params.length - 1} OFFSET $${params.length}`,
      params,
    );
    return rows.map((row) => ({
      ...this.db.json<RuntimeDetection>(row.detection),
      id: int(row.id),
      count: int(row.occurrences),
      firstSeen: isoTime(row.first_seen),
      lastSeen: isoTime(row.last_seen),
    }));
  }
}
