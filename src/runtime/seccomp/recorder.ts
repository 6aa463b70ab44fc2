/**
 * Records the system calls of one workload's cgroup(s) with bpftrace: `raw_syscalls:sys_enter`
 * filtered in the kernel by cgroup id, counted per syscall number in a map that bpftrace prints
 * (as JSON) when the program exits after the duration. Numbers are the task's native ABI; a
 * 32-bit (compat) caller's numbers would be misread, so a recording of such a workload is not
 * supported (said in the docs).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { BPFTRACE_NOISE, spawnBpftrace } from '../sensor/bpftrace-process.js';

export interface RecordOptions {
  /** cgroup v2 ids (inodes of the workload's cgroup directories). */
  cgroupIds: readonly number[];
  durationMs: number;
  bpftrace?: string;
  /** Compiling and attaching takes seconds under load. */
  attachTimeoutMs?: number;
  /** Called once the probes are attached (recording has begun). */
  onAttached?: () => void;
}

export interface SyscallRecording {
  /** Syscall number → how many times it was entered. */
  counts: Map<number, number>;
  durationMs: number;
}

/** The bpftrace program; pure. Ids and duration are integers checked here, never free text. */
export function recorderProgram(cgroupIds: readonly number[], durationMs: number): string {
  if (cgroupIds.length === 0 || !cgroupIds.every((id) => Number.isSafeInteger(id) && id > 0))
    throw new ContainmentError(ErrorCodes.RECORDING_FAILED, 'no cgroup to record');
  if (!Number.isSafeInteger(durationMs) || durationMs < 1)
    throw new ContainmentError(ErrorCodes.USAGE, `recording duration must be at least 1 ms`);
  const filter = cgroupIds.map((id) => `cgroup == ${id}`).join(' || ');
  return [
    `tracepoint:raw_syscalls:sys_enter /${filter}/ { @syscalls[args->id] = count(); }`,
    `interval:ms:${durationMs} { exit(); }`,
    '',
  ].join('\n');
}

/** The `@syscalls` map from bpftrace's JSON output lines; pure. */
export function parseRecorderLine(line: string, into: Map<number, number>): 'attached' | 'map' | undefined {
  let msg: { type?: unknown; data?: Record<string, unknown> };
  try {
    msg = JSON.parse(line) as typeof msg;
  } catch {
    return undefined;
  }
  if (msg.type === 'attached_probes') return 'attached';
  const map = msg.type === 'map' ? msg.data?.['@syscalls'] : undefined;
  if (typeof map !== 'object' || map === null) return undefined;
  for (const [nr, count] of Object.entries(map))
    if (/^\d+$/.test(nr) && typeof count === 'number')
      into.set(Number(nr), (into.get(Number(nr)) ?? 0) + count);
  return 'map';
}

export async function recordSyscalls(options: RecordOptions): Promise<SyscallRecording> {
  const program = recorderProgram(options.cgroupIds, options.durationMs);
  const dir = mkdtempSync(join(tmpdir(), 'containment-seccomp-'));
  const file = join(dir, 'record.bt');
  writeFileSync(file, program, { mode: 0o600 });
  const proc = spawnBpftrace(['-B', 'line', '-f', 'json', file], {
    ...(options.bpftrace ? { bpftrace: options.bpftrace } : {}),
  });
  const counts = new Map<number, number>();
  let stderrTail = '';
  let attached = false;
  const started = Date.now();
  createInterface({ input: proc.child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
    if (!BPFTRACE_NOISE.test(line)) stderrTail = `${stderrTail} ${line.trim()}`.slice(-400);
  });
  const attachTimeoutMs = options.attachTimeoutMs ?? 120_000;
  const timer = setTimeout(() => proc.kill('SIGKILL'), attachTimeoutMs);
  try {
    const exit = new Promise<number | null>((resolve, reject) => {
      proc.child.once('error', reject);
      proc.child.once('close', (code) => resolve(code));
    });
    createInterface({ input: proc.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const kind = parseRecorderLine(line, counts);
      if (kind === 'attached' && !attached) {
        attached = true;
        clearTimeout(timer);
        options.onAttached?.();
      }
    });
    const code = await exit.catch((e: Error) => {
      throw new ContainmentError(ErrorCodes.RECORDING_FAILED, `cannot run bpftrace: ${e.message}`);
    });
    if (!attached)
      throw new ContainmentError(
        ErrorCodes.RECORDING_FAILED,
        `bpftrace did not attach (exit ${code ?? 'by signal'})${stderrTail ? `:${stderrTail}` : ''}`,
      );
    // An empty map prints nothing: no syscall at all is a valid (if odd) recording.
    if (code !== 0)
      throw new ContainmentError(
        ErrorCodes.RECORDING_FAILED,
        `bpftrace exited with ${code ?? 'a signal'} before the recording ended${stderrTail ? `:${stderrTail}` : ''}`,
      );
    return { counts, durationMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
    proc.kill('SIGKILL');
    proc.release();
    rmSync(dir, { recursive: true, force: true });
  }
}
