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
  /** A policy's enforcement call names a workload outside its enforcement scope (not the event's). */
  SCOPE_DENIED: 'SCOPE_DENIED',
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
