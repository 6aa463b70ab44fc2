/**
 * What `containment up` decided and did, as it happens. Every SecurityAction — asked for by a
 * policy through the SDK or by a person through `POST /v1/actions` — goes through the one enforcer
 * `up` runs, so wrapping that enforcer is the single place that sees each action once, with its
 * reason (the rule and finding), who asked (the policy) and its outcome. No polling of the
 * scanner, runtime or action APIs.
 *
 * The same wrapper holds monitor mode: unless `enforce` is set, every action except Release is
 * carried out as a dry run (`spec.dryRun: true`), whatever the requester sent, so a policy deployed
 * later without the dry-run annotation, or a replayed event, changes nothing either. Release stays
 * real: it only undoes an earlier quarantine, and a monitor-mode run must be able to lift one left
 * by an enforcing run.
 */
import { isContainmentError } from '../errors.js';
import type { ActionPreview, Enforcer, SubmitHooks } from '../enforcement/local-enforcer.js';
import type { ActionListFilter } from '../enforcement/action-store.js';
import { parseSecurityAction } from '../enforcement/security-action.js';
import type { ActionKind, SecurityAction } from '../enforcement/security-action.js';

/** `done`: carried out; `dry-run`: recorded, nothing changed; `failed`: tried and failed; `refused`: not started. */
export type DecisionOutcome = 'done' | 'dry-run' | 'failed' | 'refused';

export interface Decision {
  /** ISO 8601, when the outcome was known. */
  time: string;
  /** `namespace/pod`, plus `/container` when it differs from the pod. */
  workload: string;
  /** The rule and finding that led to it (the action's reason). */
  finding: string;
  /**
   * `policy/<name>` for a policy, else whoever the request names; the action API names the caller
   * (`token:<id>`, `configured:<name>`) when the request does not (`manual` only for direct callers).
   */
  requestedBy: string;
  action: ActionKind;
  outcome: DecisionOutcome;
  /** The SecurityAction's id (absent when the request was refused before it had a valid one). */
  id?: string;
  /** The enforcer's message: what was done, or would have been, or why not. */
  message?: string;
}

/** Warnings and errors: what `--quiet` still prints. */
export const isProblem = (d: Decision): boolean => d.outcome === 'failed' || d.outcome === 'refused';

const POLICY = /^(policy\/.+)@[0-9a-f]{32}$/;

function workloadOf(target: SecurityAction['spec']['target']): string {
  const base = `${target.namespace}/${target.pod}`;
  return target.container === undefined || target.container === target.pod
    ? base
    : `${base}/${target.container}`;
}

function requester(requestedBy: string | undefined): string {
  if (requestedBy === undefined || requestedBy === '') return 'manual';
  return POLICY.exec(requestedBy)?.[1] ?? requestedBy;
}

/** The decision a finished (or refused) action stands for. */
export function decisionOf(action: SecurityAction, now: Date, refusal?: string): Decision {
  const { spec, status } = action;
  const outcome: DecisionOutcome =
    refusal !== undefined
      ? 'refused'
      : status?.phase === 'Failed'
        ? 'failed'
        : spec.dryRun
          ? 'dry-run'
          : 'done';
  const message = refusal ?? status?.message;
  return {
    time: status?.completedAt ?? now.toISOString(),
    workload: workloadOf(spec.target),
    finding: spec.reason === '' ? '(no reason given)' : spec.reason,
    requestedBy: requester(spec.requestedBy),
    action: spec.action,
    outcome,
    ...(refusal === undefined ? { id: action.metadata.name } : {}),
    ...(message === undefined ? {} : { message }),
  };
}

const clip = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);

/**
 * One line: local time, workload, finding, requester, action, outcome — e.g.
 * `12:03:04 local/web-1  remote shell: remote_shell_installed (/usr/sbin/sshd)  policy/quarantine-or-terminate  Quarantine  dry-run`.
 * A failure or refusal carries its reason after the outcome.
 */
export function formatDecision(d: Decision): string {
  const t = new Date(d.time);
  const hhmmss = [t.getHours(), t.getMinutes(), t.getSeconds()]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  const why = isProblem(d) && d.message !== undefined ? `: ${clip(d.message, 160)}` : '';
  return `${hhmmss} ${d.workload}  ${clip(d.finding.replace(/\s+/g, ' '), 100)}  ${d.requestedBy}  ${d.action}  ${d.outcome}${why}`;
}

export interface ObservedEnforcerOptions {
  /** False (monitor mode): every action but Release becomes a dry run. */
  enforce: boolean;
  onDecision: (decision: Decision) => void;
  now?: () => Date;
}

/** An Enforcer that applies the mode and reports each new action's outcome exactly once. */
export class ObservedEnforcer implements Enforcer {
  private readonly now: () => Date;

  constructor(
    private readonly inner: Enforcer,
    private readonly options: ObservedEnforcerOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  async submit(input: unknown, hooks?: SubmitHooks): Promise<SecurityAction> {
    // Bad input is the inner enforcer's to refuse, with its own error.
    let action: SecurityAction;
    try {
      action = parseSecurityAction(input);
    } catch {
      return this.inner.submit(input, hooks);
    }
    if (!this.options.enforce && action.spec.action !== 'Release') action.spec.dryRun = true;
    // A known id is a retry: its outcome was reported when it first finished.
    const known = this.inner.get(action.metadata.name) !== undefined;
    let done: SecurityAction;
    try {
      done = await this.inner.submit(action, hooks);
    } catch (e) {
      if (!known && isContainmentError(e)) this.report(decisionOf(action, this.now(), e.message));
      throw e;
    }
    if (!known) this.report(decisionOf(done, this.now()));
    return done;
  }

  /** The preview in this mode: in monitor mode it says the action would only be recorded. */
  async preview(input: unknown): Promise<ActionPreview> {
    const preview = await this.inner.preview(input);
    if (this.options.enforce || preview.action.spec.action === 'Release') return preview;
    return {
      ...preview,
      action: { ...preview.action, spec: { ...preview.action.spec, dryRun: true } },
      dryRun: true,
    };
  }

  get(id: string): SecurityAction | undefined {
    return this.inner.get(id);
  }

  list(filter: ActionListFilter): SecurityAction[] {
    return this.inner.list(filter);
  }

  close(): void {
    this.inner.close();
  }

  private report(decision: Decision): void {
    try {
      this.options.onDecision(decision);
    } catch {
      // Printing must never change what the enforcer answers.
    }
  }
}
