/**
 * What to record: `container:<name-or-id>` (a container of the local engine) or `pod <ns>/<name>`
 * (a Kubernetes pod running on this node), resolved to the cgroup ids bpftrace filters on. The
 * cgroup comes from the workload's own process (/proc/<pid>/cgroup) through the sensor's cgroup
 * code, and every cgroup below the container's (a runtime's `container` sub-cgroup, a systemd
 * inside) is recorded too.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { listPodProcesses } from '../../linux/proc-pods.js';
import type { ContainerEngine } from '../../engine/container-engine.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { parseContainerCgroupPath, processCgroupPath, unifiedRoot } from '../sensor/cgroups.js';

export type RecordTarget =
  { kind: 'container'; name: string } | { kind: 'pod'; namespace: string; name: string; container?: string };

export interface ResolvedTarget {
  /** `container:web`, `pod shop/web-0 (container app)`. */
  label: string;
  containerId: string;
  image?: string;
  /** The container's cgroup (relative to the unified root) and the ids recorded. */
  cgroupPath: string;
  cgroupIds: number[];
}

/** `['container:web']` or `['pod', 'ns/name']`; pure. */
export function parseRecordTarget(args: readonly string[], container?: string): RecordTarget {
  const [first, second, ...rest] = args;
  if (rest.length === 0 && second === undefined && first?.startsWith('container:') && first.length > 10) {
    if (container !== undefined)
      throw new ContainmentError(ErrorCodes.USAGE, '--container is for pod targets');
    return { kind: 'container', name: first.slice('container:'.length) };
  }
  if (rest.length === 0 && first === 'pod' && second !== undefined) {
    const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(second);
    if (!m) throw new ContainmentError(ErrorCodes.USAGE, `expected pod <namespace>/<name>, got "${second}"`);
    return {
      kind: 'pod',
      namespace: m[1] as string,
      name: m[3] as string,
      ...(container === undefined ? {} : { container }),
    };
  }
  throw new ContainmentError(
    ErrorCodes.USAGE,
    `expected container:<name> or pod <namespace>/<name>, got "${args.join(' ')}"`,
  );
}

const MAX_CGROUPS = 64;

/** The container cgroup of a process and the ids of it and every cgroup below it. */
export function cgroupIdsOfProcess(pid: number, root = unifiedRoot()): { cgroupPath: string; ids: number[] } {
  const path = processCgroupPath(pid);
  const ref = path === undefined ? undefined : parseContainerCgroupPath(path);
  if (!ref)
    throw new ContainmentError(
      ErrorCodes.RECORDING_FAILED,
      `process ${pid} is not in a container cgroup (${path ?? 'gone'})`,
    );
  const ids: number[] = [];
  const walk = (dir: string): void => {
    if (ids.length >= MAX_CGROUPS) return;
    try {
      ids.push(statSync(dir).ino);
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    } catch {
      // removed meanwhile
    }
  };
  walk(join(root, ref.cgroupPath));
  if (ids.length === 0)
    throw new ContainmentError(
      ErrorCodes.RECORDING_FAILED,
      `cgroup ${ref.cgroupPath} not found under ${root}`,
    );
  return { cgroupPath: ref.cgroupPath, ids };
}

export interface TargetDeps {
  engine?: () => Promise<Pick<ContainerEngine, 'inspect'>>;
  /** The pod object (`status.containerStatuses`), read from the API server. */
  readPod?: (namespace: string, name: string) => Promise<unknown>;
}

interface PodStatusLike {
  spec?: { containers?: { name?: string }[] };
  status?: { containerStatuses?: { name?: string; containerID?: string; image?: string }[] };
}

export async function resolveRecordTarget(target: RecordTarget, deps: TargetDeps): Promise<ResolvedTarget> {
  if (target.kind === 'container') {
    if (!deps.engine) throw new ContainmentError(ErrorCodes.ENGINE_UNAVAILABLE, 'no container engine');
    const info = await (await deps.engine()).inspect(target.name);
    if (!info.running || !info.pid)
      throw new ContainmentError(ErrorCodes.RECORDING_FAILED, `container ${target.name} is not running`);
    const { cgroupPath, ids } = cgroupIdsOfProcess(info.pid);
    return {
      label: `container:${info.name}`,
      containerId: info.id,
      image: info.image,
      cgroupPath,
      cgroupIds: ids,
    };
  }
  if (!deps.readPod) throw new ContainmentError(ErrorCodes.KUBERNETES_UNAVAILABLE, 'no Kubernetes API');
  const pod = (await deps.readPod(target.namespace, target.name)) as PodStatusLike;
  const statuses = pod.status?.containerStatuses ?? [];
  const wanted = target.container ?? (statuses.length === 1 ? statuses[0]?.name : undefined);
  if (wanted === undefined)
    throw new ContainmentError(
      ErrorCodes.USAGE,
      `pod ${target.namespace}/${target.name} has ${statuses.length} containers (${statuses.map((s) => s.name).join(', ')}): choose one with --container`,
    );
  const status = statuses.find((s) => s.name === wanted);
  const id = /^[a-z0-9-]+:\/\/([0-9a-f]{64})$/.exec(status?.containerID ?? '')?.[1];
  if (!status || !id)
    throw new ContainmentError(
      ErrorCodes.RECORDING_FAILED,
      `container ${wanted} of pod ${target.namespace}/${target.name} is not running`,
    );
  const proc = (await listPodProcesses()).find((p) => p.containerId === id);
  if (!proc)
    throw new ContainmentError(
      ErrorCodes.RECORDING_FAILED,
      `pod ${target.namespace}/${target.name} does not run on this node: record on its node (the agent's node)`,
    );
  const { cgroupPath, ids } = cgroupIdsOfProcess(proc.pid);
  return {
    label: `pod ${target.namespace}/${target.name} (container ${wanted})`,
    containerId: id,
    ...(status.image ? { image: status.image } : {}),
    cgroupPath,
    cgroupIds: ids,
  };
}
