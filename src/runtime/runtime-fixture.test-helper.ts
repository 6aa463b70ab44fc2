/**
 * Real parts for the runtime tests: a busybox image built locally (with /etc/shadow and an `apk`
 * applet link), containers whose entrypoint is `sleep` (not a shell), listeners the test owns
 * inside a container's network namespace (the host's busybox run through `nsenter -n`: a host
 * process, so it is never a detection itself), and whether eBPF can run here.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
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
import { findEngineSocket } from '../engine/socket.js';
import { hasCommand, podmanAvailable } from '../testing/tools.js';
import type { RuntimeDetection } from './contracts.js';
import type { DescribeContainer } from './detector.js';
import { preflight } from './sensor/preflight.js';
import { parseTcpTable } from './sensor/proc-poller.js';

const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'sleep', 'usleep', 'nc', 'cat', 'echo', 'ls', 'true', 'apk'];

/** Why the eBPF tests cannot run here, or undefined when they can. */
export function ebpfMissing(): string | undefined {
  const pf = preflight();
  if (pf.mode !== 'ebpf') return `eBPF (${pf.reasons.join('; ')})`;
  return podmanMissing();
}

/** Why an agent with runtime detection cannot run here: eBPF, or an engine API socket to follow. */
export function agentRuntimeMissing(): string | undefined {
  return (
    ebpfMissing() ?? (findEngineSocket(undefined, process.env) ? undefined : 'a container engine socket')
  );
}

export function podmanMissing(): string | undefined {
  if (!existsSync(BUSYBOX)) return BUSYBOX;
  if (!hasCommand('nsenter')) return 'nsenter';
  return podmanAvailable() ? undefined : 'podman';
}

export interface Ctr {
  id: string;
  name: string;
  pid: number;
}

export class RuntimeFixture {
  readonly image: string;
  private readonly names: string[] = [];
  private readonly children: ChildProcess[] = [];

  private constructor(
    image: string,
    private readonly tmp: string,
  ) {
    this.image = image;
  }

  static create(): RuntimeFixture {
    const tmp = mkdtempSync(join(tmpdir(), 'containment-rt-'));
    const root = join(tmp, 'rootfs');
    for (const d of ['bin', 'tmp', 'etc']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
    for (const applet of APPLETS) symlinkSync('busybox', join(root, 'bin', applet));
    writeFileSync(
      join(root, 'etc', 'passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n',
    );
    writeFileSync(join(root, 'etc', 'shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o600 });
    execFileSync('tar', ['-C', root, '-cf', join(tmp, 'rootfs.tar'), '.']);
    const image = `localhost/containment-rt-test:${randomBytes(4).toString('hex')}`;
    execFileSync('podman', ['import', '--quiet', join(tmp, 'rootfs.tar'), image], { stdio: 'pipe' });
    return new RuntimeFixture(image, tmp);
  }

  /** A container running `sleep` (its entrypoint is not a shell). */
  run(extra: string[] = []): Ctr {
    const name = `containment-rt-${randomBytes(4).toString('hex')}`;
    this.names.push(name);
    execFileSync('podman', ['run', '-d', '--name', name, ...extra, this.image, '/bin/sleep', '3600'], {
      stdio: 'pipe',
    });
    const [info] = JSON.parse(execFileSync('podman', ['inspect', name], { encoding: 'utf8' })) as {
      Id: string;
      State: { Pid: number };
    }[];
    if (!info) throw new Error(`podman inspect ${name} returned nothing`);
    return { id: info.Id, name, pid: info.State.Pid };
  }

  exec(c: Ctr, args: string[], options: { detach?: boolean } = {}): string {
    return execFileSync('podman', ['exec', ...(options.detach ? ['-d'] : []), c.name, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /**
   * A TCP listener on 127.0.0.1:port inside the container's network namespace, run by the host
   * (not a container process). `input` is sent to whoever connects.
   */
  async listenInNetns(c: Ctr, port: number, input = ''): Promise<ChildProcess> {
    const child = spawn('nsenter', ['-t', String(c.pid), '-n', BUSYBOX, 'nc', '-l', '-p', String(port)], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    this.children.push(child);
    if (input) child.stdin.write(input);
    // Listening once the namespace's table shows it.
    for (let i = 0; i < 50; i++) {
      const rows = [
        ...parseTcpTable(readFileSync(`/proc/${c.pid}/net/tcp`, 'utf8'), 4),
        ...parseTcpTable(readFileSync(`/proc/${c.pid}/net/tcp6`, 'utf8'), 6),
      ];
      if (rows.some((r) => r.state === 0x0a && r.localPort === port)) return child;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`listener on ${port} in ${c.name} did not start`);
  }

  cleanup(): void {
    for (const child of this.children) child.kill('SIGKILL');
    if (this.names.length > 0)
      execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', ...this.names], {
        stdio: 'ignore',
      });
    execFileSync('podman', ['rmi', '--force', '--ignore', this.image], { stdio: 'ignore' });
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** Workload identity from `podman inspect` (the agent's discovery does this in production). */
export const describeWithPodman: DescribeContainer = async (ref) => {
  try {
    const [info] = JSON.parse(
      execFileSync('podman', ['inspect', ref.containerId], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ) as {
      Name: string;
      ImageName: string;
      Image: string;
    }[];
    if (!info) return {};
    return {
      pod: info.Name,
      container: info.Name,
      image: info.ImageName,
      imageDigest: `sha256:${info.Image}`,
    };
  } catch {
    return {};
  }
};

/** Collects detections and waits for ones that match. */
export class Collector {
  readonly all: RuntimeDetection[] = [];
  private mark = 0;

  push(d: RuntimeDetection): void {
    this.all.push(d);
  }

  /** Detections since the last `since()` call. */
  since(): void {
    this.mark = this.all.length;
  }

  recent(filter: (d: RuntimeDetection) => boolean = () => true): RuntimeDetection[] {
    return this.all.slice(this.mark).filter(filter);
  }

  async waitFor(
    pred: (d: RuntimeDetection) => boolean,
    timeoutMs = 30_000,
  ): Promise<RuntimeDetection | undefined> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const hit = this.recent(pred)[0];
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  }
}
