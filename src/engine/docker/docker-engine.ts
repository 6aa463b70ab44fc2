/** ContainerEngine over the Docker Engine API (Docker, or Podman's compatible service) via dockerode. */
import Docker from 'dockerode';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { ContainerEngine, ContainerInfo } from '../container-engine.js';

function statusOf(e: unknown): number | undefined {
  return (e as { statusCode?: number }).statusCode;
}

export class DockerEngine implements ContainerEngine {
  readonly endpoint: string;
  private readonly docker: Docker;

  constructor(socketPath: string) {
    this.endpoint = `unix://${socketPath}`;
    this.docker = new Docker({ socketPath });
  }

  private unavailable(e: unknown): ContainmentError {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return new ContainmentError(
      ErrorCodes.ENGINE_UNAVAILABLE,
      `container engine at ${this.endpoint} is not reachable (${reason})`,
      { cause: e },
    );
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (e) {
      throw this.unavailable(e);
    }
  }

  async inspect(nameOrId: string): Promise<ContainerInfo> {
    let data: Docker.ContainerInspectInfo;
    try {
      data = await this.docker.getContainer(nameOrId).inspect();
    } catch (e) {
      if (statusOf(e) === 404) {
        throw new ContainmentError(
          ErrorCodes.CONTAINER_NOT_FOUND,
          `no container named or with id "${nameOrId}"`,
        );
      }
      throw this.unavailable(e);
    }
    return {
      id: data.Id,
      name: data.Name.replace(/^\//, ''),
      image: data.Config.Image,
      imageId: data.Image,
      pid: data.State.Pid || undefined,
      running: data.State.Running,
      labels: data.Config.Labels ?? {},
      user: data.Config.User ?? '',
    };
  }

  async list(options?: { all?: boolean }): Promise<ContainerInfo[]> {
    let items: Docker.ContainerInfo[];
    try {
      items = await this.docker.listContainers({ all: options?.all ?? false });
    } catch (e) {
      throw this.unavailable(e);
    }
    return items.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
      image: c.Image,
      imageId: c.ImageID,
      running: c.State === 'running',
      labels: c.Labels ?? {},
    }));
  }
}
