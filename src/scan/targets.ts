/**
 * Turns what the user names — a directory, an image archive, `container:<name-or-id>` or
 * `pid:<pid>` — into a safe RootFs. A running container is read through `/proc/<pid>/root`,
 * i.e. its live filesystem including everything written after it started, without exec'ing
 * anything inside it.
 */
import { statSync } from 'node:fs';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { DockerEngine } from '../engine/docker/docker-engine.js';
import { findEngineSocket } from '../engine/socket.js';
import type { ImageConfig } from '../inventory/context.js';
import { DirectoryRootFs } from '../inventory/fs/directory-root-fs.js';
import { isImageArchive, openImageArchive } from '../inventory/fs/image-archive.js';
import type { RootFs } from '../inventory/fs/root-fs.js';
import type { ScanTarget } from './scan-result.js';

export interface OpenedTarget {
  fs: RootFs;
  target: ScanTarget;
  /** Image configuration when known (image archives, containers). */
  image?: ImageConfig;
  /** Removes temporary files (an unpacked archive). Always call it. */
  cleanup(): Promise<void>;
}

export interface OpenTargetOptions {
  /** Container engine socket for `container:` targets (else CONTAINER_HOST / DOCKER_HOST / well-known paths). */
  engineSocket?: string;
  env?: NodeJS.ProcessEnv;
  /** Where image archives are unpacked (default: the OS temp dir). */
  tmpDir?: string;
}

async function openProcessRoot(pid: number, target: ScanTarget, image?: ImageConfig): Promise<OpenedTarget> {
  const root = `/proc/${pid}/root`;
  const fs = await DirectoryRootFs.open(root, target.ref).catch((e: unknown) => {
    throw new ContainmentError(
      ErrorCodes.TARGET_NOT_FOUND,
      `cannot read the root filesystem of process ${pid} (${(e as Error).message}); is it running, and are we root?`,
    );
  });
  return { fs, target, image, cleanup: async () => fs.close() };
}

export async function openTarget(ref: string, options: OpenTargetOptions = {}): Promise<OpenedTarget> {
  const env = options.env ?? process.env;
  if (ref.startsWith('pid:')) {
    const pid = Number(ref.slice(4));
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new ContainmentError(ErrorCodes.USAGE, `"${ref}" is not a process id (expected pid:<number>)`);
    }
    return openProcessRoot(pid, { kind: 'process', ref });
  }
  if (ref.startsWith('container:')) {
    const name = ref.slice('container:'.length);
    if (!name) throw new ContainmentError(ErrorCodes.USAGE, 'expected container:<name-or-id>');
    const socket = findEngineSocket(options.engineSocket, env);
    if (!socket) {
      throw new ContainmentError(
        ErrorCodes.ENGINE_UNAVAILABLE,
        'no container engine socket found; pass --engine-socket or set CONTAINER_HOST',
      );
    }
    const info = await new DockerEngine(socket).inspect(name);
    if (!info.running || !info.pid) {
      throw new ContainmentError(ErrorCodes.CONTAINER_NOT_FOUND, `container "${name}" is not running`);
    }
    return openProcessRoot(
      info.pid,
      {
        kind: 'container',
        ref,
        image: info.image,
        container: { id: info.id, name: info.name, pid: info.pid },
      },
      { User: info.user ?? '' },
    );
  }

  let isDirectory: boolean;
  try {
    isDirectory = statSync(ref).isDirectory();
  } catch {
    throw new ContainmentError(ErrorCodes.TARGET_NOT_FOUND, `no such file or directory: ${ref}`);
  }
  if (isDirectory) {
    const fs = await DirectoryRootFs.open(ref);
    return { fs, target: { kind: 'directory', ref }, cleanup: async () => fs.close() };
  }
  if (!(await isImageArchive(ref))) {
    throw new ContainmentError(
      ErrorCodes.TARGET_UNSUPPORTED,
      `${ref} is neither a directory nor an image archive (docker/podman save or OCI layout tar)`,
    );
  }
  const opened = await openImageArchive(ref, { tmpDir: options.tmpDir });
  return {
    fs: opened.fs,
    target: { kind: 'image-archive', ref, image: opened.image.repoTags?.[0] },
    image: opened.image.config,
    cleanup: async () => {
      opened.fs.close();
      await opened.cleanup();
    },
  };
}
