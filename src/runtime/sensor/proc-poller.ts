/**
 * Degraded mode: where eBPF cannot run, /proc is polled. Each pass lists container processes
 * (through their cgroup), reports the ones not seen before as execs and the vanished ones as
 * exits, and reads each container's TCP tables (once per network namespace) for new listeners and
 * new established outbound connections. What it cannot see is said in `blindSpots`.
 */
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import type { SensorEvent } from '../contracts.js';
import { parseContainerCgroupPath, processCgroupPath } from './cgroups.js';
import type { Sensor, SensorLogger, SensorStatus } from './sensor.js';
import { silentLogger } from './sensor.js';

export const PROCFS_BLIND_SPOTS = [
  'processes that start and exit between two polls are never seen',
  'file opens (sensitive_file_read) are not seen',
  'setuid/setgid calls, ptrace and module loads are not seen',
  'connections shorter than a poll interval and failed connects are not seen',
  'UDP listeners and connections are not read',
];

export interface ProcPollerOptions {
  intervalMs?: number;
  procRoot?: string;
  reasons?: string[];
  logger?: SensorLogger;
}

interface Known {
  start: string;
  cgroupId: number;
}

export class ProcPoller implements Sensor {
  private timer: NodeJS.Timeout | undefined;
  private known = new Map<number, Known>();
  private sockets = new Set<string>();
  private events = 0;
  private polls = 0;
  private running = false;
  private readonly root: string;

  constructor(private readonly options: ProcPollerOptions = {}) {
    this.root = options.procRoot ?? '/proc';
  }

  async start(onEvent: (event: SensorEvent) => void): Promise<void> {
    const log = this.options.logger ?? silentLogger;
    log.warn(
      { reasons: this.options.reasons ?? [], blindSpots: PROCFS_BLIND_SPOTS },
      'runtime sensor: eBPF unavailable, polling /proc (degraded)',
    );
    const emit = (e: SensorEvent): void => {
      this.events++;
      onEvent(e);
    };
    this.poll(emit);
    this.running = true;
    const tick = (): void => {
      this.poll(emit);
      this.timer = setTimeout(tick, this.options.intervalMs ?? 1000);
    };
    this.timer = setTimeout(tick, this.options.intervalMs ?? 1000);
  }

  /** One pass over /proc (exposed for tests). */
  poll(emit: (e: SensorEvent) => void): void {
    const now = Date.now();
    const seen = new Map<number, Known>();
    const netnsSeen = new Map<string, { pid: number; uid: number; comm: string; cgroupId: number }>();
    for (const name of safeReaddir(this.root)) {
      if (!/^[1-9][0-9]*$/.test(name)) continue;
      const pid = Number(name);
      const path = processCgroupPath(pid, this.root);
      if (path === undefined || !parseContainerCgroupPath(path)) continue;
      const stat = readStat(this.root, pid);
      if (!stat) continue;
      const prev = this.known.get(pid);
      const cgroupId = cgroupIdOf(path);
      const known = { start: stat.start, cgroupId };
      seen.set(pid, known);
      const uid = readUid(this.root, pid);
      if ((!prev || prev.start !== stat.start) && this.polls > 0)
        emit(this.exec(pid, stat, uid, cgroupId, now));
      const ns = safeReadlink(`${this.root}/${pid}/ns/net`);
      if (ns && !netnsSeen.has(ns)) netnsSeen.set(ns, { pid, uid, comm: stat.comm, cgroupId });
    }
    for (const [pid, k] of this.known)
      if (!seen.has(pid))
        emit({ kind: 'exit', pid, uid: 0, cgroupId: k.cgroupId, comm: '', time: now, source: 'procfs' });
    this.known = seen;
    const sockets = new Set<string>();
    for (const [ns, owner] of netnsSeen) this.readSockets(ns, owner, sockets, emit, now);
    this.sockets = sockets;
    this.polls++;
  }

  private exec(pid: number, stat: Stat, uid: number, cgroupId: number, now: number): SensorEvent {
    const argv = safeRead(`${this.root}/${pid}/cmdline`)
      .split('\0')
      .filter((a, i, all) => a !== '' || i < all.length - 1);
    const exe = safeReadlink(`${this.root}/${pid}/exe`);
    const isSocket = (fd: number): boolean =>
      safeReadlink(`${this.root}/${pid}/fd/${fd}`)?.startsWith('socket:') ?? false;
    return {
      kind: 'exec',
      pid,
      ppid: stat.ppid,
      uid,
      cgroupId,
      comm: stat.comm,
      argv,
      // As asked (argv[0]) like the kernel's exec path: a symlink's name (`sh`), not busybox.
      ...(argv[0]?.startsWith('/') ? { path: argv[0] } : {}),
      ...(exe === undefined
        ? {}
        : {
            exeName:
              exe
                .replace(/ \(deleted\)$/, '')
                .split('/')
                .pop() ?? exe,
          }),
      stdinSocket: isSocket(0),
      stdoutSocket: isSocket(1),
      time: now,
      source: 'procfs',
    };
  }

  /** Listeners and established connections of one network namespace, new since the last pass. */
  private readSockets(
    ns: string,
    owner: { pid: number; uid: number; comm: string; cgroupId: number },
    into: Set<string>,
    emit: (e: SensorEvent) => void,
    now: number,
  ): void {
    const rows = [
      ...parseTcpTable(safeRead(`${this.root}/${owner.pid}/net/tcp`), 4),
      ...parseTcpTable(safeRead(`${this.root}/${owner.pid}/net/tcp6`), 6),
    ];
    const listening = new Set(rows.filter((r) => r.state === 0x0a).map((r) => r.localPort));
    for (const r of rows) {
      const listen = r.state === 0x0a;
      // Established towards a port this namespace does not listen on: an outbound connection.
      if (!listen && (r.state !== 0x01 || listening.has(r.localPort))) continue;
      const key = listen
        ? `${ns} L ${r.localAddress}:${r.localPort}`
        : `${ns} C ${r.remoteAddress}:${r.remotePort} ${r.localPort}`;
      into.add(key);
      if (this.sockets.has(key) || this.polls === 0) continue;
      emit({
        kind: listen ? 'listen' : 'connect',
        pid: owner.pid,
        uid: owner.uid,
        cgroupId: owner.cgroupId,
        comm: owner.comm,
        address: listen ? r.localAddress : r.remoteAddress,
        port: listen ? r.localPort : r.remotePort,
        time: now,
        source: 'procfs',
      });
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.running = false;
  }

  status(): SensorStatus {
    return {
      mode: 'procfs',
      reasons: this.options.reasons ?? [],
      blindSpots: PROCFS_BLIND_SPOTS,
      running: this.running,
      restarts: 0,
      lostEvents: 0,
      parseFailures: 0,
      events: this.events,
    };
  }
}

interface Stat {
  comm: string;
  ppid: number;
  start: string;
}

function readStat(root: string, pid: number): Stat | undefined {
  const text = safeRead(`${root}/${pid}/stat`);
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  return { comm: text.slice(text.indexOf('(') + 1, close), ppid: Number(rest[1]), start: rest[19] ?? '' };
}

function readUid(root: string, pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(safeRead(`${root}/${pid}/status`))?.[1] ?? -1);
}

/** The cgroup's id, when the unified hierarchy is mounted where we look (0 otherwise). */
function cgroupIdOf(path: string): number {
  for (const root of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    try {
      return statSync(`${root}${path}`).ino;
    } catch {
      continue;
    }
  }
  return 0;
}

export interface TcpRow {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: number;
}

/** /proc/<pid>/net/tcp{,6} rows (addresses in the kernel's little-endian hex). */
export function parseTcpTable(text: string, family: 4 | 6): TcpRow[] {
  const rows: TcpRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const [la, lp] = (f[1] as string).split(':');
    const [ra, rp] = (f[2] as string).split(':');
    if (!la || !lp || !ra || !rp) continue;
    rows.push({
      localAddress: hexAddress(la, family),
      localPort: parseInt(lp, 16),
      remoteAddress: hexAddress(ra, family),
      remotePort: parseInt(rp, 16),
      state: parseInt(f[3] as string, 16),
    });
  }
  return rows;
}

function hexAddress(hex: string, family: 4 | 6): string {
  // Each 32-bit word is in host (little-endian) order.
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(word.slice(b, b + 2), 16));
  }
  if (family === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff')
    return `::ffff:${bytes.slice(12).join('.')}`;
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function safeReadlink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
