/**
 * The container engine driver (Docker Engine API: Docker or Podman): a snapshot through the
 * engine and `/proc`, a graceful stop (SIGTERM, then SIGKILL after the grace period) and a kill,
 * each followed by removing the container.
 */
import type { ContainerEngine, ContainerInfo } from '../../engine/container-engine.js';
import { ContainmentError, ErrorCodes, isContainmentError } from '../../errors.js';
import { evidenceItems, takeSnapshot } from '../../linux/evidence.js';
import type { DriverStep, EnforcementDriver, StepResult } from '../enforcer.js';
import { condition } from '../enforcer.js';

/** 128 + SIGKILL: the engine had to kill the container. */
const KILLED_EXIT_CODE = 137;

export interface EngineDriverOptions {
  engine: ContainerEngine;
  container: ContainerInfo;
  /** How messages name the container. */
  what: string;
  evidenceDir: string;
  actionId: string;
  /** Include the engine's full filesystem export in snapshots (default true). */
  exportFilesystem?: boolean | undefined;
  now: () => Date;
}

export function engineDriver(options: EngineDriverOptions): EnforcementDriver {
  const { engine, container, what, now } = options;
  const status = (value: boolean): 'True' | 'False' => (value ? 'True' : 'False');

  const snapshot = (): DriverStep => ({
    type: 'EvidenceCollected',
    run: async () => {
      const bundle = await takeSnapshot(engine, container.id, {
        evidenceDir: options.evidenceDir,
        actionId: options.actionId,
        ...(options.exportFilesystem !== undefined ? { exportFilesystem: options.exportFilesystem } : {}),
        now,
      });
      const notes = bundle.manifest.notes.length > 0 ? ` (${bundle.manifest.notes.join('; ')})` : '';
      const message = `evidence bundle of ${bundle.manifest.files.length} files at ${bundle.dir}${notes}`;
      return {
        condition: condition('EvidenceCollected', status(true), 'Snapshot', message, now()),
        evidence: evidenceItems(bundle),
        changed: true,
      };
    },
  });

  const stop = async (gracePeriodSeconds: number, done: readonly StepResult[]): Promise<StepResult> => {
    const started = Date.now();
    await engine.stop(container.id, gracePeriodSeconds);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const exitCode = (await engine.inspect(container.id).catch(() => undefined))?.exitCode;
    await removeContainer(engine, container.id);
    const killed = exitCode === KILLED_EXIT_CODE;
    const how = killed
      ? `did not stop within the ${gracePeriodSeconds} s grace period: killed (exit code ${exitCode})`
      : `stopped after SIGTERM in ${seconds} s (exit code ${exitCode ?? 'unknown'}, grace period ${gracePeriodSeconds} s)`;
    // The snapshot taken first belongs in the same sentence.
    const before = done.map((r) => r.message ?? r.condition.message).filter(Boolean);
    const message = [`${what} ${how} and removed`, ...before].join('; ');
    return {
      condition: condition('Terminated', 'True', killed ? 'Killed' : 'Graceful', message, now()),
      changed: true,
    };
  };

  const kill = async (): Promise<StepResult> => {
    await engine.kill(container.id, 'SIGKILL');
    await removeContainer(engine, container.id);
    const message = `${what} killed (SIGKILL) and removed`;
    return { condition: condition('Terminated', 'True', 'Killed', message, now()), changed: true };
  };

  return {
    snapshot,
    terminate: (how, gracePeriodSeconds) => ({
      type: 'Terminated',
      run: ({ done }) => (how === 'graceful' ? stop(gracePeriodSeconds, done) : kill()),
    }),
  };
}

/**
 * The container a local action targets: `container` when given, else the pod name; pinned to
 * `uid` (a container id prefix) when given.
 */
export async function resolveContainer(
  engine: ContainerEngine,
  target: { namespace: string; pod: string; container?: string | undefined; uid?: string | undefined },
  node: string,
): Promise<ContainerInfo> {
  const name = target.container ?? target.pod;
  let info: ContainerInfo;
  try {
    info = await engine.inspect(name);
  } catch (e) {
    if (isContainmentError(e) && e.code === ErrorCodes.CONTAINER_NOT_FOUND) {
      throw new ContainmentError(
        ErrorCodes.CONTAINER_NOT_FOUND,
        `target ${target.namespace}/${target.pod}${target.container ? `/${target.container}` : ''}: no such container on node ${node}`,
      );
    }
    throw e;
  }
  if (target.uid !== undefined && !info.id.startsWith(target.uid)) {
    throw new ContainmentError(
      ErrorCodes.CONTAINER_NOT_FOUND,
      `target ${name}: container ${info.id.slice(0, 12)} is not the requested uid ${target.uid} (replaced since?)`,
    );
  }
  return info;
}

async function removeContainer(engine: ContainerEngine, id: string): Promise<void> {
  try {
    await engine.remove(id, { force: true });
  } catch (e) {
    // Already removed (e.g. started with --rm): that is the state we want.
    if (!(isContainmentError(e) && e.code === ErrorCodes.CONTAINER_NOT_FOUND)) throw e;
  }
}
