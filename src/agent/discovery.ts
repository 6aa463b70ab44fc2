/**
 * Where the agent learns which containers run on this node, and what each one is. Two
 * implementations: the container engine's API and event stream (`engine-discovery.ts`, single
 * machine), and `/proc/*\/cgroup` joined with the API server's pods (`kubernetes/`, a cluster
 * node). The agent itself (queueing, rescans, drift, reporting) is the same for both.
 */
import type { WorkloadIdentity } from '../events/cloud-event.js';

/** A running container, ready to scan. */
export interface DiscoveredWorkload {
  /** The container id (the key the agent tracks it by). */
  id: string;
  /** For logs. */
  name: string;
  /** Main process on this host: its `/proc/<pid>/root` is what is scanned. */
  pid: number;
  /** The user the container runs as (image-config `User` syntax), when known. */
  user?: string;
  /** The writable layer on this host, for cheap drift checks, when known. */
  upperDir?: string;
  identity: WorkloadIdentity;
}

export interface WorkloadEvent {
  /** `started`: scan it; `ended`: it has no process any more; `removed`: it can never come back. */
  kind: 'started' | 'ended' | 'removed';
  id: string;
}

/**
 * `ignore`: never scan this container (an infra container, one the selector excludes);
 * `gone`: it is not running (or no longer known) now.
 */
export type Resolution = DiscoveredWorkload | 'ignore' | 'gone';

/** A container as its processes' cgroup names it (what the runtime sensor attributes events by). */
export interface CgroupContainer {
  containerId: string;
  /** Set when the cgroup is a Kubernetes pod's (`kubepods…/pod<uid>/…`). */
  podUid?: string;
}

/** The workload a container is, for the runtime sensor; `ignore`/`gone` as in `Resolution`. */
export type Identification = WorkloadIdentity | 'ignore' | 'gone';

export interface WorkloadDiscovery {
  /** Where the containers are learnt from, for messages. */
  readonly endpoint: string;
  /** Resolves once the source answers; throws (with a stable code) when it does not. */
  start(): Promise<void>;
  /** Ids of the containers running now. */
  running(): Promise<string[]>;
  /**
   * Changes from now on, until `signal` aborts (the iteration then ends quietly). Throws when the
   * stream breaks: the agent waits, lists again (`running`) and subscribes again.
   */
  events(signal: AbortSignal): AsyncIterable<WorkloadEvent>;
  /** What to scan for `id`, looked up now. */
  resolve(id: string): Promise<Resolution>;
  /**
   * The workload identity of the container a cgroup names (the runtime sensor's `describe`): the
   * same identity `resolve` gives a scan of it, without what only a scan needs (pid, user, layer).
   */
  identify(ref: CgroupContainer): Promise<Identification>;
  /** The agent stopped tracking `id` (cached facts about it may go). */
  forget(id: string): void;
  /** Releases watches and connections. */
  close(): Promise<void>;
}
