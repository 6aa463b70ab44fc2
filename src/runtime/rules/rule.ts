/**
 * A runtime rule: a stable id, a severity, the event kinds it looks at, and a pure `match` over
 * one event with what the detector knows about its process and container. Pure (no I/O): the
 * detector gathers every fact a rule needs (drift, entrypoint, listeners) before asking.
 */
import type { DetectionSeverity, RuntimeDetection, SensorEvent, SensorEventKind } from '../contracts.js';

export interface ProcessView {
  pid: number;
  ppid?: number;
  uid: number;
  euid?: number;
  /** The program's name: the basename of its path (argv[0]'s for `/proc/self/exe` re-execs). */
  name: string;
  /** The executable's path inside the container, when known. */
  exe?: string;
  argv: string[];
  /** The parent's name, when the parent is known to the sensor. */
  parentName?: string;
}

export interface ContainerView {
  containerId: string;
  image: string;
  /** The name of the container's first process (its entrypoint). */
  entrypointName?: string;
  /** Milliseconds since the epoch. */
  startedAt?: number;
  /** Ports listening when the sensor first saw the container (its own service). */
  initialListeners: ReadonlySet<number>;
}

export interface RuleOptions {
  /** Listeners opened this soon after the container started are its own (ms). */
  listenerGraceMs: number;
  /** Outbound ports never unexpected (DNS, HTTP(S)). */
  allowedOutboundPorts: readonly number[];
}

export const DEFAULT_RULE_OPTIONS: RuleOptions = {
  listenerGraceMs: 30_000,
  allowedOutboundPorts: [53, 80, 443],
};

export interface RuleContext {
  event: SensorEvent;
  process: ProcessView;
  container: ContainerView;
  /** exec only: the executable is in the writable layer, or a memfd. */
  drift?: { upperLayer: boolean; memfd: boolean; deleted: boolean };
  options: RuleOptions;
}

export type Evidence = Record<string, string | number | boolean>;

export interface RuleHit {
  evidence: Evidence;
  /** What makes two hits "the same" for aggregation (default: the evidence). */
  key?: string;
}

export interface RuntimeRule {
  id: string;
  title: string;
  severity: DetectionSeverity;
  kind: RuntimeDetection['kind'];
  events: readonly SensorEventKind[];
  description: string;
  /** Rules whose hit on the same event is folded into this one's (a reverse shell is also a shell). */
  supersedes?: readonly string[];
  /** `builtin` or the file a user rule came from. */
  origin: string;
  match(ctx: RuleContext): RuleHit | undefined;
}

/** Fixture for a rule's own tests: an event and what it should produce. */
export interface RuleFixture {
  name: string;
  ctx: RuleContext;
  expect: boolean;
}
