/**
 * Can this node run the eBPF sensor? Root (or CAP_BPF + CAP_PERFMON), the native sensor binary
 * (built on the node: `npm run build:sensor`), kernel BTF (its CO-RE relocations), and tracefs
 * (tracepoint ids are read from it). tracefs is mounted when missing and we are root — the
 * DaemonSet equivalent is a hostPath mount of /sys/kernel/tracing. Anything else missing means
 * degraded (/proc polling) mode, with the reasons said. The seccomp recorder asks the same
 * about bpftrace (`needs: 'bpftrace'`), which it still runs.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { NATIVE_SENSOR_BIN } from './native.js';

export const TRACEFS = '/sys/kernel/tracing';

export interface Preflight {
  mode: 'ebpf' | 'procfs';
  /** Why eBPF is not used (empty in ebpf mode). */
  reasons: string[];
  bpftraceVersion?: string;
  /** The nesting level of the host's pid namespace (0 unless the agent itself runs in one). */
  hostPidLevel: number;
}

export interface PreflightProbe {
  isRoot(): boolean;
  /** `bpftrace --version` output, or undefined when it cannot run. */
  bpftraceVersion(bin: string): string | undefined;
  /** Is there an executable file at `path`. */
  executable(path: string): boolean;
  hasBtf(): boolean;
  /** Is tracefs usable; mount it when allowed. */
  ensureTracefs(mayMount: boolean): boolean;
  /** Entries of NSpid in /proc/self/status minus one. */
  pidLevel(): number;
}

// CAP_PERFMON (38) and CAP_BPF (39) in CapEff, or CAP_SYS_ADMIN (21).
const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

export const systemProbe: PreflightProbe = {
  isRoot() {
    try {
      const status = readFileSync('/proc/self/status', 'utf8');
      const eff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
      const has = (c: bigint): boolean => ((eff >> c) & 1n) === 1n;
      return has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
    } catch {
      return process.getuid?.() === 0;
    }
  },
  bpftraceVersion(bin) {
    try {
      return execFileSync(bin, ['--version'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return undefined;
    }
  },
  executable(path) {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  hasBtf: () => existsSync('/sys/kernel/btf/vmlinux'),
  ensureTracefs(mayMount) {
    if (existsSync(`${TRACEFS}/events`)) return true;
    if (!mayMount) return false;
    try {
      execFileSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS], { stdio: 'ignore' });
    } catch {
      return false;
    }
    return existsSync(`${TRACEFS}/events`);
  },
  pidLevel() {
    try {
      const line = /^NSpid:\s*(.+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
      return Math.max(0, line.trim().split(/\s+/).length - 1);
    } catch {
      return 0;
    }
  },
};

export function preflight(
  options: {
    /** What will run the probes: the sensor's native engine (default) or bpftrace (seccomp recording). */
    needs?: 'sensor' | 'bpftrace';
    /** The native sensor binary (default NATIVE_SENSOR_BIN). */
    sensor?: string;
    bpftrace?: string;
    mountTracefs?: boolean;
  } = {},
  probe: PreflightProbe = systemProbe,
): Preflight {
  const reasons: string[] = [];
  const hostPidLevel = probe.pidLevel();
  const root = probe.isRoot();
  if (!root) reasons.push('not root (eBPF needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)');
  let version: string | undefined;
  if (options.needs === 'bpftrace') {
    version = probe.bpftraceVersion(options.bpftrace ?? 'bpftrace');
    if (version === undefined) reasons.push(`bpftrace is not installed (${options.bpftrace ?? 'bpftrace'})`);
  } else {
    const bin = options.sensor ?? NATIVE_SENSOR_BIN;
    if (!probe.executable(bin))
      reasons.push(
        `the native eBPF sensor is not built (${bin}; \`npm run build:sensor\` needs Go, clang and bpftool)`,
      );
  }
  if (!probe.hasBtf()) reasons.push('the kernel has no BTF (/sys/kernel/btf/vmlinux)');
  if (root && !probe.ensureTracefs(options.mountTracefs ?? true))
    reasons.push(`tracefs is not mounted at ${TRACEFS} and could not be mounted`);
  return {
    mode: reasons.length === 0 ? 'ebpf' : 'procfs',
    reasons,
    ...(version === undefined ? {} : { bpftraceVersion: version }),
    hostPidLevel,
  };
}
