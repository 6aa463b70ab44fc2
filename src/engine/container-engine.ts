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
}
