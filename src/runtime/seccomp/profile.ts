/**
 * Seccomp profiles from recorded system calls; pure (zod only). Two outputs:
 * - the OCI runtime profile (`podman run --security-opt seccomp=FILE`, the kubelet's
 *   `Localhost` profiles): `defaultAction: SCMP_ACT_ERRNO` (EPERM), the node's architecture,
 *   and the allowed names;
 * - a Security Profiles Operator `SeccompProfile` (security-profiles-operator.x-k8s.io/v1beta1,
 *   schema from kubernetes-sigs/security-profiles-operator api/seccompprofile/v1beta1), which SPO
 *   installs on every node as `operator/<namespace>/<name>.json`.
 *
 * A recording attaches to a workload that is already running, so it misses what happens between
 * the runtime loading the filter and the workload's steady state: the OCI runtime's last steps
 * (runc loads the filter before dropping privileges, then execs), the exec itself and the
 * program's loader and libc start-up. Those are `RUNTIME_BASE_SYSCALLS`, added to every profile
 * unless asked not to (e.g. when SPO's `baseProfileName` supplies them).
 */
import { z } from 'zod';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { AARCH64_SYSCALLS, X86_64_SYSCALLS } from './syscall-tables.js';

export interface SeccompArch {
  /** The kernel's name. */
  name: 'x86_64' | 'aarch64';
  /** libseccomp's name, as profiles list it. */
  scmp: 'SCMP_ARCH_X86_64' | 'SCMP_ARCH_AARCH64';
  table: Readonly<Record<number, string>>;
}

export const ARCHES: Readonly<Record<string, SeccompArch>> = {
  x64: { name: 'x86_64', scmp: 'SCMP_ARCH_X86_64', table: X86_64_SYSCALLS },
  arm64: { name: 'aarch64', scmp: 'SCMP_ARCH_AARCH64', table: AARCH64_SYSCALLS },
};

/** The architecture of this node (Node's `process.arch` names). */
export function archOf(nodeArch: string = process.arch): SeccompArch {
  const arch = ARCHES[nodeArch];
  if (!arch)
    throw new ContainmentError(
      ErrorCodes.TARGET_UNSUPPORTED,
      `seccomp recording supports x86_64 and aarch64 nodes, not ${nodeArch}`,
    );
  return arch;
}

/**
 * What a container needs from the moment its filter is loaded until it runs, which a recording
 * of a running workload cannot see: runc's steps after loading the filter (Go runtime threads and
 * signals, setgroups/setres[ug]id, capset and prctl to drop capabilities, closing inherited fds,
 * chdir, the start FIFO, execve), and an ELF program's loader and libc start-up. Names a given
 * architecture lacks (`arch_prctl`, `open` on aarch64) are dropped per architecture.
 */
// prettier-ignore
export const RUNTIME_BASE_SYSCALLS: readonly string[] = [
  // runc init after the filter (Go runtime included)
  'capget', 'capset', 'chdir', 'fchdir', 'clone', 'clone3', 'close', 'close_range', 'dup', 'dup2',
  'dup3', 'epoll_create1', 'epoll_ctl', 'epoll_pwait', 'epoll_wait', 'execve', 'exit', 'exit_group',
  'faccessat', 'faccessat2', 'access', 'fcntl', 'fstat', 'newfstatat', 'statx', 'stat', 'futex',
  'getdents64', 'getegid', 'geteuid', 'getgid', 'getpid', 'getppid', 'gettid', 'getuid', 'madvise',
  'mmap', 'munmap', 'mprotect', 'nanosleep', 'clock_nanosleep', 'clock_gettime', 'openat', 'open',
  'pipe2', 'prctl', 'read', 'readlinkat', 'readlink', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn',
  'sched_getaffinity', 'sched_yield', 'setgid', 'setgroups', 'setresgid', 'setresuid', 'setuid',
  'sigaltstack', 'tgkill', 'write', 'writev',
  // the new program's loader and libc start-up
  'arch_prctl', 'brk', 'getrandom', 'prlimit64', 'rseq', 'set_robust_list', 'set_tid_address',
  'uname', 'ioctl', 'lseek', 'pread64',
];

const ACTIONS = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
] as const;

/** An OCI seccomp profile as podman, runc and the kubelet read it (the fields we write and check). */
export const OciSeccompProfileSchema = z.object({
  defaultAction: z.enum(ACTIONS),
  defaultErrnoRet: z.number().int().nonnegative().optional(),
  architectures: z.array(z.string().regex(/^SCMP_ARCH_[A-Z0-9_]+$/)).optional(),
  syscalls: z
    .array(
      z
        .object({
          names: z.array(z.string().regex(/^[a-z0-9_]+$/)).min(1),
          action: z.enum(ACTIONS),
          errnoRet: z.number().int().nonnegative().optional(),
        })
        .passthrough(),
    )
    .optional(),
});
export type OciSeccompProfile = z.infer<typeof OciSeccompProfileSchema>;

const EPERM = 1;

export interface RecordedSyscalls {
  /** Names of the syscalls seen, sorted. */
  observed: string[];
  /** Numbers the table does not know (a newer kernel than the table): left out, reported. */
  unknown: number[];
}

/** Syscall numbers → names for an architecture; pure. */
export function syscallNames(numbers: Iterable<number>, arch: SeccompArch): RecordedSyscalls {
  const observed = new Set<string>();
  const unknown: number[] = [];
  for (const nr of numbers) {
    const name = arch.table[nr];
    if (name === undefined) unknown.push(nr);
    else observed.add(name);
  }
  return { observed: [...observed].sort(), unknown: unknown.sort((a, b) => a - b) };
}

/** The base names this architecture has. */
export function baseSyscalls(arch: SeccompArch): string[] {
  const known = new Set(Object.values(arch.table));
  return RUNTIME_BASE_SYSCALLS.filter((n) => known.has(n)).sort();
}

/**
 * The OCI profile: the observed names allowed, then the base names not observed (a separate
 * entry so a reader sees which were recorded), everything else EPERM.
 */
export function buildSeccompProfile(
  observed: readonly string[],
  arch: SeccompArch,
  options: { includeBase?: boolean } = {},
): OciSeccompProfile {
  const seen = new Set(observed);
  const base = options.includeBase === false ? [] : baseSyscalls(arch).filter((n) => !seen.has(n));
  const syscalls: NonNullable<OciSeccompProfile['syscalls']> = [];
  if (seen.size > 0) syscalls.push({ names: [...seen].sort(), action: 'SCMP_ACT_ALLOW' });
  if (base.length > 0) syscalls.push({ names: base, action: 'SCMP_ACT_ALLOW' });
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: [arch.scmp],
    syscalls,
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The SPO `SeccompProfile` object for a profile (SPO's spec has no defaultErrnoRet: EPERM is its default). */
export function buildSpoSeccompProfile(
  profile: OciSeccompProfile,
  meta: { name: string; namespace?: string; labels?: Record<string, string> },
): Record<string, unknown> {
  if (meta.name.length > 253 || !DNS_SUBDOMAIN.test(meta.name))
    throw new ContainmentError(ErrorCodes.USAGE, `"${meta.name}" is not a valid Kubernetes object name`);
  if (meta.namespace !== undefined && !DNS_LABEL.test(meta.namespace))
    throw new ContainmentError(ErrorCodes.USAGE, `"${meta.namespace}" is not a valid namespace`);
  return {
    apiVersion: 'security-profiles-operator.x-k8s.io/v1beta1',
    kind: 'SeccompProfile',
    metadata: {
      name: meta.name,
      ...(meta.namespace === undefined ? {} : { namespace: meta.namespace }),
      ...(meta.labels ? { labels: meta.labels } : {}),
    },
    spec: {
      defaultAction: profile.defaultAction,
      ...(profile.architectures ? { architectures: profile.architectures } : {}),
      syscalls: (profile.syscalls ?? []).map((s) => ({ action: s.action, names: s.names })),
    },
  };
}

/** Reads a profile file's text; a one-line SECCOMP_PROFILE_INVALID when it is not one. */
export function parseSeccompProfile(text: string, source: string): OciSeccompProfile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.SECCOMP_PROFILE_INVALID,
      `${source} is not JSON: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  const r = OciSeccompProfileSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const at = issue?.path.length ? issue.path.join('.') : '(root)';
    throw new ContainmentError(
      ErrorCodes.SECCOMP_PROFILE_INVALID,
      `${source} is not an OCI seccomp profile: ${at}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return r.data;
}
