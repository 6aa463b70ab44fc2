/**
 * Repeated identical detections are folded, not an event storm. The first occurrence of a
 * fingerprint is emitted at once; repeats within the window only count, and `flush` emits the
 * aggregate (count, first and last seen) once the window since the last emission has passed.
 * Pure apart from the clock it is given.
 */
import type { RuntimeDetection } from '../contracts.js';

interface Entry {
  detection: RuntimeDetection;
  lastEmitted: number;
  /** Repeats since the last emission. */
  unreported: number;
}

export class Aggregator {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly windowMs = 60_000,
    /** Forget fingerprints idle this long (bounded memory). */
    private readonly idleMs = 3_600_000,
  ) {}

  /** The detection to emit now, or undefined when it only counted. */
  observe(d: RuntimeDetection, now: number): RuntimeDetection | undefined {
    const e = this.entries.get(d.fingerprint);
    if (!e) {
      this.entries.set(d.fingerprint, { detection: d, lastEmitted: now, unreported: 0 });
      return d;
    }
    e.detection = { ...e.detection, count: e.detection.count + 1, lastSeen: d.lastSeen, process: d.process };
    e.unreported++;
    if (now - e.lastEmitted >= this.windowMs) return this.emit(e, now);
    return undefined;
  }

  /** Aggregates due for emission. */
  flush(now: number): RuntimeDetection[] {
    const out: RuntimeDetection[] = [];
    for (const [key, e] of this.entries) {
      if (e.unreported > 0 && now - e.lastEmitted >= this.windowMs) out.push(this.emit(e, now));
      else if (e.unreported === 0 && now - Date.parse(e.detection.lastSeen) >= this.idleMs)
        this.entries.delete(key);
    }
    return out;
  }

  /** Everything not yet emitted (on stop). */
  drain(now: number): RuntimeDetection[] {
    return [...this.entries.values()].filter((e) => e.unreported > 0).map((e) => this.emit(e, now));
  }

  private emit(e: Entry, now: number): RuntimeDetection {
    e.lastEmitted = now;
    e.unreported = 0;
    return e.detection;
  }
}
