/**
 * One bpftrace process, started so it can never outlive the agent: its own process group (one
 * kill reaches bpftrace and anything it forks) under `setpriv --pdeathsig KILL` (the kernel kills
 * it when the agent dies, even by SIGKILL), and the group killed on the agent's exit and on
 * SIGINT/SIGTERM/SIGHUP. Killing bpftrace detaches every probe it attached.
 *
 * The one place a probe engine is started: the sensor's native engine (ebpf-sensor.ts, which adds
 * restarts) and the seccomp recorder's bpftrace both spawn through it.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

/** stderr lines bpftrace prints on every start that mean nothing (RLIMIT_MEMLOCK on cgroup-charged kernels). */
export const BPFTRACE_NOISE = /RLIMIT_MEMLOCK|^WARNING:|Addrspace mismatch|^\s*$|^\s*[~^]+\s*$/;

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

export interface BpftraceProcess {
  child: ChildProcess;
  /** Signals the whole group (no-op once it is gone). */
  kill(signal: NodeJS.Signals): void;
  /** Removes the exit/signal hooks; call once the process has exited. */
  release(): void;
}

let setprivKnown: boolean | undefined;
export function hasSetpriv(): boolean {
  setprivKnown ??= spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;
  return setprivKnown;
}

export function spawnBpftrace(
  args: readonly string[],
  options: {
    bpftrace?: string;
    env?: NodeJS.ProcessEnv;
    /** Called on SIGINT/SIGTERM/SIGHUP before the group is killed (e.g. to stop restarting it). */
    onSignal?: () => void;
  } = {},
): BpftraceProcess {
  const bin = options.bpftrace ?? 'bpftrace';
  const [file, argv] = hasSetpriv()
    ? ['setpriv', ['--pdeathsig', 'KILL', '--', bin, ...args]]
    : [bin, [...args]];
  const child = spawn(file, argv, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  const kill = (signal: NodeJS.Signals): void => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const onExit = (): void => kill('SIGKILL');
  const onSignal = (signal: NodeJS.Signals): void => {
    options.onSignal?.();
    kill('SIGKILL');
    // Only this handler: keep the default meaning of the signal (terminate).
    if (process.listenerCount(signal) <= 1) process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 0));
  };
  process.on('exit', onExit);
  for (const s of SIGNALS) process.on(s, onSignal);
  return {
    child,
    kill,
    release() {
      process.off('exit', onExit);
      for (const s of SIGNALS) process.off(s, onSignal);
    },
  };
}
