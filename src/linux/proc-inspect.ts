/**
 * A container's processes and sockets read from the host's /proc, for evidence. Nothing runs
 * inside the container. The processes are those in the main process's pid namespace (or, for a
 * container sharing the host's pid namespace, its cgroup); the sockets are the network
 * namespace's tables (`/proc/<pid>/net/{tcp,tcp6,udp,udp6}`), each tied to the processes that
 * hold it through their `socket:[inode]` descriptors.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';
import { isIP } from 'node:net';
import { endianness } from 'node:os';
import { ContainmentError, ErrorCodes } from '../errors.js';

export interface ProcessEntry {
  pid: number;
  ppid: number;
  /** Real uid and gid on the host. */
  uid: number;
  gid: number;
  comm: string;
  cmdline: string[];
  /** Path of the executable as the process sees it (inside the container), when readable. */
  exe?: string;
  state: string;
  /** Inodes of the sockets the process holds open. */
  socketInodes: number[];
}

export const SOCKET_PROTOCOLS = ['tcp', 'tcp6', 'udp', 'udp6'] as const;
export type SocketProtocol = (typeof SOCKET_PROTOCOLS)[number];

export interface SocketEntry {
  protocol: SocketProtocol;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: string;
  uid: number;
  inode: number;
  /** Processes of the container holding the socket (empty when none does, e.g. TIME_WAIT). */
  pids: number[];
}

// include/net/tcp_states.h
const TCP_STATES: Record<number, string> = {
  1: 'ESTABLISHED',
  2: 'SYN_SENT',
  3: 'SYN_RECV',
  4: 'FIN_WAIT1',
  5: 'FIN_WAIT2',
  6: 'TIME_WAIT',
  7: 'CLOSE',
  8: 'CLOSE_WAIT',
  9: 'LAST_ACK',
  10: 'LISTEN',
  11: 'CLOSING',
  12: 'NEW_SYN_RECV',
};

/**
 * Guards against pid reuse: the process must still sit in a cgroup that names the container id
 * (Podman, Docker, CRI-O and containerd all put the id in the cgroup path).
 */
export async function assertPidInContainer(pid: number, containerId: string): Promise<void> {
  let cgroup: string;
  try {
    cgroup = await readFile(`/proc/${pid}/cgroup`, 'utf8');
  } catch (e) {
    throw processGone(pid, e);
  }
  if (containerId.length < 12 || !cgroup.includes(containerId)) {
    throw new ContainmentError(
      ErrorCodes.CONTAINER_NOT_FOUND,
      `process ${pid} no longer belongs to container ${containerId.slice(0, 12)}`,
    );
  }
}

export function processGone(pid: number, cause: unknown): ContainmentError {
  return new ContainmentError(ErrorCodes.CONTAINER_NOT_FOUND, `process ${pid} is gone`, { cause });
}

/** The processes of the container whose main process is `mainPid`, sorted by pid. */
export async function containerProcesses(mainPid: number): Promise<ProcessEntry[]> {
  const member = await membershipTest(mainPid);
  const pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
  const entries: ProcessEntry[] = [];
  for (const pid of pids) {
    if (!(await member(pid))) continue;
    const entry = await readProcess(pid);
    if (entry) entries.push(entry); // undefined: exited while we looked
  }
  return entries.sort((a, b) => a.pid - b.pid);
}

/** Sockets of the main process's network namespace, with the owning pids filled from `processes`. */
export async function containerSockets(
  mainPid: number,
  processes: readonly ProcessEntry[],
): Promise<SocketEntry[]> {
  const owners = new Map<number, number[]>();
  for (const p of processes) {
    for (const inode of p.socketInodes) owners.set(inode, [...(owners.get(inode) ?? []), p.pid]);
  }
  const sockets: SocketEntry[] = [];
  for (const protocol of SOCKET_PROTOCOLS) {
    let text: string;
    try {
      text = await readFile(`/proc/${mainPid}/net/${protocol}`, 'utf8');
    } catch {
      continue; // e.g. IPv6 disabled in the kernel
    }
    for (const s of parseProcNet(text, protocol)) sockets.push({ ...s, pids: owners.get(s.inode) ?? [] });
  }
  return sockets;
}

/** Parses one `/proc/net/{tcp,udp}[6]` table (pure). Lines that do not parse are skipped. */
export function parseProcNet(text: string, protocol: SocketProtocol): SocketEntry[] {
  const entries: SocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const [local, remote, st, uid, inode] = [f[1], f[2], f[3], f[7], f[9]];
    if (
      local === undefined ||
      remote === undefined ||
      st === undefined ||
      uid === undefined ||
      inode === undefined
    ) {
      continue;
    }
    const l = parseEndpoint(local);
    const r = parseEndpoint(remote);
    if (!l || !r) continue;
    const stateNo = parseInt(st, 16);
    entries.push({
      protocol,
      localAddress: l.address,
      localPort: l.port,
      remoteAddress: r.address,
      remotePort: r.port,
      // For UDP the kernel reuses TCP's numbers: 7 is an unconnected socket.
      state: protocol.startsWith('udp') && stateNo === 7 ? 'UNCONNECTED' : (TCP_STATES[stateNo] ?? `0x${st}`),
      uid: Number(uid),
      inode: Number(inode),
      pids: [],
    });
  }
  return entries;
}

const BYTE_OFFSETS = endianness() === 'LE' ? [6, 4, 2, 0] : [0, 2, 4, 6];

/**
 * `0100007F:1F90` → 127.0.0.1:8080. The kernel prints each 32-bit word of the address in host
 * byte order, so on little-endian machines the bytes of every word are reversed.
 */
function parseEndpoint(field: string): { address: string; port: number } | undefined {
  const m = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(field);
  if (!m?.[1] || !m[2]) return undefined;
  const words = m[1].match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => BYTE_OFFSETS.map((i) => parseInt(w.slice(i, i + 2), 16)));
  let address: string;
  if (bytes.length === 4) {
    address = bytes.join('.');
  } else {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
    // The URL parser prints the canonical compressed form (`::1`, `::ffff:7f00:1`).
    address = new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
  }
  if (isIP(address) === 0) return undefined;
  return { address, port: parseInt(m[2], 16) };
}

async function membershipTest(mainPid: number): Promise<(pid: number) => Promise<boolean>> {
  const pidNs = await readlink(`/proc/${mainPid}/ns/pid`);
  if (pidNs !== (await readlink('/proc/self/ns/pid'))) {
    return async (pid) => (await readlink(`/proc/${pid}/ns/pid`).catch(() => '')) === pidNs;
  }
  // Host pid namespace: fall back to the container's cgroup.
  const cgroup = await readFile(`/proc/${mainPid}/cgroup`, 'utf8');
  return async (pid) => (await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '')) === cgroup;
}

async function readProcess(pid: number): Promise<ProcessEntry | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '';
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    if (cmdline.at(-1) === '') cmdline.pop();
    const exe = await readlink(`/proc/${pid}/exe`).catch(() => undefined);
    return {
      pid,
      ppid: Number(field('PPid')),
      uid: Number(field('Uid').split(/\s+/)[0]),
      gid: Number(field('Gid').split(/\s+/)[0]),
      comm: field('Name'),
      cmdline,
      ...(exe !== undefined ? { exe } : {}),
      state: field('State'),
      socketInodes: await socketInodes(pid),
    };
  } catch {
    return undefined;
  }
}

async function socketInodes(pid: number): Promise<number[]> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const inodes: number[] = [];
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m?.[1]) inodes.push(Number(m[1]));
  }
  return inodes;
}
