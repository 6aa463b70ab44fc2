/**
 * Reads the running containers' inspect documents and the engine's security options (rootless,
 * userns-remap) through the Docker Engine API (Podman serves it too), for the local-container
 * controls. Infra (pause) containers of Podman pods are skipped: they run no workload.
 */
import Docker from 'dockerode';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { DockerEngine } from '../../engine/docker/docker-engine.js';
import { engineFactsFromInfo } from '../evaluate-containers.js';
import type { EngineFacts } from '../evaluate-containers.js';

export interface EngineRead {
  endpoint: string;
  engine: EngineFacts;
  containers: Record<string, unknown>[];
}

export async function readContainers(socketPath: string): Promise<EngineRead> {
  const engine = new DockerEngine(socketPath);
  await engine.ping();
  let info: unknown;
  try {
    info = await new Docker({ socketPath }).info();
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.ENGINE_UNAVAILABLE,
      `container engine at ${engine.endpoint} did not answer /info (${(e as Error).message})`,
      { cause: e },
    );
  }
  const containers: Record<string, unknown>[] = [];
  for (const c of await engine.list()) {
    if (!c.running) continue;
    try {
      if ((await engine.workloadFacts(c.id)).infra) continue;
      containers.push(await engine.inspectRaw(c.id));
    } catch (e) {
      // Gone between list and inspect: nothing left to judge.
      if (e instanceof ContainmentError && e.code === ErrorCodes.CONTAINER_NOT_FOUND) continue;
      throw e;
    }
  }
  return { endpoint: engine.endpoint, engine: engineFactsFromInfo(info), containers };
}
