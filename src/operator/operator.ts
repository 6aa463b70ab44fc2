/**
 * The node enforcement operator: watches the SecurityActions labelled for its node (plus
 * unlabelled ones, which it labels with the target pod's node — optimistic concurrency, so of
 * several operators exactly one does it), and carries out those whose pod is bound to its node:
 * Pending → Running → Succeeded | Failed through the status subresource, with a condition per
 * layer and Events on the pod and the action.
 *
 * Idempotent across restarts: every step checks the real state first (label present, policy
 * present, bundle written, pod deleting), so an operator that resumes a Running action finishes
 * it without repeating work, and a final phase is never redone.
 */
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { kubernetesDriver } from '../enforcement/drivers/kubernetes-driver.js';
import { linuxPodDriver } from '../enforcement/drivers/linux-driver.js';
import { carryOut } from '../enforcement/enforcer.js';
import type { TargetGuard } from '../enforcement/enforcer.js';
import { bundleDir, existingPodEvidence, podEvidenceItems } from '../enforcement/kubernetes/pod-evidence.js';
import { PodDriver, podIdentity } from '../enforcement/kubernetes/pod-driver.js';
import type {
  ActionCondition,
  ActionSpec,
  ActionStatus,
  EvidenceItem,
} from '../enforcement/security-action.js';
import { actionSpecSchema } from '../enforcement/security-action.js';
import { isContainmentError } from '../errors.js';
import { apiMessage, isTransient } from '../kubernetes/api-errors.js';
import type { ListWatchEventType, ListWatchStats, ListWatcher } from '../kubernetes/list-watch.js';
import type { NetnsToolPaths } from '../linux/netns-quarantine.js';
import type { PodProcess } from '../linux/proc-pods.js';
import { listPodProcesses } from '../linux/proc-pods.js';
import type { Outcome } from './outcomes.js';
import { condition, isFinal, outcomeOf, plan, resolvedPodUid, targetResolved } from './outcomes.js';
import type { SecurityActionObject } from '../kubernetes/security-action-api.js';
import {
  API_VERSION,
  KIND,
  NODE_LABEL,
  SecurityActionApi,
  keyOf,
  watchSecurityActions,
} from '../kubernetes/security-action-api.js';

export interface OperatorOptions {
  kubeConfig: k8s.KubeConfig;
  /** This node's name (`spec.nodeName` of the pods it acts on). */
  node: string;
  logger: Logger;
  /** Where Snapshot bundles go (`<dir>/<namespace>/<action>/`). */
  evidenceDir: string;
  /** The kubelet's pod log directory, copied into Snapshot bundles (default /var/log/pods). */
  podLogsDir?: string;
  /** Where the node's root filesystem is seen, to read writable layers by host path (default `/`). */
  hostRoot?: string;
  /** Snapshot caps: each container's writable-layer tar, and the pod's logs (bytes). */
  maxLayerBytes?: number;
  maxLogBytes?: number;
  /** Actions carried out at once (default 16). */
  concurrency?: number;
  /** This node's pod processes (default: `/proc/*\/cgroup` through `listPodProcesses`). */
  listPodProcesses?: () => Promise<PodProcess[]>;
  tools?: NetnsToolPaths;
  now?: () => Date;
  /** Called after each completed step of an action (tests stop the operator here). */
  afterStep?: (action: SecurityActionObject, step: string) => Promise<void>;
  /** Start the node watch from this resourceVersion instead of a list (tests: a too-old one). */
  watchResourceVersion?: string;
  /**
   * How long to leave an unlabelled action whose pod is on another node to that node's operator
   * before labelling it ourselves (default 1000 ms, plus jitter): with many nodes, every operator
   * sees every unlabelled action, and only the pod's own should normally write. 0: race at once.
   */
  adoptDelayMs?: number;
  /** Attempts for an action whose steps fail transiently (API unreachable, 5xx) before it fails. */
  maxAttempts?: number;
  /** May this operator act on the resolved pod? (see `TargetGuard`; default: yes) */
  guard?: TargetGuard;
}

export interface OperatorStats {
  /** Actions this operator carried to a final phase. */
  completed: number;
  failed: number;
  /** Unlabelled actions this operator labelled, and label attempts another operator won. */
  labelled: number;
  labelConflicts: number;
  /** Actions for pods bound to another node (left alone). */
  ignored: number;
  /** Watch events received (both watches). */
  events: number;
}

type Source = 'node' | 'unlabelled';

interface Item {
  action: SecurityActionObject;
  source: Source;
  /** An unlabelled action whose wait for its own node's operator is over. */
  deferred?: boolean;
}

const TERMINATING = new Set(['Terminate', 'TerminateGraceful']);

export class Operator {
  readonly stats: OperatorStats = {
    completed: 0,
    failed: 0,
    labelled: 0,
    labelConflicts: 0,
    ignored: 0,
    events: 0,
  };
  private readonly api: SecurityActionApi;
  private readonly driver: PodDriver;
  private readonly watches: ListWatcher<SecurityActionObject>[];
  private readonly pending = new Map<string, Item>();
  private readonly queued = new Set<string>();
  private readonly ready: string[] = [];
  private readonly running = new Set<string>();
  private readonly attempts = new Map<string, number>();
  /** UIDs this operator finished whose final status has not come back through the watch yet. */
  private readonly finished = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private procScan: Promise<PodProcess[]> | undefined;
  /** Unlabelled actions for another node's pod, waiting for that node's operator to label them. */
  private readonly deferred = new Map<string, NodeJS.Timeout>();
  private active = 0;
  private stopped = false;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly options: OperatorOptions) {
    this.api = new SecurityActionApi(options.kubeConfig);
    this.driver = new PodDriver(options.kubeConfig, { name: 'containment-operator', node: options.node });
    const common = { kubeConfig: options.kubeConfig, logger: options.logger };
    this.watches = [
      watchSecurityActions({
        ...common,
        labelSelector: `${NODE_LABEL}=${options.node}`,
        onEvent: (type, action) => this.onEvent('node', type, action),
        ...(options.watchResourceVersion === undefined
          ? {}
          : { resourceVersion: options.watchResourceVersion }),
      }),
      watchSecurityActions({
        ...common,
        labelSelector: `!${NODE_LABEL}`,
        onEvent: (type, action) => this.onEvent('unlabelled', type, action),
      }),
    ];
  }

  get node(): string {
    return this.options.node;
  }

  watchStats(): ListWatchStats[] {
    return this.watches.map((w) => w.stats);
  }

  /** Starts both watches; resolves once both have listed (or begun watching). */
  async start(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.start()));
    this.options.logger.info({ node: this.options.node }, 'operator: watching SecurityActions');
  }

  /** Stops watching and starting work; work in progress is abandoned, as if the process died. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of [...this.timers, ...this.deferred.values()]) clearTimeout(t);
    this.timers.clear();
    this.deferred.clear();
    await Promise.all(this.watches.map((w) => w.stop()));
  }

  /**
   * Waits up to `timeoutMs` for the actions in progress to finish (after `stop`, on SIGTERM).
   * What is still running then stays Running and is resumed by the next operator.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return this.active === 0;
  }

  /** Resolves when nothing is queued or running (tests and benchmarks). */
  idle(): Promise<void> {
    if (this.active === 0 && this.ready.length === 0 && this.timers.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private onEvent(source: Source, type: ListWatchEventType, action: SecurityActionObject): void {
    this.stats.events++;
    const key = `${source}:${keyOf(action.metadata)}`;
    if (type === 'DELETED' || isFinal(action.status)) {
      clearTimeout(this.deferred.get(key));
      this.deferred.delete(key);
    }
    if (type === 'DELETED') {
      if (!this.running.has(key)) this.pending.delete(key);
      if (source === 'node') this.finished.delete(action.metadata.uid);
      return;
    }
    if (isFinal(action.status)) {
      // Phases never go back: nothing more will come for this one.
      this.finished.delete(action.metadata.uid);
      this.pending.delete(key);
      return;
    }
    if (this.finished.has(action.metadata.uid)) return;
    this.pending.set(key, { action, source });
    this.schedule(key);
  }

  private schedule(key: string): void {
    if (this.stopped || this.running.has(key) || this.queued.has(key)) return;
    this.queued.add(key);
    this.ready.push(key);
    this.pump();
  }

  private pump(): void {
    const limit = this.options.concurrency ?? 16;
    while (!this.stopped && this.active < limit && this.ready.length > 0) {
      const key = this.ready.shift() as string;
      this.queued.delete(key);
      const item = this.pending.get(key);
      if (!item) continue;
      this.pending.delete(key);
      this.running.add(key);
      this.active++;
      void this.process(key, item).finally(() => {
        this.running.delete(key);
        this.active--;
        if (this.pending.has(key)) this.schedule(key);
        this.pump();
        if (this.active === 0 && this.ready.length === 0 && this.timers.size === 0) {
          for (const w of this.idleWaiters.splice(0)) w();
        }
      });
    }
  }

  private async process(key: string, item: Item): Promise<void> {
    const { logger } = this.options;
    try {
      if (item.source === 'unlabelled') await this.adopt(key, item);
      else await this.reconcile(item.action);
      this.attempts.delete(key);
    } catch (e) {
      if (this.stopped) return;
      const attempt = (this.attempts.get(key) ?? 0) + 1;
      const transient = !isContainmentError(e) && isTransient(e);
      const name = keyOf(item.action.metadata);
      if (transient && attempt < (this.options.maxAttempts ?? 6)) {
        this.attempts.set(key, attempt);
        const delay = Math.min(5000, 200 * 2 ** (attempt - 1));
        logger.warn(
          { action: name, err: apiMessage(e), retryInMs: delay },
          'operator: transient failure, retrying',
        );
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          if (!this.pending.has(key)) this.pending.set(key, item);
          this.schedule(key);
        }, delay);
        this.timers.add(timer);
        return;
      }
      this.attempts.delete(key);
      logger.error({ action: name, err: apiMessage(e) }, 'operator: action failed');
      await this.fail(item.action, `unexpected error: ${apiMessage(e)}`).catch((err: unknown) =>
        logger.error({ action: name, err: apiMessage(err) }, 'operator: could not record the failure'),
      );
    }
  }

  /** An action without a node label: label it with its pod's node (or fail it when there is no such pod). */
  private async adopt(key: string, item: Item): Promise<void> {
    const { action } = item;
    if (isFinal(action.status)) return;
    const parsed = actionSpecSchema.safeParse(action.spec);
    const target = parsed.success ? parsed.data.target : undefined;
    if (!target)
      return this.failOnce(action, `invalid spec: ${parsed.error?.issues[0]?.message ?? 'malformed'}`);
    if (target.namespace !== action.metadata.namespace)
      return this.failOnce(action, crossNamespace(action, target.namespace));
    const pod = await this.driver.getPod({ namespace: target.namespace, name: target.pod });
    if (!pod)
      return this.failOnce(
        action,
        `target pod ${target.namespace}/${target.pod} not found: already gone, or never existed`,
      );
    const node = pod.spec?.nodeName;
    if (!node)
      return this.failOnce(
        action,
        `target pod ${target.namespace}/${target.pod} is not bound to a node (not scheduled yet)`,
      );
    const delay = this.options.adoptDelayMs ?? 1000;
    if (node !== this.options.node && delay > 0 && !item.deferred) {
      // Most likely its own node's operator labels it meanwhile (the watch then cancels this).
      if (!this.deferred.has(key)) {
        const timer = setTimeout(
          () => {
            this.deferred.delete(key);
            this.pending.set(key, { ...item, deferred: true });
            this.schedule(key);
          },
          delay + Math.random() * delay,
        );
        this.deferred.set(key, timer);
      }
      return;
    }
    if (await this.api.labelNode(action, node)) {
      this.stats.labelled++;
      this.options.logger.info(
        { action: keyOf(action.metadata), node },
        'operator: labelled action with its pod node',
      );
    } else {
      this.stats.labelConflicts++;
    }
  }

  /** Fails an unlabelled action; with several operators racing, the resourceVersion lets one write it. */
  private async failOnce(action: SecurityActionObject, message: string): Promise<void> {
    await this.fail(action, message);
  }

  private async reconcile(seen: SecurityActionObject): Promise<void> {
    let action = seen;
    const uid = action.metadata.uid;
    if (isFinal(action.status) || this.finished.has(uid)) return;
    const parsed = actionSpecSchema.safeParse(action.spec);
    if (!parsed.success)
      return this.fail(action, `invalid spec: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
    const spec = parsed.data;
    const { target } = spec;
    const where = `${target.namespace}/${target.pod}`;
    // The action's namespace is what RBAC let its author write to: never act beyond it.
    if (target.namespace !== action.metadata.namespace)
      return this.fail(action, crossNamespace(action, target.namespace));
    const pod = await this.driver.getPod({ namespace: target.namespace, name: target.pod });
    const node = pod?.spec?.nodeName;
    if (pod && node && node !== this.options.node) {
      this.stats.ignored++;
      this.options.logger.info(
        { action: keyOf(action.metadata), podNode: node },
        'operator: pod is on another node, not ours',
      );
      return;
    }
    const started = action.status?.phase === 'Running';
    const resolved = started ? resolvedPodUid(action.status) : undefined;
    if (resolved !== undefined && pod?.metadata?.uid !== resolved) {
      // Our own earlier run started on that pod, and it is gone now.
      if (TERMINATING.has(spec.action)) return this.finishGone(action, spec, where, resolved);
      return this.fail(action, `target pod ${where} (uid ${resolved}) is gone since this action started`);
    }
    if (!pod) return this.fail(action, `target pod ${where} not found: already gone, or never existed`);
    const id = podIdentity(pod);
    if (target.uid !== undefined && id.uid !== target.uid) {
      return this.fail(
        action,
        `target pod ${where} has uid ${id.uid}, not the requested ${target.uid}: replaced since the action was created`,
      );
    }
    if (!node) return this.fail(action, `target pod ${where} is not bound to a node (not scheduled yet)`);

    if (!started) {
      const resolvedCondition = targetResolved({ ...id, node }, this.now());
      const r = await this.api.writeStatus(action, () => ({
        phase: 'Running',
        node: this.options.node,
        startedAt: this.now().toISOString(),
        evidence: [],
        conditions: [resolvedCondition],
      }));
      if (!r.written) return;
      action = r.action;
    }
    await this.complete(action, await this.perform(action, spec, pod), pod);
  }

  /** The operator's front end of the enforcer: one pod, through the Kubernetes and Linux drivers. */
  private async perform(action: SecurityActionObject, spec: ActionSpec, pod: k8s.V1Pod): Promise<Outcome> {
    const id = podIdentity(pod);
    const { options } = this;
    const now = (): Date => this.now();
    const processes = (): Promise<PodProcess[]> => this.localContainers(id.uid);
    const { metadata } = action;
    const done = await carryOut({
      spec,
      target: { kind: 'pod', namespace: id.namespace, name: id.name, uid: id.uid, node: options.node },
      drivers: [
        kubernetesDriver({
          driver: this.driver,
          pod,
          processes,
          snapshot: {
            evidenceDir: options.evidenceDir,
            action: { namespace: metadata.namespace, name: metadata.name, uid: metadata.uid },
            node: options.node,
            podLogsDir: options.podLogsDir,
            hostRoot: options.hostRoot,
            maxLayerBytes: options.maxLayerBytes,
            maxLogBytes: options.maxLogBytes,
          },
          now,
        }),
        linuxPodDriver({ pod: id, node: options.node, processes, tools: options.tools, now }),
      ],
      plan: async () =>
        plan(
          spec,
          id,
          (await processes()).length,
          bundleDir(options.evidenceDir, metadata.namespace, metadata.name),
        ),
      guard: options.guard,
      // Transient API failures are retried by `process`; anything else fails the action here.
      onError: (e) => (!isContainmentError(e) && isTransient(e) ? 'rethrow' : 'record'),
      describeError: (e) => (isContainmentError(e) ? e.message : apiMessage(e)),
      afterStep: async (type) => options.afterStep?.(action, type),
      now,
    });
    return outcomeOf(spec, `pod ${id.namespace}/${id.name}`, done);
  }

  private async localContainers(podUid: string): Promise<PodProcess[]> {
    // One /proc walk at a time, shared by every action waiting for it: a burst of actions would
    // otherwise each read every process's cgroup file.
    if (!this.procScan) {
      const list = this.options.listPodProcesses ?? (() => listPodProcesses());
      this.procScan = list().finally(() => (this.procScan = undefined));
    }
    return (await this.procScan).filter((p) => p.podUid === podUid);
  }

  /** A Terminate started earlier whose pod is gone now: the goal is reached. */
  private async finishGone(
    action: SecurityActionObject,
    spec: ActionSpec,
    where: string,
    uid: string,
  ): Promise<void> {
    const evidence: EvidenceItem[] = [];
    const conditions: ActionCondition[] = [];
    if (spec.action === 'TerminateGraceful') {
      // The snapshot came first: report the bundle it wrote, if it got that far.
      try {
        const bundle = await existingPodEvidence(
          this.options.evidenceDir,
          action.metadata.namespace,
          action.metadata.name,
          action.metadata.uid,
        );
        if (bundle) {
          evidence.push(...podEvidenceItems(bundle));
          conditions.push(
            condition(
              'EvidenceCollected',
              'True',
              'AlreadyCollected',
              `evidence bundle at ${bundle.dir}`,
              this.now(),
            ),
          );
        } else {
          conditions.push(
            condition(
              'EvidenceCollected',
              'False',
              'PodGone',
              'the pod was gone before its snapshot was taken',
              this.now(),
            ),
          );
        }
      } catch (e) {
        conditions.push(condition('EvidenceCollected', 'False', 'Failed', (e as Error).message, this.now()));
      }
    }
    const message = `pod ${where} (uid ${uid}) is gone: deleted before this operator resumed the action`;
    conditions.push(condition('PodDeleted', 'True', 'AlreadyGone', message, this.now()));
    await this.complete(action, { phase: 'Succeeded', message, conditions, evidence }, undefined);
  }

  private async fail(action: SecurityActionObject, message: string): Promise<void> {
    await this.complete(action, { phase: 'Failed', message, conditions: [], evidence: [] }, undefined);
  }

  /** Writes the final status (conflict-retried), then the Events. */
  private async complete(
    action: SecurityActionObject,
    outcome: Outcome,
    pod: k8s.V1Pod | undefined,
  ): Promise<void> {
    const completedAt = this.now().toISOString();
    const r = await this.api.writeStatus(action, (current) => {
      const previous: ActionStatus | undefined = current.status;
      const kept = (previous?.conditions ?? []).filter(
        (c) => !outcome.conditions.some((o) => o.type === c.type),
      );
      return {
        phase: outcome.phase,
        node: this.options.node,
        startedAt: previous?.startedAt ?? completedAt,
        completedAt,
        message: outcome.message,
        evidence: outcome.evidence,
        conditions: [...kept, ...outcome.conditions],
      };
    });
    if (!r.written) return;
    this.finished.add(action.metadata.uid);
    if (outcome.phase === 'Succeeded') this.stats.completed++;
    else this.stats.failed++;
    this.options.logger.info(
      { action: keyOf(action.metadata), phase: outcome.phase, message: outcome.message },
      'operator: action finished',
    );
    const spec = action.spec as Partial<ActionSpec>;
    const events: Promise<string | undefined>[] = [
      this.driver.recordEvent(
        {
          apiVersion: API_VERSION,
          kind: KIND,
          namespace: action.metadata.namespace,
          name: action.metadata.name,
          uid: action.metadata.uid,
        },
        {
          type: outcome.phase === 'Succeeded' ? 'Normal' : 'Warning',
          reason: spec.dryRun === true && outcome.phase === 'Succeeded' ? 'DryRun' : outcome.phase,
          message: outcome.message,
        },
      ),
    ];
    if (pod && outcome.podEvent) {
      const id = podIdentity(pod);
      events.push(
        this.driver.recordEvent(
          { apiVersion: 'v1', kind: 'Pod', namespace: id.namespace, name: id.name, uid: id.uid },
          {
            ...outcome.podEvent,
            message: `${outcome.podEvent.message} (SecurityAction ${action.metadata.name})`,
          },
        ),
      );
    }
    for (const err of await Promise.all(events)) {
      if (err !== undefined)
        this.options.logger.warn(
          { action: keyOf(action.metadata), err },
          'operator: could not record an Event',
        );
    }
  }
}

function crossNamespace(action: SecurityActionObject, targetNamespace: string): string {
  return `refused: target namespace ${targetNamespace} differs from the action's namespace ${action.metadata.namespace}; an action may only act on pods of its own namespace`;
}
