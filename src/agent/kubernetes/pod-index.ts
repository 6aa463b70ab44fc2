/**
 * Pods of this node, indexed by the container ids their statuses name, and a pod container's
 * workload identity. Pure: fed by the pod informer, asked by the discovery.
 */
import type * as k8s from '@kubernetes/client-node';
import type { WorkloadIdentity } from '../../events/cloud-event.js';
import type { PodContainerRef } from '../../linux/proc-pods.js';

/** The kubelet marks a static pod's mirror with the static pod's own UID (the one in its cgroups). */
export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

export interface PodContainer {
  pod: k8s.V1Pod;
  status: k8s.V1ContainerStatus;
  /** The container's spec (regular, init or ephemeral), when the pod has one of that name. */
  spec?: { securityContext?: k8s.V1SecurityContext };
}

/** `containerd://<id>`, `cri-o://<id>`, `docker://<id>` → `<id>`; undefined when empty. */
export function runtimeContainerId(containerID: string | undefined): string | undefined {
  if (!containerID) return undefined;
  const at = containerID.indexOf('://');
  const id = at < 0 ? containerID : containerID.slice(at + 3);
  return id === '' ? undefined : id;
}

/**
 * The image's manifest digest from `status.imageID` (`repo@sha256:…`, possibly with a
 * `docker-pullable://` scheme). A bare `sha256:…` is the image config id, not a manifest digest:
 * no digest then.
 */
export function imageDigestOf(imageID: string | undefined): string | undefined {
  const m = /@(sha256:[0-9a-f]{64})$/.exec(imageID ?? '');
  return m?.[1];
}

function statusesOf(pod: k8s.V1Pod): { status: k8s.V1ContainerStatus; spec?: PodContainer['spec'] }[] {
  const specs = [
    ...(pod.spec?.containers ?? []),
    ...(pod.spec?.initContainers ?? []),
    ...(pod.spec?.ephemeralContainers ?? []),
  ];
  const byName = new Map(specs.map((c) => [c.name, c] as const));
  return [
    ...(pod.status?.containerStatuses ?? []),
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.ephemeralContainerStatuses ?? []),
  ].map((status) => {
    const spec = byName.get(status.name);
    return spec ? { status, spec } : { status };
  });
}

const podKey = (pod: k8s.V1Pod): string => `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;

export class PodIndex {
  private readonly byContainer = new Map<string, PodContainer>();
  private readonly containersOfPod = new Map<string, string[]>();

  /** A pod was added or changed (replaces what was known of it). */
  upsert(pod: k8s.V1Pod): void {
    this.remove(pod);
    const ids: string[] = [];
    for (const { status, spec } of statusesOf(pod)) {
      const id = runtimeContainerId(status.containerID);
      if (id === undefined) continue;
      this.byContainer.set(id, spec ? { pod, status, spec } : { pod, status });
      ids.push(id);
    }
    this.containersOfPod.set(podKey(pod), ids);
  }

  remove(pod: k8s.V1Pod): void {
    const key = podKey(pod);
    for (const id of this.containersOfPod.get(key) ?? []) this.byContainer.delete(id);
    this.containersOfPod.delete(key);
  }

  /**
   * The pod container a process's cgroup names: the container id must be one of the pod's
   * statuses and the pod UID its own (or, for a static pod's mirror, the static pod's).
   */
  lookup(ref: PodContainerRef): PodContainer | undefined {
    const found = this.byContainer.get(ref.containerId);
    if (!found) return undefined;
    const meta = found.pod.metadata;
    if (ref.podUid !== meta?.uid && ref.podUid !== meta?.annotations?.[MIRROR_ANNOTATION]) return undefined;
    return found;
  }

  get size(): number {
    return this.byContainer.size;
  }
}

/** The workload identity of a pod container on `place.node`. */
export function podWorkloadIdentity(
  found: PodContainer,
  place: { cluster: string; node: string },
): WorkloadIdentity {
  const { pod, status } = found;
  const digest = imageDigestOf(status.imageID);
  return {
    cluster: place.cluster,
    namespace: pod.metadata?.namespace ?? 'default',
    pod: pod.metadata?.name ?? 'unknown',
    container: status.name,
    node: place.node,
    image: status.image || 'unknown',
    ...(digest === undefined ? {} : { imageDigest: digest }),
  };
}

/** The uid the spec asks for (container, then pod), as image-config `User` text. */
export function specUser(found: PodContainer): string | undefined {
  const uid = found.spec?.securityContext?.runAsUser ?? found.pod.spec?.securityContext?.runAsUser;
  return uid === undefined ? undefined : String(uid);
}
