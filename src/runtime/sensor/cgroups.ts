/**
 * cgroup id → cgroup path → container. The eBPF `cgroup` builtin is the cgroup v2 id, which is the
 * inode number of the cgroup's directory in the unified hierarchy (`/sys/fs/cgroup` on a v2 host,
 * `/sys/fs/cgroup/unified` on a hybrid one like this host). Paths are parsed with the agent's pod
 * cgroup parser first (Kubernetes pods), then as a plain engine container's leaf
 * (`/libpod_parent/libpod-<id>`, `/machine.slice/libpod-<id>.scope`, `/docker/<id>`, …).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parsePodCgroupPath } from '../../linux/proc-pods.js';

export interface ContainerRef {
  containerId: string;
  podUid?: string;
  /** The container's cgroup path (relative to the unified root). */
  cgroupPath: string;
}

// A leaf an engine made for a container; `libpod-conmon-<id>` (the monitor) is not one.
const LEAF = /^(?:(?:libpod|docker|crio|cri-containerd)-)?([0-9a-f]{64})(?:\.scope)?$/;

/** A cgroup path to its container (deeper cgroups a container made still belong to it). */
export function parseContainerCgroupPath(path: string): ContainerRef | undefined {
  const pod = parsePodCgroupPath(path);
  const parts = path.split('/').filter((p) => p !== '');
  const at = parts.findIndex((p) => LEAF.test(p));
  if (pod) {
    const i = parts.findIndex((p) => p.includes(pod.containerId));
    return { ...pod, cgroupPath: `/${parts.slice(0, i + 1).join('/')}` };
  }
  if (at < 0) return undefined;
  return {
    containerId: (LEAF.exec(parts[at] as string) as RegExpExecArray)[1] as string,
    cgroupPath: `/${parts.slice(0, at + 1).join('/')}`,
  };
}

/** The unified hierarchy's mount point. */
export function unifiedRoot(): string {
  try {
    statSync('/sys/fs/cgroup/cgroup.controllers');
    return '/sys/fs/cgroup';
  } catch {
    return '/sys/fs/cgroup/unified';
  }
}

/** The unified (`0::`) path of a process, or undefined when it is gone. */
export function processCgroupPath(pid: number, procRoot = '/proc'): string | undefined {
  try {
    const text = readFileSync(`${procRoot}/${pid}/cgroup`, 'utf8');
    return /^0::(.*)$/m.exec(text)?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Resolves cgroup ids through a cache of the unified hierarchy's directory inodes, rescanned on a
 * miss (a container started since) at most every `rescanMs`; a miss can still be settled through
 * the process's own /proc/<pid>/cgroup while it lives.
 */
export class CgroupResolver {
  private byId = new Map<number, string>();
  /** The parse of `byId`'s paths, per id (null: not a container); same lifetime as `byId`. */
  private refs = new Map<number, ContainerRef | null>();
  private lastScan = 0;

  constructor(
    private readonly root = unifiedRoot(),
    private readonly rescanMs = 200,
    private readonly procRoot = '/proc',
  ) {}

  resolve(cgroupId: number, pid: number): ContainerRef | undefined {
    // Every event asks: a known id is one map lookup, not a path parse.
    const known = this.refs.get(cgroupId);
    if (known !== undefined) return known ?? undefined;
    let path = this.byId.get(cgroupId);
    if (path === undefined && Date.now() - this.lastScan >= this.rescanMs) {
      this.scan();
      path = this.byId.get(cgroupId);
    }
    if (path !== undefined) {
      const ref = parseContainerCgroupPath(path) ?? null;
      this.refs.set(cgroupId, ref);
      return ref ?? undefined;
    }
    path = processCgroupPath(pid, this.procRoot);
    return path === undefined ? undefined : parseContainerCgroupPath(path);
  }

  /** The directory of a container's cgroup (for cgroup.procs). */
  directory(ref: ContainerRef): string {
    return join(this.root, ref.cgroupPath);
  }

  private scan(): void {
    this.lastScan = Date.now();
    const next = new Map<number, string>();
    const walk = (dir: string, rel: string, depth: number): void => {
      if (depth > 12) return;
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return; // removed meanwhile
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const full = join(dir, e.name);
        try {
          next.set(statSync(full).ino, `${rel}/${e.name}`);
        } catch {
          continue;
        }
        walk(full, `${rel}/${e.name}`, depth + 1);
      }
    };
    walk(this.root, '', 0);
    this.byId = next;
    this.refs = new Map();
  }
}
