/**
 * The built-in rules. Name lists follow what Falco's default ruleset counts as a shell, a package
 * manager and a miner pool port, narrowed where a port is mostly ordinary web traffic (8080, 8000).
 */
import type { RuleContext, RuntimeRule } from './rule.js';

export const SHELLS = new Set(['sh', 'ash', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'csh', 'tcsh', 'fish']);
export const PACKAGE_MANAGERS = new Set([
  'apt',
  'apt-get',
  'aptitude',
  'dpkg',
  'apk',
  'rpm',
  'dnf',
  'yum',
  'microdnf',
  'zypper',
  'pip',
  'pip3',
  'npm',
  'yarn',
  'pnpm',
  'gem',
]);
export const MINER_NAMES = new Set([
  'xmrig',
  'xmr-stak',
  'xmr-stak-cpu',
  'minerd',
  'cpuminer',
  'cpuminer-multi',
  'cgminer',
  'bfgminer',
  'ethminer',
  'nbminer',
  't-rex',
  'phoenixminer',
  'lolminer',
  'teamredminer',
  'ccminer',
  'nanominer',
  'kawpowminer',
  'gminer',
  'srbminer-multi',
]);
export const STRATUM_PORTS = new Set([
  3333, 3334, 3335, 3336, 3357, 4444, 5555, 5556, 5588, 5730, 6099, 6666, 7777, 7778, 8888, 9999, 14433,
  14444, 45560, 45700,
]);

/** Files whose reading is credential access: exact paths, and prefixes/patterns. */
const SENSITIVE_EXACT = new Set([
  '/etc/shadow',
  '/etc/gshadow',
  '/etc/sudoers',
  '/root/.kube/config',
  '/root/.docker/config.json',
]);
const SENSITIVE_PATTERNS = [
  /^\/etc\/(shadow|gshadow)-?$/,
  /^\/etc\/sudoers\.d\//,
  /^\/(root|home\/[^/]+)\/\.ssh\/(id_[a-z0-9_]+|authorized_keys|[^/]*\.pem)$/,
  /^\/etc\/ssh\/ssh_host_[a-z0-9]+_key$/,
  /^\/(root|home\/[^/]+)\/\.aws\/(credentials|config)$/,
  /^\/(root|home\/[^/]+)\/\.config\/gcloud\//,
  /^\/(root|home\/[^/]+)\/\.azure\//,
  /^\/(root|home\/[^/]+)\/\.kube\/config$/,
  /^\/(var\/)?run\/secrets\/kubernetes\.io\/serviceaccount\/token$/,
  /^\/(var\/)?run\/secrets\/eks\.amazonaws\.com\//,
  /^\/etc\/kubernetes\/(admin|kubelet|controller-manager|scheduler)\.conf$/,
  /^\/etc\/kubernetes\/pki\/.*\.key$/,
];

export function isSensitivePath(path: string): boolean {
  return SENSITIVE_EXACT.has(path) || SENSITIVE_PATTERNS.some((p) => p.test(path));
}

const O_ACCMODE = 3;
const PTRACE_REQUESTS: Record<number, string> = { 16: 'PTRACE_ATTACH', 0x4206: 'PTRACE_SEIZE' };

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || /^::ffff:127\./.test(address);
}

function procEvidence(ctx: RuleContext): Record<string, string | number> {
  const p = ctx.process;
  return {
    name: p.name,
    ...(p.exe ? { exe: p.exe } : {}),
    ...(p.parentName ? { parent: p.parentName } : {}),
  };
}

const rules: RuntimeRule[] = [
  {
    id: 'shell_in_container',
    title: 'A shell was started in a container whose entrypoint is not a shell',
    severity: 'MEDIUM',
    kind: 'process',
    events: ['exec'],
    description:
      'An interactive or injected shell (podman/kubectl exec, an exploit) in a workload that does not run one. Shells started by a shell are folded into the first.',
    origin: 'builtin',
    match(ctx) {
      const { process: p, container: c } = ctx;
      if (!SHELLS.has(p.name)) return undefined;
      if (c.entrypointName !== undefined && SHELLS.has(c.entrypointName)) return undefined;
      if (p.parentName !== undefined && SHELLS.has(p.parentName)) return undefined;
      return { evidence: { ...procEvidence(ctx), entrypoint: c.entrypointName ?? 'unknown' }, key: p.name };
    },
  },
  {
    id: 'package_manager_at_runtime',
    title: 'A package manager ran in a running container',
    severity: 'MEDIUM',
    kind: 'process',
    events: ['exec'],
    description:
      'Installing software into a running container changes it away from its image (apt, dpkg, apk, rpm, dnf, pip, npm, …).',
    origin: 'builtin',
    match(ctx) {
      if (!PACKAGE_MANAGERS.has(ctx.process.name)) return undefined;
      return { evidence: procEvidence(ctx), key: ctx.process.name };
    },
  },
  {
    id: 'drift_executable',
    title: 'A program that is not in the image was executed',
    severity: 'HIGH',
    kind: 'drift',
    events: ['exec'],
    description:
      'The executable was written or changed after the container started (its writable overlay layer), or runs from memory (memfd).',
    origin: 'builtin',
    match(ctx) {
      const d = ctx.drift;
      if (!d || (!d.upperLayer && !d.memfd)) return undefined;
      const where = d.memfd ? 'memfd' : 'writable-layer';
      return {
        evidence: { ...procEvidence(ctx), where, ...(d.deleted ? { deleted: true } : {}) },
        key: `${where}:${ctx.process.exe ?? ctx.process.name}`,
      };
    },
  },
  {
    id: 'new_listener',
    title: 'A container started listening on a new port',
    severity: 'MEDIUM',
    kind: 'socket',
    events: ['listen', 'bind'],
    description:
      'A listening socket the container did not have when it started (after the start-up grace period): a backdoor or bind shell.',
    origin: 'builtin',
    match(ctx) {
      const { event: e, container: c } = ctx;
      if (e.port === undefined || e.port === 0 || c.initialListeners.has(e.port)) return undefined;
      if (c.startedAt !== undefined && e.time - c.startedAt < ctx.options.listenerGraceMs) return undefined;
      const proto = e.kind === 'bind' ? 'udp-or-tcp' : 'tcp';
      return {
        evidence: { ...procEvidence(ctx), address: e.address ?? '', port: e.port, protocol: proto },
        key: String(e.port),
      };
    },
  },
  {
    id: 'outbound_unexpected',
    title: 'An unexpected outbound connection',
    severity: 'LOW',
    kind: 'socket',
    events: ['connect'],
    description:
      'A connection to a non-loopback address on a port outside the allowed list (53, 80, 443 by default) and not a miner pool port.',
    origin: 'builtin',
    match(ctx) {
      const e = ctx.event;
      if (e.port === undefined || e.address === undefined || e.port === 0) return undefined;
      if (isLoopback(e.address) || e.address === '0.0.0.0' || e.address === '::') return undefined;
      if (ctx.options.allowedOutboundPorts.includes(e.port) || STRATUM_PORTS.has(e.port)) return undefined;
      return {
        evidence: { ...procEvidence(ctx), address: e.address, port: e.port },
        key: `${e.address}:${e.port}`,
      };
    },
  },
  {
    id: 'crypto_miner',
    title: 'Cryptocurrency mining',
    severity: 'CRITICAL',
    kind: 'process',
    events: ['exec', 'connect'],
    description:
      'A known miner program, a stratum URL in the command line, or a connection to a mining-pool (stratum) port.',
    origin: 'builtin',
    match(ctx) {
      const { event: e, process: p } = ctx;
      if (e.kind === 'exec') {
        const url = p.argv.find((a) => /stratum\d*\+(tcp|ssl|tls):\/\//i.test(a));
        if (MINER_NAMES.has(p.name.toLowerCase()) || url)
          return {
            evidence: { ...procEvidence(ctx), signal: url ? 'stratum-url' : 'miner-name' },
            key: p.name,
          };
        return undefined;
      }
      if (e.port !== undefined && STRATUM_PORTS.has(e.port))
        return {
          evidence: { ...procEvidence(ctx), signal: 'stratum-port', address: e.address ?? '', port: e.port },
          key: `${e.address}:${e.port}`,
        };
      return undefined;
    },
  },
  {
    id: 'sensitive_file_read',
    title: 'A sensitive file was opened',
    severity: 'HIGH',
    kind: 'file',
    events: ['open'],
    description:
      'Password hashes (/etc/shadow), SSH keys, cloud credentials, kubeconfigs or a service-account token were opened.',
    origin: 'builtin',
    match(ctx) {
      const file = ctx.event.file;
      if (file === undefined || !isSensitivePath(file)) return undefined;
      const access = ((ctx.event.flags ?? 0) & O_ACCMODE) === 0 ? 'read' : 'write';
      return { evidence: { ...procEvidence(ctx), file, access }, key: file };
    },
  },
  {
    id: 'privilege_escalation',
    title: 'A non-root process gained root',
    severity: 'HIGH',
    kind: 'privilege',
    events: ['exec', 'setid'],
    description:
      'A setuid-root program was executed by a non-root user (euid 0, uid not 0), or a non-root process asked for uid/gid 0.',
    origin: 'builtin',
    match(ctx) {
      const e = ctx.event;
      if (e.kind === 'exec' && e.euid === 0 && e.uid !== 0)
        return {
          evidence: { ...procEvidence(ctx), uid: e.uid, euid: 0, via: 'setuid-exec' },
          key: ctx.process.name,
        };
      if (e.kind === 'setid' && e.uid !== 0)
        return {
          evidence: { ...procEvidence(ctx), uid: e.uid, via: e.syscall ?? 'setuid' },
          key: e.syscall ?? 'setid',
        };
      return undefined;
    },
  },
  {
    id: 'reverse_shell',
    title: 'A shell wired to a network connection (reverse shell)',
    severity: 'CRITICAL',
    kind: 'process',
    events: ['exec'],
    description: 'A shell whose stdin or stdout is a socket: someone is typing into it over the network.',
    supersedes: ['shell_in_container'],
    origin: 'builtin',
    match(ctx) {
      const e = ctx.event;
      if (!SHELLS.has(ctx.process.name) || (!e.stdinSocket && !e.stdoutSocket)) return undefined;
      return {
        evidence: {
          ...procEvidence(ctx),
          stdinSocket: e.stdinSocket ?? false,
          stdoutSocket: e.stdoutSocket ?? false,
        },
        key: ctx.process.name,
      };
    },
  },
  {
    id: 'ptrace_attach',
    title: 'A process attached to another with ptrace',
    severity: 'HIGH',
    kind: 'process',
    events: ['ptrace'],
    description:
      'PTRACE_ATTACH or PTRACE_SEIZE: reading or injecting into another process (credential theft, code injection).',
    origin: 'builtin',
    match(ctx) {
      const e = ctx.event;
      return {
        evidence: {
          ...procEvidence(ctx),
          targetPid: e.targetPid ?? 0,
          request: PTRACE_REQUESTS[e.request ?? 0] ?? String(e.request),
        },
        key: String(e.targetPid),
      };
    },
  },
  {
    id: 'kernel_module_load',
    title: 'A container loaded a kernel module',
    severity: 'CRITICAL',
    kind: 'kernel',
    events: ['module'],
    description: 'init_module/finit_module from a container: a rootkit or an escape.',
    origin: 'builtin',
    match(ctx) {
      return { evidence: { ...procEvidence(ctx), syscall: ctx.event.syscall ?? 'init_module' } };
    },
  },
];

export const BUILTIN_RULES: readonly RuntimeRule[] = rules;
