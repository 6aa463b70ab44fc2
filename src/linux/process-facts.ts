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

/** The `upperdir` of the overlay mounted at `/`, from `/proc/<pid>/mountinfo` text. */
export function rootUpperDir(mountinfoText: string): string | undefined {
  let found: string | undefined;
  for (const line of mountinfoText.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fsType, , superOptions] = line.slice(sep + 3).split(' ');
    if (fields[4] !== '/' || fsType !== 'overlay' || superOptions === undefined) continue;
    const upper = superOptions.split(',').find((o) => o.startsWith('upperdir='));
    // The last mount at `/` is the one the process sees.
    if (upper) found = unescape(upper.slice('upperdir='.length));
  }
  return found;
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
