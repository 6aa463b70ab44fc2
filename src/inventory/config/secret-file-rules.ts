/**
 * Which files the private-key and cloud-credential checks read. Data only; used by `secrets.ts`.
 *
 * The rule: a regular file of at most MAX_SECRET_FILE_BYTES is read when it is outside
 * SYSTEM_TREES, or when its name looks like a key (KEY_FILE_NAME) and it is outside
 * VENDOR_TREES. In both cases files inside PACKAGE_TREE_NAMES directories are never read:
 * libraries and toolchains ship test keys and examples by the hundred (Go's crypto/tls testdata,
 * CPython's test suite, npm packages' test fixtures), and they are not credentials of the image.
 * Secrets are small; a bigger file named like a key is skipped with a note (not for `.pem`:
 * large ones are certificate bundles).
 */

export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** Package-managed system trees: programs, libraries and package databases, not user data. */
export const SYSTEM_TREES: readonly string[] = [
  '/usr', // except /usr/local, below
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/boot',
  '/var/lib/dpkg',
  '/var/lib/apt',
  '/var/lib/apk',
  '/var/lib/rpm',
  '/var/lib/dnf',
  '/var/lib/yum',
  '/var/cache',
  '/etc/ssl/certs', // certificates only (keys live in /etc/ssl/private, which is read)
  '/usr/local/go', // the Go toolchain's sources (official golang images); wins over /usr/local
];

/** Trees under SYSTEM_TREES that hold local data and are read like any other place (the longest match decides). */
export const LOCAL_TREES: readonly string[] = ['/usr/local'];

/**
 * Vendored third-party trees and documentation: the test certificates and sample keys that SDKs
 * and toolchains bundle there (google-cloud-sdk's urllib3 test server, Go's crypto sources,
 * OpenVPN's sample keys) are not the image's keys, whatever their names.
 */
export const VENDOR_TREES: readonly string[] = [
  '/usr/share',
  '/usr/lib',
  '/usr/lib32',
  '/usr/lib64',
  '/usr/libexec',
  '/usr/include',
  '/usr/src',
  '/usr/local/go',
];

/** Directory names (anywhere) of package source trees and test fixtures. */
export const PACKAGE_TREE_NAMES: ReadonlySet<string> = new Set([
  'node_modules',
  'site-packages',
  'dist-packages',
  '__pycache__',
  '.git',
  'test',
  'tests',
  '__tests__',
  'testdata',
]);

/**
 * Path fragments of package caches in home directories: the Go module cache, Cargo's registry.
 * They hold other projects' sources with their test keys.
 */
export const PACKAGE_TREE_FRAGMENTS: readonly string[] = ['/pkg/mod/', '/.cargo/registry/', '/.rustup/'];

/** File names that are keys by convention (OpenSSH, PEM/PKCS#8 files, PuTTY). */
export const KEY_FILE_NAME = /^(id_(rsa|dsa|ecdsa|ed25519)(_sk)?|ssh_host_.*_key|.*\.(pem|key|ppk|p8))$/;

/** SSH host keys: expected with an sshd, but fixed in the image they are shared by every container. */
export const SSH_HOST_KEY_PATH = /^\/etc\/ssh\/ssh_host_[a-z0-9]+_key$/;

/**
 * The documented example credentials from AWS's own documentation: they appear in READMEs and
 * configuration templates and grant nothing.
 */
export const AWS_EXAMPLE_KEY_IDS: ReadonlySet<string> = new Set([
  'AKIAIOSFODNN7EXAMPLE',
  'AKIAI44QH8DHBEXAMPLE',
]);
export const AWS_EXAMPLE_SECRET_MARK = 'EXAMPLEKEY';
