/** `world_writable_system_dirs` and `world_writable_system_files`. */
import type { ConfigCheck, FileFilter } from '../context.js';
import { finding, isUnder, listSome } from './common.js';
import type { CheckInfo } from './common.js';

const OTHERS_WRITE = 0o002;
const STICKY = 0o1000;

/**
 * Where a world-writable directory lets any user plant or replace what the system runs or reads.
 * `/tmp`, `/var/tmp`, `/run` and `/home` are included because without the sticky bit anyone can
 * delete or rename other users' files there; with it (the normal case) they are fine.
 */
export const SYSTEM_DIR_TREES: readonly string[] = [
  '/etc',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/boot',
  '/opt',
  '/var',
  '/root',
  '/srv',
  '/tmp',
  '/run',
  '/home',
];

/** Files there are configuration or code; world-writable means anyone can change the system. */
export const SYSTEM_FILE_TREES: readonly string[] = [
  '/etc',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/boot',
  '/root',
];

const DIRS: CheckInfo = {
  id: 'world_writable_system_dirs',
  severity: 'MEDIUM',
  title: 'System directories are world-writable without the sticky bit',
};

/** Anywhere, the root included (an incremental rescan judges the root by this filter too). */
const openDirectory: FileFilter = ({ stat }) =>
  stat.type === 'directory' && (stat.mode & OTHERS_WRITE) !== 0 && (stat.mode & STICKY) === 0;

export const worldWritableSystemDirs: ConfigCheck = {
  ...DIRS,
  relevant: openDirectory,
  async check(ctx) {
    const bad = ctx.files
      .filter((entry) => openDirectory(entry) && SYSTEM_DIR_TREES.some((t) => isUnder(entry.path, t)))
      .map((f) => f.path);
    // The walk yields what is below the root, so the root itself is checked here.
    const root = await ctx.fs.lstat('/');
    if (root && openDirectory({ path: '/', stat: root })) bad.unshift('/');
    if (bad.length === 0) return undefined;
    return finding(DIRS, bad, `world-writable, no sticky bit: ${listSome(bad)}`);
  },
};

const FILES: CheckInfo = {
  id: 'world_writable_system_files',
  severity: 'MEDIUM',
  title: 'System files are world-writable',
};

const writableFile: FileFilter = ({ stat }) => stat.type === 'file' && (stat.mode & OTHERS_WRITE) !== 0;

export const worldWritableSystemFiles: ConfigCheck = {
  ...FILES,
  relevant: writableFile,
  async check(ctx) {
    const bad = ctx.files
      .filter((entry) => writableFile(entry) && SYSTEM_FILE_TREES.some((t) => isUnder(entry.path, t)))
      .map((f) => f.path);
    if (bad.length === 0) return undefined;
    return finding(FILES, bad, `world-writable files: ${listSome(bad)}`);
  },
};
