/** What every sensor (eBPF or /proc polling) offers the detector. */
import type { SensorEvent } from '../contracts.js';

export interface SensorStatus {
  mode: 'ebpf' | 'procfs';
  /** Why the sensor is degraded (empty in ebpf mode). */
  reasons: string[];
  /** What this sensor cannot see. */
  blindSpots: string[];
  running: boolean;
  /** Probe engine restarts after it died. */
  restarts: number;
  /** Events the kernel could not hand over (the engine's ring buffer was full), as it reports them. */
  lostEvents: number;
  /** Output lines that were not understood. */
  parseFailures: number;
  events: number;
  attachedProbes?: number;
  /** The probe engine's pid (the native sensor), for resource figures. */
  pid?: number;
  lastError?: string;
}

export interface Sensor {
  /** Resolves once the sensor is watching (probes attached, or the first /proc pass done). */
  start(onEvent: (event: SensorEvent) => void): Promise<void>;
  /** Detaches everything; resolves when the probe engine has exited. */
  stop(): Promise<void>;
  status(): SensorStatus;
}

/** The subset of a pino logger the sensor uses (the agent's AgentLogger fits). */
export interface SensorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: SensorLogger = { info() {}, warn() {}, error() {} };
