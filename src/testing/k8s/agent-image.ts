/**
 * The chart's image (`containment` on PATH) made from this checkout and this host, since no image
 * can be pulled here: Node (the one running this process), the compiled CLI (dist/, built first when
 * missing or stale), the production half of node_modules (package-lock.json's non-dev packages),
 * the runtime sensor's native engine (static, in dist/native/ from `npm run build:sensor`), nft and
 * nsenter for the operator, busybox for a shell — each binary with the shared libraries `ldd`
 * names, copied from the host. Plus the small images a test
 * node needs: the pod sandbox ("pause") and a busybox workload.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NATIVE_SENSOR_BIN } from '../../runtime/sensor/native.js';
import { repoRoot } from '../shared-data.js';
import { writeOciArchive } from './oci-image.js';

const BUSYBOX = '/usr/bin/busybox';

/** Undefined when the agent image can be made here; otherwise what is missing. */
export function agentImageMissing(): string | undefined {
  for (const [path, what] of [
    [BUSYBOX, 'busybox (apt install busybox-static)'],
    [NATIVE_SENSOR_BIN, 'the native sensor (npm run build:sensor: Go, clang, bpftool)'],
    ['/usr/sbin/nft', 'nft (apt install nftables)'],
    ['/usr/bin/nsenter', 'nsenter (util-linux)'],
  ] as const)
    if (!existsSync(path)) return what;
  if (spawnSync('ldd', ['--version'], { stdio: 'ignore' }).status !== 0) return 'ldd (libc-bin)';
  return undefined;
}

/** Copies `path` into `root` at the same path, following links (the content, not the link). */
function copyIn(root: string, path: string, mode?: number): void {
  const to = join(root, path);
  if (existsSync(to)) return;
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(realpathSync(path), to);
  if (mode !== undefined) chmodSync(to, mode);
}

/** A dynamically linked program and every library it loads (ldd resolves them transitively). */
function copyProgram(root: string, path: string): void {
  copyIn(root, path, 0o755);
  const r = spawnSync('ldd', [path], { encoding: 'utf8' });
  if (r.status !== 0) return; // static: nothing more to copy
  for (const line of r.stdout.split('\n')) {
    // `libx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`
    const lib = /=>\s+(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
    if (lib) copyIn(root, lib, 0o755);
  }
}

/** Builds dist/ unless it is current for the sources in this tree (bin/source-stamp.mjs decides). */
async function ensureDist(): Promise<void> {
  const stamp = (await import(join(repoRoot, 'bin', 'source-stamp.mjs'))) as {
    distIsCurrent(root: string): boolean;
  };
  if (stamp.distIsCurrent(repoRoot)) return;
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'build.mjs')], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`node scripts/build.mjs failed: ${r.stderr || r.stdout}`);
}

/** node_modules' production packages (what `npm ci --omit=dev` would install), copied into `to`. */
function copyProductionModules(to: string): void {
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  const from = realpathSync(join(repoRoot, 'node_modules'));
  for (const [key, meta] of Object.entries(lock.packages)) {
    // Top-level packages only: a nested one is inside its parent's directory, copied with it.
    if (!/^node_modules\/(?:@[^/]+\/)?[^/]+$/.test(key) || meta.dev) continue;
    const rel = key.slice('node_modules/'.length);
    if (!existsSync(join(from, rel))) continue; // an optional package for another platform
    cpSync(join(from, rel), join(to, rel), { recursive: true, dereference: false, verbatimSymlinks: true });
  }
}

/**
 * Writes the agent image's OCI archive to `out` (a few hundred MB, mostly Node and node_modules).
 * Takes tens of seconds, plus a dist/ build when it is stale.
 */
export async function buildAgentImage(name: string, out: string): Promise<void> {
  await ensureDist();
  const root = mkdtempSync(join(tmpdir(), 'containment-agent-image-'));
  try {
    copyProgram(root, process.execPath);
    // Node from wherever it is installed, on PATH as /usr/local/bin/node.
    if (process.execPath !== '/usr/local/bin/node') {
      mkdirSync(join(root, 'usr', 'local', 'bin'), { recursive: true });
      copyFileSync(join(root, process.execPath), join(root, 'usr', 'local', 'bin', 'node'));
      rmSync(join(root, process.execPath));
    }
    for (const p of ['/usr/sbin/nft', '/usr/bin/nsenter', BUSYBOX]) copyProgram(root, p);
    mkdirSync(join(root, 'bin'), { recursive: true });
    for (const applet of ['sh', 'cat', 'ls']) symlinkSync(BUSYBOX, join(root, 'bin', applet));
    symlinkSync(BUSYBOX, join(root, 'usr', 'bin', 'env'));
    copyIn(root, '/etc/ld.so.cache');
    const app = join(root, 'opt', 'containment');
    mkdirSync(app, { recursive: true });
    for (const f of ['package.json', 'bin', 'dist'])
      cpSync(join(repoRoot, f), join(app, f), { recursive: true });
    copyProductionModules(join(app, 'node_modules'));
    symlinkSync('/opt/containment/bin/containment.js', join(root, 'usr', 'local', 'bin', 'containment'));
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(
      join(root, 'etc', 'passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n',
    );
    writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    mkdirSync(join(root, 'tmp'), { recursive: true, mode: 0o1777 });
    mkdirSync(join(root, 'root'), { recursive: true });
    writeOciArchive(
      root,
      {
        name,
        entrypoint: ['containment'],
        env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CONTAINMENT_USE_DIST=1'],
      },
      out,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A busybox image: `/bin/busybox` with `sh` and `sleep` links, nothing else. */
function writeBusyboxImage(name: string, entrypoint: string[], out: string): void {
  const root = mkdtempSync(join(tmpdir(), 'containment-busybox-image-'));
  try {
    mkdirSync(join(root, 'bin'), { recursive: true });
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
    for (const applet of ['sh', 'sleep', 'true']) symlinkSync('busybox', join(root, 'bin', applet));
    writeOciArchive(root, { name, entrypoint }, out);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * The pod sandbox image: busybox `sleep` holds the pod's namespaces (what pause does; containerd
 * stops a sandbox with SIGKILL, so it needs no signal handling).
 */
export function writeSandboxImage(name: string, out: string): void {
  writeBusyboxImage(name, ['/bin/sleep', '2147483647'], out);
}

/** A workload whose entrypoint is not a shell (`sleep`), with a shell in its image to exec. */
export function writeWorkloadImage(name: string, out: string): void {
  writeBusyboxImage(name, ['/bin/sleep', '3600'], out);
}
