/**
 * Real parts: Podman (runc), bpftrace and the `containment` CLI. A busybox httpd container is
 * recorded from its start while the test drives requests; rerun under the recorded profile it
 * still serves, and `unshare` (which it never called, and which succeeds in the same image under
 * Podman's default profile) fails with EPERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import yaml from 'js-yaml';
import { requireOrSkip } from '../../testing/shared-data.js';
import { poll, waitFor } from '../../testing/wait.js';
import { hasCommand, mustRun, podmanAvailable, run } from '../../testing/tools.js';
import { repoRoot } from '../../testing/shared-data.js';
import { preflight } from '../sensor/preflight.js';
import { OciSeccompProfileSchema } from './profile.js';

const BUSYBOX = '/usr/bin/busybox';

function missing(): string | undefined {
  if (!existsSync(BUSYBOX)) return BUSYBOX;
  if (!hasCommand('bpftrace')) return 'bpftrace';
  const pf = preflight({ needs: 'bpftrace' });
  if (pf.mode !== 'ebpf') return `eBPF (${pf.reasons.join('; ')})`;
  return podmanAvailable() ? undefined : 'podman';
}

/** The published port, once Podman reports it; a container that died says how. */
async function hostPort(name: string): Promise<number> {
  const published = (): number =>
    Number(/:(\d+)\s*$/.exec(run('podman', ['port', name, '8080/tcp']).stdout.trim())?.[1]);
  const { value, ok } = await poll(published, Number.isInteger, 15_000);
  if (ok) return value;
  const state = run('podman', ['ps', '-a', '--filter', `name=^${name}$`, '--format', '{{.Status}}']).stdout;
  const logs = run('podman', ['logs', name]);
  throw new Error(`no published port for ${name} (${state.trim()}): ${logs.stdout}${logs.stderr}`);
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: await r.text() };
}

async function waitServing(port: number): Promise<void> {
  const serves = async (): Promise<boolean> => {
    try {
      return (await get(port, '/')).status === 200;
    } catch {
      return false; // not yet
    }
  };
  await waitFor(serves, (yes) => yes, `something serving on ${port}`, 30_000);
}

describe('containment profile record (real Podman + eBPF)', () => {
  const why = missing();
  const suffix = randomBytes(4).toString('hex');
  const image = `localhost/containment-seccomp-test:${suffix}`;
  const names = ['rec', 'enforced', 'control'].map((n) => `containment-seccomp-${n}-${suffix}`);
  const [recorded, enforced, control] = names as [string, string, string];
  let dir = '';

  // Suite hooks have no skip(): report loudly (fail under CI=true) and do nothing.
  const hookNeeds = (): boolean =>
    requireOrSkip({ skip() {} } as unknown as TestContext, why === undefined, why ?? '');

  before(() => {
    if (!hookNeeds()) return;
    dir = mkdtempSync(join(tmpdir(), 'containment-seccomp-'));
    const root = join(dir, 'rootfs');
    for (const d of ['bin', 'www', 'tmp', 'mnt']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
    for (const applet of ['sh', 'httpd', 'unshare', 'true'])
      symlinkSync('busybox', join(root, 'bin', applet));
    writeFileSync(join(root, 'www', 'index.html'), 'seccomp test page\n');
    mustRun('tar', ['-C', root, '-cf', join(dir, 'rootfs.tar'), '.']);
    mustRun('podman', ['import', '--quiet', join(dir, 'rootfs.tar'), image]);
  });

  after(() => {
    if (why !== undefined) return;
    for (const n of names) run('podman', ['rm', '-f', '-t', '0', n]);
    run('podman', ['rmi', '-f', image]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const httpd = (name: string, ...opts: string[]): void => {
    mustRun('podman', [
      'run',
      '-d',
      '--name',
      name,
      '-p',
      '127.0.0.1::8080',
      ...opts,
      image,
      '/bin/httpd',
      '-f',
      '-p',
      '8080',
      '-h',
      '/www',
    ]);
  };

  test(
    'records httpd from its start; under the profile it serves and unshare fails with EPERM',
    { timeout: 300_000 },
    async (t) => {
      if (!requireOrSkip(t, why === undefined, why ?? '')) return;
      const profile = join(dir, 'httpd.json');
      const cli = spawn(
        process.execPath,
        [
          join(repoRoot, 'bin', 'containment.js'),
          'profile',
          'record',
          `container:${recorded}`,
          '--from-start',
          '--duration',
          '8s',
          '-o',
          profile,
          '--spo-name',
          'httpd',
          '--spo-namespace',
          'web',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      cli.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => cli.on('close', r));
      // The recorder is attached once it asks for the workload to start.
      const deadline = Date.now() + 120_000;
      while (!stderr.includes('start container:') && Date.now() < deadline) {
        assert.equal(cli.exitCode, null, `the recorder exited early: ${stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      httpd(recorded);
      const port = await hostPort(recorded);
      await waitServing(port);
      // Traffic while recording: pages, a missing page.
      for (let i = 0; i < 10; i++) {
        assert.equal((await get(port, '/')).status, 200);
        assert.equal((await get(port, '/missing')).status, 404);
      }
      assert.equal(await exited, 0, stderr);
      assert.match(stderr, /system calls observed/);

      const written = OciSeccompProfileSchema.parse(JSON.parse(readFileSync(profile, 'utf8')));
      assert.equal(written.defaultAction, 'SCMP_ACT_ERRNO');
      assert.deepEqual(written.architectures, ['SCMP_ARCH_X86_64']);
      const allowed = new Set(written.syscalls?.flatMap((s) => s.names));
      for (const needed of ['accept', 'bind', 'listen', 'socket', 'execve'])
        assert.ok(allowed.has(needed), needed);
      // Nothing of runc's own setup before it loaded the filter.
      for (const never of ['unshare', 'mount', 'pivot_root', 'ptrace']) assert.ok(!allowed.has(never), never);
      const spo = yaml.load(readFileSync(join(dir, 'httpd.spo.yaml'), 'utf8')) as {
        apiVersion: string;
        kind: string;
        metadata: { name: string };
        spec: { syscalls: unknown };
      };
      assert.equal(spo.apiVersion, 'security-profiles-operator.x-k8s.io/v1beta1');
      assert.equal(spo.kind, 'SeccompProfile');
      assert.deepEqual(spo.metadata.name, 'httpd');
      assert.deepEqual(
        spo.spec.syscalls,
        written.syscalls?.map((s) => ({ action: s.action, names: s.names })),
      );

      // The attack first succeeds where only Podman's default profile applies …
      httpd(control);
      const ok = run('podman', ['exec', control, '/bin/unshare', '-U', '/bin/true']);
      assert.equal(ok.status, 0, `unshare -U should work under the default profile: ${ok.stderr}`);

      // … and fails under the recorded one, which still serves.
      httpd(enforced, '--security-opt', `seccomp=${profile}`);
      const enforcedPort = await hostPort(enforced);
      await waitServing(enforcedPort);
      for (let i = 0; i < 5; i++) {
        const page = await get(enforcedPort, '/');
        assert.equal(page.status, 200);
        assert.equal(page.body, 'seccomp test page\n');
        assert.equal((await get(enforcedPort, '/missing')).status, 404);
      }
      const denied = run('podman', ['exec', enforced, '/bin/unshare', '-U', '/bin/true']);
      assert.notEqual(denied.status, 0);
      assert.match(denied.stderr, /unshare.*Operation not permitted/);
    },
  );
});
