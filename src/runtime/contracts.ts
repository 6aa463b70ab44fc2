/**
 * Runtime detection contracts, pure (zod only): what the sensor reports about one kernel event,
 * the data of a `dev.containment.runtime.detected` CloudEvent, and a behaviour baseline. The
 * CloudEvent data keeps every field of `RuntimeDetectedData` (src/events/cloud-event.ts) and adds
 * severity, process, baseline state and aggregation counts.
 */
import { z } from 'zod';

export const SENSOR_EVENT_KINDS = [
  'exec',
  'exit',
  'connect',
  'accept',
  'bind',
  'listen',
  'open',
  'setid',
  'ptrace',
  'module',
] as const;
export type SensorEventKind = (typeof SENSOR_EVENT_KINDS)[number];

/** One event of a container process, as the sensor (eBPF or /proc polling) saw it. */
export const SensorEventSchema = z.object({
  kind: z.enum(SENSOR_EVENT_KINDS),
  /** Host pid (the process's tgid in the host's pid namespace). */
  pid: z.number().int(),
  ppid: z.number().int().optional(),
  uid: z.number().int(),
  /** Effective uid after an exec (a setuid binary makes it differ from `uid`). */
  euid: z.number().int().optional(),
  /** cgroup v2 id (inode of the cgroup directory); 0 when unknown (polling). */
  cgroupId: z.number().int(),
  comm: z.string(),
  /** exec: the path as asked (`/bin/sh`, `/proc/self/exe`, `/dev/fd/3`). */
  path: z.string().optional(),
  /** exec: the executable's file name in the kernel (`memfd:x` for a memfd). */
  exeName: z.string().optional(),
  /**
   * exec, native sensor: the executable as the kernel resolved it (the path inside the container,
   * what readlink /proc/<pid>/exe gives), whether it was unlinked, and whether it lives on the
   * overlay upper layer. Absent: user space reads /proc itself.
   */
  exe: z.string().optional(),
  exeDeleted: z.boolean().optional(),
  upperLayer: z.boolean().optional(),
  argv: z.array(z.string()).optional(),
  /** exec: argv was longer than the sensor reads. */
  argvTruncated: z.boolean().optional(),
  /** exec: stdin / stdout are sockets. */
  stdinSocket: z.boolean().optional(),
  stdoutSocket: z.boolean().optional(),
  /** connect/accept: the remote end; listen/bind: the local end. */
  address: z.string().optional(),
  port: z.number().int().optional(),
  /** open: the file; flags as given to open(2). */
  file: z.string().optional(),
  flags: z.number().int().optional(),
  /** setid/module: the syscall or probe. */
  syscall: z.string().optional(),
  /** ptrace: the target pid and request. */
  targetPid: z.number().int().optional(),
  request: z.number().int().optional(),
  /** exec: the kernel's CLOCK_MONOTONIC (ns) at the exec, for latency figures. */
  monotonicNs: z.number().optional(),
  /** Milliseconds since the epoch, when user space received it. */
  time: z.number(),
  source: z.enum(['ebpf', 'procfs']),
});
export type SensorEvent = z.infer<typeof SensorEventSchema>;

export const DetectionSeveritySchema = z.enum(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN']);
export type DetectionSeverity = z.infer<typeof DetectionSeveritySchema>;

/** The workload identity of the design brief (same fields as `WorkloadIdentity`). */
export const RuntimeWorkloadSchema = z.object({
  cluster: z.string(),
  namespace: z.string(),
  pod: z.string(),
  container: z.string().optional(),
  node: z.string(),
  image: z.string(),
  imageDigest: z.string().optional(),
  /** The runtime's container id (64 hex). */
  containerId: z.string(),
  podUid: z.string().optional(),
});
export type RuntimeWorkload = z.infer<typeof RuntimeWorkloadSchema>;

export const DetectionProcessSchema = z.object({
  pid: z.number().int(),
  ppid: z.number().int().optional(),
  uid: z.number().int(),
  name: z.string(),
  exe: z.string().optional(),
  /** Truncated, credential-looking values masked. */
  argv: z.array(z.string()),
});

export const BASELINE_STATES = ['none', 'learning', 'monitor', 'protect'] as const;
export const BaselineStateSchema = z.enum(BASELINE_STATES);
export type BaselineState = z.infer<typeof BaselineStateSchema>;

/** The data of a `dev.containment.runtime.detected` CloudEvent. */
export const RuntimeDetectionSchema = z.object({
  workload: RuntimeWorkloadSchema,
  ruleId: z.string().regex(/^[a-z0-9_:.-]+$/),
  kind: z.enum(['process', 'socket', 'drift', 'file', 'privilege', 'kernel']),
  severity: DetectionSeveritySchema,
  title: z.string(),
  /** RFC 3339: the first occurrence of this aggregate. */
  detectedAt: z.string(),
  process: DetectionProcessSchema,
  /** Facts that made the rule fire (masked like argv). */
  evidence: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  baseline: z.object({ state: BaselineStateSchema, image: z.string().optional() }),
  /** Identical detections are folded: how many, first and last (RFC 3339). */
  count: z.number().int().positive(),
  firstSeen: z.string(),
  lastSeen: z.string(),
  /** Stable across repeats: the aggregation key, hashed. */
  fingerprint: z.string(),
  source: z.enum(['ebpf', 'procfs', 'falco']),
});
export type RuntimeDetection = z.infer<typeof RuntimeDetectionSchema>;

/** What a baseline holds per image. */
export const BaselineSchema = z.object({
  image: z.string(),
  state: BaselineStateSchema.exclude(['none']),
  /** Milliseconds since the epoch. */
  learningStartedAt: z.number(),
  eventsLearned: z.number().int().nonnegative(),
  executables: z.array(z.string()),
  /** `tcp:8080`, `udp:53`. */
  listeners: z.array(z.string()),
  /** `10.0.0.5:443` (address:port of the remote end). */
  outbound: z.array(z.string()),
});
export type Baseline = z.infer<typeof BaselineSchema>;

/**
 * A baseline as the scanner keeps it for one cluster (API and agent sync). `generation` counts
 * operator changes (lock, reset): an agent's push based on an older generation is ignored and the
 * agent takes the scanner's version. `revision` counts every change.
 */
export const StoredBaselineSchema = BaselineSchema.extend({
  cluster: z.string(),
  /** The image reference the baseline was learned under, when the key is a digest. */
  imageRef: z.string().optional(),
  generation: z.number().int().nonnegative(),
  revision: z.number().int().nonnegative(),
  /** RFC 3339. */
  updatedAt: z.string(),
});
export type StoredBaseline = z.infer<typeof StoredBaselineSchema>;

/** One agent's view of one image's baseline, with the generation it is based on. */
export interface BaselinePush {
  baseline: Baseline;
  generation: number;
  imageRef?: string;
}

export const LearningPolicySchema = z
  .object({
    /** Learning ends after this long (ms) since the first event of the image … */
    durationMs: z.number().int().positive().optional(),
    /** … or after this many events, whichever comes first. */
    events: z.number().int().positive().optional(),
    /** Enter protect instead of monitor when learning ends. */
    protectAfterLearning: z.boolean().optional(),
  })
  .refine((p) => p.durationMs !== undefined || p.events !== undefined, {
    message: 'a learning window needs durationMs or events',
  });
export type LearningPolicy = z.infer<typeof LearningPolicySchema>;
