/**
 * Behaviour baselines (`scanner_baselines`): one per cluster and image key (the image digest, else
 * its reference — the detector's key), one implementation for both engines over the dialect seam.
 *
 * Agents push what they learned and get the cluster's baselines back (`sync`); pushes of several
 * agents for one image are merged (`mergeBaselines`: items join while learning, the state only
 * moves forward). Operators lock and reset; each such change bumps `generation`, and a push based
 * on an older generation is ignored, so an agent that has not seen the change yet cannot undo it.
 * Every write is a compare-and-swap on `revision` (retried), so replicas need no lock.
 */
import { ConflictError, ErrorCodes, NotFoundError } from '../../errors.js';
import { mergeBaselines, sameBaseline } from '../../runtime/baseline/baseline.js';
import type { Baseline, BaselinePush, StoredBaseline } from '../../runtime/contracts.js';
import { int, isoTime } from '../sql.js';
import type { SqlDb } from '../sql.js';

interface BaselineRow {
  id: number | string;
  cluster: string;
  image: string;
  image_ref: string | null;
  state: Baseline['state'];
  learning_started_at: number | string;
  events_learned: number | string;
  items: unknown;
  generation: number | string;
  revision: number | string;
  updated_at: number | Date;
}

interface Items {
  executables: string[];
  listeners: string[];
  outbound: string[];
}

const COLUMNS = `b.id, c.name AS cluster, b.image, b.image_ref, b.state, b.learning_started_at,
  b.events_learned, b.items, b.generation, b.revision, b.updated_at`;
const FROM = 'scanner_baselines b JOIN scanner_clusters c ON c.id = b.cluster_id';
/** Compare-and-swap attempts before a write gives up (only under heavy contention on one image). */
const ATTEMPTS = 16;

/** A short random pause after a lost compare-and-swap, so racing writers fall out of step. */
function backoff(attempt: number): Promise<void> {
  if (attempt === 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** Math.min(attempt, 6)));
}

function clusterNotFound(name: string): NotFoundError {
  return new NotFoundError(ErrorCodes.CLUSTER_NOT_FOUND, `cluster ${name} is not registered`);
}

export class BaselineStore {
  constructor(
    private readonly db: SqlDb,
    private readonly now: () => number = Date.now,
  ) {}

  /** The cluster's baselines, by image; or only the one of `image` (its key or its reference). */
  async list(cluster: string, image?: string): Promise<StoredBaseline[]> {
    const params: unknown[] = [cluster];
    let where = 'c.name = $1';
    if (image !== undefined) {
      params.push(image);
      where += ' AND (b.image = $2 OR b.image_ref = $2)';
    }
    const rows = await this.db.all<BaselineRow>(
      `SELECT ${COLUMNS} FROM ${FROM} WHERE ${where} ORDER BY b.image`,
      params,
    );
    return rows.map((row) => this.toBaseline(row));
  }

  /**
   * Merges an agent's baselines into the cluster's and returns all of the cluster's. Throws
   * CLUSTER_NOT_FOUND (nothing written) for an unregistered cluster.
   */
  async sync(cluster: string, pushes: readonly BaselinePush[]): Promise<StoredBaseline[]> {
    const clusterId = await this.clusterId(cluster);
    for (const push of pushes) await this.push(clusterId, push);
    return this.list(cluster);
  }

  /**
   * An operator ends learning (`protect`, the default, or `monitor`): the baseline as it is now
   * becomes the reference. Throws BASELINE_NOT_FOUND when the image has none yet.
   */
  async lock(
    cluster: string,
    image: string,
    state: 'protect' | 'monitor' = 'protect',
  ): Promise<StoredBaseline> {
    return this.operatorChange(cluster, image, (b) => ({ ...b, state }));
  }

  /** An operator empties the baseline: the image learns again from now. */
  async reset(cluster: string, image: string): Promise<StoredBaseline> {
    const now = this.now();
    return this.operatorChange(cluster, image, (b) => ({
      image: b.image,
      state: 'learning',
      learningStartedAt: now,
      eventsLearned: 0,
      executables: [],
      listeners: [],
      outbound: [],
    }));
  }

  private async clusterId(cluster: string): Promise<number> {
    const row = await this.db.get<{ id: number | string }>(
      'SELECT id FROM scanner_clusters WHERE name = $1',
      [cluster],
    );
    if (!row) throw clusterNotFound(cluster);
    return int(row.id);
  }

  private async push(clusterId: number, push: BaselinePush): Promise<void> {
    const image = push.baseline.image;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      await backoff(attempt);
      const row = await this.row(clusterId, image);
      if (!row) {
        const inserted = await this.db.run(
          `INSERT INTO scanner_baselines (cluster_id, image, image_ref, state, learning_started_at,
             events_learned, items, generation, revision, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 1, $8)
           ON CONFLICT (cluster_id, image) DO NOTHING`,
          [
            clusterId,
            image,
            push.imageRef ?? null,
            push.baseline.state,
            push.baseline.learningStartedAt,
            push.baseline.eventsLearned,
            JSON.stringify(itemsOf(push.baseline)),
            new Date(this.now()),
          ],
        );
        if (inserted === 1) return;
        continue;
      }
      // Based on a baseline an operator has since locked or reset: the agent takes ours instead.
      if (int(row.generation) !== push.generation) return;
      const current = this.baselineOf(row);
      const merged = mergeBaselines(current, push.baseline);
      const imageRef = row.image_ref ?? push.imageRef ?? null;
      if (sameBaseline(merged, current) && imageRef === row.image_ref) return;
      if (await this.swap(row, merged, imageRef, int(row.generation))) return;
    }
    throw new ConflictError(ErrorCodes.BASELINE_CONFLICT, `baseline of ${image} changed too often; retry`);
  }

  private async operatorChange(
    cluster: string,
    image: string,
    change: (b: Baseline) => Baseline,
  ): Promise<StoredBaseline> {
    const clusterId = await this.clusterId(cluster);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      await backoff(attempt);
      const row = await this.row(clusterId, image);
      if (!row)
        throw new NotFoundError(
          ErrorCodes.BASELINE_NOT_FOUND,
          `no baseline of ${image} in cluster ${cluster} (nothing learned yet)`,
        );
      if (await this.swap(row, change(this.baselineOf(row)), row.image_ref, int(row.generation) + 1))
        return (await this.list(cluster, row.image)).find((b) => b.image === row.image) as StoredBaseline;
    }
    throw new ConflictError(ErrorCodes.BASELINE_CONFLICT, `baseline of ${image} changed too often; retry`);
  }

  /** The image's row by key, or by reference (the CLI names images as users know them). */
  private async row(clusterId: number, image: string): Promise<BaselineRow | undefined> {
    const rows = await this.db.all<BaselineRow>(
      `SELECT ${COLUMNS} FROM ${FROM} WHERE b.cluster_id = $1 AND (b.image = $2 OR b.image_ref = $2)
       ORDER BY CASE WHEN b.image = $2 THEN 0 ELSE 1 END, b.updated_at DESC LIMIT 1`,
      [clusterId, image],
    );
    return rows[0];
  }

  /** Writes `next` if nobody changed the row since it was read. */
  private async swap(
    row: BaselineRow,
    next: Baseline,
    imageRef: string | null,
    generation: number,
  ): Promise<boolean> {
    const changed = await this.db.run(
      `UPDATE scanner_baselines SET state = $1, learning_started_at = $2, events_learned = $3, items = $4,
         image_ref = $5, generation = $6, revision = revision + 1, updated_at = $7
       WHERE id = $8 AND revision = $9`,
      [
        next.state,
        next.learningStartedAt,
        next.eventsLearned,
        JSON.stringify(itemsOf(next)),
        imageRef,
        generation,
        new Date(this.now()),
        int(row.id),
        int(row.revision),
      ],
    );
    return changed === 1;
  }

  private baselineOf(row: BaselineRow): Baseline {
    const items = this.db.json<Items>(row.items);
    return {
      image: row.image,
      state: row.state,
      learningStartedAt: int(row.learning_started_at),
      eventsLearned: int(row.events_learned),
      executables: items.executables,
      listeners: items.listeners,
      outbound: items.outbound,
    };
  }

  private toBaseline(row: BaselineRow): StoredBaseline {
    return {
      ...this.baselineOf(row),
      cluster: row.cluster,
      ...(row.image_ref === null ? {} : { imageRef: row.image_ref }),
      generation: int(row.generation),
      revision: int(row.revision),
      updatedAt: isoTime(row.updated_at),
    };
  }
}

function itemsOf(b: Baseline): Items {
  return { executables: b.executables, listeners: b.listeners, outbound: b.outbound };
}
