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
}

export interface ContainerEngine {
  /** Where the engine was reached, for messages. */
  readonly endpoint: string;
  /** Throws ENGINE_UNAVAILABLE when the engine does not answer. */
  ping(): Promise<void>;
  /** Throws CONTAINER_NOT_FOUND when there is no such container. */
  inspect(nameOrId: string): Promise<ContainerInfo>;
  list(options?: { all?: boolean }): Promise<ContainerInfo[]>;
}
