/**
 * The Linux driver: nftables drop-all inside the target's network namespace(s) and SIGKILL
 * through `/proc`, for one container (local mode: the engine names its pid) or for the processes
 * of a pod found on this node (`/proc/*\/cgroup`, Kubernetes mode).
 */
import { stat } from 'node:fs/promises';
import { isContainmentError } from '../../errors.js';
import type { NetnsToolPaths } from '../../linux/netns-quarantine.js';
import { quarantine, release } from '../../linux/netns-quarantine.js';
import { assertPidInContainer } from '../../linux/proc-inspect.js';
import type { PodProcess } from '../../linux/proc-pods.js';
import type { EnforcementDriver, StepResult } from '../enforcer.js';
import { condition } from '../enforcer.js';

/** One container's network namespace, by its main pid (local mode). */
export function linuxContainerDriver(options: {
  pid: number;
  containerId: string;
  what: string;
  tools?: NetnsToolPaths | undefined;
  now: () => Date;
}): EnforcementDriver {
  const target = { pid: options.pid, containerId: options.containerId };
  const { what, now } = options;
  return {
    isolate: (mode) => ({
      type: 'Quarantined',
      run: async (): Promise<StepResult> => {
        if (mode === 'set') {
          const { warnings } = await quarantine(target, options.tools);
          const message = [`${what} quarantined: all traffic in and out dropped`, ...warnings].join('; ');
          return {
            condition: condition('Quarantined', 'True', 'NetworkIsolated', message, now()),
            changed: true,
          };
        }
        await release(target, options.tools);
        const message = `${what} released: quarantine table removed`;
        return { condition: condition('Quarantined', 'False', 'Released', message, now()), changed: true };
      },
    }),
  };
}

export interface LinuxPodDriverOptions {
  pod: { uid: string; namespace: string; name: string };
  node: string;
  /** The pod's processes on this node (one per container). */
  processes: () => Promise<PodProcess[]>;
  tools?: NetnsToolPaths | undefined;
  now: () => Date;
}

/** A pod's containers on this node: isolation once per network namespace, and SIGKILL. */
export function linuxPodDriver(options: LinuxPodDriverOptions): EnforcementDriver {
  const { pod, node, now } = options;
  const noLocalProcess = (type: string): StepResult => ({
    condition: condition(
      type,
      'Unknown',
      'NoLocalProcess',
      `no process of pod ${pod.namespace}/${pod.name} (uid ${pod.uid}) runs on node ${node} (none found in /proc/*/cgroup): node-level step skipped`,
      now(),
    ),
  });

  const isolate = async (mode: 'set' | 'clear'): Promise<StepResult> => {
    const local = await options.processes();
    if (local.length === 0) return noLocalProcess('NodeIsolation');
    // A pod's containers share one network namespace: each is handled once.
    const seen = new Set<string>();
    const warnings: string[] = [];
    try {
      for (const p of local) {
        const ns = await stat(`/proc/${p.pid}/ns/net`).catch(() => undefined);
        const nsKey = ns ? `${ns.dev}:${ns.ino}` : `pid:${p.pid}`;
        if (seen.has(nsKey)) continue;
        seen.add(nsKey);
        const target = { pid: p.pid, containerId: p.containerId };
        if (mode === 'set') warnings.push(...(await quarantine(target, options.tools)).warnings);
        else await release(target, options.tools);
      }
    } catch (e) {
      return { condition: condition('NodeIsolation', 'False', 'Failed', (e as Error).message, now()) };
    }
    const message =
      mode === 'set'
        ? [
            `nftables drop-all in ${seen.size} network namespace(s) of the pod on node ${node}`,
            ...warnings,
          ].join('; ')
        : `nftables quarantine removed from ${seen.size} network namespace(s) on node ${node}`;
    return {
      condition: condition(
        'NodeIsolation',
        mode === 'set' ? 'True' : 'False',
        mode === 'set' ? 'NftablesApplied' : 'Released',
        message,
        now(),
      ),
    };
  };

  const kill = async (): Promise<StepResult> => {
    const local = await options.processes();
    if (local.length === 0) return noLocalProcess('NodeKill');
    for (const p of local) {
      try {
        await assertPidInContainer(p.pid, p.containerId);
        process.kill(p.pid, 'SIGKILL');
      } catch (e) {
        // Gone already is what we want; anything else is a failure.
        if (!(isContainmentError(e) || (e as NodeJS.ErrnoException).code === 'ESRCH')) {
          return { condition: condition('NodeKill', 'False', 'Failed', (e as Error).message, now()) };
        }
      }
    }
    const message = `SIGKILL sent to ${local.length} container(s) on node ${node}`;
    return { condition: condition('NodeKill', 'True', 'Killed', message, now()) };
  };

  return {
    isolate: (mode) => ({ type: 'NodeIsolation', run: () => isolate(mode) }),
    // A graceful end is the kubelet's (through the pod delete); only the abrupt one acts here.
    terminate: (how) => (how === 'abrupt' ? { type: 'NodeKill', run: kill } : undefined),
  };
}
