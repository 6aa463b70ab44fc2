/**
 * Containment's CloudEvents 1.0 (structured JSON mode), built with the `cloudevents` SDK so every
 * event is validated against the spec's JSON schema (required attributes, `source` a URI
 * reference, `time` RFC 3339) before it reaches the outbox.
 */
import { randomUUID } from 'node:crypto';
import { CloudEvent, HTTP } from 'cloudevents';
import type { Severity } from '../inventory/types.js';
import type { RuntimeDetection } from '../runtime/contracts.js';

export const EventTypes = {
  SCAN_COMPLETED: 'dev.containment.scan.completed',
  FINDINGS_CHANGED: 'dev.containment.findings.changed',
  RUNTIME_DETECTED: 'dev.containment.runtime.detected',
  ACTION_COMPLETED: 'dev.containment.action.completed',
} as const;

export type ContainmentEventType = (typeof EventTypes)[keyof typeof EventTypes];

/** The workload identity of the design brief. */
export interface WorkloadIdentity {
  cluster: string;
  namespace: string;
  pod: string;
  container?: string;
  node: string;
  image: string;
  imageDigest?: string;
}

export interface ScanCompletedData {
  workload: WorkloadIdentity;
  /** RFC 3339 time of the scan. */
  scanTime: string;
  /** Vulnerability findings by severity. */
  summary: Record<Severity, number>;
  /** Finding ids not present in the workload's previous scan. */
  newFindings: string[];
  /** Names of the insecure configurations found. */
  insecureConfigurations: string[];
  /** The scanner's id of the scan (or re-match) this event is about: `GET /v1/scans/{scanId}`. */
  scanId?: number;
}

export interface FindingsChangedData extends ScanCompletedData {
  reason: 'feed-update';
}

/**
 * The runtime detection contract itself (`runtime/contracts.ts`, validated by zod there), plus the
 * scanner's id of the aggregate (`GET /v1/detections/{detectionId}`) once stored.
 */
export type RuntimeDetectedData = RuntimeDetection & { detectionId?: number };

export interface ActionCompletedData {
  /** The SecurityAction's name. */
  name: string;
  cluster: string;
  action: 'Quarantine' | 'Release' | 'Snapshot' | 'TerminateGraceful' | 'Terminate';
  target: { namespace: string; pod: string; container?: string; uid?: string };
  phase: 'Succeeded' | 'Failed';
  node?: string;
  completedAt: string;
  message?: string;
  requestedBy?: string;
  dryRun?: boolean;
  evidence?: { kind: string; uri: string; sha256: string; bytes: number }[];
}

export interface EventDataByType {
  [EventTypes.SCAN_COMPLETED]: ScanCompletedData;
  [EventTypes.FINDINGS_CHANGED]: FindingsChangedData;
  [EventTypes.RUNTIME_DETECTED]: RuntimeDetectedData;
  [EventTypes.ACTION_COMPLETED]: ActionCompletedData;
}

export type ContainmentEvent<T extends ContainmentEventType = ContainmentEventType> = CloudEvent<
  EventDataByType[T]
>;

/** `/containment/<cluster>`; the cluster is percent-encoded so any name yields a valid URI reference. */
export function eventSource(cluster: string): string {
  return `/containment/${encodeURIComponent(cluster)}`;
}

/**
 * Builds a validated event with a fresh UUID id and the current time. The subject is the
 * workload (`<namespace>/<pod>[/<container>]`) or the action's target, so receivers can route
 * without parsing `data`.
 */
export function createEvent<T extends ContainmentEventType>(
  type: T,
  cluster: string,
  data: EventDataByType[T],
  options: { time?: Date } = {},
): ContainmentEvent<T> {
  return new CloudEvent<EventDataByType[T]>({
    specversion: '1.0',
    id: randomUUID(),
    type,
    source: eventSource(cluster),
    time: (options.time ?? new Date()).toISOString(),
    subject: subjectOf(data),
    datacontenttype: 'application/json',
    data,
  });
}

function subjectOf(data: EventDataByType[ContainmentEventType]): string {
  const w = 'workload' in data ? data.workload : data.target;
  return [w.namespace, w.pod, w.container].filter((p) => p !== undefined && p !== '').join('/');
}

/** The exact structured-mode body (`application/cloudevents+json`) that the outbox stores and sends. */
export function structuredBody(event: CloudEvent<unknown>): string {
  return HTTP.structured(event).body as string;
}
