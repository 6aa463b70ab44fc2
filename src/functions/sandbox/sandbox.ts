/**
 * The seam between the function runtime and whatever runs a policy: one invocation in, one activation
 * outcome out. Statuses and limits follow Apache OpenWhisk (docs/reference.md, ActivationResult.scala).
 */
import { ContainmentError, ErrorCodes } from '../../errors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type ActivationStatus =
  'success' | 'application error' | 'action developer error' | 'whisk internal error';

export interface SandboxLimits {
  /** Wall-clock deadline of one invocation, ms (OpenWhisk: 100 ms–300 s, default 60 s). */
  timeoutMs: number;
  /** Heap of the policy's JS engine, MB (OpenWhisk: 128–512, default 256). */
  memoryMb: number;
  /** Bytes of log output kept; the rest is dropped and a note line appended (OpenWhisk: 0–10 MB, default 10 MB). */
  logLimitBytes: number;
  /** Bytes of the serialized result (OpenWhisk: 1 MB). */
  resultLimitBytes: number;
}

/** The host side of the policy SDK: gets JSON, returns JSON. Never sees guest objects. */
export type SdkHandler = (method: string, args: JsonValue[]) => Promise<JsonValue>;

export interface InvokeRequest {
  /** Identifies the warm pool an invocation may reuse: `namespace/[package/]action@version`. */
  actionKey: string;
  /** Script produced by `compilePolicy`. */
  code: string;
  params: JsonObject;
  limits: SandboxLimits;
  sdk: SdkHandler;
}

export interface InvokeResult {
  status: ActivationStatus;
  /** The action's result for success and application error; `{ error }` otherwise (as OpenWhisk records it). */
  result?: JsonValue;
  /** One line saying why, for every status except success. */
  error?: string;
  /** `"<ISO time> stdout|stderr: line"`, as in OpenWhisk activation records. */
  logs: string[];
  durationMs: number;
  /** True when this invocation had to create and initialize a fresh engine for the action. */
  coldStart: boolean;
}

export interface Sandbox {
  invoke(request: InvokeRequest): Promise<InvokeResult>;
  close(): Promise<void>;
}

const MB = 1024 * 1024;

/** OpenWhisk's fixed parameter and result size limit. */
export const PAYLOAD_LIMIT_BYTES = MB;

export const DEFAULT_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  timeoutMs: 60_000,
  memoryMb: 256,
  logLimitBytes: 10 * MB,
  resultLimitBytes: PAYLOAD_LIMIT_BYTES,
});

const RANGES: Record<keyof SandboxLimits, readonly [number, number]> = {
  timeoutMs: [100, 300_000],
  memoryMb: [128, 512],
  logLimitBytes: [0, 10 * MB],
  resultLimitBytes: [1, PAYLOAD_LIMIT_BYTES],
};

/** Fills defaults and rejects values outside OpenWhisk's ranges. */
export function validateLimits(limits: Partial<SandboxLimits> = {}): SandboxLimits {
  const out = { ...DEFAULT_LIMITS, ...limits };
  for (const key of Object.keys(RANGES) as (keyof SandboxLimits)[]) {
    const [min, max] = RANGES[key];
    const value = out[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ContainmentError(
        ErrorCodes.POLICY_LIMITS_INVALID,
        `limit ${key} must be an integer between ${min} and ${max}, got ${String(value)}`,
      );
    }
  }
  return out;
}
