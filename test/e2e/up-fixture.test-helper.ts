/**
 * What the tests of `containment up` on Podman share: busybox images built from scratch (no
 * registry), containers started under one run's label, and the `up` process itself with the
 * URLs and admin token its banner prints.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findEngineSocket } from '../../src/engine/socket.js';
import { repoRoot } from '../../src/testing/shared-data.js';
import { hasCommand, podmanAvailable } from '../../src/testing/tools.js';

export const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'sleep', 'httpd', 'cat', 'ls'];
export const CONTAINMENT_BIN = join(repoRoot, 'bin', 'containment.js');

/** Why up cannot run here (a missing tool, no engine socket), or undefined. */
export function whyUpUnavailable(): string | undefined {
  const missing = [
    ...['podman', 'nft', 'nsenter', 'tar'].filter((tool) => !hasCommand(tool)),
    ...(existsSync(BUSYBOX) ? [] : [BUSYBOX]),
    ...(findEngineSocket(undefined, process.env) === undefined ? ['a podman API socket'] : []),
  ];
  if (missing.length > 0) return `${missing.join(', ')} (needed for the containment up loop)`;
  return podmanAvailable() ? undefined : 'a working podman';
}

/**
 * A rootfs in `tmp` with busybox and an index page, plus `extra` files (`'busybox'`: a copy of the
 * binary, e.g. at sshd's install path), imported into podman as `image`.
 */
export function buildBusyboxImage(
  tmp: string,
  image: string,
  extra: Record<string, string | 'busybox'>,
): void {
  const root = join(tmp, image.replace(/\W/g, '_'));
  for (const d of ['bin', 'www', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  for (const applet of APPLETS) symlinkSync('busybox', join(root, 'bin', applet));
  writeFileSync(join(root, 'www', 'index.html'), 'up loop test page\n');
  for (const [path, content] of Object.entries(extra)) {
    const file = join(root, path);
    mkdirSync(join(file, '..'), { recursive: true });
    if (content === 'busybox') copyFileSync(BUSYBOX, file);
    else writeFileSync(file, content);
  }
  execFileSync('tar', ['-C', root, '-cf', `${root}.tar`, '.']);
  execFileSync('podman', ['import', '--quiet', `${root}.tar`, image], { stdio: 'pipe' });
}

/** Starts busybox httpd on port 80 in `image` under `label`; the container's name, pid and addresses. */
export function runBusyboxContainer(
  name: string,
  label: string,
  image: string,
): { name: string; ip: string; pid: number; gateway: string } {
  execFileSync(
    'podman',
    ['run', '-d', '--name', name, '--label', label, image, '/bin/httpd', '-f', '-p', '80', '-h', '/www'],
    { stdio: 'pipe' },
  );
  const [info] = JSON.parse(execFileSync('podman', ['inspect', name], { encoding: 'utf8' })) as {
    State: { Pid: number };
    NetworkSettings: { Networks?: Record<string, { IPAddress: string; Gateway: string }> };
  }[];
  const net = Object.values(info?.NetworkSettings.Networks ?? {})[0];
  return { name, ip: net?.IPAddress ?? '', gateway: net?.Gateway ?? '', pid: info?.State.Pid ?? 0 };
}

export interface UpProcess {
  process: ChildProcess;
  adminToken: string;
  scannerApi: string;
  actionApi: string;
  stderr(): string;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Spawns `containment up <args>` and waits for its banner. */
export async function startUp(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<UpProcess> {
  const child = spawn(process.execPath, [CONTAINMENT_BIN, 'up', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CONTAINMENT_LOG_LEVEL: 'warn', ...env },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let stdout = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`up did not start: ${stderr}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`up exited with ${code}: ${stderr}`)));
  });
  const adminToken = /admin token:\s+(\S+)/.exec(stdout)?.[1] ?? '';
  assert.match(adminToken, /^ctm_/);
  return {
    process: child,
    adminToken,
    scannerApi: /scanner API:\s+(http\S+)/.exec(stdout)?.[1] ?? '',
    actionApi: /action API:\s+(http\S+)/.exec(stdout)?.[1] ?? '',
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      return exited;
    },
  };
}
