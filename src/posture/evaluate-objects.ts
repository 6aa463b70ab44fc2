/**
 * Posture of Kubernetes objects (from a live cluster or manifest files): Pod Security Standards,
 * limits, namespaces without ResourceQuota/NetworkPolicy, exposed Services, RBAC, images. Pure:
 * image scan verdicts are looked up beforehand and passed in.
 */
import type { ImageVerdict } from './image-scan-verdict.js';
import { checkImage } from './image-reference.js';
import { controlOf } from './controls.js';
import { checkPodSecurity } from './pod-security.js';
import type { PodSecurityLevel } from './pod-security.js';
import type { PostureFinding, PostureInput, PostureObjectRef } from './types.js';
import { metadataPathOf, podTemplateOf, POD_OWNING_KINDS } from './workload-pods.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export interface EvaluateOptions {
  level: PodSecurityLevel;
  allowedRegistries?: string[];
  /** Verdicts by image reference as written in the pod spec; absent = no scan check. */
  imageVerdicts?: ReadonlyMap<string, ImageVerdict>;
  /** Namespace of namespaced objects that name none (manifest files); default `default`. */
  defaultNamespace?: string;
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'Node',
  'PersistentVolume',
  'CustomResourceDefinition',
]);
const POD_OWNING = new Set(POD_OWNING_KINDS);
const BOOTSTRAP_LABEL = 'kubernetes.io/bootstrapping';
/** Built-in ClusterRoles that can read secrets, for bindings whose role is not in the input. */
const BUILTIN_SECRET_READERS = new Set(['admin', 'edit']);

function refOf(o: Obj, defaultNamespace: string): PostureObjectRef {
  const meta = obj(o.metadata) ?? {};
  const kind = str(o.kind);
  const ref: PostureObjectRef = { kind, name: str(meta.name) || str(meta.generateName) };
  if (typeof o.apiVersion === 'string') ref.apiVersion = o.apiVersion;
  if (!CLUSTER_SCOPED.has(kind)) ref.namespace = str(meta.namespace) || defaultNamespace;
  if (typeof meta.uid === 'string') ref.uid = meta.uid;
  return ref;
}

/** The namespace an object lives in (`defaultNamespace` when a namespaced object names none); undefined when cluster-scoped. */
export function namespaceOf(
  object: Record<string, unknown>,
  defaultNamespace = 'default',
): string | undefined {
  const kind = str(object.kind);
  if (kind === 'Namespace') return str(obj(object.metadata)?.name) || undefined;
  if (CLUSTER_SCOPED.has(kind)) return undefined;
  return str(obj(object.metadata)?.namespace) || defaultNamespace;
}

function isBootstrap(o: Obj): boolean {
  return obj(obj(o.metadata)?.labels)?.[BOOTSTRAP_LABEL] === 'rbac-defaults';
}

function controllerUid(o: Obj): string | undefined {
  const owner = arr(obj(o.metadata)?.ownerReferences)
    .map(obj)
    .find((r) => r?.controller === true);
  return typeof owner?.uid === 'string' ? owner.uid : undefined;
}

/** Evaluates every object; objects of kinds no control looks at are ignored. */
export function evaluateObjects(inputs: readonly PostureInput[], options: EvaluateOptions): PostureFinding[] {
  const defaultNamespace = options.defaultNamespace ?? 'default';
  const findings: PostureFinding[] = [];
  const emit = (
    controlId: string,
    input: PostureInput,
    ref: PostureObjectRef,
    path: string,
    message: string,
  ): void => {
    const c = controlOf(controlId);
    findings.push({
      control: c.id,
      category: c.category,
      severity: c.severity,
      title: c.title,
      object: ref,
      path,
      message,
      remediation: c.remediation,
      ...(input.source !== undefined ? { source: input.source } : {}),
    });
  };

  const byKind = new Map<string, PostureInput[]>();
  for (const input of inputs) {
    const kind = str(input.object.kind);
    const list = byKind.get(kind) ?? [];
    list.push(input);
    byKind.set(kind, list);
  }
  const ofKind = (kind: string): PostureInput[] => byKind.get(kind) ?? [];
  const nsOf = (o: Obj): string => str(obj(o.metadata)?.namespace) || defaultNamespace;

  const ev: Evaluation = { inputs, options, defaultNamespace, emit, ofKind, nsOf };
  const namespacesWithWorkloads = evaluateWorkloads(ev);
  evaluateNamespaces(ev, namespacesWithWorkloads);
  evaluateServices(ev);
  evaluateRbac(ev);
  return findings;
}

/** What every part of one evaluation reads, and where it emits findings. */
interface Evaluation {
  inputs: readonly PostureInput[];
  options: EvaluateOptions;
  defaultNamespace: string;
  emit: (
    controlId: string,
    input: PostureInput,
    ref: PostureObjectRef,
    path: string,
    message: string,
  ) => void;
  ofKind: (kind: string) => PostureInput[];
  nsOf: (o: Obj) => string;
}

/**
 * Pod templates (Pod Security, containers, the default service account); returns the namespaces
 * that run workloads.
 */
function evaluateWorkloads(ev: Evaluation): Set<string> {
  const { inputs, options, defaultNamespace, emit, ofKind, nsOf } = ev;
  // Pods owned by a workload that is itself in the input are judged through that workload's template.
  const workloadUids = new Set<string>();
  for (const input of inputs) {
    const uid = obj(input.object.metadata)?.uid;
    if (POD_OWNING.has(str(input.object.kind)) && typeof uid === 'string') workloadUids.add(uid);
  }
  const serviceAccountAutomount = new Map<string, boolean>();
  for (const { object } of ofKind('ServiceAccount')) {
    if (typeof object.automountServiceAccountToken === 'boolean') {
      serviceAccountAutomount.set(
        `${nsOf(object)}/${str(obj(object.metadata)?.name)}`,
        object.automountServiceAccountToken,
      );
    }
  }

  const namespacesWithWorkloads = new Set<string>();
  for (const input of inputs) {
    if (!POD_OWNING.has(str(input.object.kind))) continue;
    const template = podTemplateOf(input.object);
    if (!template) continue;
    const ns = nsOf(input.object);
    namespacesWithWorkloads.add(ns);
    const owner = controllerUid(input.object);
    if (owner !== undefined && workloadUids.has(owner)) continue;
    const ref = refOf(input.object, defaultNamespace);
    const sp = template.specPath;
    for (const v of checkPodSecurity(
      options.level,
      { metadata: template.metadata ?? {}, spec: template.spec },
      { specPath: sp, metadataPath: metadataPathOf(sp) },
    )) {
      emit(v.control, input, ref, v.path, v.message);
    }
    const spec = obj(template.spec) ?? {};
    for (const field of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
      arr(spec[field]).forEach((raw, i) => {
        const c = obj(raw);
        if (!c) return;
        evaluateContainer(ev, input, ref, field, c, `${sp}.${field}[${i}]`);
      });
    }
    const sa = str(spec.serviceAccountName) || str(spec.serviceAccount) || 'default';
    if (
      sa === 'default' &&
      spec.automountServiceAccountToken !== false &&
      serviceAccountAutomount.get(`${ns}/default`) !== false
    ) {
      emit(
        'RBAC-DEFAULT-SA-TOKEN',
        input,
        ref,
        `${sp}.automountServiceAccountToken`,
        'pod runs as the default service account with its API token mounted',
      );
    }
  }
  return namespacesWithWorkloads;
}

/** One container of a pod template: limits (not on ephemeral ones), its image and its scan verdict. */
function evaluateContainer(
  ev: Evaluation,
  input: PostureInput,
  ref: PostureObjectRef,
  field: 'initContainers' | 'containers' | 'ephemeralContainers',
  c: Obj,
  path: string,
): void {
  const { options, emit } = ev;
  const name = str(c.name);
  if (field !== 'ephemeralContainers') {
    const limits = obj(obj(c.resources)?.limits);
    if (limits?.cpu === undefined || limits.cpu === null) {
      emit(
        'RES-NO-CPU-LIMIT',
        input,
        ref,
        `${path}.resources.limits.cpu`,
        `container "${name}" has no CPU limit`,
      );
    }
    if (limits?.memory === undefined || limits.memory === null) {
      emit(
        'RES-NO-MEMORY-LIMIT',
        input,
        ref,
        `${path}.resources.limits.memory`,
        `container "${name}" has no memory limit`,
      );
    }
  }
  const image = str(c.image);
  for (const f of checkImage(image, {
    ...(options.allowedRegistries ? { allowedRegistries: options.allowedRegistries } : {}),
  })) {
    emit(f.control, input, ref, `${path}.image`, `container "${name}": ${f.message}`);
  }
  const verdict = options.imageVerdicts?.get(image);
  if (verdict?.status === 'fail') {
    emit(
      'IMG-SCAN-FAILED',
      input,
      ref,
      `${path}.image`,
      `container "${name}": image ${image} fails compliance: ${verdict.reasons.join(', ')}`,
    );
  } else if (verdict?.status === 'unknown' && !verdict.unreachable) {
    emit(
      'IMG-NOT-SCANNED',
      input,
      ref,
      `${path}.image`,
      verdict.scan
        ? `container "${name}": image ${image}: ${verdict.reason}`
        : `container "${name}": image ${image} has never been scanned`,
    );
  }
}

/** Namespaces running workloads without a ResourceQuota or any NetworkPolicy. */
function evaluateNamespaces(ev: Evaluation, namespacesWithWorkloads: ReadonlySet<string>): void {
  const { emit, ofKind, nsOf } = ev;
  for (const ns of [...namespacesWithWorkloads].sort()) {
    const ref: PostureObjectRef = { apiVersion: 'v1', kind: 'Namespace', name: ns, namespace: ns };
    const nsInput: PostureInput = { object: { kind: 'Namespace', metadata: { name: ns } } };
    if (!ofKind('ResourceQuota').some((i) => nsOf(i.object) === ns)) {
      emit(
        'NS-NO-RESOURCEQUOTA',
        nsInput,
        ref,
        '',
        `namespace "${ns}" runs workloads without a ResourceQuota`,
      );
    }
    if (!ofKind('NetworkPolicy').some((i) => nsOf(i.object) === ns)) {
      emit(
        'NS-NO-NETWORKPOLICY',
        nsInput,
        ref,
        '',
        `namespace "${ns}" runs workloads without any NetworkPolicy`,
      );
    }
  }
}

/** Services exposed beyond the cluster. */
function evaluateServices(ev: Evaluation): void {
  const { defaultNamespace, emit, ofKind } = ev;
  for (const input of ofKind('Service')) {
    const type = str(obj(input.object.spec)?.type);
    const ref = refOf(input.object, defaultNamespace);
    if (type === 'NodePort')
      emit(
        'NET-NODEPORT-SERVICE',
        input,
        ref,
        'spec.type',
        `service "${ref.name}" is exposed on every node's address (NodePort)`,
      );
    if (type === 'LoadBalancer')
      emit(
        'NET-LOADBALANCER-SERVICE',
        input,
        ref,
        'spec.type',
        `service "${ref.name}" is exposed through a load balancer`,
      );
  }
}

/** Roles granting wildcards, bindings to cluster-admin or to roles that read secrets cluster-wide. */
function evaluateRbac(ev: Evaluation): void {
  const { defaultNamespace, emit, ofKind } = ev;
  const clusterRoles = new Map<string, Obj>();
  for (const { object } of ofKind('ClusterRole')) clusterRoles.set(str(obj(object.metadata)?.name), object);
  for (const input of [...ofKind('Role'), ...ofKind('ClusterRole')]) {
    if (isBootstrap(input.object)) continue; // the API server's own defaults (cluster-admin, system:*)
    const ref = refOf(input.object, defaultNamespace);
    arr(input.object.rules).forEach((raw, i) => {
      const rule = obj(raw) ?? {};
      if (arr(rule.verbs).includes('*'))
        emit(
          'RBAC-WILDCARD-VERB',
          input,
          ref,
          `rules[${i}].verbs`,
          `${ref.kind} "${ref.name}" grants every verb`,
        );
      if (arr(rule.resources).includes('*'))
        emit(
          'RBAC-WILDCARD-RESOURCE',
          input,
          ref,
          `rules[${i}].resources`,
          `${ref.kind} "${ref.name}" grants every resource`,
        );
    });
  }
  for (const input of [...ofKind('RoleBinding'), ...ofKind('ClusterRoleBinding')]) {
    if (isBootstrap(input.object)) continue;
    const ref = refOf(input.object, defaultNamespace);
    const roleRef = obj(input.object.roleRef) ?? {};
    const subjects =
      arr(input.object.subjects)
        .map((s) => `${str(obj(s)?.kind)} ${str(obj(s)?.name)}`)
        .join(', ') || 'no subjects';
    if (str(roleRef.kind) !== 'ClusterRole') continue;
    const roleName = str(roleRef.name);
    if (roleName === 'cluster-admin') {
      emit(
        'RBAC-CLUSTER-ADMIN-BINDING',
        input,
        ref,
        'roleRef.name',
        `${ref.kind} "${ref.name}" gives cluster-admin to ${subjects}`,
      );
      continue;
    }
    if (input.object.kind !== 'ClusterRoleBinding') continue;
    const role = clusterRoles.get(roleName);
    if (role ? readsSecrets(role) : BUILTIN_SECRET_READERS.has(roleName)) {
      emit(
        'RBAC-SECRETS-CLUSTER-WIDE',
        input,
        ref,
        'roleRef.name',
        `ClusterRoleBinding "${ref.name}" lets ${subjects} read secrets in every namespace (ClusterRole "${roleName}")`,
      );
    }
  }
}

const READ_VERBS = new Set(['get', 'list', 'watch', '*']);

function readsSecrets(role: Obj): boolean {
  return arr(role.rules).some((raw) => {
    const rule = obj(raw) ?? {};
    const groups = arr(rule.apiGroups);
    return (
      (groups.includes('') || groups.includes('*')) &&
      (arr(rule.resources).includes('secrets') || arr(rule.resources).includes('*')) &&
      arr(rule.verbs).some((v) => READ_VERBS.has(str(v))) &&
      arr(rule.resourceNames).length === 0
    );
  });
}

/** Every distinct image named by the pod-owning objects (for looking up scan verdicts first). */
export function imagesOf(inputs: readonly PostureInput[]): string[] {
  const images = new Set<string>();
  for (const { object } of inputs) {
    const spec = obj(podTemplateOf(object)?.spec);
    if (!spec) continue;
    for (const field of ['initContainers', 'containers', 'ephemeralContainers']) {
      for (const c of arr(spec[field])) {
        const image = str(obj(c)?.image);
        if (image) images.add(image);
      }
    }
  }
  return [...images].sort();
}
