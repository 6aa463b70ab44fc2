/**
 * What counts as a remote shell server. Data only; used by `remote-shell.ts`.
 *
 * Package names come from the distributions' own package indexes (Debian/Ubuntu `Packages`,
 * Alpine `APKINDEX`, Fedora/RHEL repositories): the packages whose payload is a network login
 * daemon. Clients (`openssh-client`, `telnet`, `rsh-client`) and `-common`/`-doc` split-outs,
 * which ship no daemon, are deliberately absent.
 */

/** OS package names (dpkg, apk, rpm) that install a remote shell server. */
export const REMOTE_SHELL_PACKAGES: ReadonlySet<string> = new Set([
  // OpenSSH daemon: Debian/Ubuntu, Alpine, RHEL/Fedora all call it openssh-server.
  'openssh-server',
  'openssh-server-pam', // Alpine: sshd built with PAM
  // Dropbear: Debian splits it (dropbear-bin holds the daemon, dropbear/dropbear-run the service).
  'dropbear',
  'dropbear-bin',
  'dropbear-run',
  // Telnet daemons.
  'telnetd', // Debian/Ubuntu (netkit)
  'inetutils-telnetd', // Debian/Ubuntu (GNU inetutils)
  'telnetd-ssl', // Debian (older releases)
  'telnet-server', // RHEL/Fedora
  'busybox-extras', // Alpine: ships the busybox telnetd applet
  // rsh/rlogin/rexec daemons.
  'rsh-server', // Debian/Ubuntu (netkit), RHEL
  'rsh-redone-server', // Debian/Ubuntu
  'inetutils-rshd', // Debian (rshd/rlogind built from inetutils are separate packages there)
  'inetutils-rlogind',
  'inetutils-rexecd',
  // Other SSH servers.
  'tinysshd', // Debian/Ubuntu
  'tinyssh', // Alpine, Fedora
  'lsh-server', // Debian (older releases)
  // Web terminals: a login shell served over HTTP is a remote shell as well.
  'shellinabox',
  'ttyd',
]);

/** Extractors whose packages are OS packages (only those names above are meaningful). */
export const OS_PACKAGE_EXTRACTORS: ReadonlySet<string> = new Set(['dpkg', 'apk', 'rpm']);

/**
 * Well-known install paths of remote shell daemons. Checked with a link-following stat, so a
 * busybox applet link (`/usr/sbin/telnetd -> /bin/busybox`) counts too.
 */
export const REMOTE_SHELL_BINARY_PATHS: readonly string[] = [
  '/usr/sbin/sshd',
  '/sbin/sshd',
  '/usr/local/sbin/sshd',
  '/usr/bin/dropbear',
  '/usr/sbin/dropbear',
  '/usr/bin/dropbearmulti',
  '/usr/sbin/in.telnetd',
  '/usr/sbin/telnetd',
  '/usr/libexec/telnetd',
  '/usr/sbin/in.rshd',
  '/usr/sbin/in.rlogind',
  '/usr/sbin/in.rexecd',
  '/usr/sbin/rshd',
  '/usr/sbin/rlogind',
  '/usr/sbin/tinysshd',
  '/usr/bin/tinysshd',
  '/usr/sbin/lshd',
  '/usr/bin/ttyd',
  '/usr/bin/shellinaboxd',
];

/**
 * File names of the same daemons, looked for anywhere in the walk (executable regular files
 * outside the trees below): a daemon copied into `/opt/x/bin` or `/tmp` without any package is
 * exactly the "installed after start" case.
 */
export const REMOTE_SHELL_BINARY_NAMES: ReadonlySet<string> = new Set(
  REMOTE_SHELL_BINARY_PATHS.map((p) => p.slice(p.lastIndexOf('/') + 1)),
);

/**
 * Trees where a file with such a name is not a daemon: init scripts (`/etc/init.d/dropbear`),
 * PAM and runit service files, documentation and completions.
 */
export const NON_BINARY_TREES: readonly string[] = ['/etc', '/usr/share', '/usr/lib/systemd', '/lib/systemd'];
