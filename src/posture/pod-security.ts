/**
 * Pod Security Standards (baseline and restricted) as the upstream `k8s.io/pod-security-admission`
 * policy defines them for its latest version (v1.35 rules, module v0.36). Pure: no I/O.
 *
 * Input is untrusted JSON (admission requests, manifest files): every field is read defensively and
 * a malformed field never throws; it is treated as absent, as the API server's decoding would reject
 * it anyway. One violation is reported per offending field, so each carries an exact path.
 */

export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';
export const POD_SECURITY_LEVELS: readonly PodSecurityLevel[] = ['privileged', 'baseline', 'restricted'];

export interface PodSecurityViolation {
  /** Stable control id: `PSS-` + the upstream check id, e.g. `PSS-hostNamespaces`. */
  control: string;
  /** The lowest level the control belongs to. */
  level: 'baseline' | 'restricted';
  /** Field path, from the pod object (`spec.…`, `metadata.…`) or rebased with `options.specPath`. */
  path: string;
  message: string;
}

export interface PodSecurityOptions {
  /** Where the pod spec sits in the evaluated object (default `spec`; `spec.template.spec` for a Deployment). */
  specPath?: string;
  /** Where the pod metadata sits (default `metadata`; `spec.template.metadata` for a Deployment). */
  metadataPath?: string;
}

type Obj = Record<string, unknown>;

function obj(value: unknown): Obj | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Obj) : undefined;
}
function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

const ALLOWED_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
]);

const SELINUX_TYPES = new Set([
  '',
  'container_t',
  'container_init_t',
  'container_kvm_t',
  'container_engine_t',
]);

/** Volume sources the restricted level allows; any other key (or none) on a volume is refused. */
const RESTRICTED_VOLUME_SOURCES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'image',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

const APPARMOR_ANNOTATION_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';

interface ContainerRef {
  name: string;
  path: string;
  c: Obj;
  sc: Obj | undefined;
}

function containersOf(spec: Obj, specPath: string): ContainerRef[] {
  const out: ContainerRef[] = [];
  for (const field of ['initContainers', 'containers', 'ephemeralContainers']) {
    arr(spec[field]).forEach((raw, i) => {
      const c = obj(raw);
      if (!c) return;
      out.push({ name: str(c.name), path: `${specPath}.${field}[${i}]`, c, sc: obj(c.securityContext) });
    });
  }
  return out;
}

function quoteKey(key: string): string {
  return `[${JSON.stringify(key)}]`;
}

/**
 * Evaluates a pod (metadata and spec) against a level. `privileged` allows everything; restricted
 * includes baseline, minus the baseline checks that restricted replaces (capabilities, seccomp,
 * hostPath volumes, procMount), as upstream's registry does. Pods with `hostUsers: false` relax
 * runAsNonRoot, runAsUser and (baseline) procMount; Windows pods skip the Linux-only restricted
 * checks (allowPrivilegeEscalation, capabilities, seccomp).
 */
export function checkPodSecurity(
  level: PodSecurityLevel,
  pod: { metadata?: { annotations?: Record<string, string> }; spec: unknown },
  options: PodSecurityOptions = {},
): PodSecurityViolation[] {
  if (level === 'privileged') return [];
  const spec = obj(pod.spec) ?? {};
  const sp = options.specPath ?? 'spec';
  const out: PodSecurityViolation[] = [];
  const pc: PodChecks = {
    restricted: level === 'restricted',
    sp,
    mp: options.metadataPath ?? 'metadata',
    spec,
    annotations: obj(obj(pod.metadata)?.annotations) ?? {},
    psc: obj(spec.securityContext),
    containers: containersOf(spec, sp),
    windows: str(obj(spec.os)?.name) === 'windows',
    userNamespace: spec.hostUsers === false,
    add: (control, lvl, path, message) => {
      out.push({ control: `PSS-${control}`, level: lvl, path, message });
    },
    who: (ref) => `container "${ref.name}"`,
  };
  // In upstream's order: the violations come out in it.
  checkHostAccess(pc);
  checkMandatoryAccessControl(pc);
  checkProcMountAndSeccomp(pc);
  checkSysctlsAndHostHandlers(pc);
  if (!pc.restricted) return out;
  checkRestrictedVolumesAndCapabilities(pc);
  checkRunAsNonRoot(pc);
  return out;
}

/** What every check of one pod reads, and where it adds violations. */
interface PodChecks {
  restricted: boolean;
  /** Paths of the spec and the metadata in the checked object. */
  sp: string;
  mp: string;
  spec: Obj;
  annotations: Obj;
  /** The pod's securityContext. */
  psc: Obj | undefined;
  containers: ContainerRef[];
  windows: boolean;
  /** `hostUsers: false`. */
  userNamespace: boolean;
  add: (control: string, lvl: 'baseline' | 'restricted', path: string, message: string) => void;
  who: (ref: ContainerRef) => string;
}

/** Baseline: host namespaces, privileged, capabilities and hostPath (replaced in restricted), host ports. */
function checkHostAccess(pc: PodChecks): void {
  const { restricted, sp, spec, containers, add, who } = pc;
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (spec[field] === true)
      add('hostNamespaces', 'baseline', `${sp}.${field}`, `pod must not set ${field}=true`);
  }
  for (const ref of containers) {
    if (ref.sc?.privileged === true) {
      add(
        'privileged',
        'baseline',
        `${ref.path}.securityContext.privileged`,
        `${who(ref)} must not set securityContext.privileged=true`,
      );
    }
  }
  if (!restricted) {
    for (const ref of containers) {
      arr(obj(ref.sc?.capabilities)?.add).forEach((cap, i) => {
        if (!BASELINE_CAPABILITIES.has(str(cap))) {
          add(
            'capabilities_baseline',
            'baseline',
            `${ref.path}.securityContext.capabilities.add[${i}]`,
            `${who(ref)} must not add capability ${JSON.stringify(cap)}`,
          );
        }
      });
    }
    arr(spec.volumes).forEach((raw, i) => {
      const v = obj(raw);
      if (v && v.hostPath !== undefined && v.hostPath !== null) {
        add(
          'hostPathVolumes',
          'baseline',
          `${sp}.volumes[${i}].hostPath`,
          `volume "${str(v.name)}" must not be a hostPath volume`,
        );
      }
    });
  }
  for (const ref of containers) {
    arr(ref.c.ports).forEach((raw, i) => {
      const hostPort = obj(raw)?.hostPort;
      if (typeof hostPort === 'number' && hostPort !== 0) {
        add(
          'hostPorts',
          'baseline',
          `${ref.path}.ports[${i}].hostPort`,
          `${who(ref)} must not use hostPort ${hostPort}`,
        );
      }
    });
  }
}

/** Baseline: AppArmor profiles (fields and deprecated annotations) and SELinux options. */
function checkMandatoryAccessControl(pc: PodChecks): void {
  const { sp, mp, annotations, psc, containers, add, who } = pc;
  // AppArmor: only RuntimeDefault and Localhost types; deprecated annotations only runtime/default or localhost/*.
  const appArmorOk = (t: unknown): boolean => t === 'RuntimeDefault' || t === 'Localhost';
  const podAppArmor = obj(psc?.appArmorProfile);
  if (podAppArmor && !appArmorOk(podAppArmor.type)) {
    add(
      'appArmorProfile',
      'baseline',
      `${sp}.securityContext.appArmorProfile.type`,
      `pod must not set AppArmor profile type ${JSON.stringify(podAppArmor.type)}`,
    );
  }
  for (const ref of containers) {
    const p = obj(ref.sc?.appArmorProfile);
    if (p && !appArmorOk(p.type)) {
      add(
        'appArmorProfile',
        'baseline',
        `${ref.path}.securityContext.appArmorProfile.type`,
        `${who(ref)} must not set AppArmor profile type ${JSON.stringify(p.type)}`,
      );
    }
  }
  for (const [key, value] of Object.entries(annotations)) {
    if (!key.startsWith(APPARMOR_ANNOTATION_PREFIX)) continue;
    const v = str(value);
    if (v === '' || v === 'runtime/default' || v.startsWith('localhost/')) continue;
    add(
      'appArmorProfile',
      'baseline',
      `${mp}.annotations${quoteKey(key)}`,
      `annotation ${key}=${JSON.stringify(v)} sets a forbidden AppArmor profile`,
    );
  }
  // SELinux: type from the container set only, never user or role.
  const checkSelinux = (opts: Obj | undefined, path: string, subject: string): void => {
    if (!opts) return;
    const type = opts.type === undefined || opts.type === null ? '' : opts.type;
    if (!SELINUX_TYPES.has(str(type)) || typeof type !== 'string') {
      add(
        'seLinuxOptions',
        'baseline',
        `${path}.type`,
        `${subject} must not set seLinuxOptions.type ${JSON.stringify(type)}`,
      );
    }
    if (str(opts.user) !== '')
      add('seLinuxOptions', 'baseline', `${path}.user`, `${subject} must not set seLinuxOptions.user`);
    if (str(opts.role) !== '')
      add('seLinuxOptions', 'baseline', `${path}.role`, `${subject} must not set seLinuxOptions.role`);
  };
  checkSelinux(obj(psc?.seLinuxOptions), `${sp}.securityContext.seLinuxOptions`, 'pod');
  for (const ref of containers)
    checkSelinux(obj(ref.sc?.seLinuxOptions), `${ref.path}.securityContext.seLinuxOptions`, who(ref));
}

/** procMount and seccomp, at the level that applies. */
function checkProcMountAndSeccomp(pc: PodChecks): void {
  const { restricted, sp, psc, containers, windows, userNamespace, add, who } = pc;
  // procMount: baseline relaxes it for user-namespaced pods; restricted (v1.35) does not.
  if (restricted || !userNamespace) {
    for (const ref of containers) {
      const pm = ref.sc?.procMount;
      if (pm !== undefined && pm !== null && pm !== 'Default') {
        add(
          restricted ? 'procMount_restricted' : 'procMount',
          restricted ? 'restricted' : 'baseline',
          `${ref.path}.securityContext.procMount`,
          `${who(ref)} must not set securityContext.procMount to ${JSON.stringify(pm)}`,
        );
      }
    }
  }
  // Seccomp: baseline forbids Unconfined (any type but RuntimeDefault/Localhost) where set.
  const seccompOk = (t: unknown): boolean => t === 'RuntimeDefault' || t === 'Localhost';
  const podSeccomp = obj(psc?.seccompProfile);
  if (!restricted || !windows) {
    const control = restricted ? 'seccompProfile_restricted' : 'seccompProfile_baseline';
    const lvl = restricted ? 'restricted' : 'baseline';
    if (podSeccomp && !seccompOk(podSeccomp.type)) {
      add(
        control,
        lvl,
        `${sp}.securityContext.seccompProfile.type`,
        `pod must not set securityContext.seccompProfile.type to ${JSON.stringify(podSeccomp.type)}`,
      );
    }
    const podSet = podSeccomp !== undefined && seccompOk(podSeccomp.type);
    for (const ref of containers) {
      const p = obj(ref.sc?.seccompProfile);
      if (p) {
        if (!seccompOk(p.type)) {
          add(
            control,
            lvl,
            `${ref.path}.securityContext.seccompProfile.type`,
            `${who(ref)} must not set securityContext.seccompProfile.type to ${JSON.stringify(p.type)}`,
          );
        }
      } else if (restricted && !podSet) {
        add(
          control,
          lvl,
          `${ref.path}.securityContext.seccompProfile`,
          `pod or ${who(ref)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
        );
      }
    }
  }
}

/** Baseline: sysctls, Windows host processes, probe and lifecycle handlers aimed at another host. */
function checkSysctlsAndHostHandlers(pc: PodChecks): void {
  const { sp, psc, containers, add, who } = pc;
  arr(psc?.sysctls).forEach((raw, i) => {
    const name = str(obj(raw)?.name);
    if (!ALLOWED_SYSCTLS.has(name))
      add(
        'sysctls',
        'baseline',
        `${sp}.securityContext.sysctls[${i}].name`,
        `pod must not set sysctl ${JSON.stringify(name)}`,
      );
  });
  if (obj(psc?.windowsOptions)?.hostProcess === true) {
    add(
      'windowsHostProcess',
      'baseline',
      `${sp}.securityContext.windowsOptions.hostProcess`,
      'pod must not set securityContext.windowsOptions.hostProcess=true',
    );
  }
  for (const ref of containers) {
    if (obj(ref.sc?.windowsOptions)?.hostProcess === true) {
      add(
        'windowsHostProcess',
        'baseline',
        `${ref.path}.securityContext.windowsOptions.hostProcess`,
        `${who(ref)} must not set securityContext.windowsOptions.hostProcess=true`,
      );
    }
    // Probe and lifecycle handlers may not target another host (v1.34+).
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
      checkHandlerHost(obj(ref.c[probe]), `${ref.path}.${probe}`, ref, add);
    }
    const lifecycle = obj(ref.c.lifecycle);
    for (const hook of ['postStart', 'preStop'] as const) {
      checkHandlerHost(obj(lifecycle?.[hook]), `${ref.path}.lifecycle.${hook}`, ref, add);
    }
  }
}

/** Restricted: volume types, privilege escalation and capabilities (not on Windows). */
function checkRestrictedVolumesAndCapabilities(pc: PodChecks): void {
  const { sp, spec, containers, windows, add, who } = pc;
  arr(spec.volumes).forEach((raw, i) => {
    const v = obj(raw) ?? {};
    const sources = Object.keys(v).filter((k) => k !== 'name' && v[k] !== undefined && v[k] !== null);
    // A volume without a source is defaulted to emptyDir by the API server.
    if (sources.every((k) => RESTRICTED_VOLUME_SOURCES.has(k))) return;
    const kind = sources.find((k) => !RESTRICTED_VOLUME_SOURCES.has(k))!;
    add(
      'restrictedVolumes',
      'restricted',
      `${sp}.volumes[${i}].${kind}`,
      `volume "${str(v.name)}" must not use volume type ${JSON.stringify(kind)}`,
    );
  });
  if (!windows) {
    for (const ref of containers) {
      if (ref.sc?.allowPrivilegeEscalation !== false) {
        add(
          'allowPrivilegeEscalation',
          'restricted',
          `${ref.path}.securityContext.allowPrivilegeEscalation`,
          `${who(ref)} must set securityContext.allowPrivilegeEscalation=false`,
        );
      }
      const caps = obj(ref.sc?.capabilities);
      if (!arr(caps?.drop).includes('ALL')) {
        add(
          'capabilities_restricted',
          'restricted',
          `${ref.path}.securityContext.capabilities.drop`,
          `${who(ref)} must set securityContext.capabilities.drop=["ALL"]`,
        );
      }
      arr(caps?.add).forEach((cap, i) => {
        if (cap !== 'NET_BIND_SERVICE') {
          add(
            'capabilities_restricted',
            'restricted',
            `${ref.path}.securityContext.capabilities.add[${i}]`,
            `${who(ref)} must not add capability ${JSON.stringify(cap)}`,
          );
        }
      });
    }
  }
}

/** Restricted: runAsNonRoot and runAsUser (relaxed for user-namespaced pods). */
function checkRunAsNonRoot(pc: PodChecks): void {
  const { sp, psc, containers, userNamespace, add, who } = pc;
  if (!userNamespace) {
    const podNonRoot = psc?.runAsNonRoot;
    if (podNonRoot === false)
      add(
        'runAsNonRoot',
        'restricted',
        `${sp}.securityContext.runAsNonRoot`,
        'pod must not set securityContext.runAsNonRoot=false',
      );
    for (const ref of containers) {
      const v = ref.sc?.runAsNonRoot;
      if (v === false) {
        add(
          'runAsNonRoot',
          'restricted',
          `${ref.path}.securityContext.runAsNonRoot`,
          `${who(ref)} must not set securityContext.runAsNonRoot=false`,
        );
      } else if (v !== true && podNonRoot !== true) {
        add(
          'runAsNonRoot',
          'restricted',
          `${ref.path}.securityContext.runAsNonRoot`,
          `pod or ${who(ref)} must set securityContext.runAsNonRoot=true`,
        );
      }
    }
    if (psc?.runAsUser === 0)
      add('runAsUser', 'restricted', `${sp}.securityContext.runAsUser`, 'pod must not set runAsUser=0');
    for (const ref of containers) {
      if (ref.sc?.runAsUser === 0)
        add(
          'runAsUser',
          'restricted',
          `${ref.path}.securityContext.runAsUser`,
          `${who(ref)} must not set runAsUser=0`,
        );
    }
  }
}

function checkHandlerHost(
  handler: Obj | undefined,
  path: string,
  ref: ContainerRef,
  add: (control: string, lvl: 'baseline' | 'restricted', path: string, message: string) => void,
): void {
  if (!handler) return;
  for (const kind of ['httpGet', 'tcpSocket'] as const) {
    const host = str(obj(handler[kind])?.host);
    if (host !== '') {
      add(
        'hostProbesAndHostLifecycle',
        'baseline',
        `${path}.${kind}.host`,
        `container "${ref.name}" must not set ${kind}.host (${JSON.stringify(host)})`,
      );
    }
  }
}
