/** Finding and running the real tools the end-to-end tests use (podman, debootstrap, the CLI). */
import { spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './shared-data.js';

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export function run(cmd: string, args: readonly string[], input?: string | Buffer): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 256 * 1024 * 1024 });
}

/** Runs a command and throws with its stderr when it fails. */
export function mustRun(cmd: string, args: readonly string[], input?: string | Buffer): string {
  const r = run(cmd, args, input);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Runs the `containment` CLI from this checkout. */
export function containment(args: readonly string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(repoRoot, 'bin', 'containment.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
}

/**
 * The cached debootstrapped Debian 12 root (built by scripts/build-test-rootfs.sh). Returns
 * undefined when it cannot be built here (no debootstrap, not root).
 */
export function debianRootfs(): string | undefined {
  const script = join(repoRoot, 'scripts', 'build-test-rootfs.sh');
  const r = run(script, ['--print-path']);
  const path = r.stdout.trim();
  return r.status === 0 && path && existsSync(join(path, 'etc', 'os-release')) ? path : undefined;
}

export const podmanAvailable = (): boolean => hasCommand('podman') && run('podman', ['info']).status === 0;
