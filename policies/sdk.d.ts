/**
 * Types for policy authors: the module `@containment/policy-sdk` a policy imports. Policies run in a
 * sandbox (QuickJS): no Node.js, no network, no files — the SDK below and `console` are all there is.
 * Every SDK call crosses to the host as JSON, so arguments and results are plain JSON values.
 *
 *   import { vs, kubernetes, notify } from '@containment/policy-sdk';
 *
 * Check a policy with `tsc -p policies` (this directory's tsconfig.json).
 *
 * Deployed elsewhere (`containment policy deploy --target openwhisk|knative`), the same module is
 * bundled into the policy: it then calls the scanner's findings API and the enforcement API over
 * HTTP with the tokens the deployment was given, with the same argument checks and results.
 */

/** What the sandbox gives a policy instead of Node's console: lines land in the activation's logs. */
declare const console: {
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};

declare module '@containment/policy-sdk' {
  export type Severity = 'CRITICAL' | 'HIGH' | 'MEDIUM' | 'LOW' | 'UNKNOWN';

  /**
   * A pod: `{ namespace, name, container? }` or `"namespace/name"`. Single-machine mode: namespace
   * `local`, name = the container's name. A policy may only name pods in its own function namespace
   * or the namespaces its credentials were given.
   */
  export type PodRef = { namespace: string; name: string; container?: string } | `${string}/${string}`;

  /** The identity of a workload (DESIGN.md). */
  export interface Workload {
    cluster: string;
    namespace: string;
    pod: string;
    container?: string;
    node?: string;
    image?: string;
    imageDigest?: string;
  }

  export interface VulnerablePackage {
    /** The advisory group's preferred id (its CVE when it has exactly one). */
    id: string;
    aliases: string[];
    upstream?: string[];
    summary?: string;
    package: {
      name: string;
      version: string;
      ecosystem: string;
      source?: { name: string; version: string };
      location: string;
      purl?: string;
    };
    /** The version that fixes it; absent when there is no fix. */
    fixedVersion?: string;
    severity: Severity;
    /** CVSS base score when the severity came from a vector. */
    score?: number;
    severitySource?: string;
    references?: string[];
    /** Set when the pod has several containers and their findings were merged. */
    container?: string;
  }

  export interface InsecureConfiguration {
    /** Stable id, e.g. `remote_shell_installed`, `remote_shell_permissive`, `runs_as_root`. */
    id: string;
    severity: Severity;
    title: string;
    /** Paths inside the container (or image-config fields) that prove it. */
    evidence: string[];
    details?: string;
    container?: string;
  }

  export interface ScanSummary {
    counts: Record<Severity, number>;
    configurationCounts: Record<Severity, number>;
    /** 0 (no risk) … 100. */
    riskScore: number;
    compliance: { passed: boolean; thresholds: Record<string, number>; violations: string[] };
  }

  /** The scanner's findings API answer (`GET /v1/findings`). */
  export interface Findings {
    workload: Workload;
    /** RFC 3339 time of the scan the findings come from. */
    scanTime: string;
    scanId?: number;
    summary?: ScanSummary;
    vulnerablePackages: VulnerablePackage[];
    insecureConfigurations: InsecureConfiguration[];
    /** Present when the pod has several containers: one entry each. */
    containers?: { workload: Workload; scanId: number; scanTime: string; summary: ScanSummary }[];
  }

  export type ActionKind = 'Quarantine' | 'Release' | 'Snapshot' | 'TerminateGraceful' | 'Terminate';
  export type ActionPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

  /** The `status` of a SecurityAction (DESIGN.md). */
  export interface ActionStatus {
    phase: ActionPhase;
    node?: string;
    startedAt?: string;
    completedAt?: string;
    /** What was done — or, in a dry run, what would have been done. */
    message?: string;
    evidence: { kind: string; uri: string; sha256: string; bytes: number }[];
    conditions: {
      type: string;
      status: 'True' | 'False' | 'Unknown';
      reason?: string;
      message?: string;
      lastTransitionTime: string;
    }[];
  }

  /** What every enforcement call resolves with. */
  export interface ActionResult {
    /** The SecurityAction's name: the same for a retried activation, so the work is done once. */
    name: string;
    action: ActionKind;
    target: { namespace: string; pod: string; container?: string; uid?: string };
    /** True when the action or rule is annotated `containment-dry-run: true`: nothing was changed. */
    dryRun: boolean;
    /** Pending or Running unless `wait: true` was given; then Succeeded or Failed. */
    status: ActionStatus | null;
  }

  /** What `kubernetes.label` resolves with. */
  export interface LabelResult extends Omit<ActionResult, 'action'> {
    action: 'Label';
    /** The labels asked for. */
    labels: Record<string, string>;
    /** Keys that were (or, in a dry run, would be) set or changed; empty when the pod had them all. */
    changed: string[];
  }

  export interface EnforcementOptions {
    /** Wait for the final phase (bounded by the action's own time limit). Default false. */
    wait?: boolean;
    /** Shown in the audit log. Default: the SDK call and the policy's name. */
    reason?: string;
    /** The scan that caused it, e.g. `String(findings.scanId)`. */
    findingsRef?: string;
  }

  export const vs: {
    /**
     * The findings of a pod's latest scan (at or before `at`, RFC 3339, when given); null when the
     * scanner has none for it.
     */
    getFindings(pod: PodRef, at?: string | null): Promise<Findings | null>;
  };

  export const kubernetes: {
    /** Evidence bundle: filesystem changes, logs, processes, sockets, inspect data, SHA-256 manifest. */
    snapshot(pod: PodRef, options?: EnforcementOptions): Promise<ActionResult>;
    /** SIGKILL now, then remove. */
    terminate(pod: PodRef, options?: EnforcementOptions): Promise<ActionResult>;
    /** Snapshot, SIGTERM, SIGKILL after the grace period (default 30 s), remove. */
    terminateGraceful(
      pod: PodRef,
      options?: EnforcementOptions & { gracePeriodSeconds?: number },
    ): Promise<ActionResult>;
    /** Drop every packet in and out of the pod; it keeps running. */
    quarantine(pod: PodRef, options?: EnforcementOptions): Promise<ActionResult>;
    /** Lift a quarantine. */
    release(pod: PodRef, options?: EnforcementOptions): Promise<ActionResult>;
    /**
     * Sets pod labels through the API server (Kubernetes only; refused in single-machine mode).
     * Keys under `containment.dev/` belong to the operator and are refused.
     */
    label(pod: PodRef, labels: Record<string, string>): Promise<LabelResult>;
  };

  /**
   * Sends a message to a channel (letters, digits, `._:/-`). By default it is written to the audit
   * log; a deployment may route channels to chat or e-mail.
   */
  export function notify(
    channel: string,
    message: string | { [key: string]: unknown },
  ): Promise<{ delivered: true; channel: string }>;

  /** Any SDK method by name, e.g. `call('kubernetes.quarantine', pod)`. */
  export function call(method: string, ...args: unknown[]): Promise<unknown>;

  /**
   * The parameters of a `dev.containment.runtime.detected` event's data: one runtime detection
   * (docs/runtime-detection.md), repeats aggregated into `count`.
   */
  export interface RuntimeDetectedParams {
    workload: Workload & { containerId: string; podUid?: string };
    /** A built-in rule (`shell_in_container`, `reverse_shell`, …), a user rule, or `falco:<rule>`. */
    ruleId: string;
    kind: string;
    severity: Severity;
    title: string;
    detectedAt: string;
    process?: { pid: number; ppid?: number; uid: number; name: string; exe?: string; argv: string[] };
    evidence: Record<string, unknown>;
    baseline: { state: 'none' | 'learning' | 'monitor' | 'protect'; image?: string };
    count: number;
    firstSeen: string;
    lastSeen: string;
    fingerprint: string;
    source: 'ebpf' | 'procfs' | 'falco';
    /** The scanner's id of the aggregate (`GET /v1/detections/{id}`); cite it as `detection/<id>`. */
    detectionId?: number;
  }

  /** The parameters of a `dev.containment.scan.completed` or `findings.changed` event's data. */
  export interface ScanEventParams {
    workload: Workload;
    scanTime: string;
    summary: Record<Severity, number>;
    newFindings: string[];
    insecureConfigurations: string[];
    reason?: 'feed-update';
  }
}
