/** Messages between the host (QuickJsSandbox) and its worker threads. Values travel as JSON text. */
import type { ActivationStatus, JsonValue, SandboxLimits } from './sandbox.js';

export type ToWorker =
  | {
      type: 'invoke';
      id: number;
      actionKey: string;
      codeHash: string;
      code: string;
      paramsJson: string;
      limits: SandboxLimits;
    }
  | { type: 'sdk-result'; id: number; callId: number; ok: true; json: string }
  | { type: 'sdk-result'; id: number; callId: number; ok: false; message: string };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'sdk-call'; id: number; callId: number; method: string; argsJson: string }
  | {
      type: 'done';
      id: number;
      status: ActivationStatus;
      result: JsonValue;
      error?: string;
      logs: string[];
      coldStart: boolean;
    };

export interface WorkerOptions {
  /** Idle warm instances a worker keeps before evicting the least recently used. */
  maxWarm: number;
  /** Most SDK calls one invocation may make. */
  maxSdkCalls: number;
}

/** OpenWhisk's wording for activation failures (core/entity/ActivationResult.scala, Messages.scala). */
export const Messages = {
  timeout: (ms: number, init: boolean) =>
    `The action exceeded its time limits of ${ms} milliseconds${init ? ' during initialization.' : '.'}`,
  memoryExhausted: 'The action exhausted its memory and was aborted.',
  abnormalRun: 'The action did not produce a valid response and exited unexpectedly.',
  initFailed: (why: string) => `Initialization has failed due to: ${why}`,
  threw: (why: string) => `An error has occurred: ${why}`,
  notADictionary: 'The action did not return a dictionary.',
  invalidJson: (why: string) => `The action did not produce a valid JSON response: ${why}`,
  resultTooLarge: (length: number, max: number) =>
    `The action produced a response that exceeded the allowed length: ${length} > ${max} bytes.`,
  logsTruncated: (max: number) =>
    `Logs were truncated because the total bytes size exceeds the limit of ${max} bytes.`,
};
