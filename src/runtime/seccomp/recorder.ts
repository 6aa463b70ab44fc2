/**
 * Records system calls with bpftrace: `raw_syscalls:sys_enter` filtered in the kernel, counted
 * per (cgroup id, syscall number) in a map bpftrace prints as JSON when it exits — after the
 * duration, or on SIGINT (`stop`). Two filters:
 * - `cgroups`: the cgroups of a workload that is already running (attach mode);
 * - `seccomp`: every container task (deeper pid namespace than the host's) already running under
 *   a seccomp filter, for recording a workload from its start: the calls its runtime makes before
 *   loading the filter (mounts, pivot_root, unshare, …) are the runtime's, not the workload's, and
 *   the kernel runs seccomp before this tracepoint, so a call the running filter denies is not
 *   counted either. The caller keeps the workload's cgroups once it knows them.
 * Numbers are the task's native ABI; a 32-bit (compat) caller is not supported (docs).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { BPFTRACE_NOISE, spawnBpftrace } from '../sensor/bpftrace-process.js';

export type RecorderFilter =
  { kind: 'cgroups'; cgroupIds: readonly number[] } | { kind: 'seccomp'; hostPidLevel: number };

/** cgroup id → syscall number → calls. */
export type CgroupSyscallCounts = Map<number, Map<number, number>>;

export interface RecorderOptions {
  filter: RecorderFilter;
  /** Exit by itself after this long; without it, only `stop()` ends the recording. */
  durationMs?: number;
  bpftrace?: string;
  /** Compiling and attaching takes seconds under load. */
  attachTimeoutMs?: number;
}

const isId = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

/** The bpftrace program; pure. Every number is checked here: the text never carries free input. */
export function recorderProgram(filter: RecorderFilter, durationMs?: number): string {
  let predicate: string;
  if (filter.kind === 'cgroups') {
    if (filter.cgroupIds.length === 0 || !filter.cgroupIds.every((id) => isId(id) && id > 0))
      throw new ContainmentError(ErrorCodes.RECORDING_FAILED, 'no cgroup to record');
    predicate = filter.cgroupIds.map((id) => `cgroup == ${id}`).join(' || ');
  } else {
    if (!isId(filter.hostPidLevel)) throw new ContainmentError(ErrorCodes.RECORDING_FAILED, 'bad pid level');
    // SECCOMP_MODE_FILTER is 2.
    predicate = `curtask->seccomp.mode == 2 && curtask->thread_pid->level > ${filter.hostPidLevel}`;
  }
  if (durationMs !== undefined && (!Number.isSafeInteger(durationMs) || durationMs < 1))
    throw new ContainmentError(ErrorCodes.USAGE, 'recording duration must be at least 1 ms');
  return [
    `tracepoint:raw_syscalls:sys_enter /${predicate}/ { @syscalls[cgroup, args->id] = count(); }`,
    ...(durationMs === undefined ? [] : [`interval:ms:${durationMs} { exit(); }`]),
    '',
  ].join('\n');
}

/** One line of bpftrace's JSON output into `into`; pure. Keys are `"<cgroup>,<nr>"`. */
export function parseRecorderLine(line: string, into: CgroupSyscallCounts): 'attached' | 'map' | undefined {
  let msg: { type?: unknown; data?: Record<string, unknown> };
  try {
    msg = JSON.parse(line) as typeof msg;
  } catch {
    return undefined;
  }
  if (msg.type === 'attached_probes') return 'attached';
  const map = msg.type === 'map' ? msg.data?.['@syscalls'] : undefined;
  if (typeof map !== 'object' || map === null) return undefined;
  for (const [key, count] of Object.entries(map)) {
    const m = /^(\d+),(\d+)$/.exec(key);
    if (!m || typeof count !== 'number') continue;
    const cg = Number(m[1]);
    const nr = Number(m[2]);
    const per = into.get(cg) ?? new Map<number, number>();
    per.set(nr, (per.get(nr) ?? 0) + count);
    into.set(cg, per);
  }
  return 'map';
}

/** The counts of some cgroups, summed per syscall number; pure. */
export function countsOf(all: CgroupSyscallCounts, cgroupIds: Iterable<number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const id of new Set(cgroupIds))
    for (const [nr, n] of all.get(id) ?? []) out.set(nr, (out.get(nr) ?? 0) + n);
  return out;
}

export interface RunningRecorder {
  /** Resolves with every count once bpftrace has exited cleanly and printed its map. */
  finished: Promise<CgroupSyscallCounts>;
  /** Ends the recording now (bpftrace prints its map on SIGINT). */
  stop(): void;
}

/** Starts bpftrace; resolves once its probes are attached. */
export async function startRecorder(options: RecorderOptions): Promise<RunningRecorder> {
  const program = recorderProgram(options.filter, options.durationMs);
  const dir = mkdtempSync(join(tmpdir(), 'containment-seccomp-'));
  const file = join(dir, 'record.bt');
  writeFileSync(file, program, { mode: 0o600 });
  const proc = spawnBpftrace(['-B', 'line', '-f', 'json', file], {
    ...(options.bpftrace ? { bpftrace: options.bpftrace } : {}),
  });
  const counts: CgroupSyscallCounts = new Map();
  let stderrTail = '';
  let stopping = false;
  createInterface({ input: proc.child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
    if (!BPFTRACE_NOISE.test(line)) stderrTail = `${stderrTail} ${line.trim()}`.slice(-400);
  });
  const why = (code: number | null): string =>
    `bpftrace exited with ${code ?? 'a signal'}${stderrTail ? `:${stderrTail}` : ''}`;
  let onAttached: () => void = () => {};
  const attached = new Promise<void>((resolve) => (onAttached = resolve));
  const stdoutDone = new Promise<void>((resolve) => {
    const rl = createInterface({ input: proc.child.stdout as NodeJS.ReadableStream });
    rl.on('line', (line) => {
      if (parseRecorderLine(line, counts) === 'attached') onAttached();
    });
    rl.on('close', resolve);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    proc.child.once('error', (e) =>
      reject(new ContainmentError(ErrorCodes.RECORDING_FAILED, `cannot run bpftrace: ${e.message}`)),
    );
    proc.child.once('close', (code) => resolve(code));
  });
  const cleanup = (): void => {
    proc.kill('SIGKILL');
    proc.release();
    rmSync(dir, { recursive: true, force: true });
  };
  const finished = exited.then(
    async (code) => {
      await stdoutDone;
      cleanup();
      // SIGINT from stop() ends bpftrace with status 0 after it printed the map.
      if (code !== 0) throw new ContainmentError(ErrorCodes.RECORDING_FAILED, why(code));
      return counts;
    },
    (e: unknown) => {
      cleanup();
      throw e;
    },
  );
  const timeoutMs = options.attachTimeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(
        new ContainmentError(ErrorCodes.RECORDING_FAILED, `bpftrace did not attach within ${timeoutMs} ms`),
      );
    }, timeoutMs);
  });
  try {
    // Exiting before attaching is a failure whatever the status.
    const early = finished.then((): never => {
      throw new ContainmentError(
        ErrorCodes.RECORDING_FAILED,
        `bpftrace exited before attaching${stderrTail ? `:${stderrTail}` : ''}`,
      );
    });
    await Promise.race([attached, early, timeout]);
  } catch (e) {
    finished.catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return {
    finished,
    stop() {
      if (stopping) return;
      stopping = true;
      proc.kill('SIGINT');
      // Seen once under load: the first SIGINT did not end bpftrace. Ask again, then give up.
      let asked = 1;
      const again = setInterval(() => {
        proc.kill(++asked > 5 ? 'SIGKILL' : 'SIGINT');
      }, 2000);
      again.unref();
      void finished.finally(() => clearInterval(again)).catch(() => undefined);
    },
  };
}
