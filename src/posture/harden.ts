/**
 * `containment harden`: the smallest change that brings a workload's pod template to the Pod
 * Security Standards restricted level, as a strategic-merge patch. Pure: no I/O.
 *
 * The workload is hardened on a copy (securityContext set for the pod and every container, then
 * each remaining `checkPodSecurity('restricted')` violation fixed where a field can simply be
 * changed), the patch is the difference between the two, and whatever still violates the level
 * (volume types other than hostPath, ephemeral containers …) is reported as a note instead.
 *
 * Seccomp: `RuntimeDefault` unless a profile recorded from the syscalls the workload really makes
 * (`containment profile record`) is given: then `Localhost` with that profile, for the pod and
 * for every container that names its own profile (a container's own setting wins over the pod's).
 */
import { ContainmentError, ErrorCodes } from '../errors.js';
import { checkPodSecurity } from './pod-security.js';
import type { PodSecurityViolation } from './pod-security.js';
import { metadataPathOf, podTemplateOf } from './workload-pods.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;

export interface HardeningResult {
  kind: string;
  name: string;
  namespace?: string;
  patchType: 'strategic';
  /** Strategic-merge patch for the workload object (`kubectl patch --type strategic`). */
  patch: Obj;
  /** What the patch changes that may break the workload, and what it cannot fix. */
  notes: string[];
  /** Violations of the restricted level left after the patch (also in `notes`). */
  remaining: PodSecurityViolation[];
}

export interface HardenOptions {
  /** A recorded profile as the kubelet finds it: relative to its seccomp root (`operator/ns/web.json`). */
  seccompLocalhostProfile?: string;
}

/** Strategic-merge keys of the pod spec lists the patch may touch (from the Kubernetes API types). */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
  env: 'name',
};

/** `a.b[0]["x/y"].c` → ['a', 'b', 0, 'x/y', 'c']. */
export function parseFieldPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/\[("(?:[^"\\]|\\.)*")\]|\[(\d+)\]|([^.[\]]+)/g)) {
    if (m[1] !== undefined) out.push(JSON.parse(m[1]) as string);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(m[3]);
  }
  return out;
}

/** The container / field holding `path`'s last segment, or undefined when the path does not exist. */
function parentOf(root: Obj, path: string): { parent: Obj | unknown[]; key: string | number } | undefined {
  const parts = parseFieldPath(path);
  const key = parts.pop();
  if (key === undefined) return undefined;
  let node: unknown = root;
  for (const part of parts) {
    node = typeof part === 'number' ? (Array.isArray(node) ? node[part] : undefined) : obj(node)?.[part];
    if (node === undefined) return undefined;
  }
  if (typeof key === 'number' ? !Array.isArray(node) : !obj(node)) return undefined;
  return { parent: node as Obj | unknown[], key };
}

function setAt(root: Obj, path: string, value: unknown): boolean {
  const at = parentOf(root, path);
  if (!at) return false;
  (at.parent as Record<string | number, unknown>)[at.key] = value;
  return true;
}

function deleteAt(root: Obj, path: string): boolean {
  const at = parentOf(root, path);
  if (!at || Array.isArray(at.parent)) return false;
  delete (at.parent as Obj)[at.key as string];
  return true;
}

/** A child object of `o`, created when absent or not an object. */
function child(o: Obj, key: string): Obj {
  const existing = obj(o[key]);
  if (existing) return existing;
  const made: Obj = {};
  o[key] = made;
  return made;
}

const seccompOk = (p: unknown): boolean => ['RuntimeDefault', 'Localhost'].includes(String(obj(p)?.type));

/** The securityContext every pod and container gets. */
function hardenSecurityContexts(spec: Obj, notes: string[], options: HardenOptions): void {
  const localhost = options.seccompLocalhostProfile;
  const wanted = (): Obj =>
    localhost === undefined ? { type: 'RuntimeDefault' } : { type: 'Localhost', localhostProfile: localhost };
  const psc = child(spec, 'securityContext');
  if (psc.runAsNonRoot !== true) {
    psc.runAsNonRoot = true;
    if (typeof psc.runAsUser !== 'number' || psc.runAsUser === 0)
      notes.push(
        'runAsNonRoot=true: the image must declare a numeric non-root USER, or set securityContext.runAsUser to one',
      );
  }
  if (localhost !== undefined || !seccompOk(psc.seccompProfile)) psc.seccompProfile = wanted();
  for (const field of ['initContainers', 'containers'] as const) {
    const list = Array.isArray(spec[field]) ? (spec[field] as unknown[]) : [];
    for (const raw of list) {
      const c = obj(raw);
      if (!c) continue;
      const sc = child(c, 'securityContext');
      sc.allowPrivilegeEscalation = false;
      if (sc.privileged === true) {
        sc.privileged = false;
        notes.push(`container "${String(c.name)}": privileged=true removed; check it still works without it`);
      }
      if (sc.runAsNonRoot === false) sc.runAsNonRoot = true;
      if (sc.seccompProfile !== undefined && (localhost !== undefined || !seccompOk(sc.seccompProfile)))
        sc.seccompProfile = wanted();
      const caps = child(sc, 'capabilities');
      const added = Array.isArray(caps.add) ? (caps.add as unknown[]) : [];
      // NET_BIND_SERVICE is the one capability restricted allows, and only if it was asked for.
      if (added.includes('NET_BIND_SERVICE')) caps.add = ['NET_BIND_SERVICE'];
      else delete caps.add;
      const dropped = added.filter((a) => a !== 'NET_BIND_SERVICE');
      if (dropped.length > 0)
        notes.push(`container "${String(c.name)}": added capabilities ${dropped.join(', ')} removed`);
      caps.drop = ['ALL'];
    }
  }
}

/**
 * Fixes one violation on `root` (the whole object) where a field can simply be changed; returns a
 * note when it did (the change may alter behaviour), undefined when it could not.
 */
function fixViolation(root: Obj, v: PodSecurityViolation): string | 'fixed' | undefined {
  // Ephemeral containers cannot be changed once added, so a patch may not touch them.
  if (v.path.includes('.ephemeralContainers[')) return undefined;
  const control = v.control.replace(/^PSS-/, '');
  const changed = `${v.path}: ${v.message} — changed; check the workload still works`;
  switch (control) {
    case 'hostNamespaces':
    case 'privileged':
      return setAt(root, v.path, false) ? changed : undefined;
    case 'hostPorts':
    case 'procMount':
    case 'procMount_restricted':
    case 'seLinuxOptions':
    case 'runAsUser':
    case 'windowsHostProcess':
      return deleteAt(root, v.path) ? changed : undefined;
    case 'appArmorProfile':
      if (v.path.endsWith('.annotations') || /\.annotations\[/.test(v.path))
        return setAt(root, v.path, 'runtime/default') ? 'fixed' : undefined;
      return setAt(root, v.path, 'RuntimeDefault') ? 'fixed' : undefined;
    case 'hostPathVolumes':
    case 'restrictedVolumes': {
      if (!v.path.endsWith('.hostPath')) return undefined;
      const volume = parentOf(root, v.path);
      if (!volume || Array.isArray(volume.parent)) return undefined;
      const path = obj((volume.parent as Obj).hostPath)?.path;
      delete (volume.parent as Obj).hostPath;
      (volume.parent as Obj).emptyDir = {};
      return `volume "${String((volume.parent as Obj).name)}": hostPath ${String(path)} replaced by an emptyDir; the workload no longer sees the host's files`;
    }
    default:
      return undefined;
  }
}

/** Removes the sysctls restricted (and baseline) forbid; indices from the violation paths. */
function removeSysctls(root: Obj, violations: PodSecurityViolation[], notes: string[]): void {
  const bad = violations.filter((v) => v.control === 'PSS-sysctls');
  const byList = new Map<string, number[]>();
  for (const v of bad) {
    const m = /^(.*\.sysctls)\[(\d+)\]/.exec(v.path);
    if (!m) continue;
    byList.set(m[1] as string, [...(byList.get(m[1] as string) ?? []), Number(m[2])]);
    notes.push(`${v.path}: ${v.message} — removed`);
  }
  for (const [listPath, indices] of byList) {
    const at = parentOf(root, listPath);
    const list = at && (at.parent as Record<string | number, unknown>)[at.key];
    if (!Array.isArray(list)) continue;
    for (const i of [...new Set(indices)].sort((a, b) => b - a)) list.splice(i, 1);
  }
}

/**
 * Strategic-merge patch turning `from` into `to`: objects recursively, lists with a merge key
 * element by element (the key included), other lists and values replaced, removed keys as null.
 */
export function strategicMergeDiff(from: Obj, to: Obj): Obj | undefined {
  const patch: Obj = {};
  for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null;
  for (const [key, value] of Object.entries(to)) {
    const before = from[key];
    if (JSON.stringify(before) === JSON.stringify(value)) continue;
    const a = obj(before);
    const b = obj(value);
    if (a && b) {
      const sub = strategicMergeDiff(a, b);
      if (sub) patch[key] = sub;
      continue;
    }
    const mergeKey = MERGE_KEYS[key];
    if (mergeKey && Array.isArray(before) && Array.isArray(value)) {
      const list = listDiff(before, value, mergeKey);
      if (list) {
        if (list.length > 0) patch[key] = list;
        continue;
      }
    }
    patch[key] = value;
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}

/** Element patches by merge key; undefined when elements cannot be matched (then the list is replaced). */
function listDiff(from: unknown[], to: unknown[], mergeKey: string): Obj[] | undefined {
  const keyed = (list: unknown[]): Map<unknown, Obj> | undefined => {
    const map = new Map<unknown, Obj>();
    for (const item of list) {
      const o = obj(item);
      if (!o || o[mergeKey] === undefined || map.has(o[mergeKey])) return undefined;
      map.set(o[mergeKey], o);
    }
    return map;
  };
  const a = keyed(from);
  const b = keyed(to);
  if (!a || !b || [...a.keys()].some((k) => !b.has(k))) return undefined;
  const out: Obj[] = [];
  for (const [k, item] of b) {
    const before = a.get(k);
    if (!before) {
      out.push(item);
      continue;
    }
    const sub = strategicMergeDiff(before, item);
    if (sub) out.push({ [mergeKey]: k, ...sub });
  }
  return out;
}

/** `{ spec: { template: { spec: x } } }` for `spec.template.spec`. */
function nestAt(path: string, value: Obj): Obj {
  return parseFieldPath(path)
    .reverse()
    .reduce<Obj>((inner, part) => ({ [String(part)]: inner }), value);
}

function valueAt(root: Obj, path: string): Obj {
  let node: unknown = root;
  for (const part of parseFieldPath(path)) node = obj(node)?.[String(part)];
  return obj(node) ?? {};
}

/** Merges two patches built from disjoint paths (spec and metadata of the same template). */
function mergePatches(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const left = obj(out[k]);
    const right = obj(v);
    out[k] = left && right ? mergePatches(left, right) : v;
  }
  return out;
}

export function hardenWorkload(object: unknown, options: HardenOptions = {}): HardeningResult {
  const template = podTemplateOf(object);
  if (!template) {
    const kind = obj(object)?.kind;
    throw new ContainmentError(
      ErrorCodes.MANIFEST_INVALID,
      `not a Pod or pod-owning workload (kind ${typeof kind === 'string' ? kind : 'missing'})`,
    );
  }
  const original = object as Obj;
  const hardened = structuredClone(original);
  const specPath = template.specPath;
  const metadataPath = metadataPathOf(specPath);
  const notes: string[] = [];
  const spec = valueAt(hardened, specPath);
  hardenSecurityContexts(spec, notes, options);
  const containers = Array.isArray(spec.containers) ? spec.containers.length : 0;
  if (options.seccompLocalhostProfile !== undefined && containers > 1)
    notes.push(
      `seccomp Localhost ${options.seccompLocalhostProfile} applies to all ${containers} containers; a profile recorded from one container may be too tight for the others`,
    );

  const check = (): PodSecurityViolation[] => {
    const t = podTemplateOf(hardened);
    return t
      ? checkPodSecurity(
          'restricted',
          { ...(t.metadata ? { metadata: t.metadata } : {}), spec: t.spec },
          { specPath, metadataPath },
        )
      : [];
  };
  const violations = check();
  removeSysctls(hardened, violations, notes);
  for (const v of violations) {
    if (v.control === 'PSS-sysctls') continue;
    const fixed = fixViolation(hardened, v);
    if (fixed && fixed !== 'fixed') notes.push(fixed);
  }
  const remaining = check();
  for (const v of remaining) notes.push(`not fixed automatically: ${v.path}: ${v.message}`);
  if (template.kind === 'Pod')
    notes.push(
      "a Pod's spec is mostly immutable: apply this to the workload that owns it, or recreate the pod",
    );

  const specPatch = strategicMergeDiff(valueAt(original, specPath), spec);
  const metaPatch = strategicMergeDiff(
    { annotations: valueAt(original, `${metadataPath}.annotations`) },
    { annotations: valueAt(hardened, `${metadataPath}.annotations`) },
  );
  const patch = mergePatches(
    specPatch ? nestAt(specPath, specPatch) : {},
    metaPatch ? nestAt(metadataPath, metaPatch) : {},
  );
  return {
    kind: template.kind,
    name: template.name,
    ...(template.namespace === undefined ? {} : { namespace: template.namespace }),
    patchType: 'strategic',
    patch,
    notes,
    remaining,
  };
}
