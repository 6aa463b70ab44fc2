/**
 * A running container's workload identity in local (single-machine) mode, pure: the cluster is
 * configured (`local` by default), the namespace is the Podman pod or `local`, and both the pod
 * and the container are the container's name.
 */
import type { ContainerInfo, WorkloadFacts } from '../engine/container-engine.js';
import type { WorkloadIdentity } from '../events/cloud-event.js';

export const LOCAL_NAMESPACE = 'local';

const MAX_NAME = 253;

/**
 * An engine name as a scanner API name (letters, digits, `.`, `_`, `-`, starting and ending with
 * a letter or digit). Engines allow a trailing `_`, `.` or `-`; other characters do not occur in
 * valid engine names but are replaced rather than trusted. `fallback` when nothing is left.
 */
export function apiName(name: string, fallback: string): string {
  const cleaned = name
    .replace(/[^A-Za-z0-9._-]/g, '-')
    // `..` is refused by the workload-name rule (workload-names.ts).
    .replace(/\.{2,}/g, '.')
    .slice(0, MAX_NAME)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return cleaned === '' ? fallback : cleaned;
}

export function workloadIdentity(
  container: Pick<ContainerInfo, 'id' | 'name' | 'image'>,
  facts: WorkloadFacts,
  place: { cluster: string; node: string },
): WorkloadIdentity {
  const name = apiName(container.name, container.id.slice(0, 12));
  return {
    cluster: place.cluster,
    namespace: facts.podName === undefined ? LOCAL_NAMESPACE : apiName(facts.podName, LOCAL_NAMESPACE),
    pod: name,
    container: name,
    node: place.node,
    // The scanner requires an image; an engine that names none still has an image id.
    image: container.image || 'unknown',
    ...(facts.imageDigest === undefined ? {} : { imageDigest: facts.imageDigest }),
  };
}
