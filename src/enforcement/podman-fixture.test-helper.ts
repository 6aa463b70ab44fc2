/**
 * Real Podman for the enforcement tests: a busybox image built locally (no pulls here), containers
 * started with the podman CLI on the default bridge network, the engine reached through its
 * Docker-compatible socket, and connectivity probes in both directions. Everything created is
 * removed by `cleanup`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { DockerEngine } from '../engine/docker/docker-engine.js';
import { findEngineSocket } from '../engine/socket.js';
import { requireOrSkip } from '../testing/shared-data.js';

const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'sleep', 'nc', 'httpd', 'cat', 'echo', 'ls', 'touch', 'kill', 'wget'];

export interface TestContainer {
  id: string;
  name: string;
  pid: number;
  /** Address on the bridge network ('' with host networking). */
  ip: string;
  /** The host side of the bridge. */
  gateway: string;
}

export class PodmanFixture {
  readonly engine: DockerEngine;
  readonly image: string;
  private readonly names: string[] = [];
  private readonly tmp: string;

  private constructor(socket: string, image: string, tmp: string) {
    this.engine = new DockerEngine(socket);
    this.image = image;
    this.tmp = tmp;
  }

  /** Builds the image; returns why not when podman, nft, nsenter or busybox are missing. */
  static async create(): Promise<PodmanFixture | string> {
    const socket = findEngineSocket(undefined, process.env);
    const missing = [
      ...['podman', 'nft', 'nsenter', 'tar'].filter((tool) => !onPath(tool)),
      ...(existsSync(BUSYBOX) ? [] : [BUSYBOX]),
      ...(socket === undefined ? ['a container engine socket (podman system service)'] : []),
    ];
    if (missing.length > 0 || socket === undefined)
      return `${missing.join(', ')} (needed for enforcement tests)`;
    try {
      await new DockerEngine(socket).ping();
    } catch (e) {
      return (e as Error).message;
    }
    const tmp = mkdtempSync(join(tmpdir(), 'containment-enf-'));
    const root = join(tmp, 'rootfs');
    for (const d of ['bin', 'tmp', 'www', 'out']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
    for (const applet of APPLETS) symlinkSync('busybox', join(root, 'bin', applet));
    writeFileSync(join(root, 'www', 'index.html'), 'containment test page\n');
    execFileSync('tar', ['-C', root, '-cf', join(tmp, 'rootfs.tar'), '.']);
    const image = `localhost/containment-enf-test:${randomBytes(4).toString('hex')}`;
    execFileSync('podman', ['import', '--quiet', join(tmp, 'rootfs.tar'), image], { stdio: 'pipe' });
    return new PodmanFixture(socket, image, tmp);
  }

  /** A fixture for this test, or undefined after a loud skip (a failure under CI). */
  static need(t: TestContext, fixture: PodmanFixture | string | undefined): PodmanFixture | undefined {
    if (fixture instanceof PodmanFixture) return fixture;
    requireOrSkip(t, false, fixture ?? 'podman');
    return undefined;
  }

  /** `podman run -d` of a shell command in the test image. */
  run(
    script: string,
    options: {
      network?: string;
      volume?: string;
      stopSignal?: string;
      labels?: Record<string, string>;
      /** Appended to the generated name (e.g. `_1.v2`, to test engine-only characters). */
      suffix?: string;
    } = {},
  ): TestContainer {
    const name = `containment-enf-${randomBytes(4).toString('hex')}${options.suffix ?? ''}`;
    this.names.push(name);
    const args = ['run', '-d', '--name', name];
    for (const [k, v] of Object.entries(options.labels ?? {})) args.push('--label', `${k}=${v}`);
    if (options.network) args.push('--network', options.network);
    if (options.volume) args.push('-v', options.volume);
    execFileSync('podman', [...args, this.image, '/bin/sh', '-c', script], { stdio: 'pipe' });
    return this.describe(name);
  }

  describe(name: string): TestContainer {
    const [info] = JSON.parse(execFileSync('podman', ['inspect', name], { encoding: 'utf8' })) as {
      Id: string;
      State: { Pid: number };
      NetworkSettings: { Networks?: Record<string, { IPAddress: string; Gateway: string }> };
    }[];
    if (!info) throw new Error(`podman inspect ${name} returned nothing`);
    const net = Object.values(info.NetworkSettings.Networks ?? {})[0];
    return { id: info.Id, name, pid: info.State.Pid, ip: net?.IPAddress ?? '', gateway: net?.Gateway ?? '' };
  }

  /** A directory the test may bind-mount into a container. */
  hostDir(name: string): string {
    const dir = join(this.tmp, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  exists(name: string): boolean {
    try {
      execFileSync('podman', ['container', 'exists', name], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  cleanup(): void {
    if (this.names.length > 0) {
      execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', ...this.names], {
        stdio: 'ignore',
      });
    }
    execFileSync('podman', ['rmi', '--force', '--ignore', this.image], { stdio: 'ignore' });
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

function onPath(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** HTTP GET from the host to `host:port`; true only when the server answers 200. */
export function httpReachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('connect', () => socket.write('GET / HTTP/1.0\r\n\r\n'));
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    socket.on('end', () => done(/^HTTP\/1\.[01] 200/.test(reply)));
    socket.on('error', () => done(false));
  });
}

/**
 * From inside the container's network namespace (the host's busybox `nc` run through
 * `nsenter -n`, nothing executed in the container) to a server on the host side of the bridge.
 */
export async function reachableFromNetns(
  pid: number,
  hostAddress: string,
  timeoutSeconds = 1,
): Promise<boolean> {
  const server = createServer((c) => c.end('pong\n'));
  await new Promise<void>((res) => server.listen(0, hostAddress, res));
  const { port } = server.address() as AddressInfo;
  try {
    const out = await new Promise<string>((resolve) => {
      const child = spawn(
        'nsenter',
        ['-t', String(pid), '-n', BUSYBOX, 'nc', '-w', String(timeoutSeconds), hostAddress, String(port)],
        {
          stdio: ['ignore', 'pipe', 'ignore'],
        },
      );
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('close', () => resolve(text));
    });
    return out.includes('pong');
  } finally {
    await new Promise((res) => server.close(res));
  }
}

/** Polls `check` until it holds (containers take a moment to bind their ports). */
export async function eventually(
  check: () => Promise<boolean>,
  attempts = 20,
  delayMs = 100,
): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, delayMs));
  }
  return false;
}

/** `[nsenter -t <pid> -n] cmd…`: the host's tools in a container's network namespace, or on the host. */
function netnsCommand(pid: number | undefined, cmd: string[]): [string, string[]] {
  return pid === undefined
    ? [cmd[0] as string, cmd.slice(1)]
    : ['nsenter', ['-t', String(pid), '-n', ...cmd]];
}

/** Exit status 0 of a command run in the namespace (or on the host), with a hard time limit. */
function succeeds(pid: number | undefined, cmd: string[], timeoutMs = 5000): Promise<boolean> {
  const [file, args] = netnsCommand(pid, cmd);
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: 'ignore', timeout: timeoutMs });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

/** One ICMP echo from `fromPid`'s network namespace (the host's when undefined) to `address`. */
export function pingable(fromPid: number | undefined, address: string): Promise<boolean> {
  return succeeds(fromPid, [BUSYBOX, 'ping', '-c', '1', '-W', '1', address]);
}

const HTTP_GET = `fetch(process.argv[1],{signal:AbortSignal.timeout(1000)}).then((r)=>r.text()).then(console.log,()=>process.exit(1));`;

/** An HTTP GET from inside the namespace (Node's fetch; busybox wget crashes here) that must return `expect`. */
export async function httpFromNetns(pid: number, url: string, expect: RegExp): Promise<boolean> {
  const [file, args] = netnsCommand(pid, [process.execPath, '-e', HTTP_GET, url]);
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve(false));
    child.on('close', () => resolve(expect.test(out)));
  });
}

// UDP needs a real socket on each side; busybox nc has no UDP mode, so this Node runs in the namespace.
const UDP_ECHO = `const s=require('node:dgram').createSocket('udp4');
s.on('message',(m,r)=>s.send(m,r.port,r.address));s.bind(+process.argv[1],process.argv[2],()=>console.log('ready'));`;
const UDP_ASK = `const s=require('node:dgram').createSocket('udp4');
s.on('message',(m)=>{if(m.toString()==='ping'){console.log('pong');process.exit(0)}});
s.send('ping',+process.argv[2],process.argv[1]);setTimeout(()=>process.exit(1),+process.argv[3]);`;

/**
 * A UDP datagram from `fromPid`'s namespace (the host's when undefined) to an echo server in
 * `toPid`'s namespace (the host's when undefined) bound to `bind`, and its echo back: true when the
 * round trip completes within a second.
 */
export async function udpRoundTrip(
  from: { pid?: number },
  to: { pid?: number; bind: string; address: string },
): Promise<boolean> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const [file, args] = netnsCommand(to.pid, [process.execPath, '-e', UDP_ECHO, String(port), to.bind]);
  const server = spawn(file, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      server.on('close', () => reject(new Error('the UDP echo server did not start')));
    });
    return await succeeds(from.pid, [process.execPath, '-e', UDP_ASK, to.address, String(port), '1000']);
  } finally {
    server.kill('SIGKILL');
  }
}
