/**
 * What /proc tells about a container's main process without asking its runtime: the user it
 * really runs as (inside its user namespace), and its root filesystem's writable layer (the
 * overlay `upperdir` of its `/` mount, a host path), used for cheap drift checks.
 */
import { readFile } from 'node:fs/promises';

/** The effective uid from `/proc/<pid>/status` text. */
export function effectiveUid(statusText: string): number | undefined {
  const m = /^Uid:\s+\d+\s+(\d+)/m.exec(statusText);
  return m ? Number(m[1]) : undefined;
}

/** A host uid as seen inside the user namespace described by `uid_map` text; undefined when unmapped. */
export function uidInside(hostUid: number, uidMapText: string): number | undefined {
  for (const line of uidMapText.split('\n')) {
    const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
    if (inside === undefined || outside === undefined || count === undefined) continue;
    if (hostUid >= outside && hostUid < outside + count) return inside + (hostUid - outside);
  }
  return undefined;
}

/** Undoes mountinfo's octal escapes (`\040` for a space, …). */
const unescape = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** A mount below a process's root, as its mountinfo line describes it. */
export interface MountPoint {
  /** As the process sees it. */
  path: string;
  fsType: string;
  /** Mounted read-only (the per-mount `ro` option). */
  readOnly: boolean;
}

/** The overlay mounted at a process's `/`, and every other mount point inside its root. */
export interface RootOverlay {
  /** The image layers, top first, as host paths (absolute unless the engine mounted relative ones). */
  lowerDirs: string[];
  upperDir?: string;
  /** Mounts below the root (`/proc`, `/etc/hosts`, volumes …). */
  mounts: MountPoint[];
  /** Another mount at `/` lies under this one (the process mounted over its own root). */
  stacked: boolean;
}

/**
 * The overlay mounted at `/` (the last such mount: the one the process sees), from
 * `/proc/<pid>/mountinfo` text; undefined when the root is not an overlay. Lower layers come from
 * `lowerdir=a:b` or the repeated `lowerdir+=` of the newer mount API.
 */
export function rootOverlay(mountinfoText: string): RootOverlay | undefined {
  let found: RootOverlay | undefined;
  const mounts: MountPoint[] = [];
  let roots = 0;
  for (const line of mountinfoText.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const mountPoint = unescape(fields[4] ?? '');
    const [fsType, , superOptions] = line.slice(sep + 3).split(' ');
    if (mountPoint !== '/') {
      const readOnly = (fields[5] ?? '').split(',').includes('ro');
      mounts.push({ path: mountPoint, fsType: fsType ?? '', readOnly });
      continue;
    }
    roots += 1;
    if (fsType !== 'overlay' || superOptions === undefined) {
      found = undefined;
      continue;
    }
    const lowerDirs: string[] = [];
    let upperDir: string | undefined;
    for (const option of superOptions.split(',')) {
      if (option.startsWith('upperdir=')) upperDir = unescape(option.slice('upperdir='.length));
      else if (option.startsWith('lowerdir+=')) lowerDirs.push(unescape(option.slice('lowerdir+='.length)));
      else if (option.startsWith('lowerdir='))
        lowerDirs.push(...option.slice('lowerdir='.length).split(':').map(unescape));
    }
    found = { lowerDirs, ...(upperDir === undefined ? {} : { upperDir }), mounts, stacked: roots > 1 };
  }
  return found;
}

/** The `upperdir` of the overlay mounted at `/`, from `/proc/<pid>/mountinfo` text. */
export function rootUpperDir(mountinfoText: string): string | undefined {
  return rootOverlay(mountinfoText)?.upperDir;
}

/** The process's user inside its container (uid text), when /proc says. */
export async function processUser(pid: number, procRoot = '/proc'): Promise<string | undefined> {
  try {
    const [status, uidMap] = await Promise.all([
      readFile(`${procRoot}/${pid}/status`, 'utf8'),
      readFile(`${procRoot}/${pid}/uid_map`, 'utf8'),
    ]);
    const host = effectiveUid(status);
    const inside = host === undefined ? undefined : uidInside(host, uidMap);
    return inside === undefined ? undefined : String(inside);
  } catch {
    return undefined;
  }
}

export async function processUpperDir(pid: number, procRoot = '/proc'): Promise<string | undefined> {
  try {
    return rootUpperDir(await readFile(`${procRoot}/${pid}/mountinfo`, 'utf8'));
  } catch {
    return undefined;
  }
}
