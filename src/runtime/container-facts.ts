/**
 * What the detector reads from /proc about a container the first time it sees one (its first
 * process, entrypoint, writable layer, start time, listening ports) and about an exec (the
 * executable's real path, and whether it lies in the writable layer or in memory).
 */
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { rootUpperDir } from '../linux/process-facts.js';
import { parseTcpTable } from './sensor/proc-poller.js';

export interface ContainerFacts {
  initPid?: number;
  entrypointName?: string;
  upperDir?: string;
  startedAt?: number;
  listeners: Set<number>;
  /** The executables its processes run when first seen (for a baseline learned after they started). */
  executables: string[];
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function readlink(path: string): string | undefined {
  // A process that already exited is the common case for short-lived execs: ask lstat first,
  // which says "gone" without the cost of a thrown error (its stack trace) on every such exec.
  if (lstatSync(path, { throwIfNoEntry: false }) === undefined) return undefined;
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

let bootTimeMs: number | undefined;
function processStartMs(stat: string): number | undefined {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[19]);
  if (!Number.isFinite(ticks)) return undefined;
  bootTimeMs ??= Number(/^btime (\d+)/m.exec(read('/proc/stat'))?.[1] ?? 0) * 1000;
  return bootTimeMs + ticks * 10; // USER_HZ is 100 on Linux
}

const MAX_SEEN_PROCESSES = 256;

export function containerFacts(cgroupDir: string, fallbackPid: number, procRoot = '/proc'): ContainerFacts {
  const pids = read(join(cgroupDir, 'cgroup.procs'))
    .split('\n')
    .filter((l) => l !== '')
    .map(Number);
  const initPid = pids.length > 0 ? Math.min(...pids) : fallbackPid;
  const argv0 = read(`${procRoot}/${initPid}/cmdline`).split('\0')[0] ?? '';
  const listeners = new Set<number>();
  for (const [file, family] of [
    ['tcp', 4],
    ['tcp6', 6],
  ] as const)
    for (const row of parseTcpTable(read(`${procRoot}/${initPid}/net/${file}`), family))
      if (row.state === 0x0a) listeners.add(row.localPort);
  const executables = new Set<string>();
  for (const pid of pids.slice(0, MAX_SEEN_PROCESSES)) {
    const exe = readlink(`${procRoot}/${pid}/exe`);
    if (exe?.startsWith('/')) executables.add(exe.replace(/ \(deleted\)$/, ''));
  }
  const facts: ContainerFacts = { initPid, listeners, executables: [...executables] };
  if (argv0 !== '') facts.entrypointName = basename(argv0);
  const upper = rootUpperDir(read(`${procRoot}/${initPid}/mountinfo`));
  if (upper) facts.upperDir = upper;
  const started = processStartMs(read(`${procRoot}/${initPid}/stat`));
  if (started !== undefined) facts.startedAt = started;
  return facts;
}

/** The name a program goes by: its path's basename, argv[0]'s for a re-exec of itself or an fd. */
export function programName(path: string | undefined, argv: readonly string[], comm: string): string {
  const self = path === undefined || path === '' || /^\/proc\/(self|\d+)\/exe$|^\/dev\/fd\/\d+$/.test(path);
  const name = self ? basename(argv[0] ?? '') : basename(path);
  return name || comm;
}

export interface ExecFacts {
  /** The executable's path inside the container. */
  exe?: string;
  drift: { upperLayer: boolean; memfd: boolean; deleted: boolean };
}

const usable = (p: string | undefined): p is string =>
  p !== undefined && p.startsWith('/') && !/^\/(proc|dev\/fd)\//.test(p);
const isMemfd = (real: string | undefined, exeName: string | undefined): boolean =>
  (exeName?.startsWith('memfd:') ?? false) || (real?.startsWith('/memfd:') ?? false);

/**
 * The same facts as the native sensor's kernel side resolved them at the exec (no /proc read: the
 * path, the unlink and the upper-layer copy are read from the executable's file in the kernel).
 */
export function kernelExecFacts(
  kernelExe: string,
  path: string | undefined,
  exeName: string | undefined,
  deleted: boolean,
  upperLayer: boolean,
): ExecFacts {
  const memfd = isMemfd(kernelExe, exeName);
  const exe = usable(kernelExe) ? kernelExe : usable(path) ? path : undefined;
  return {
    ...(exe === undefined ? {} : { exe }),
    drift: { upperLayer: upperLayer && !memfd, memfd, deleted },
  };
}

/** Read at once, while the process most likely still lives; falls back to the path asked. */
export function execFacts(
  pid: number,
  path: string | undefined,
  exeName: string | undefined,
  upperDir: string | undefined,
  procRoot = '/proc',
): ExecFacts {
  const link = readlink(`${procRoot}/${pid}/exe`);
  const deleted = link?.endsWith(' (deleted)') ?? false;
  const real = link?.replace(/ \(deleted\)$/, '');
  const memfd = isMemfd(real, exeName);
  const exe = usable(real) ? real : usable(path) ? path : undefined;
  let upperLayer = false;
  if (!memfd && exe !== undefined && upperDir !== undefined) {
    try {
      // A regular file in the upper layer: written (or changed) after the container started.
      // Usually it is not there: no thrown error for that (an error's stack trace costs per exec).
      upperLayer = lstatSync(join(upperDir, exe), { throwIfNoEntry: false })?.isFile() ?? false;
    } catch {
      upperLayer = false; // ENOTDIR, EACCES: not a file written into the layer
    }
  }
  return { ...(exe === undefined ? {} : { exe }), drift: { upperLayer, memfd, deleted } };
}
