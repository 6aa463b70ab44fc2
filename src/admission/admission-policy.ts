/**
 * The admission gate's decision for one AdmissionReview request: every image of a Pod (or of a
 * pod-owning workload's template) must have a passing latest scan, come from an allowed registry,
 * and the pod must meet the chosen Pod Security level. No I/O of its own: scan verdicts come
 * through the injected `ImageVerdictSource`.
 */
import { isDeepStrictEqual } from 'node:util';
import { parseImageReference, registryAllowed } from '../posture/image-reference.js';
import type { ImageVerdict, ImageVerdictSource } from '../posture/image-scan-verdict.js';
import { checkPodSecurity } from '../posture/pod-security.js';
import type { PodSecurityLevel } from '../posture/pod-security.js';
import { metadataPathOf, podTemplateOf } from '../posture/workload-pods.js';
import type { AdmissionDecision, AdmissionRequest } from './admission-review.js';

export type AdmissionMode = 'deny' | 'warn';

export interface AdmissionPolicy {
  /** `deny` refuses on any problem; `warn` admits and returns the problems as warnings. */
  mode: AdmissionMode;
  /** Pod Security Standards level pods must meet; `privileged` checks nothing. */
  level: PodSecurityLevel;
  /** Refuse images the scanner has no scan of (and, then, images it cannot be asked about). */
  denyUnknownImages: boolean;
  /** Registries images may come from (`docker.io`, `registry.local:5000`); empty allows any. */
  allowedRegistries: readonly string[];
  /** Namespaces never checked (the chart also excludes them in the webhook's namespaceSelector). */
  exemptNamespaces?: readonly string[];
}

const CONTAINER_FIELDS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

interface ImageUse {
  image: string;
  /** `containers[0] "app"`, for saying where an image is used. */
  where: string[];
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;

/** Every image of a pod spec, once each, with the containers that use it. */
export function imagesOf(spec: unknown): ImageUse[] {
  const uses = new Map<string, ImageUse>();
  const s = obj(spec) ?? {};
  for (const field of CONTAINER_FIELDS) {
    const list = Array.isArray(s[field]) ? (s[field] as unknown[]) : [];
    list.forEach((raw, i) => {
      const c = obj(raw);
      const image = typeof c?.image === 'string' ? c.image : '';
      const where = `${field}[${i}]${typeof c?.name === 'string' ? ` "${c.name}"` : ''}`;
      // A container without an image is refused by the API server's validation anyway.
      if (image === '') return;
      const use = uses.get(image) ?? { image, where: [] };
      use.where.push(where);
      uses.set(image, use);
    });
  }
  return [...uses.values()];
}

/** Why an image's registry is refused, or undefined when it is allowed. */
function registryProblem(image: string, allowed: readonly string[]): string | undefined {
  let registry: string;
  try {
    const ref = parseImageReference(image);
    if (registryAllowed(ref, allowed)) return undefined;
    registry = ref.registry;
  } catch (e) {
    // Its registry cannot be told, so it cannot be shown to be an allowed one.
    return (e as Error).message;
  }
  return `image ${JSON.stringify(image)}: registry ${registry} is not allowed (allowed: ${allowed.join(', ')})`;
}

const allow = (warnings: string[] = []): AdmissionDecision => ({ allowed: true, reasons: [], warnings });

function verdictProblem(verdict: ImageVerdict, denyUnknown: boolean): { problem?: string; note?: string } {
  const name = JSON.stringify(verdict.image);
  switch (verdict.status) {
    case 'pass':
      return {};
    case 'fail':
      return {
        problem: `image ${name}: latest scan (${verdict.scan.scanTime}) fails the compliance thresholds: ${verdict.reasons.join(', ')}`,
      };
    case 'unknown': {
      const text = verdict.unreachable
        ? `image ${name}: scan status unknown, ${verdict.reason}`
        : verdict.scan
          ? `image ${name}: ${verdict.reason}`
          : `image ${name} has never been scanned`;
      return denyUnknown ? { problem: `${text} (unknown images are denied)` } : { note: text };
    }
  }
}

/**
 * Decides one request. CREATE and UPDATE of pod-owning kinds are checked, and the
 * `pods/ephemeralcontainers` subresource (otherwise a way to run an unchecked image in a pod);
 * other operations, subresources and kinds are allowed. An UPDATE that leaves the pod template as
 * it was is allowed, so that scaling or relabelling a workload whose image has since become
 * vulnerable still works.
 */
export async function decideAdmission(
  request: AdmissionRequest,
  policy: AdmissionPolicy,
  /** Undefined: no scanner configured, so scans are not checked. */
  images: ImageVerdictSource | undefined,
): Promise<AdmissionDecision> {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow();
  const sub = request.subResource ?? '';
  if (sub !== '' && !(request.kind.kind === 'Pod' && sub === 'ephemeralcontainers')) return allow();
  const template = podTemplateOf(request.object);
  if (!template) return allow();
  const namespace = request.namespace ?? template.namespace ?? '';
  if (policy.exemptNamespaces?.includes(namespace)) return allow();
  if (request.operation === 'UPDATE') {
    const before = podTemplateOf(request.oldObject);
    if (
      before &&
      isDeepStrictEqual(before.spec, template.spec) &&
      isDeepStrictEqual(before.metadata ?? {}, template.metadata ?? {})
    )
      return allow();
  }

  const problems: string[] = [];
  const notes: string[] = [];
  const uses = imagesOf(template.spec);
  const verdicts = images ? await Promise.all(uses.map((u) => images.verdict(u.image))) : [];
  uses.forEach((use, i) => {
    if (policy.allowedRegistries.length > 0) {
      const registry = registryProblem(use.image, policy.allowedRegistries);
      if (registry) problems.push(registry);
    }
    const verdict = verdicts[i];
    if (!verdict) return;
    const { problem, note } = verdictProblem(verdict, policy.denyUnknownImages);
    if (problem) problems.push(problem);
    if (note) notes.push(note);
  });
  const violations = checkPodSecurity(
    policy.level,
    { ...(template.metadata ? { metadata: template.metadata } : {}), spec: template.spec },
    { specPath: template.specPath, metadataPath: metadataPathOf(template.specPath) },
  );
  for (const v of violations) problems.push(`Pod Security "${policy.level}": ${v.path}: ${v.message}`);

  if (problems.length === 0) return allow(notes);
  if (policy.mode === 'warn') return allow([...problems, ...notes]);
  return { allowed: false, reasons: problems, warnings: notes };
}
