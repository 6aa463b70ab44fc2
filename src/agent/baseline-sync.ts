/**
 * The agent's behaviour baselines, kept by the scanner: loaded at start (a restarted agent keeps
 * what it learned, and every node of a cluster shares one baseline per image), changes pushed a
 * moment after they happen, and an operator's lock or reset (`containment baseline lock|reset`)
 * taken on the next sync — every `pollMs` even when nothing changed here.
 *
 * One request does both directions (`POST /v1/baselines/sync`): what changed here goes up, the
 * cluster's baselines come back. For an image whose generation is unchanged the answer is merged
 * into the local book (what was learned while the request was in flight is kept); a newer
 * generation (an operator's change) replaces the local baseline.
 */
import type { BaselineBook } from '../runtime/baseline/baseline.js';
import { mergeBaselines, sameBaseline } from '../runtime/baseline/baseline.js';
import type { Baseline, BaselinePush, StoredBaseline } from '../runtime/contracts.js';
import type { AgentLogger } from './logger.js';

export interface BaselineSyncClient {
  syncBaselines(cluster: string, baselines: readonly BaselinePush[]): Promise<StoredBaseline[]>;
}

export interface BaselineSyncOptions {
  client: BaselineSyncClient;
  book: BaselineBook;
  cluster: string;
  logger: AgentLogger;
  /** The image reference of a baseline key (a digest), when the agent knows it. */
  refOf?: (image: string) => string | undefined;
  /** How often local changes are looked for and pushed (the debounce; default 2 s). */
  pushMs?: number;
  /** How often the scanner is asked even without local changes (default 30 s). */
  pollMs?: number;
}

export interface BaselineSyncStatus {
  /** Baselines held (learned here or loaded). */
  images: number;
  syncs: number;
  failedSyncs: number;
  /** RFC 3339, of the last successful sync. */
  lastSyncAt?: string;
  /** Operator changes (lock, reset) applied from the scanner. */
  operatorChanges: number;
}

export class BaselineSync {
  /** What the scanner last said, per image: generation and baseline. */
  private readonly known = new Map<string, { generation: number; baseline: Baseline }>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastSync = 0;
  private readonly counts = { syncs: 0, failedSyncs: 0, operatorChanges: 0 };
  private lastSyncAt: string | undefined;

  constructor(private readonly options: BaselineSyncOptions) {}

  /** Loads the cluster's baselines (a failure is logged: learning starts afresh and syncs later). */
  async start(): Promise<void> {
    await this.sync();
    const pushMs = this.options.pushMs ?? 2000;
    this.timer = setInterval(() => void this.tick(), pushMs);
    this.timer.unref();
  }

  /** Pushes what is left and stops. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    if (this.changed().length > 0) await this.sync();
  }

  status(): BaselineSyncStatus {
    return {
      images: this.options.book.export().length,
      ...this.counts,
      ...(this.lastSyncAt === undefined ? {} : { lastSyncAt: this.lastSyncAt }),
    };
  }

  /** One sync now (tests, and `stop`); waits for one in flight first. */
  async sync(): Promise<void> {
    while (this.running) await this.running;
    this.running = this.exchange().finally(() => {
      this.running = undefined;
    });
    await this.running;
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    const due = Date.now() - this.lastSync >= (this.options.pollMs ?? 30_000);
    if (due || this.changed().length > 0) await this.sync();
  }

  /** Local baselines that differ from what the scanner last said. */
  private changed(): Baseline[] {
    return this.options.book.export().filter((b) => {
      const known = this.known.get(b.image);
      return !known || !sameBaseline(known.baseline, b);
    });
  }

  private async exchange(): Promise<void> {
    const { book, client, cluster, logger } = this.options;
    const pushes = this.changed().map((baseline): BaselinePush => {
      const ref = this.options.refOf?.(baseline.image);
      return {
        baseline,
        generation: this.known.get(baseline.image)?.generation ?? 0,
        ...(ref === undefined || ref === baseline.image ? {} : { imageRef: ref }),
      };
    });
    this.lastSync = Date.now();
    let stored: StoredBaseline[];
    try {
      stored = await client.syncBaselines(cluster, pushes);
    } catch (e) {
      this.counts.failedSyncs++;
      logger.warn({ err: (e as Error).message, pushed: pushes.length }, 'baseline sync failed; will retry');
      return;
    }
    this.counts.syncs++;
    this.lastSyncAt = new Date().toISOString();
    for (const s of stored) {
      const remote: Baseline = {
        image: s.image,
        state: s.state,
        learningStartedAt: s.learningStartedAt,
        eventsLearned: s.eventsLearned,
        executables: s.executables,
        listeners: s.listeners,
        outbound: s.outbound,
      };
      const known = this.known.get(s.image);
      const local = book.get(s.image);
      const operatorChange = known !== undefined && s.generation !== known.generation;
      if (operatorChange) {
        this.counts.operatorChanges++;
        logger.info(
          { image: s.image, state: s.state, generation: s.generation },
          'baseline changed by an operator',
        );
      }
      // Same generation: keep what was learned here meanwhile; a newer one replaces ours.
      book.import([
        local && !operatorChange && s.generation === (known?.generation ?? 0)
          ? mergeBaselines(remote, local)
          : remote,
      ]);
      this.known.set(s.image, { generation: s.generation, baseline: remote });
    }
  }
}
