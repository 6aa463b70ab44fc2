/** Finding the container engine's API socket: flag > CONTAINER_HOST / DOCKER_HOST > well-known paths. */
import { statSync } from 'node:fs';

const WELL_KNOWN = ['/run/podman/podman.sock', '/var/run/docker.sock', '/run/docker.sock'];

function socketPathOf(value: string): string | undefined {
  if (value.startsWith('unix://')) return value.slice('unix://'.length);
  if (value.startsWith('/')) return value;
  return undefined; // tcp:// and ssh:// engines are not supported for node-local work
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Returns the socket path to use, or undefined when none is configured or found. */
export function findEngineSocket(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const configured = flag ?? env.CONTAINER_HOST ?? env.DOCKER_HOST;
  if (configured) return socketPathOf(configured);
  const candidates = [...WELL_KNOWN];
  if (env.XDG_RUNTIME_DIR) candidates.push(`${env.XDG_RUNTIME_DIR}/podman/podman.sock`);
  return candidates.find(isSocket);
}
