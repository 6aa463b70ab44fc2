/**
 * Setuid/setgid files a distribution ships on purpose. Data only; used by `setuid.ts`.
 *
 * Paths are written in merged-/usr form; `/bin`, `/sbin`, `/lib*` paths of unmerged roots are
 * mapped onto `/usr/…` before comparing. `*` stands for one path component (the multiarch
 * triplet). Sources:
 * - Debian/Ubuntu: `find / -xdev -perm /6000 -type f` on a stock Debian 12 (passwd, login,
 *   util-linux, mount, openssh-client, dbus, polkit, uidmap, fuse3, libutempter), plus the
 *   modes the packages' maintainer scripts and `dpkg-statoverride` entries set for common
 *   optional packages (sudo, iputils-ping's setuid fallback when setcap fails, cron, at, bsdutils,
 *   liblockfile-bin, mlocate/plocate, postfix, exim4, ntfs-3g, xserver-xorg-legacy, pppd).
 * - Alpine: the setuid entries of the aports APKBUILDs for busybox-suid (bbsuid), shadow,
 *   shadow-uidmap, util-linux-misc, sudo, doas, openssh-keysign, dbus, polkit, fuse, cronie,
 *   linux-pam, iputils, postfix.
 * - RHEL/Fedora/Amazon Linux: the `%attr` modes in the spec files of shadow-utils, util-linux,
 *   sudo, polkit, dbus, openssh, cronie, at, fuse, pam, usermode, grub2, nfs-utils, libutempter,
 *   mlocate, postfix.
 */

export type DistroFamily = 'debian' | 'alpine' | 'rhel';

/** os-release `ID` → family. Unknown ids use the union of all lists (see `setuid.ts`). */
export const DISTRO_FAMILIES: Readonly<Record<string, DistroFamily>> = {
  debian: 'debian',
  ubuntu: 'debian',
  devuan: 'debian',
  raspbian: 'debian',
  kali: 'debian',
  linuxmint: 'debian',
  pop: 'debian',
  alpine: 'alpine',
  postmarketos: 'alpine',
  wolfi: 'alpine',
  rhel: 'rhel',
  centos: 'rhel',
  fedora: 'rhel',
  rocky: 'rhel',
  almalinux: 'rhel',
  ol: 'rhel',
  amzn: 'rhel',
  mariner: 'rhel',
  azurelinux: 'rhel',
};

const SHADOW_TOOLS = ['passwd', 'chsh', 'chfn', 'gpasswd', 'newgrp', 'chage', 'expiry'].map(
  (n) => `/usr/bin/${n}`,
);
const COMMON = [
  ...SHADOW_TOOLS,
  '/usr/bin/su',
  '/usr/bin/mount',
  '/usr/bin/umount',
  '/usr/bin/sudo',
  '/usr/bin/pkexec',
  '/usr/bin/newuidmap',
  '/usr/bin/newgidmap',
  '/usr/bin/fusermount',
  '/usr/bin/fusermount3',
  '/usr/bin/crontab',
  '/usr/bin/at',
  '/usr/bin/ping',
  '/usr/bin/ping6',
  '/usr/bin/write',
  '/usr/sbin/unix_chkpwd',
  '/usr/sbin/postdrop',
  '/usr/sbin/postqueue',
  '/usr/lib/polkit-1/polkit-agent-helper-1',
];

export const SETUID_ALLOWLIST: Readonly<Record<DistroFamily, readonly string[]>> = {
  debian: [
    ...COMMON,
    '/usr/lib/openssh/ssh-keysign',
    '/usr/bin/ssh-agent', // setgid _ssh (bookworm) / ssh (older)
    '/usr/lib/dbus-1.0/dbus-daemon-launch-helper',
    '/usr/lib/*/utempter/utempter',
    '/usr/bin/wall',
    '/usr/bin/bsd-write',
    '/usr/bin/dotlockfile',
    '/usr/bin/mlocate',
    '/usr/bin/plocate',
    '/usr/bin/traceroute6.iputils',
    '/usr/bin/ntfs-3g',
    '/usr/bin/screen',
    '/usr/sbin/pam_extrausers_chkpwd', // Ubuntu
    '/usr/sbin/exim4',
    '/usr/sbin/pppd',
    '/usr/lib/xorg/Xorg.wrap',
    '/usr/lib/eject/dmcrypt-get-device',
    '/usr/lib/snapd/snap-confine', // Ubuntu
  ],
  alpine: [
    ...COMMON,
    '/usr/bin/bbsuid', // busybox-suid (installed as /bin/bbsuid)
    '/usr/bin/doas',
    '/usr/lib/ssh/ssh-keysign',
    '/usr/libexec/dbus-daemon-launch-helper',
  ],
  rhel: [
    ...COMMON,
    '/usr/bin/locate',
    '/usr/bin/staprun',
    '/usr/sbin/pam_timestamp_check',
    '/usr/sbin/userhelper',
    '/usr/sbin/grub2-set-bootflag',
    '/usr/sbin/mount.nfs',
    '/usr/sbin/lockdev',
    '/usr/libexec/openssh/ssh-keysign',
    '/usr/libexec/dbus-1/dbus-daemon-launch-helper',
    '/usr/libexec/utempter/utempter',
  ],
};
