/**
 * Detection retention: aggregates last seen longer ago than the retention are deleted, at start
 * and then periodically (every hour, or a tenth of the retention when that is shorter). Replicas
 * may all prune: the delete is idempotent.
 */
import type { DetectionStore } from '../storage/scanner/detections.js';

/** 30 days. */
export const DEFAULT_DETECTION_RETENTION_MS = 30 * 86_400_000;

export interface DetectionRetentionOptions {
  detections: Pick<DetectionStore, 'prune'>;
  /** Keep this long after an aggregate was last seen; 0 keeps everything. */
  retentionMs: number;
  now?: () => number;
  onPruned?: (deleted: number) => void;
  onError?: (error: unknown) => void;
}

export class DetectionRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(private readonly options: DetectionRetentionOptions) {}

  start(): void {
    if (this.options.retentionMs <= 0) return;
    void this.runOnce();
    const every = Math.max(1000, Math.min(3_600_000, Math.floor(this.options.retentionMs / 10)));
    this.timer = setInterval(() => void this.runOnce(), every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass: how many aggregates were deleted (errors are reported, never thrown). */
  async runOnce(): Promise<number> {
    if (this.running) return this.running;
    const before = new Date((this.options.now ?? Date.now)() - this.options.retentionMs);
    this.running = this.options.detections
      .prune(before)
      .then((deleted) => {
        if (deleted > 0) this.options.onPruned?.(deleted);
        return deleted;
      })
      .catch((e: unknown) => {
        this.options.onError?.(e);
        return 0;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }
}

const RETENTION_UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30d`, `12h`, `90m`; `0` or `off` keeps detections forever. Undefined when not a retention. */
export function parseRetention(value: string): number | undefined {
  const v = value.trim();
  if (v === '0' || v === 'off') return 0;
  const m = /^(\d+)(m|h|d)$/.exec(v);
  const ms = m ? Number(m[1]) * (RETENTION_UNITS[m[2] as string] as number) : NaN;
  return Number.isSafeInteger(ms) && ms >= 60_000 && ms <= 3650 * 86_400_000 ? ms : undefined;
}
