/**
 * Behaviour baselines per image, pure: learn → monitor → protect (NeuVector's discover/monitor/
 * protect). While an image learns, the executables, listeners and outbound destinations its
 * containers use become its baseline; learning ends after a duration or a number of events. In
 * monitor and protect a deviation is an anomaly (protect marks it for blocking responses); the
 * baseline does not grow by itself after learning. Storage is the caller's (`export`/`import`).
 */
import type { Baseline, BaselineState, LearningPolicy } from '../contracts.js';
import { BaselineSchema, LearningPolicySchema } from '../contracts.js';

export type BaselineItem =
  | { type: 'executable'; value: string }
  | { type: 'listener'; value: string }
  | { type: 'outbound'; value: string };

export interface Anomaly {
  ruleId: 'anomaly_executable' | 'anomaly_listener' | 'anomaly_outbound';
  image: string;
  item: BaselineItem;
  state: 'monitor' | 'protect';
}

const FIELD = { executable: 'executables', listener: 'listeners', outbound: 'outbound' } as const;
const STATE_ORDER = { learning: 0, monitor: 1, protect: 2 } as const;

/**
 * Two views of one image's baseline (the scanner's and an agent's, or two agents'), joined: the
 * state only moves forward (learning → monitor → protect), and items still join while `current`
 * learns — after learning a baseline does not grow. `current` wins otherwise; an operator's
 * change (lock, reset) is not merged but replaces (see `StoredBaseline.generation`).
 */
export function mergeBaselines(current: Baseline, incoming: Baseline): Baseline {
  const grow = current.state === 'learning';
  const join = (a: readonly string[], b: readonly string[]): string[] =>
    grow ? [...new Set([...a, ...b])] : [...a];
  return {
    image: current.image,
    state: STATE_ORDER[incoming.state] > STATE_ORDER[current.state] ? incoming.state : current.state,
    learningStartedAt: Math.min(current.learningStartedAt, incoming.learningStartedAt),
    eventsLearned: Math.max(current.eventsLearned, incoming.eventsLearned),
    executables: join(current.executables, incoming.executables),
    listeners: join(current.listeners, incoming.listeners),
    outbound: join(current.outbound, incoming.outbound),
  };
}

/** Whether two baselines hold the same state and items (order aside). */
export function sameBaseline(a: Baseline, b: Baseline): boolean {
  const same = (x: readonly string[], y: readonly string[]): boolean =>
    x.length === y.length && new Set([...x, ...y]).size === x.length;
  return (
    a.image === b.image &&
    a.state === b.state &&
    a.learningStartedAt === b.learningStartedAt &&
    a.eventsLearned === b.eventsLearned &&
    same(a.executables, b.executables) &&
    same(a.listeners, b.listeners) &&
    same(a.outbound, b.outbound)
  );
}

export class BaselineBook {
  private readonly baselines = new Map<string, Baseline>();
  private readonly sets = new Map<string, Record<BaselineItem['type'], Set<string>>>();
  private readonly policy: LearningPolicy;

  constructor(policy: LearningPolicy) {
    this.policy = LearningPolicySchema.parse(policy);
  }

  state(image: string): BaselineState {
    return this.baselines.get(image)?.state ?? 'none';
  }

  get(image: string): Baseline | undefined {
    const b = this.baselines.get(image);
    return (
      b && { ...b, executables: [...b.executables], listeners: [...b.listeners], outbound: [...b.outbound] }
    );
  }

  /**
   * One observation; returns the anomaly it is, if any. A new image's learning window starts at
   * `since` (its first container's start) when given — a quiet container has learned by then.
   */
  observe(image: string, item: BaselineItem, now: number, since = now): Anomaly | undefined {
    let b = this.baselines.get(image);
    if (!b) {
      b = {
        image,
        state: 'learning',
        learningStartedAt: Math.min(since, now),
        eventsLearned: 0,
        executables: [],
        listeners: [],
        outbound: [],
      };
      this.baselines.set(image, b);
    }
    const sets = this.setsOf(b);
    if (b.state === 'learning' && this.learningOver(b, now))
      b.state = this.policy.protectAfterLearning ? 'protect' : 'monitor';
    if (b.state === 'learning') {
      b.eventsLearned++;
      if (!sets[item.type].has(item.value)) {
        sets[item.type].add(item.value);
        b[FIELD[item.type]].push(item.value);
      }
      return undefined;
    }
    if (sets[item.type].has(item.value)) return undefined;
    return { ruleId: `anomaly_${item.type}`, image, item, state: b.state };
  }

  /** Ends learning now (`containment baseline lock`): protect. */
  lock(image: string): void {
    const b = this.baselines.get(image);
    if (b) b.state = 'protect';
  }

  /** Back to monitor from protect. */
  monitor(image: string): void {
    const b = this.baselines.get(image);
    if (b && b.state !== 'learning') b.state = 'monitor';
  }

  /** Forget the image's baseline (`containment baseline reset`): it learns again. */
  reset(image: string): void {
    this.baselines.delete(image);
    this.sets.delete(image);
  }

  /** Accepts an item into a baseline (an operator's "this is fine"). */
  allow(image: string, item: BaselineItem): void {
    const b = this.baselines.get(image);
    if (!b) return;
    const sets = this.setsOf(b);
    if (!sets[item.type].has(item.value)) {
      sets[item.type].add(item.value);
      b[FIELD[item.type]].push(item.value);
    }
  }

  export(): Baseline[] {
    return [...this.baselines.keys()].map((k) => this.get(k) as Baseline);
  }

  import(baselines: unknown[]): void {
    for (const raw of baselines) {
      const b = BaselineSchema.parse(raw);
      this.baselines.set(b.image, b);
      this.sets.delete(b.image);
    }
  }

  private learningOver(b: Baseline, now: number): boolean {
    const { durationMs, events } = this.policy;
    return (
      (durationMs !== undefined && now - b.learningStartedAt >= durationMs) ||
      (events !== undefined && b.eventsLearned >= events)
    );
  }

  private setsOf(b: Baseline): Record<BaselineItem['type'], Set<string>> {
    let s = this.sets.get(b.image);
    if (!s) {
      s = {
        executable: new Set(b.executables),
        listener: new Set(b.listeners),
        outbound: new Set(b.outbound),
      };
      this.sets.set(b.image, s);
    }
    return s;
  }
}
