/**
 * Discovery on a Kubernetes node, runtime-agnostic: the node's processes are mapped to pod
 * containers through their cgroups (`proc-pods.ts`, whatever runs them: containerd, CRI-O,
 * Docker), and each container is named by the API server's pod object — found through an informer
 * on this node's pods (`fieldSelector=spec.nodeName=<node>`, through the shared `ListWatcher`), by
 * the container id its status names.
 *
 * A process whose container no pod of this node names (a sandbox's pause process, a container
 * whose status the kubelet has not written yet, something outside Kubernetes) is ignored, logged
 * once at debug; when a pod update names it later, it is announced then.
 *
 * /proc is listed every `pollIntervalMs` and whenever a pod changes: a new matched container is
 * `started`, one whose processes are all gone is `removed` (a restarted container gets a new id).
 */
import * as k8s from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { apiMessage } from '../../kubernetes/api-errors.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { ListWatcher } from '../../kubernetes/list-watch.js';
import type { AgentLogger } from '../agent.js';
import type {
  CgroupContainer,
  Identification,
  Resolution,
  WorkloadDiscovery,
  WorkloadEvent,
} from '../discovery.js';
import { PodIndex, podWorkloadIdentity, specUser } from './pod-index.js';
import { processUpperDir, processUser } from '../../linux/process-facts.js';
import { listPodProcesses, parsePodCgroup } from '../../linux/proc-pods.js';
import type { PodProcess } from '../../linux/proc-pods.js';

export const DEFAULT_PROC_POLL_INTERVAL_MS = 2_000;
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** Events nobody consumed yet beyond this are dropped: the agent's periodic resync catches up. */
const MAX_PENDING = 10_000;
/** A burst of pod updates (a rollout) causes one /proc listing, not one each. */
const CHANGE_DEBOUNCE_MS = 50;
/**
 * How long the runtime sensor's first event of a container waits for a pod status to name it: the
 * kubelet writes the container id a moment after the runtime started it, and the entrypoint's own
 * exec comes before that.
 */
export const DEFAULT_IDENTIFY_WAIT_MS = 5_000;

export interface KubernetesDiscoveryOptions {
  kubeConfig: k8s.KubeConfig;
  cluster: string;
  node: string;
  logger: AgentLogger;
  /** Default DEFAULT_PROC_POLL_INTERVAL_MS. */
  pollIntervalMs?: number;
  /** Default DEFAULT_IDENTIFY_WAIT_MS. */
  identifyWaitMs?: number;
}

export class KubernetesDiscovery implements WorkloadDiscovery {
  readonly endpoint: string;
  private readonly index = new PodIndex();
  private readonly log: AgentLogger;
  private readonly place: { cluster: string; node: string };
  private informer: ListWatcher<k8s.V1Pod> | undefined;
  /** Containers with a process here and a pod naming them, by container id. */
  private matched = new Map<string, PodProcess>();
  private readonly unmatchedLogged = new Set<string>();
  private readonly pending: WorkloadEvent[] = [];
  private waiters: (() => void)[] = [];
  /** `identify` calls waiting for a pod update. */
  private readonly podWaiters = new Set<() => void>();
  private refreshing: Promise<void> = Promise.resolve();
  private pollTimer: NodeJS.Timeout | undefined;
  private changeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: KubernetesDiscoveryOptions) {
    this.endpoint = options.kubeConfig.getCurrentCluster()?.server ?? 'kubernetes';
    this.log = options.logger;
    this.place = { cluster: options.cluster, node: options.node };
  }

  /** Lists this node's pods (KUBERNETES_UNAVAILABLE when the API server refuses), then watches them. */
  async start(): Promise<void> {
    const { kubeConfig, node } = this.options;
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    const fieldSelector = `spec.nodeName=${node}`;
    const informer = new ListWatcher<k8s.V1Pod>({
      kubeConfig,
      path: '/api/v1/pods',
      fieldSelector,
      listPage: (page) =>
        core.listPodForAllNamespaces({
          fieldSelector,
          limit: page.limit,
          ...(page.continue === undefined ? {} : { _continue: page.continue }),
        }),
      onEvent: (type, pod) => {
        if (type === 'DELETED') this.index.remove(pod);
        else this.index.upsert(pod);
        for (const w of this.podWaiters) w();
        this.changed();
      },
      logger: this.log,
      name: `pods of node ${node} at ${this.endpoint}`,
      // The first list's failure is the caller's (the agent does not start); later ones retry.
      stopOnError: 'before-sync',
      minBackoffMs: RESTART_MIN_MS,
      maxBackoffMs: RESTART_MAX_MS,
    });
    this.informer = informer;
    try {
      await informer.start();
    } catch (e) {
      this.closed = true;
      throw new ContainmentError(
        ErrorCodes.KUBERNETES_UNAVAILABLE,
        `cannot list the pods of node ${node} at ${this.endpoint}: ${apiMessage(e)}`,
      );
    }
    await this.refresh();
    const interval = this.options.pollIntervalMs ?? DEFAULT_PROC_POLL_INTERVAL_MS;
    this.pollTimer = setInterval(() => void this.refresh(), interval);
  }

  async running(): Promise<string[]> {
    await this.refresh();
    return [...this.matched.keys()];
  }

  async *events(signal: AbortSignal): AsyncIterable<WorkloadEvent> {
    while (!signal.aborted && !this.closed) {
      const next = this.pending.shift();
      if (next) {
        yield next;
        continue;
      }
      // One listener per wait, removed after it: a long-running agent waits millions of times.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.waiters.push(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  async resolve(id: string): Promise<Resolution> {
    const proc = this.matched.get(id);
    if (!proc) return 'gone';
    // The pid may have been reused since the listing: it must still sit in the container's cgroup.
    const text = await readFile(`/proc/${proc.pid}/cgroup`, 'utf8').catch(() => undefined);
    const ref = text === undefined ? undefined : parsePodCgroup(text);
    if (!ref || ref.containerId !== id) return 'gone';
    const found = this.index.lookup(ref);
    if (!found) return 'gone';
    const identity = podWorkloadIdentity(found, this.place);
    const user = (await processUser(proc.pid)) ?? specUser(found);
    const upperDir = await processUpperDir(proc.pid);
    return {
      id,
      name: `${identity.namespace}/${identity.pod}/${identity.container ?? ''}`,
      pid: proc.pid,
      ...(user === undefined ? {} : { user }),
      ...(upperDir === undefined ? {} : { upperDir }),
      identity,
    };
  }

  /**
   * A pod container's identity straight from the pod index, by the container id and pod UID its
   * cgroup names (the UID must match, as in the /proc listing). A cgroup of no pod (the host, a
   * container outside Kubernetes) is `ignore`; one no pod status names within `identifyWaitMs` too.
   */
  async identify(ref: CgroupContainer): Promise<Identification> {
    const { podUid, containerId } = ref;
    if (podUid === undefined) return 'ignore';
    const lookup = (): ReturnType<PodIndex['lookup']> => this.index.lookup({ podUid, containerId });
    let found = lookup();
    if (!found && !this.closed) {
      const waitMs = this.options.identifyWaitMs ?? DEFAULT_IDENTIFY_WAIT_MS;
      found = await new Promise<ReturnType<PodIndex['lookup']>>((resolve) => {
        const check = (): void => {
          const now = lookup();
          if (now || this.closed) done(now);
        };
        const done = (value: ReturnType<PodIndex['lookup']>): void => {
          clearTimeout(timer);
          this.podWaiters.delete(check);
          resolve(value);
        };
        const timer = setTimeout(() => done(undefined), waitMs);
        this.podWaiters.add(check);
      });
    }
    return found ? podWorkloadIdentity(found, this.place) : 'ignore';
  }

  forget(): void {
    // Nothing cached per container beyond what the next listing replaces.
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.podWaiters) w();
    clearInterval(this.pollTimer);
    clearTimeout(this.changeTimer);
    await this.informer?.stop();
    this.wake();
    await this.refreshing;
  }

  /** Pods known to the informer with at least one container id (for tests and diagnostics). */
  get knownContainers(): number {
    return this.index.size;
  }

  private changed(): void {
    if (this.closed || this.changeTimer) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      void this.refresh();
    }, CHANGE_DEBOUNCE_MS);
  }

  /** Lists /proc and announces what changed; one listing at a time. */
  private refresh(): Promise<void> {
    this.refreshing = this.refreshing
      .then(() => this.refreshNow())
      .catch((e: unknown) => {
        this.log.warn({ err: (e as Error).message }, 'cannot list the node processes; will retry');
      });
    return this.refreshing;
  }

  private async refreshNow(): Promise<void> {
    if (this.closed) return;
    const processes = await listPodProcesses();
    const now = new Map<string, PodProcess>();
    const seen = new Set<string>();
    for (const p of processes) {
      seen.add(p.containerId);
      if (this.index.lookup(p)) now.set(p.containerId, p);
      else if (!this.unmatchedLogged.has(p.containerId)) {
        this.unmatchedLogged.add(p.containerId);
        this.log.debug(
          { podUid: p.podUid, containerId: p.containerId.slice(0, 12), pid: p.pid },
          'process of no known pod container on this node; ignored',
        );
      }
    }
    for (const id of this.unmatchedLogged) if (!seen.has(id) || now.has(id)) this.unmatchedLogged.delete(id);
    const events: WorkloadEvent[] = [];
    for (const id of now.keys()) if (!this.matched.has(id)) events.push({ kind: 'started', id });
    for (const id of this.matched.keys()) if (!now.has(id)) events.push({ kind: 'removed', id });
    this.matched = now;
    if (events.length === 0) return;
    this.pending.push(...events);
    if (this.pending.length > MAX_PENDING) this.pending.splice(0, this.pending.length - MAX_PENDING);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
