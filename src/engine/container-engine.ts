/**
 * The container engine seen through a small interface, so scanning, the agent and the enforcer
 * do not depend on which engine runs the containers. One adapter today: the Docker Engine API
 * (`docker/`), which Podman serves too (`podman system service`).
 */
export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  imageId?: string;
  /** Main process id on this host; 0 or undefined when not running. */
  pid?: number;
  running: boolean;
  labels: Record<string, string>;
  /** Image config user (`Config.User`), empty when the image runs as root by default. */
  user?: string;
  /** The writable layer on this host (overlay `UpperDir`), from `inspect` when the engine exposes it. */
  upperDir?: string;
  /** Exit code of the last run, from `inspect`; meaningful once `running` is false. */
  exitCode?: number;
}

/** A path changed in the container's writable layer, as the engine's `changes` API reports it. */
export interface FilesystemChange {
  path: string;
  kind: 'modified' | 'added' | 'deleted';
}

/** A container's logs, split by stream (timestamped lines). */
export interface ContainerLogs {
  stdout: Buffer;
  stderr: Buffer;
}

/** A container lifecycle event from the engine's event stream (Docker `destroy` is Podman `remove`). */
export interface ContainerEvent {
  action: string;
  id: string;
  /** Container name, when the engine says (Podman and Docker put it in the actor attributes). */
  name?: string;
}

/** Facts about a container some engines know and the Docker inspect document lacks. */
export interface WorkloadFacts {
  /** The Podman pod the container belongs to. */
  podName?: string;
  /** A pod's infra (pause) container: no workload of its own. */
  infra: boolean;
  /** Manifest digest of the image (`sha256:…`), when the engine knows it. */
  imageDigest?: string;
}

export interface ContainerEngine {
  /** Where the engine was reached, for messages. */
  readonly endpoint: string;
  /** Throws ENGINE_UNAVAILABLE when the engine does not answer. */
  ping(): Promise<void>;
  /** Throws CONTAINER_NOT_FOUND when there is no such container. */
  inspect(nameOrId: string): Promise<ContainerInfo>;
  list(options?: { all?: boolean }): Promise<ContainerInfo[]>;
  /** The engine's own inspect document, unchanged (kept as evidence). CONTAINER_NOT_FOUND as `inspect`. */
  inspectRaw(nameOrId: string): Promise<Record<string, unknown>>;
  /** Everything the container logged so far, with timestamps. */
  logs(nameOrId: string): Promise<ContainerLogs>;
  /** Paths that differ from the image. */
  changes(nameOrId: string): Promise<FilesystemChange[]>;
  /** A tar stream of the container's whole filesystem. */
  exportFilesystem(nameOrId: string): Promise<NodeJS.ReadableStream>;
  /** Stop signal, then SIGKILL after `timeoutSeconds`; resolves once stopped (at once if it was not running). */
  stop(nameOrId: string, timeoutSeconds: number): Promise<void>;
  /** Sends `signal` (default SIGKILL) now; resolves too when the container is no longer running. */
  kill(nameOrId: string, signal?: string): Promise<void>;
  /** Removes a stopped container (`force` also kills a running one). */
  remove(nameOrId: string, options?: { force?: boolean }): Promise<void>;
  /**
   * Container events from now on, until `signal` aborts (the iteration then ends quietly).
   * Throws ENGINE_UNAVAILABLE when the stream cannot be opened or breaks.
   */
  events(signal: AbortSignal): AsyncIterable<ContainerEvent>;
  /** Pod, infra flag and image digest; CONTAINER_NOT_FOUND as `inspect`. */
  workloadFacts(nameOrId: string): Promise<WorkloadFacts>;
}
