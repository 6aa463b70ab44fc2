/** Plain data of a posture evaluation. No I/O. */
import type { Severity } from '../inventory/types.js';
import type { ControlCategory } from './controls.js';
import type { PodSecurityLevel } from './pod-security.js';

export interface PostureObjectRef {
  apiVersion?: string;
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
}

export interface PostureFinding {
  control: string;
  category: ControlCategory;
  severity: Severity;
  title: string;
  object: PostureObjectRef;
  /** Field path inside the object (`spec.template.spec.containers[0].image`); empty for the object as a whole. */
  path: string;
  message: string;
  remediation: string;
  /** Where the object came from: `file.yaml#2` (document index), `cluster`, `engine`. */
  source?: string;
}

export interface NamespaceScore {
  namespace: string;
  score: number;
  findings: number;
}

export interface PostureReport {
  level: PodSecurityLevel;
  /** 100 minus the weighted deductions of every finding (RISK_WEIGHTS), at least 0. */
  score: number;
  namespaces: NamespaceScore[];
  counts: Record<Severity, number>;
  /** Objects and containers evaluated. */
  evaluated: number;
  findings: PostureFinding[];
  /** Things that could not be checked (scanner unreachable, …): not findings, but said. */
  warnings: string[];
}

/** One Kubernetes object to evaluate, with where it came from. */
export interface PostureInput {
  object: Record<string, unknown>;
  source?: string;
}
