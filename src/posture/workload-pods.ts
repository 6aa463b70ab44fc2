/**
 * Finds the pod template inside Pods and the workload kinds that own pods. Pure: no I/O.
 */

export interface PodTemplate {
  kind: string;
  namespace?: string;
  name: string;
  metadata?: { annotations?: Record<string, string> };
  spec: unknown;
  /** Path of the pod spec inside the object, e.g. `spec.template.spec`. */
  specPath: string;
}

/** Kinds whose pod template is at `spec.template`. */
const TEMPLATE_KINDS = new Set([
  'Deployment',
  'ReplicaSet',
  'StatefulSet',
  'DaemonSet',
  'Job',
  'ReplicationController',
]);

export const POD_OWNING_KINDS: readonly string[] = ['Pod', ...TEMPLATE_KINDS, 'CronJob'];

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;

function annotationsOf(meta: Obj | undefined): { annotations?: Record<string, string> } | undefined {
  if (!meta) return undefined;
  const raw = obj(meta.annotations);
  if (!raw) return {};
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') annotations[k] = v;
  return { annotations };
}

/** The pod template of a Pod or pod-owning workload, or undefined for any other object. */
export function podTemplateOf(object: unknown): PodTemplate | undefined {
  const o = obj(object);
  if (!o || typeof o.kind !== 'string') return undefined;
  const meta = obj(o.metadata);
  const name =
    typeof meta?.name === 'string'
      ? meta.name
      : typeof meta?.generateName === 'string'
        ? meta.generateName
        : '';
  const namespace = typeof meta?.namespace === 'string' && meta.namespace !== '' ? meta.namespace : undefined;
  const base = { kind: o.kind, name, ...(namespace !== undefined ? { namespace } : {}) };
  if (o.kind === 'Pod') {
    const spec = obj(o.spec);
    if (!spec) return undefined;
    return { ...base, metadata: annotationsOf(meta) ?? {}, spec, specPath: 'spec' };
  }
  let template: Obj | undefined;
  let specPath: string;
  if (TEMPLATE_KINDS.has(o.kind)) {
    template = obj(obj(o.spec)?.template);
    specPath = 'spec.template.spec';
  } else if (o.kind === 'CronJob') {
    template = obj(obj(obj(obj(o.spec)?.jobTemplate)?.spec)?.template);
    specPath = 'spec.jobTemplate.spec.template.spec';
  } else {
    return undefined;
  }
  const spec = obj(template?.spec);
  if (!template || !spec) return undefined;
  return { ...base, metadata: annotationsOf(obj(template.metadata)) ?? {}, spec, specPath };
}

/** `spec.template.spec` → `spec.template.metadata`. */
export function metadataPathOf(specPath: string): string {
  return specPath === 'spec' ? 'metadata' : specPath.replace(/\.spec$/, '.metadata');
}
