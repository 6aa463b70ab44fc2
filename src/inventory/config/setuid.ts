/** `setuid_binaries`: setuid/setgid files beyond what the distribution ships on purpose. */
import type { ConfigCheck, FileFilter } from '../context.js';
import type { OsInfo } from '../types.js';
import { finding, listSome } from './common.js';
import type { CheckInfo } from './common.js';
import { DISTRO_FAMILIES, SETUID_ALLOWLIST } from './setuid-allowlist.js';

const SETUID = 0o4000;
const SETGID = 0o2000;

/** `/bin/su` and `/usr/bin/su` are the same file on merged-/usr systems and the same tool elsewhere. */
export function toMergedUsr(path: string): string {
  return /^\/(bin|sbin|lib|lib32|lib64|libx32)(\/|$)/.test(path) ? `/usr${path}` : path;
}

function patternToRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]+')}$`);
}

/** The allowlist for a distribution; the union of every family's list when it is unknown. */
export function allowlistFor(os: OsInfo | undefined): RegExp[] {
  const family = os ? DISTRO_FAMILIES[os.id] : undefined;
  const patterns = family ? SETUID_ALLOWLIST[family] : Object.values(SETUID_ALLOWLIST).flat();
  return [...new Set(patterns)].map(patternToRegExp);
}

const SETUID_BINARIES: CheckInfo = {
  id: 'setuid_binaries',
  severity: 'MEDIUM',
  title: 'Unusual setuid or setgid files',
};

const setuidOrSetgid: FileFilter = ({ stat }) =>
  stat.type === 'file' && (stat.mode & (SETUID | SETGID)) !== 0;

export const setuidBinaries: ConfigCheck = {
  ...SETUID_BINARIES,
  relevant: setuidOrSetgid,
  async check(ctx) {
    const allowed = allowlistFor(ctx.os);
    const unusual = ctx.files.filter(
      (entry) => setuidOrSetgid(entry) && !allowed.some((re) => re.test(toMergedUsr(entry.path))),
    );
    if (unusual.length === 0) return undefined;
    const describe = ({ path, stat }: (typeof unusual)[number]) => {
      const bits = [
        stat.mode & SETUID ? `setuid uid ${stat.uid}` : '',
        stat.mode & SETGID ? `setgid gid ${stat.gid}` : '',
      ]
        .filter((b) => b !== '')
        .join(', ');
      return `${path} (${bits})`;
    };
    const family = ctx.os ? (DISTRO_FAMILIES[ctx.os.id] ?? 'unknown distribution') : 'unknown distribution';
    return finding(
      SETUID_BINARIES,
      unusual.map((f) => f.path),
      `not in the ${family} allowlist: ${listSome(unusual.map(describe))}`,
    );
  },
};
