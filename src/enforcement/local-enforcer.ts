/**
 * The enforcer for containers on this node (single-machine mode): takes a SecurityAction, carries
 * it out through the one enforcer (`enforcer.ts`) with the container engine and Linux drivers, and moves it Pending → Running →
 * Succeeded | Failed with a message, timestamps, evidence and conditions. Every action ends in a
 * final phase and is reported through `onCompleted` (the `dev.containment.action.completed`
 * event); the same action id is carried out once.
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { ContainerEngine, ContainerInfo } from '../engine/container-engine.js';
import { ContainmentError, ErrorCodes, isContainmentError } from '../errors.js';
import type { ActionCompletedData } from '../events/cloud-event.js';
import { ActionStore } from './action-store.js';
import type { ActionListFilter } from './action-store.js';
import type { NetnsToolPaths } from '../linux/netns-quarantine.js';
import { QUARANTINE_TABLE } from '../linux/netns-quarantine.js';
import { engineDriver, resolveContainer } from './drivers/engine-driver.js';
import { linuxContainerDriver } from './drivers/linux-driver.js';
import { carryOut } from './enforcer.js';
import type { EnforcementTarget } from './enforcer.js';
import type {
  ActionCondition,
  ActionSpec,
  ActionStatus,
  EvidenceItem,
  SecurityAction,
} from './security-action.js';
import { parseSecurityAction } from './security-action.js';

/**
 * The local enforcer's `TargetGuard` (see there): may it act on the resolved container? Given the
 * engine's inspect document of `target.uid`, the one the drivers then act with, so that the guard
 * needs no lookup of its own.
 */
export type ContainerGuard = (
  target: EnforcementTarget,
  spec: ActionSpec,
  container: ContainerInfo,
) => void | Promise<void>;

export interface SubmitHooks {
  /** Called once the action is stored (accepted); a refusal rejects `submit` before it. */
  onAccepted?: () => void;
}

/** What an action would do, found out without doing it (`POST /v1/actions/preview`). */
export interface ActionPreview {
  /** The action as it would be stored, defaults filled in. */
  action: SecurityAction;
  /** The container it resolves to now. */
  target: { id: string; name: string; image: string; running: boolean };
  /** What the enforcer would do, in one sentence. */
  plan: string;
  /** Only recorded, nothing changed (the action's `dryRun`, or monitor mode). */
  dryRun: boolean;
}

export interface Enforcer {
  /**
   * Validates (ACTION_INVALID on bad input or an id already used for a different request),
   * refuses a target outside the managed set (TARGET_NOT_MANAGED, nothing stored), carries the
   * action out and resolves with its final state. A known id resolves with the stored state
   * without doing the work again.
   */
  submit(input: unknown, hooks?: SubmitHooks): Promise<SecurityAction>;
  /**
   * Validates and resolves the target as `submit` would (same errors, TARGET_NOT_MANAGED
   * included) and says what would be done; stores nothing, changes nothing.
   */
  preview(input: unknown): Promise<ActionPreview>;
  get(id: string): SecurityAction | undefined;
  /** Stored actions, newest first (the local action API's `GET /v1/actions`). */
  list(filter: ActionListFilter): SecurityAction[];
  close(): void;
}

export interface LocalEnforcerOptions {
  engine: ContainerEngine;
  /** Holds `enforcer.sqlite` and, by default, `evidence/`. */
  dataDir: string;
  evidenceDir?: string;
  /** This node's name in statuses (default: the host name). */
  node?: string;
  cluster?: string;
  /** Include the engine's full filesystem export in snapshots (default true). */
  exportFilesystem?: boolean;
  tools?: NetnsToolPaths;
  /** May this enforcer act on the resolved container? (see `ContainerGuard`; default: yes) */
  guard?: ContainerGuard;
  /** Called once per action that reached a final phase; should hand it to the durable outbox. */
  onCompleted?: (data: ActionCompletedData) => void | Promise<void>;
  now?: () => Date;
}

interface Outcome {
  message: string;
  evidence?: EvidenceItem[];
  conditions: ActionCondition[];
}

export class LocalEnforcer implements Enforcer {
  private readonly store: ActionStore;
  private readonly inFlight = new Map<string, Promise<SecurityAction>>();
  private readonly node: string;
  private readonly cluster: string;
  private readonly evidenceDir: string;
  private readonly now: () => Date;

  constructor(private readonly options: LocalEnforcerOptions) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    this.store = new ActionStore(join(options.dataDir, 'enforcer.sqlite'));
    this.node = options.node ?? hostname();
    this.cluster = options.cluster ?? 'local';
    this.evidenceDir = options.evidenceDir ?? join(options.dataDir, 'evidence');
    this.now = options.now ?? (() => new Date());
    this.failInterrupted();
  }

  async submit(input: unknown, hooks: SubmitHooks = {}): Promise<SecurityAction> {
    const action = parseSecurityAction(input);
    const id = action.metadata.name;
    const known = this.store.get(id);
    if (known) {
      if (JSON.stringify(known.spec) !== JSON.stringify(action.spec)) {
        throw new ContainmentError(
          ErrorCodes.ACTION_INVALID,
          `action id "${id}" is already used for a different request`,
        );
      }
      hooks.onAccepted?.();
      return (await this.inFlight.get(id)) ?? known;
    }
    const admitted = await this.admit(action);
    const pending: SecurityAction = {
      ...action,
      status: { phase: 'Pending', node: this.node, evidence: [], conditions: [] },
    };
    // Lost the race to another submit of the same id: report what it stored.
    if (!this.store.claim(pending, this.now())) return this.submit(input, hooks);
    hooks.onAccepted?.();
    const run = this.execute(pending, admitted).finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, run);
    return run;
  }

  /**
   * Resolves the target and asks the guard before the action is stored, so that a refused target
   * is a refused request (the action API's 403) rather than a stored failure. The container found
   * here is the one the action is carried out on (one engine lookup per action; the drivers pin
   * it by id and pid). A target that does not resolve is left to the normal path, which resolves
   * it again, guards it and records why it failed.
   */
  private async admit(action: SecurityAction): Promise<ContainerInfo | undefined> {
    let info: ContainerInfo;
    try {
      info = await resolveContainer(this.options.engine, action.spec.target, this.node);
    } catch {
      return undefined;
    }
    await this.options.guard?.(this.targetOf(action, info), action.spec, info);
    return info;
  }

  private targetOf(action: SecurityAction, info: ContainerInfo): EnforcementTarget {
    return {
      kind: 'container',
      namespace: action.spec.target.namespace,
      name: info.name,
      uid: info.id,
      node: this.node,
    };
  }

  async preview(input: unknown): Promise<ActionPreview> {
    const action = parseSecurityAction(input);
    const info = await resolveContainer(this.options.engine, action.spec.target, this.node);
    await this.options.guard?.(this.targetOf(action, info), action.spec, info);
    if (action.spec.action !== 'Snapshot' && !info.running) throw notRunning(info);
    return {
      action,
      target: { id: info.id, name: info.name, image: info.image, running: info.running },
      plan: this.plan(action, info),
      dryRun: action.spec.dryRun,
    };
  }

  get(id: string): SecurityAction | undefined {
    return this.store.get(id);
  }

  list(filter: ActionListFilter): SecurityAction[] {
    return this.store.list(filter);
  }

  close(): void {
    this.store.close();
  }

  private async execute(
    action: SecurityAction,
    admitted: ContainerInfo | undefined,
  ): Promise<SecurityAction> {
    const running: ActionStatus = {
      phase: 'Running',
      node: this.node,
      startedAt: this.now().toISOString(),
      evidence: [],
      conditions: [],
    };
    this.save(action, running);
    let status: ActionStatus;
    try {
      const outcome = await this.perform(action, admitted);
      status = { ...running, phase: 'Succeeded', ...outcome, evidence: outcome.evidence ?? [] };
    } catch (e) {
      const message = isContainmentError(e) ? e.message : `unexpected error: ${(e as Error).message}`;
      status = { ...running, phase: 'Failed', message };
    }
    status.completedAt = this.now().toISOString();
    const done = this.save(action, status);
    await this.report(done);
    return done;
  }

  private save(action: SecurityAction, status: ActionStatus): SecurityAction {
    const next = { ...action, status };
    this.store.update(next, this.now());
    return next;
  }

  /** An action left Pending or Running by a stopped enforcer fails; it is never silently dropped. */
  private failInterrupted(): void {
    for (const action of this.store.unfinished()) {
      const status: ActionStatus = {
        evidence: [],
        conditions: [],
        ...action.status,
        phase: 'Failed',
        completedAt: this.now().toISOString(),
        message: 'interrupted: the enforcer stopped before this action finished; submit a new action',
      };
      void this.report(this.save(action, status));
    }
  }

  private async report(action: SecurityAction): Promise<void> {
    const { spec, status } = action;
    if (!this.options.onCompleted || !status || (status.phase !== 'Succeeded' && status.phase !== 'Failed'))
      return;
    const data: ActionCompletedData = {
      name: action.metadata.name,
      cluster: this.cluster,
      action: spec.action,
      target: spec.target,
      phase: status.phase,
      node: this.node,
      completedAt: status.completedAt ?? this.now().toISOString(),
      ...(status.message !== undefined ? { message: status.message } : {}),
      ...(spec.requestedBy !== undefined ? { requestedBy: spec.requestedBy } : {}),
      dryRun: spec.dryRun,
      evidence: status.evidence,
    };
    try {
      await this.options.onCompleted(data);
    } catch (e) {
      // The action itself is done; record that its event was not handed over.
      this.save(action, {
        ...status,
        conditions: [
          ...status.conditions,
          this.condition('EventEmitted', false, 'HandoffFailed', (e as Error).message),
        ],
      });
    }
  }

  /**
   * The local front end of the enforcer: one container, through the engine and Linux drivers.
   * `admitted`: the container `admit` resolved and guarded moments ago; the guard's verdict on a
   * container id cannot change (see managed-guard.ts), so it is not asked twice.
   */
  private async perform(action: SecurityAction, admitted: ContainerInfo | undefined): Promise<Outcome> {
    const { spec } = action;
    const info = admitted ?? (await resolveContainer(this.options.engine, spec.target, this.node));
    const { guard } = this.options;
    const what = `container ${info.name} (${info.id.slice(0, 12)})`;
    if (spec.action !== 'Snapshot' && !info.running) throw notRunning(info);
    const done = await carryOut({
      spec,
      target: this.targetOf(action, info),
      drivers: [
        engineDriver({
          engine: this.options.engine,
          container: info,
          what,
          evidenceDir: this.evidenceDir,
          actionId: action.metadata.name,
          exportFilesystem: this.options.exportFilesystem,
          now: this.now,
        }),
        linuxContainerDriver({
          pid: info.pid ?? 0,
          containerId: info.id,
          what,
          tools: this.options.tools,
          now: this.now,
        }),
      ],
      plan: () => this.plan(action, info),
      guard: admitted !== undefined || guard === undefined ? undefined : (t, s) => guard(t, s, info),
      // Any failure fails the action with its own message (`execute`).
      onError: () => 'rethrow',
      now: this.now,
    });
    if (done.dryRun)
      return {
        message: `dry run: would ${done.plan ?? ''}; nothing was changed`,
        conditions: done.conditions,
      };
    const last = done.results.at(-1);
    return {
      message: last?.message ?? last?.condition.message ?? '',
      evidence: done.evidence,
      conditions: done.conditions,
    };
  }

  private plan(action: SecurityAction, info: ContainerInfo): string {
    const what = `container ${info.name} (${info.id.slice(0, 12)}, pid ${info.pid ?? 'none'})`;
    const bundle = join(this.evidenceDir, action.metadata.name);
    switch (action.spec.action) {
      case 'Quarantine':
        return `drop all traffic of ${what} with nftables table inet ${QUARANTINE_TABLE} in its network namespace`;
      case 'Release':
        return `remove nftables table inet ${QUARANTINE_TABLE} from the network namespace of ${what}`;
      case 'Snapshot':
        return `write an evidence bundle of ${what} to ${bundle}`;
      case 'TerminateGraceful':
        return `write an evidence bundle of ${what} to ${bundle}, stop it with a ${action.spec.gracePeriodSeconds} s grace period, then remove it`;
      case 'Terminate':
        return `kill ${what} with SIGKILL, then remove it`;
    }
  }

  private condition(type: string, value: boolean, reason: string, message: string): ActionCondition {
    return {
      type,
      status: value ? 'True' : 'False',
      reason,
      message,
      lastTransitionTime: this.now().toISOString(),
    };
  }
}

function notRunning(info: ContainerInfo): ContainmentError {
  return new ContainmentError(
    ErrorCodes.CONTAINER_NOT_FOUND,
    `container ${info.name} (${info.id.slice(0, 12)}) is not running (exit code ${info.exitCode ?? 'unknown'}): already gone`,
  );
}
