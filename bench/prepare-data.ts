/**
 * Builds (once) the benchmark's inputs in a cache outside the repository:
 * - a real Debian 12 root filesystem of ~500 packages (debootstrap minbase + a list of common
 *   packages; fallback: the test minbase root plus real dpkg status paragraphs of this host);
 * - 100,000 OSV records replicated from the real ones in testdata/osv under new ids, a share
 *   of them retargeted to `Debian:12` and source packages really installed in that root, written
 *   as one osv.dev-style `all.zip` (our import) and as per-ecosystem `all.zip` files in the layout
 *   osv-scanner v2.5.0's offline matcher (osv-scalibr's `vulnmatch/osvlocal`) reads:
 *   `$OSV_SCALIBR_LOCAL_DB_CACHE_DIRECTORY/osv-scalibr/<base ecosystem>/all.zip`.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot, sharedDataDir } from '../src/testing/shared-data.js';
import { ZipWriter } from '../src/testing/zip-writer.js';

export const BENCH_CACHE =
  process.env.CONTAINMENT_BENCH_CACHE ?? join(homedir(), '.cache', 'containment', 'bench');
/** `BENCH_RECORDS` changes it (e.g. 400000 for the large-database figures). */
export const TOTAL_RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
/** Records retargeted to the root's own packages: the ones that give the scan real matching work. */
export const DEBIAN12_RECORDS = 5_000;
/** Bump when the generated records change shape, so cached archives are rebuilt. */
const GENERATOR_VERSION = 2;

/**
 * The directory osv-scalibr's offline matcher appends to its cache directory; under it, one
 * `<base ecosystem>/all.zip` per ecosystem (`Debian`, not `Debian:12`), read as is when offline:
 * no marker file, date or checksum is checked.
 */
const OSV_DB_SUBDIR = 'osv-scalibr';

/** How long a build waits for another process's build of the same input before giving up. */
const LOCK_WAIT_MS = 60 * 60 * 1000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `build` holding `<target>.lock` (created exclusively, holding the builder's pid), so two
 * benchmarks started at once never build the same input into the same place: the second waits,
 * then finds the first one's result. A lock whose process is gone is taken over. Builds also go
 * to a per-process `.partial-<pid>` and are renamed into place, so even a builder that ignores
 * the lock never shares a half-written tree with this one.
 */
function withBuildLock<T>(target: string, log: (line: string) => void, build: () => T): T {
  mkdirSync(BENCH_CACHE, { recursive: true });
  const lock = `${target}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  let said = false;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: number;
    try {
      holder = Number(readFileSync(lock, 'utf8'));
    } catch {
      continue; // released between our open and read
    }
    // An empty file is a lock being written this instant: wait for it like a live one.
    if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) {
      rmSync(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${lock} is held by process ${holder} for too long`);
    if (!said) log(`waiting for process ${holder}, which is building ${target} ...`);
    said = true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
  try {
    return build();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** A fresh per-process build directory or file name next to `target`. */
const partialOf = (target: string): string => `${target}.partial-${process.pid}`;

/** Moves a finished build into place; a target finished meanwhile by a lock-less builder wins. */
function publish(partial: string, target: string): void {
  try {
    renameSync(partial, target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    rmSync(partial, { recursive: true, force: true });
  }
}

// Common packages of real Debian images (not gdb: libsource-highlight4v5 fails to configure under
// debootstrap); with their dependencies and minbase this is ~500 packages.
const EXTRA_PACKAGES = [
  'python3', 'python3-pip', 'python3-venv', 'perl', 'git', 'curl', 'wget', 'openssl', 'ca-certificates',
  'build-essential', 'vim', 'less', 'openssh-server', 'openssh-client', 'sudo', 'procps', 'iproute2',
  'iputils-ping', 'net-tools', 'rsync', 'gnupg', 'unzip', 'zip', 'xz-utils', 'bzip2', 'file', 'man-db',
  'libssl-dev', 'zlib1g-dev', 'nginx', 'postgresql-client', 'sqlite3', 'jq', 'tzdata', 'locales', 'htop',
  'tmux', 'strace', 'lsof', 'cmake', 'pkg-config', 'autoconf', 'automake', 'libtool', 'imagemagick', 'ruby',
  'php-cli', 'nodejs', 'python3-requests', 'apache2', 'mariadb-client', 'redis-server', 'libxml2-dev',
  'libcurl4-openssl-dev', 'python3-dev', 'default-jre-headless', 'graphviz', 'postgresql', 'emacs-nox', 'texinfo',
  'subversion', 'golang-go', 'python3-numpy', 'mercurial',
]; // prettier-ignore

export interface BenchRoot {
  path: string;
  /** Installed packages in its dpkg status. */
  packages: number;
  /** How it was built, shown in the output. */
  how: string;
}

export interface BenchRecords {
  /** Every record in one zip, for `importFromPath`. */
  allZip: string;
  /** `OSV_SCALIBR_LOCAL_DB_CACHE_DIRECTORY` for osv-scanner's offline mode. */
  osvScannerDbDir: string;
  total: number;
  debian12: number;
  realRecords: number;
}

interface DpkgEntry {
  fields: Map<string, string>;
  text: string;
}

function parseDpkgStatus(text: string): DpkgEntry[] {
  return text
    .split(/\n\s*\n/)
    .filter((p) => p.trim() !== '')
    .map((p) => {
      const fields = new Map<string, string>();
      for (const line of p.split('\n')) {
        const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
        if (m?.[1] !== undefined && m[2] !== undefined) fields.set(m[1], m[2]);
      }
      return { fields, text: p.trim() };
    });
}

const installed = (e: DpkgEntry): boolean => e.fields.get('Status') === 'install ok installed';

function countInstalled(root: string): number {
  return parseDpkgStatus(readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8')).filter(installed).length;
}

/** The ~500-package root: built with debootstrap once, or (if that fails) the fallback below. */
export function prepareRoot(log: (line: string) => void): BenchRoot {
  const root = join(BENCH_CACHE, 'bookworm-500');
  const marker = join(root, '.complete');
  if (!existsSync(marker)) withBuildLock(root, log, () => buildRoot(root, marker, log));
  return { path: root, packages: countInstalled(root), how: readFileSync(marker, 'utf8').trim() };
}

function buildRoot(root: string, marker: string, log: (line: string) => void): void {
  if (existsSync(marker)) return; // built by the process we waited for
  {
    const partial = partialOf(root);
    rmSync(partial, { recursive: true, force: true });
    const mirror = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
    log(
      `building ${root} with debootstrap (${EXTRA_PACKAGES.length} extra packages; a few minutes, once) ...`,
    );
    const r = spawnSync(
      'debootstrap',
      ['--variant=minbase', `--include=${EXTRA_PACKAGES.join(',')}`, 'bookworm', partial, mirror],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    writeFileSync(join(BENCH_CACHE, 'debootstrap.log'), `${r.stdout ?? ''}${r.stderr ?? ''}`);
    let how: string;
    if (r.status === 0) {
      how = `debootstrap --variant=minbase --include=<${EXTRA_PACKAGES.length} common packages> bookworm`;
      // The downloaded .debs are not part of what a container ships.
      const archives = join(partial, 'var/cache/apt/archives');
      for (const f of readdirSync(archives)) if (f.endsWith('.deb')) rmSync(join(archives, f));
    } else {
      log(
        `debootstrap failed (${r.status ?? r.signal}); see ${join(BENCH_CACHE, 'debootstrap.log')}; using the fallback`,
      );
      rmSync(partial, { recursive: true, force: true });
      how = fallbackRoot(partial);
    }
    writeFileSync(join(partial, '.complete'), `${how}\n`);
    // A root without its marker is a build that died half-way.
    rmSync(root, { recursive: true, force: true });
    publish(partial, root);
  }
}

/** The test minbase root plus this Debian 12 host's real dpkg entries, up to ~500 packages. */
function fallbackRoot(dest: string): string {
  const r = spawnSync(join(repoRoot, 'scripts', 'build-test-rootfs.sh'), ['--print-path'], {
    encoding: 'utf8',
  });
  const minbase = r.stdout.trim();
  if (r.status !== 0 || !minbase) throw new Error(`cannot build the minbase root: ${r.stderr}`);
  cpSync(minbase, dest, { recursive: true, verbatimSymlinks: true });
  const statusPath = join(dest, 'var/lib/dpkg/status');
  const own = parseDpkgStatus(readFileSync(statusPath, 'utf8'));
  const names = new Set(own.map((e) => e.fields.get('Package')));
  const host = parseDpkgStatus(readFileSync('/var/lib/dpkg/status', 'utf8')).filter(
    (e) => installed(e) && !names.has(e.fields.get('Package')),
  );
  const added = host.slice(0, Math.max(0, 500 - own.length));
  writeFileSync(statusPath, `${[...own.map((e) => e.text), ...added.map((e) => e.text)].join('\n\n')}\n`);
  return `FALLBACK: minbase (${own.length}) + ${added.length} dpkg status entries copied from this host (files not installed)`;
}

/** Source packages (name and version) installed in the root: what Debian advisories name. */
function installedSources(root: string): { name: string; version: string }[] {
  const sources = new Map<string, string>();
  for (const e of parseDpkgStatus(readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8')).filter(
    installed,
  )) {
    const version = e.fields.get('Version') ?? '';
    const m = /^(\S+)(?:\s+\((\S+)\))?/.exec(e.fields.get('Source') ?? e.fields.get('Package') ?? '');
    if (m?.[1] === undefined || version === '') continue;
    sources.set(m[1], m[2] ?? version);
  }
  return [...sources]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, v]) => ({ name, version: v }));
}

type Json = Record<string, unknown>;

/** The real records, one per id (some appear in two folders), in a stable order. */
function realRecords(): Json[] {
  const dir = join(sharedDataDir, 'osv');
  if (!existsSync(dir)) throw new Error(`OSV records not found at ${dir} (the repository's testdata/)`);
  const byId = new Map<string, Json>();
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    // The two `_osvdev-test-fixtures` records are deliberately malformed: not advisories to replicate.
    .filter((f) => f.endsWith('.json') && !f.includes('_osvdev-test-fixtures'))
    .sort();
  for (const f of files) {
    const record = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Json;
    if (typeof record.id === 'string' && !byId.has(record.id)) byId.set(record.id, record);
  }
  return [...byId.values()].sort((a, b) => String(a.id).localeCompare(String(b.id)));
}

/** New ids for a replica; aliases and upstream ids too, so replicas never group together. */
function replicate(record: Json, n: number): Json {
  const suffix = (ids: unknown) => (Array.isArray(ids) ? ids.map((id) => `${String(id)}-R${n}`) : ids);
  const copy: Json = { ...record, id: `${String(record.id)}-R${n}` };
  if (record.aliases !== undefined) copy.aliases = suffix(record.aliases);
  if (record.upstream !== undefined) copy.upstream = suffix(record.upstream);
  return copy;
}

function renamePackages(affected: unknown, n: number): unknown {
  if (!Array.isArray(affected)) return affected;
  return (affected as Json[]).map((a) => {
    const pkg = a.package as Json | undefined;
    return pkg === undefined ? a : { ...a, package: { ...pkg, name: `${String(pkg.name)}-r${n}` } };
  });
}

/**
 * Version ranges relative to the installed version, cycling through cases that do and do not
 * affect it: fixed above it (affected), fixed below it (not), no fix (affected), introduced above
 * it (not), and the template's own real range (depends on the versions).
 */
function retargetedRanges(kind: number, installedVersion: string, template: Json): unknown[] {
  const ecosystem = (events: Json[]) => [{ type: 'ECOSYSTEM', events }];
  switch (kind) {
    case 0:
      return ecosystem([{ introduced: '0' }, { fixed: `${installedVersion}+bench1` }]);
    case 1:
      return ecosystem([{ introduced: '0' }, { fixed: `${installedVersion}~bench1` }]);
    case 2:
      return ecosystem([{ introduced: '0' }]);
    case 3:
      return ecosystem([{ introduced: `${installedVersion}+bench1` }]);
    default: {
      const affected = (template.affected as Json[] | undefined)?.[0];
      return (affected?.ranges as unknown[] | undefined) ?? ecosystem([{ introduced: '0' }]);
    }
  }
}

/** The records for `root`: TOTAL_RECORDS of them unless `total` says otherwise. */
export function prepareRecords(
  root: BenchRoot,
  log: (line: string) => void,
  total = TOTAL_RECORDS,
): BenchRecords {
  const rootStatus = readFileSync(join(root.path, 'var/lib/dpkg/status'));
  const key = createHash('sha256')
    .update(`${GENERATOR_VERSION}\n${total}\n${DEBIAN12_RECORDS}\n`)
    .update(rootStatus);
  const dir = join(BENCH_CACHE, `records-${key.digest('hex').slice(0, 12)}`);
  const result: BenchRecords = {
    allZip: join(dir, 'all.zip'),
    osvScannerDbDir: join(dir, 'osv-scanner-db'),
    total,
    debian12: DEBIAN12_RECORDS,
    realRecords: 0,
  };
  const manifest = join(dir, 'manifest.json');
  const done = (): BenchRecords => ({
    ...result,
    ...(JSON.parse(readFileSync(manifest, 'utf8')) as object),
  });
  // Records generated before have the zips under `osv-scanner/` (with the variable
  // `OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY`, what v2.2.4 read); v2.5.0 never looks there.
  const oldLayout = join(result.osvScannerDbDir, 'osv-scanner');
  if (existsSync(manifest) && existsSync(oldLayout))
    renameSync(oldLayout, join(result.osvScannerDbDir, OSV_DB_SUBDIR));
  if (existsSync(manifest)) return done();
  return withBuildLock(dir, log, () => {
    if (!existsSync(manifest)) buildRecords(root, dir, total, log);
    return done();
  });
}

function buildRecords(root: BenchRoot, dir: string, total: number, log: (line: string) => void): void {
  log(`generating ${total} records into ${dir} (once) ...`);
  const partial = partialOf(dir);
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const real = realRecords();
  const debianTemplates = real.filter((r) =>
    (r.affected as Json[] | undefined)?.some((a) =>
      String((a.package as Json | undefined)?.ecosystem).startsWith('Debian'),
    ),
  );
  const sources = installedSources(root.path);
  if (debianTemplates.length === 0 || sources.length === 0)
    throw new Error('no Debian records or no installed sources');

  const all = new ZipWriter(join(partial, 'all.zip'));
  const perEcosystem = new Map<string, ZipWriter>();
  const add = (record: Json) => {
    const name = `${String(record.id)}.json`;
    const data = Buffer.from(JSON.stringify(record));
    all.add(name, data);
    // osv.dev files a record under every base ecosystem it names; GIT-only records under GIT.
    const ecosystems = new Set(
      ((record.affected as Json[] | undefined) ?? []).map((a) => {
        const eco = (a.package as Json | undefined)?.ecosystem;
        return typeof eco === 'string' ? (eco.split(':')[0] ?? eco) : 'GIT';
      }),
    );
    for (const eco of ecosystems) {
      let writer = perEcosystem.get(eco);
      if (writer === undefined) {
        const ecoDir = join(partial, 'osv-scanner-db', OSV_DB_SUBDIR, eco);
        mkdirSync(ecoDir, { recursive: true });
        writer = new ZipWriter(join(ecoDir, 'all.zip'));
        perEcosystem.set(eco, writer);
      }
      writer.add(name, data);
    }
  };

  for (let n = 0; n < DEBIAN12_RECORDS; n++) {
    const template = debianTemplates[n % debianTemplates.length] as Json;
    // Stride through the sources so neighbouring records hit different packages.
    const source = sources[(n * 7919) % sources.length] as { name: string; version: string };
    const { versions: _dropped, ...affected } = ((template.affected as Json[])[0] ?? {}) as Json;
    add({
      ...replicate(template, n),
      summary: `${source.name} - security update`,
      affected: [
        {
          ...affected,
          package: {
            name: source.name,
            ecosystem: 'Debian:12',
            purl: `pkg:deb/debian/${source.name}?arch=source`,
          },
          // The kind shifts each pass over the sources, so every package sees every kind.
          ranges: retargetedRanges((n + Math.floor(n / sources.length)) % 5, source.version, template),
        },
      ],
    });
  }
  for (let n = DEBIAN12_RECORDS; n < total; n++) {
    const record = replicate(real[n % real.length] as Json, n);
    // Past the first copy, replicas name packages of their own: 700 copies of each advisory
    // against the same PyPI or npm package would be load no real database puts on one package.
    if (n >= DEBIAN12_RECORDS + real.length) record.affected = renamePackages(record.affected, n);
    add(record);
  }
  all.close();
  for (const writer of perEcosystem.values()) writer.close();

  const written = {
    realRecords: real.length,
    sourcePackages: sources.length,
    ecosystems: [...perEcosystem.keys()],
  };
  writeFileSync(join(partial, 'manifest.json'), `${JSON.stringify(written, null, 2)}\n`);
  // A directory without its manifest is a build that died half-way.
  rmSync(dir, { recursive: true, force: true });
  publish(partial, dir);
}

/**
 * The same root as a one-layer docker-archive (as `podman save` writes it: uncompressed layer,
 * manifest.json last), built with tar once: the input both scanners read as an image.
 */
export function prepareImageArchive(root: BenchRoot, log: (line: string) => void): string {
  const archive = join(BENCH_CACHE, 'bookworm-500.docker-archive.tar');
  if (existsSync(archive)) return archive;
  return withBuildLock(archive, log, () => {
    if (!existsSync(archive)) buildImageArchive(root, archive, log);
    return archive;
  });
}

function buildImageArchive(root: BenchRoot, archive: string, log: (line: string) => void): void {
  const dir = partialOf(archive);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  log(`building ${archive} from the root (once) ...`);
  const tar = (args: string[]): void => {
    const r = spawnSync('tar', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`tar ${args.join(' ')}: ${r.stderr}`);
  };
  tar(['--numeric-owner', '--exclude=./.complete', '-C', root.path, '-cf', join(dir, 'layer.tar'), '.']);
  const sum = spawnSync('sha256sum', [join(dir, 'layer.tar')], { encoding: 'utf8' });
  const diffId = sum.stdout.split(' ')[0];
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
  });
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  writeFileSync(join(dir, configName), config);
  const manifest = [
    { Config: configName, RepoTags: ['localhost/bench-bookworm:500'], Layers: ['layer.tar'] },
  ];
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  const tmp = `${dir}.tar`;
  tar(['-C', dir, '-cf', tmp, 'layer.tar', configName, 'manifest.json']);
  renameSync(tmp, archive);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The records imported into a SQLite advisory database (once, beside them; by `bench-child.ts
 * import` in its own process), for benchmarks that measure scans, not imports.
 */
export function prepareDatabase(records: BenchRecords, log: (line: string) => void): string {
  const db = join(dirname(records.allZip), 'advisories.sqlite');
  if (existsSync(db)) return db;
  return withBuildLock(db, log, () => {
    if (existsSync(db)) return db;
    log(`importing ${records.total} records into ${db} (once) ...`);
    const partial = partialOf(db);
    rmSync(partial, { force: true });
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'bench', 'bench-child.ts'), 'import', records.allZip, partial],
      { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    if (r.status !== 0) throw new Error(`import into ${partial} failed: ${r.stderr}`);
    // A closed database has checkpointed its write-ahead log; one left over goes along.
    for (const suffix of ['-wal', '-shm'])
      if (existsSync(`${partial}${suffix}`)) renameSync(`${partial}${suffix}`, `${db}${suffix}`);
    renameSync(partial, db);
    return db;
  });
}
