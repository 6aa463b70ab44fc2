/**
 * Posture of local containers from the engine's inspect document (Docker Engine API, which Podman
 * serves too). Pure: the adapter in `engine/` fetches the documents.
 */
import { controlOf } from './controls.js';
import type { PostureFinding } from './types.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export interface EngineFacts {
  /** The engine maps container root to an unprivileged host user for every container (rootless, userns-remap). */
  userNamespaceByDefault: boolean;
}

/** `info.SecurityOptions` holds `name=rootless` / `name=userns` when every container gets a user namespace. */
export function engineFactsFromInfo(info: unknown): EngineFacts {
  const options = arr(obj(info)?.SecurityOptions).map(str);
  return { userNamespaceByDefault: options.some((o) => /(^|,)name=(rootless|userns)(,|$)/.test(o)) };
}

/** Findings for one container's inspect document. */
export function evaluateContainer(inspect: unknown, engine: EngineFacts): PostureFinding[] {
  const doc = obj(inspect) ?? {};
  const host = obj(doc.HostConfig) ?? {};
  const name = str(doc.Name).replace(/^\//, '') || str(doc.Id).slice(0, 12);
  const object = { kind: 'Container', name, ...(typeof doc.Id === 'string' ? { uid: doc.Id } : {}) };
  const out: PostureFinding[] = [];
  const emit = (id: string, path: string, message: string): void => {
    const c = controlOf(id);
    out.push({
      control: id,
      category: c.category,
      severity: c.severity,
      title: c.title,
      object,
      path,
      message,
      remediation: c.remediation,
      source: 'engine',
    });
  };
  if (host.Privileged === true)
    emit('CTR-PRIVILEGED', 'HostConfig.Privileged', `container "${name}" runs privileged`);
  const added = arr(host.CapAdd)
    .map(str)
    .filter((c) => c !== '');
  if (added.length > 0)
    emit(
      'CTR-ADDED-CAPABILITIES',
      'HostConfig.CapAdd',
      `container "${name}" adds capabilities ${added.join(', ')}`,
    );
  const securityOpt = arr(host.SecurityOpt).map(str);
  // A privileged container runs without seccomp too, whatever SecurityOpt says.
  if (host.Privileged === true || securityOpt.some((o) => /^seccomp[=:]unconfined$/.test(o))) {
    emit('CTR-NO-SECCOMP', 'HostConfig.SecurityOpt', `container "${name}" runs without a seccomp profile`);
  }
  const userns = str(host.UsernsMode);
  const remapped = userns === '' ? engine.userNamespaceByDefault : userns !== 'host';
  if (!remapped)
    emit(
      'CTR-NO-USERNS',
      'HostConfig.UsernsMode',
      `container "${name}" has no user namespace: its root is the host's root`,
    );
  if (host.ReadonlyRootfs !== true)
    emit(
      'CTR-WRITABLE-ROOTFS',
      'HostConfig.ReadonlyRootfs',
      `container "${name}" has a writable root filesystem`,
    );
  if (typeof host.Memory !== 'number' || host.Memory <= 0)
    emit('CTR-NO-MEMORY-LIMIT', 'HostConfig.Memory', `container "${name}" has no memory limit`);
  if (typeof host.PidsLimit !== 'number' || host.PidsLimit <= 0)
    emit('CTR-NO-PIDS-LIMIT', 'HostConfig.PidsLimit', `container "${name}" has no pids limit`);
  return out;
}
