/** ContainerEngine over the Docker Engine API (Docker, or Podman's compatible service) via dockerode. */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type {
  ContainerEngine,
  ContainerEvent,
  ContainerInfo,
  ContainerLogs,
  FilesystemChange,
  WorkloadFacts,
} from '../container-engine.js';

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

  /** Maps a failed call on one container: 404 is CONTAINER_NOT_FOUND, the rest ENGINE_UNAVAILABLE. */
  private failed(e: unknown, nameOrId: string): ContainmentError {
    if (statusOf(e) === 404) {
      return new ContainmentError(
        ErrorCodes.CONTAINER_NOT_FOUND,
        `no container named or with id "${nameOrId}"`,
      );
    }
    return this.unavailable(e);
  }

  private async call<T>(nameOrId: string, fn: (c: Docker.Container) => Promise<T>): Promise<T> {
    try {
      return await fn(this.docker.getContainer(nameOrId));
    } catch (e) {
      throw this.failed(e, nameOrId);
    }
  }

  async inspect(nameOrId: string): Promise<ContainerInfo> {
    const data = await this.call(nameOrId, (c) => c.inspect());
    const upperDir = (data.GraphDriver.Data as Record<string, string> | undefined)?.UpperDir;
    return {
      id: data.Id,
      name: data.Name.replace(/^\//, ''),
      image: data.Config.Image,
      imageId: data.Image,
      pid: data.State.Pid || undefined,
      running: data.State.Running,
      labels: data.Config.Labels ?? {},
      user: data.Config.User ?? '',
      ...(upperDir ? { upperDir } : {}),
      exitCode: data.State.ExitCode,
    };
  }

  async inspectRaw(nameOrId: string): Promise<Record<string, unknown>> {
    return (await this.call(nameOrId, (c) => c.inspect())) as unknown as Record<string, unknown>;
  }

  async logs(nameOrId: string): Promise<ContainerLogs> {
    const tty = (await this.call(nameOrId, (c) => c.inspect())).Config.Tty;
    const raw = await this.call(nameOrId, (c) =>
      c.logs({ stdout: true, stderr: true, follow: false, timestamps: true }),
    );
    // With a TTY the engine sends one raw stream; without, frames tagged stdout/stderr.
    return tty ? { stdout: raw, stderr: Buffer.alloc(0) } : demuxLogs(raw);
  }

  async changes(nameOrId: string): Promise<FilesystemChange[]> {
    const items = (await this.call(nameOrId, (c) => c.changes())) as { Path: string; Kind: number }[] | null;
    return (items ?? []).map((i) => ({ path: i.Path, kind: CHANGE_KINDS[i.Kind] ?? 'modified' }));
  }

  async exportFilesystem(nameOrId: string): Promise<NodeJS.ReadableStream> {
    return this.call(nameOrId, (c) => c.export());
  }

  async stop(nameOrId: string, timeoutSeconds: number): Promise<void> {
    await this.call(nameOrId, (c) => c.stop({ t: timeoutSeconds }).catch(ignoreNotRunning));
  }

  async kill(nameOrId: string, signal = 'SIGKILL'): Promise<void> {
    await this.call(nameOrId, (c) => c.kill({ signal }).catch(ignoreNotRunning));
  }

  async remove(nameOrId: string, options?: { force?: boolean }): Promise<void> {
    await this.call(nameOrId, (c) => c.remove({ force: options?.force ?? false }));
  }

  async *events(signal: AbortSignal): AsyncIterable<ContainerEvent> {
    let stream: Readable;
    try {
      stream = (await this.docker.getEvents({
        filters: { type: ['container'] },
        abortSignal: signal,
      } as Docker.GetEventsOptions)) as unknown as Readable;
    } catch (e) {
      if (signal.aborted) return;
      throw this.unavailable(e);
    }
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        const event = parseEvent(line);
        if (event) yield event;
      }
    } catch (e) {
      if (!signal.aborted) throw this.unavailable(e);
    } finally {
      lines.close();
      stream.destroy();
    }
    // The engine closed the stream (restarted, or went away): the caller decides whether to retry.
    if (!signal.aborted) throw this.unavailable(new Error('event stream ended'));
  }

  async workloadFacts(nameOrId: string): Promise<WorkloadFacts> {
    // Podman's own API knows the pod and the infra container; Docker refuses the path (400/404).
    const libpod = await this.libpodGet(`/containers/${encodeURIComponent(nameOrId)}/json`);
    if (libpod.status === 200) {
      const c = libpod.body as { Pod?: string; IsInfra?: boolean; ImageDigest?: string };
      let podName: string | undefined;
      if (c.Pod) {
        const pod = await this.libpodGet(`/pods/${encodeURIComponent(c.Pod)}/json`);
        podName = pod.status === 200 ? (pod.body as { Name?: string }).Name : undefined;
      }
      return {
        infra: c.IsInfra === true,
        ...(podName ? { podName } : {}),
        ...(c.ImageDigest ? { imageDigest: c.ImageDigest } : {}),
      };
    }
    const info = await this.inspect(nameOrId);
    // Docker: the repository digest the image was pulled by, if it was pulled at all.
    const image = info.imageId
      ? await this.docker
          .getImage(info.imageId)
          .inspect()
          .catch(() => undefined)
      : undefined;
    const imageDigest = image?.RepoDigests?.[0]?.split('@')[1];
    return { infra: false, ...(imageDigest ? { imageDigest } : {}) };
  }

  /**
   * GET on Podman's own API (`/v4.0.0/libpod/…`, the oldest version Podman 4 serves). A 4xx —
   * Docker not knowing the path or version, or no such container — is an answer, not an error.
   */
  private libpodGet(path: string): Promise<{ status: number; body?: unknown }> {
    return new Promise((resolve, reject) => {
      this.docker.modem.dial(
        {
          path: `/v4.0.0/libpod${path}`,
          method: 'GET',
          options: {},
          statusCodes: { 200: true, 400: 'bad request', 404: 'not found' },
        },
        (err: unknown, body: unknown) => {
          const status = err ? statusOf(err) : 200;
          if (status === 200) resolve({ status, body });
          else if (status !== undefined && status >= 400 && status < 500) resolve({ status });
          else reject(this.unavailable(err));
        },
      );
    });
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

/** One line of the engine's event stream; undefined for other types or a line we cannot read. */
export function parseEvent(line: string): ContainerEvent | undefined {
  let raw: {
    Type?: string;
    Action?: string;
    status?: string;
    id?: string;
    Actor?: { ID?: string; Attributes?: Record<string, string> };
  };
  try {
    raw = JSON.parse(line) as typeof raw;
  } catch {
    return undefined;
  }
  const action = raw.Action ?? raw.status;
  const id = raw.Actor?.ID ?? raw.id;
  if ((raw.Type !== undefined && raw.Type !== 'container') || !action || !id) return undefined;
  const name = raw.Actor?.Attributes?.name;
  return { action, id, ...(name ? { name } : {}) };
}

const CHANGE_KINDS: Record<number, FilesystemChange['kind']> = {
  0: 'modified',
  1: 'added',
  2: 'deleted',
};

/** 304 (already stopped) and 409 (not running) mean the container is already where we want it. */
function ignoreNotRunning(e: unknown): void {
  const status = statusOf(e);
  if (status !== 304 && status !== 409) throw e;
}

/**
 * Splits the engine's multiplexed log stream: frames of an 8-byte header (stream type, 3 zero
 * bytes, big-endian payload length) and the payload. A truncated last frame is kept as is.
 */
export function demuxLogs(raw: Buffer): ContainerLogs {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let at = 0;
  while (at + 8 <= raw.length) {
    const stream = raw[at];
    const size = raw.readUInt32BE(at + 4);
    const payload = raw.subarray(at + 8, Math.min(raw.length, at + 8 + size));
    (stream === 2 ? err : out).push(payload);
    at += 8 + size;
  }
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}
