/**
 * "Pod containers" on a host with no kubelet: Podman containers started in a kubepods cgroup
 * (`--cgroup-parent=/kubepods/besteffort/pod<uid>`), which is exactly where a kubelet on the
 * cgroupfs driver puts a pod's containers, so /proc shows them as that pod's. The image is local
 * (no pulls): busybox with no applet links, plus an npm package for the scanner to find.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findEngineSocket } from '../../engine/socket.js';
import { hasCommand, run } from '../../testing/tools.js';

const BUSYBOX = '/usr/bin/busybox';

/** Undefined when Podman can run pod containers here; otherwise what is missing. */
export function podmanPodAvailable(): string | undefined {
  if (!hasCommand('podman') || run('podman', ['info']).status !== 0) return 'podman';
  if (!existsSync(BUSYBOX)) return BUSYBOX;
  if (findEngineSocket(undefined, process.env) === undefined)
    return 'a container engine socket (podman system service)';
  return undefined;
}

export interface PodTestImage {
  name: string;
  /** The npm package inside (`/app/node_modules/<name>`). */
  npmPackage: { name: string; version: string };
  remove(): void;
}

export function buildPodTestImage(npmPackage = { name: 'minimist', version: '1.2.5' }): PodTestImage {
  const tmp = mkdtempSync(join(tmpdir(), 'containment-podimg-'));
  try {
    const root = join(tmp, 'rootfs');
    const pkgDir = join(root, 'app', 'node_modules', npmPackage.name);
    mkdirSync(join(root, 'bin'), { recursive: true });
    mkdirSync(pkgDir, { recursive: true });
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
    writeFileSync(join(pkgDir, 'package.json'), JSON.stringify(npmPackage));
    execFileSync('tar', ['-C', root, '-cf', join(tmp, 'rootfs.tar'), '.']);
    const name = `localhost/containment-pod-test:${randomBytes(4).toString('hex')}`;
    execFileSync('podman', ['import', '--quiet', join(tmp, 'rootfs.tar'), name], { stdio: 'pipe' });
    return {
      name,
      npmPackage,
      remove: () => execFileSync('podman', ['rmi', '--force', '--ignore', name], { stdio: 'ignore' }),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export interface PodContainer {
  name: string;
  /** 64 hex. */
  id: string;
  pid: number;
  podUid: string;
  remove(): void;
}

/** `podman run -d` of `busybox sleep` in pod `podUid`'s cgroup. */
export function runPodContainer(image: PodTestImage, podUid: string): PodContainer {
  const name = `containment-pod-${randomBytes(4).toString('hex')}`;
  execFileSync(
    'podman',
    [
      'run',
      '-d',
      '--name',
      name,
      `--cgroup-parent=/kubepods/besteffort/pod${podUid}`,
      image.name,
      '/bin/busybox',
      'sleep',
      '600',
    ],
    { stdio: 'pipe' },
  );
  const [info] = JSON.parse(execFileSync('podman', ['inspect', name], { encoding: 'utf8' })) as {
    Id: string;
    State: { Pid: number };
  }[];
  if (!info) throw new Error(`podman inspect ${name} returned nothing`);
  return {
    name,
    id: info.Id,
    pid: info.State.Pid,
    podUid,
    remove: () =>
      execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', name], { stdio: 'ignore' }),
  };
}
