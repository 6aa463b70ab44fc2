/** `remote_shell_installed` and `remote_shell_permissive`. */
import type { ConfigCheck, ConfigCheckContext, FileFilter } from '../context.js';
import type { Package } from '../types.js';
import { basename, finding, isUnder, readSmallText } from './common.js';
import type { CheckInfo } from './common.js';
import {
  NON_BINARY_TREES,
  OS_PACKAGE_EXTRACTORS,
  REMOTE_SHELL_BINARY_NAMES,
  REMOTE_SHELL_BINARY_PATHS,
  REMOTE_SHELL_PACKAGES,
} from './remote-shell-rules.js';
import { effectiveSetting, readSshdConfig } from './sshd-config.js';
import type { SshdConfig, SshdSetting } from './sshd-config.js';

const EXECUTABLE = 0o111;

/** An executable named as a remote shell daemon. */
const mayBeDaemon: FileFilter = ({ path, stat }) =>
  stat.type === 'file' && (stat.mode & EXECUTABLE) !== 0 && REMOTE_SHELL_BINARY_NAMES.has(basename(path));

interface RemoteShells {
  packages: Package[];
  /** In-root paths of daemon executables (well-known paths, links included, and copies anywhere). */
  binaries: string[];
}

async function findRemoteShells(ctx: ConfigCheckContext): Promise<RemoteShells> {
  const packages = ctx.packages.filter(
    (p) => OS_PACKAGE_EXTRACTORS.has(p.extractor) && REMOTE_SHELL_PACKAGES.has(p.name),
  );
  const binaries = new Set<string>();
  for (const path of REMOTE_SHELL_BINARY_PATHS) {
    const s = await ctx.fs.stat(path); // follows links inside the root: busybox applet links count
    if (s?.type !== 'file' || (s.mode & EXECUTABLE) === 0) continue;
    // Name it by its canonical directory: on merged-/usr roots /sbin/sshd is /usr/sbin/sshd.
    const dir = await ctx.fs.resolve(path.slice(0, path.lastIndexOf('/')));
    if (dir !== undefined) binaries.add(`${dir === '/' ? '' : dir}/${basename(path)}`);
  }
  for (const entry of ctx.files) {
    if (!mayBeDaemon(entry)) continue;
    const { path } = entry;
    if (NON_BINARY_TREES.some((tree) => isUnder(path, tree))) continue;
    binaries.add(path);
  }
  return { packages, binaries: [...binaries].sort() };
}

const INSTALLED: CheckInfo = {
  id: 'remote_shell_installed',
  severity: 'HIGH',
  title: 'A remote shell server is installed',
};

export const remoteShellInstalled: ConfigCheck = {
  ...INSTALLED,
  relevant: mayBeDaemon,
  async check(ctx) {
    const { packages, binaries } = await findRemoteShells(ctx);
    if (packages.length === 0 && binaries.length === 0) return undefined;
    const parts: string[] = [];
    if (packages.length > 0) {
      parts.push(`packages: ${packages.map((p) => `${p.name} ${p.version} (${p.extractor})`).join(', ')}`);
    }
    if (binaries.length > 0) parts.push(`daemon executables: ${binaries.join(', ')}`);
    if (packages.length === 0) parts.push('no package owns them: copied in by hand');
    return finding(INSTALLED, [...packages.map((p) => p.location), ...binaries], parts.join('; '));
  },
};

/** Dropbear's flags that stop root password logins: -w (no root), -s (no passwords), -g (no root passwords). */
const DROPBEAR_SAFE_FLAGS = /^-[^-]*[wsg]/;
/** Debian keeps dropbear's arguments in /etc/default, Alpine in /etc/conf.d. */
const DROPBEAR_DEFAULTS: ReadonlyArray<{ path: string; variable: string }> = [
  { path: '/etc/default/dropbear', variable: 'DROPBEAR_EXTRA_ARGS' },
  { path: '/etc/conf.d/dropbear', variable: 'DROPBEAR_OPTS' },
];

interface Issue {
  text: string;
  file: string;
  /** False when it only applies to connections matching a `Match` block. */
  always: boolean;
  /** Whether it lets a password in (so disabling password authentication defuses it). */
  password: boolean;
}

function where(s: SshdSetting): string {
  return `${s.file}:${s.line}`;
}

function sshdIssues(config: SshdConfig): Issue[] {
  const issues: Issue[] = [];
  const isYes = (s: SshdSetting | undefined): s is SshdSetting => s?.value.toLowerCase() === 'yes';
  const isNo = (s: SshdSetting | undefined) => s?.value.toLowerCase() === 'no';
  // KbdInteractiveAuthentication (ChallengeResponseAuthentication is its old name) runs PAM's
  // password prompt: password logins are off only when both it and PasswordAuthentication are.
  const passwordsOff =
    isNo(effectiveSetting(config, 'passwordauthentication')) &&
    isNo(
      effectiveSetting(config, 'kbdinteractiveauthentication') ??
        effectiveSetting(config, 'challengeresponseauthentication'),
    );
  const rootLogin = effectiveSetting(config, 'permitrootlogin');
  if (isYes(rootLogin)) {
    issues.push({
      text: `PermitRootLogin yes at ${where(rootLogin)}${passwordsOff ? ' (password authentication is off: keys only)' : ' lets root log in with a password'}`,
      file: rootLogin.file,
      always: true,
      password: !passwordsOff,
    });
  }
  const empty = effectiveSetting(config, 'permitemptypasswords');
  if (isYes(empty)) {
    issues.push({
      text: `PermitEmptyPasswords yes at ${where(empty)}${passwordsOff ? ' (password authentication is off)' : ' lets accounts without a password log in'}`,
      file: empty.file,
      always: true,
      password: !passwordsOff,
    });
  }
  for (const s of config.conditional) {
    if (s.match?.toLowerCase() === 'all') continue; // already counted as effective above
    if ((s.keyword === 'permitrootlogin' || s.keyword === 'permitemptypasswords') && isYes(s)) {
      const name = s.keyword === 'permitrootlogin' ? 'PermitRootLogin' : 'PermitEmptyPasswords';
      issues.push({
        text: `${name} yes at ${where(s)} for connections matching "Match ${s.match}"`,
        file: s.file,
        always: false,
        password: true,
      });
    }
  }
  return issues;
}

async function dropbearIssues(ctx: ConfigCheckContext): Promise<Issue[]> {
  const { packages, binaries } = await findRemoteShells(ctx);
  const installed =
    packages.some((p) => p.name.startsWith('dropbear')) ||
    binaries.some((b) => basename(b).startsWith('dropbear'));
  if (!installed) return [];
  const issues: Issue[] = [];
  for (const { path, variable } of DROPBEAR_DEFAULTS) {
    const text = await readSmallText(ctx, path);
    if (text === undefined) continue;
    const args: string[] = [];
    for (const line of text.split('\n')) {
      const m = new RegExp(`^\\s*${variable}=(["']?)(.*)\\1\\s*$`).exec(line);
      if (m) args.push(...(m[2] as string).split(/\s+/));
    }
    if (args.some((a) => DROPBEAR_SAFE_FLAGS.test(a))) continue;
    issues.push({
      text: `dropbear runs without -w/-s/-g (${variable} in ${path}): root may log in with a password`,
      file: path,
      always: true,
      password: true,
    });
  }
  return issues;
}

const PERMISSIVE: CheckInfo = {
  id: 'remote_shell_permissive',
  severity: 'CRITICAL',
  title: 'The remote shell server allows root or empty-password logins',
};

export const remoteShellPermissive: ConfigCheck = {
  ...PERMISSIVE,
  relevant: mayBeDaemon,
  async check(ctx) {
    const config = await readSshdConfig({
      readText: (path) => readSmallText(ctx, path),
      listDir: async (path) => (await ctx.fs.readdir(path)).map((e) => e.name),
    });
    const issues = [...(config ? sshdIssues(config) : []), ...(await dropbearIssues(ctx))];
    if (issues.length === 0) return undefined;
    // CRITICAL when a password gets root (or an empty password) in for every connection; HIGH
    // when it needs a key or only applies to connections matching a Match block.
    const critical = issues.some((i) => i.always && i.password);
    return finding(
      PERMISSIVE,
      issues.map((i) => i.file),
      issues.map((i) => i.text).join('; '),
      critical ? 'CRITICAL' : 'HIGH',
    );
  },
};
