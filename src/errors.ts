/**
 * Typed errors with stable codes. The CLI prints `error[CODE]: message` on one line and exits
 * non-zero; APIs return `{ error: { code, message } }`. Codes never change once published.
 */
export const ErrorCodes = {
  /** A path given by the user does not exist or cannot be read. */
  TARGET_NOT_FOUND: 'TARGET_NOT_FOUND',
  /** The target exists but is not something we can scan (unknown archive layout, …). */
  TARGET_UNSUPPORTED: 'TARGET_UNSUPPORTED',
  /** An archive is truncated, not a tar/zip, or its manifest is invalid. */
  ARCHIVE_CORRUPT: 'ARCHIVE_CORRUPT',
  /** An archive entry would be written outside its destination. */
  ARCHIVE_PATH_ESCAPE: 'ARCHIVE_PATH_ESCAPE',
  /** A file is larger than the configured read limit. */
  FILE_TOO_LARGE: 'FILE_TOO_LARGE',
  /** A path that should be a regular file is a FIFO, device, socket or directory (never opened). */
  FILE_NOT_REGULAR: 'FILE_NOT_REGULAR',
  /** A regular file exists but cannot be opened or read (permissions, I/O error, a dangling link). */
  FILE_UNREADABLE: 'FILE_UNREADABLE',
  /** The vulnerability database cannot be opened or has an unknown schema. */
  DB_UNREADABLE: 'DB_UNREADABLE',
  /** An OSV record or advisory input failed validation. */
  OSV_INVALID: 'OSV_INVALID',
  /** Downloading advisories failed (network unreachable, HTTP error). */
  DB_DOWNLOAD_FAILED: 'DB_DOWNLOAD_FAILED',
  /** Version string not valid for its ecosystem. */
  VERSION_INVALID: 'VERSION_INVALID',
  /** Ecosystem has no comparator. */
  ECOSYSTEM_UNSUPPORTED: 'ECOSYSTEM_UNSUPPORTED',
  /** Command-line usage or configuration error. */
  USAGE: 'USAGE',
  /** Ignore file or other configuration file is malformed. */
  CONFIG_INVALID: 'CONFIG_INVALID',
  /** The container engine is not reachable or the container does not exist. */
  CONTAINER_NOT_FOUND: 'CONTAINER_NOT_FOUND',
  ENGINE_UNAVAILABLE: 'ENGINE_UNAVAILABLE',
  /** An event target URL is refused (scheme, credentials, or an address the SSRF policy forbids). */
  TARGET_URL_REFUSED: 'TARGET_URL_REFUSED',
  /** A request carries no bearer token, or one that is malformed, unknown, expired, revoked or forged. */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The caller is authenticated but its role or scope does not allow the request. */
  FORBIDDEN: 'FORBIDDEN',
  /** A policy's source does not compile (syntax error, forbidden import, no entry point). */
  POLICY_COMPILE_FAILED: 'POLICY_COMPILE_FAILED',
  /** An action's limits (timeout, memory, log or result size) are outside the allowed ranges. */
  POLICY_LIMITS_INVALID: 'POLICY_LIMITS_INVALID',
  /** Invocation parameters are not a JSON object or exceed the parameter size limit. */
  POLICY_PARAMS_INVALID: 'POLICY_PARAMS_INVALID',
  /** A SecurityAction is malformed, or its id is invalid or already used for a different request. */
  ACTION_INVALID: 'ACTION_INVALID',
  /** An evidence bundle with that action id already exists; bundles are never overwritten. */
  EVIDENCE_EXISTS: 'EVIDENCE_EXISTS',
  /** The node could not carry out an enforcement step (nft, nsenter, engine call failed). */
  ENFORCEMENT_FAILED: 'ENFORCEMENT_FAILED',
  /** The scanner API server cannot be reached, or did not answer with its API's JSON. */
  SERVER_UNREACHABLE: 'SERVER_UNREACHABLE',
  /** A policy's SDK call has arguments of the wrong shape, or is refused before anything is done. */
  SDK_CALL_INVALID: 'SDK_CALL_INVALID',
  /** A function runtime or Apache OpenWhisk refused a policy deployment (bad entity, conflict). */
  DEPLOY_REFUSED: 'DEPLOY_REFUSED',
  /** An image reference is not valid (bad registry, repository, tag or digest). */
  IMAGE_REFERENCE_INVALID: 'IMAGE_REFERENCE_INVALID',
  /** A manifest file (posture input) is not valid YAML/JSON or not a Kubernetes object. */
  MANIFEST_INVALID: 'MANIFEST_INVALID',
  /** The Kubernetes API server cannot be reached or refused a request. */
  KUBERNETES_UNAVAILABLE: 'KUBERNETES_UNAVAILABLE',
  /** A request to the admission webhook is not a valid admission.k8s.io/v1 AdmissionReview. */
  ADMISSION_REVIEW_INVALID: 'ADMISSION_REVIEW_INVALID',
  /** A delivery's Standard Webhooks headers are missing or malformed, or no signature matches a known secret. */
  SIGNATURE_INVALID: 'SIGNATURE_INVALID',
  /** A delivery's `webhook-timestamp` lies outside the receiver's tolerance (stale or from the future). */
  DELIVERY_STALE: 'DELIVERY_STALE',
  /** A cluster named in a request is not registered (stores: `NotFoundError`). */
  CLUSTER_NOT_FOUND: 'CLUSTER_NOT_FOUND',
  /** A cluster with that name is already registered (stores: `ConflictError`). */
  CLUSTER_EXISTS: 'CLUSTER_EXISTS',
  /** A report id already recorded for another workload (`ConflictError`). */
  REPORT_ID_CONFLICT: 'REPORT_ID_CONFLICT',
  /** A report without inventory whose hash is not the workload's last one (`ConflictError`). */
  INVENTORY_REQUIRED: 'INVENTORY_REQUIRED',
  /** A syscall recording could not run or finished without data (bpftrace, cgroup, target). */
  RECORDING_FAILED: 'RECORDING_FAILED',
  /** A seccomp profile file is not a valid OCI seccomp profile. */
  SECCOMP_PROFILE_INVALID: 'SECCOMP_PROFILE_INVALID',
  /** An image has no behaviour baseline in that cluster yet (stores: `NotFoundError`). */
  BASELINE_NOT_FOUND: 'BASELINE_NOT_FOUND',
  /** A baseline changed under too many concurrent writes to apply this one; retry (`ConflictError`). */
  BASELINE_CONFLICT: 'BASELINE_CONFLICT',
  /** A Falco / falcosidekick alert payload does not have Falco's JSON alert shape. */
  FALCO_ALERT_INVALID: 'FALCO_ALERT_INVALID',
  /** A policy's enforcement call names a workload outside its enforcement scope (not the event's). */
  SCOPE_DENIED: 'SCOPE_DENIED',
  /**
   * The enforcer may not act on the resolved target: on one machine, a container outside the
   * managed set (the agent's label filter, a pod's infra container, another namespace).
   */
  TARGET_NOT_MANAGED: 'TARGET_NOT_MANAGED',
  /** A web action's input matched an attack pattern and the action blocks such input. */
  INPUT_THREAT: 'INPUT_THREAT',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class ContainmentError extends Error {
  override readonly name = 'ContainmentError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isContainmentError(e: unknown): e is ContainmentError {
  return e instanceof ContainmentError;
}

/**
 * Domain errors a store throws: what is asked for does not exist (`NotFoundError`) or collides
 * with what is stored (`ConflictError`). Stores know nothing of HTTP; each API maps these kinds
 * to statuses in one place (the scanner: `scanner/routes/errors.ts`).
 */
export class NotFoundError extends ContainmentError {}
export class ConflictError extends ContainmentError {}
