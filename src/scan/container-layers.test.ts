/**
 * Incremental container scans from overlay layers, against real Podman containers (images made by
 * `podman import` of a busybox root, and `podman build` of a second layer on it) and a real SQLite
 * store of real npm advisories, through `scan('container:…')` with a ScanCache. Every layered
 * answer is compared with an uncached scan, which walks the container's merged root as before.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { findEngineSocket } from '../engine/socket.js';
import { setUpOrSkip, sharedDataDir } from '../testing/shared-data.js';
import type { AdvisoryStore, AsyncAdvisoryStore, PackageQuery } from '../vulndb/advisory-store.js';
import { importFromPath } from '../vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { ScanCache } from './scan-cache.js';
import { scan } from './scan.js';
import type { ScanResult } from './scan-result.js';

const BUSYBOX = '/usr/bin/busybox';
const NPM_RECORDS = join(sharedDataDir, 'osv', 'npm');
const RUN = randomBytes(4).toString('hex');
const now = new Date('2026-01-01T00:00:00Z');

interface Env {
  tmp: string;
  store: AdvisoryStore;
  /** One layer: busybox, minimist 1.2.5 (vulnerable), a dpkg status naming `foo`. */
  image: string;
  /** `image` plus a layer that replaces the dpkg status (naming `bar`). */
  layered: string;
  names: string[];
}

const dpkgStatus = (name: string, version: string): string =>
  `Package: ${name}\nStatus: install ok installed\nVersion: ${version}\nArchitecture: all\n\n`;

function setup(): Env | string {
  if (!findEngineSocket(undefined, process.env)) return 'a container engine socket (podman system service)';
  if (!existsSync(BUSYBOX)) return BUSYBOX;
  if (!existsSync(NPM_RECORDS)) return `${NPM_RECORDS} (shared test data)`;
  if (process.getuid?.() !== 0) return 'root (container layers are root-owned)';
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'podman';
  }
  const tmp = mkdtempSync(join(tmpdir(), 'containment-layers-test-'));
  const root = join(tmp, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'app/node_modules/minimist'), { recursive: true });
  mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
  writeFileSync(
    join(root, 'app/node_modules/minimist/package.json'),
    '{"name":"minimist","version":"1.2.5"}',
  );
  writeFileSync(join(root, 'var/lib/dpkg/status'), dpkgStatus('foo', '1.0'));
  execFileSync('tar', ['-C', root, '-cf', join(tmp, 'rootfs.tar'), '.']);
  const image = `localhost/containment-layers-test:${RUN}`;
  execFileSync('podman', ['import', '--quiet', join(tmp, 'rootfs.tar'), image], { stdio: 'pipe' });
  writeFileSync(join(tmp, 'status'), dpkgStatus('bar', '2.0'));
  writeFileSync(join(tmp, 'Containerfile'), `FROM ${image}\nCOPY status /var/lib/dpkg/status\n`);
  const layered = `localhost/containment-layers-test:${RUN}-2`;
  execFileSync('podman', ['build', '--quiet', '-t', layered, '-f', join(tmp, 'Containerfile'), tmp], {
    stdio: 'pipe',
  });
  const store = openSqliteAdvisoryStore(join(tmp, 'vulndb.sqlite'), { create: true });
  return { tmp, store, image, layered, names: [] };
}

let env: Env | string = 'not set up';

const need = (t: TestContext): Env | undefined => setUpOrSkip(t, env);

/** `podman run -d` of busybox sleep in `image`, with extra `podman run` options; its pid. */
function start(e: Env, image: string, options: string[] = []): { name: string; pid: number } {
  const name = `containment-layers-${RUN}-${randomBytes(3).toString('hex')}`;
  e.names.push(name);
  execFileSync('podman', ['run', '-d', '--name', name, ...options, image, '/bin/busybox', 'sleep', '600'], {
    stdio: 'pipe',
  });
  const pid = Number(
    execFileSync('podman', ['inspect', '--format', '{{.State.Pid}}', name], { encoding: 'utf8' }),
  );
  return { name, pid };
}

/** The store, counting the packages looked up. */
function counting(store: AdvisoryStore): { store: AsyncAdvisoryStore; queries: PackageQuery[] } {
  const queries: PackageQuery[] = [];
  const counted = Object.create(store) as AsyncAdvisoryStore;
  counted.lookupMany = (q: readonly PackageQuery[]) => {
    queries.push(...q);
    return store.lookupMany(q);
  };
  return { store: counted, queries };
}

/** What a scan found, in a comparable form. */
const found = (r: ScanResult) =>
  JSON.stringify({
    packages: r.packages.map((p) => `${p.extractor}:${p.name}@${p.version}`).sort(),
    vulnerabilities: r.vulnerabilities.map((v) => `${v.id}:${v.package.name}`).sort(),
    configurations: r.insecureConfigurations.map((c) => `${c.id}:${c.evidence.join(',')}`).sort(),
  });
const names = (r: ScanResult) => r.packages.map((p) => p.name).sort();

describe('container scans from overlay layers (real podman)', () => {
  before(async () => {
    env = setup();
    if (typeof env !== 'string') await importFromPath(env.store, NPM_RECORDS);
  });
  after(() => {
    if (typeof env === 'string') return;
    if (env.names.length > 0) {
      execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', ...env.names], { stdio: 'ignore' });
    }
    execFileSync('podman', ['rmi', '--force', '--ignore', env.layered, env.image], { stdio: 'ignore' });
    env.store.close();
    rmSync(env.tmp, { recursive: true, force: true });
  });

  test('two containers of one image share one scan of its layer; both equal a walk of their root', async (t) => {
    const e = need(t);
    if (!e) return;
    const cache = new ScanCache();
    const [a, b] = [start(e, e.image), start(e, e.image)];
    const first = await scan(`container:${a.name}`, { store: e.store, cache, now });
    assert.deepEqual(cache.layers.stats, {
      lowerScans: 1,
      lowerHits: 0,
      upperWalks: 1,
      unchanged: 0,
      // Podman's own files in the writable layer (/etc/hosts, /run/.containerenv …) change nothing.
      lowerInventory: 1,
      unaffected: 0,
      extractions: 0,
      fallbacks: 0,
    });
    const second = await scan(`container:${b.name}`, { store: e.store, cache, now });
    assert.equal(cache.layers.stats.lowerScans, 1, 'the image layer is scanned once');
    assert.equal(cache.layers.stats.lowerHits, 1, 'the second container finds it scanned');
    assert.equal(cache.layers.stats.extractions, 0);
    assert.deepEqual(names(first), ['foo', 'minimist']);
    assert.ok(first.vulnerabilities.some((v) => v.package.name === 'minimist'));
    for (const [c, r] of [
      [a, first],
      [b, second],
    ] as const) {
      assert.equal(found(r), found(await scan(`container:${c.name}`, { store: e.store, now })));
    }
  });

  test('a package added in the writable layer appears; an unchanged rescan extracts and matches nothing', async (t) => {
    const e = need(t);
    if (!e) return;
    const cache = new ScanCache();
    const { store, queries } = counting(e.store);
    const matcher = await cache.use(store);
    let matchCalls = 0;
    const matchAll = matcher.matchAll.bind(matcher);
    matcher.matchAll = (packages) => {
      matchCalls += 1;
      return matchAll(packages);
    };
    const c = start(e, e.image);
    const rescan = () => scan(`container:${c.name}`, { store, cache, now });
    await rescan();
    assert.equal(matchCalls, 1);

    mkdirSync(`/proc/${c.pid}/root/app/node_modules/lodash`);
    writeFileSync(
      `/proc/${c.pid}/root/app/node_modules/lodash/package.json`,
      '{"name":"lodash","version":"4.17.20"}',
    );
    queries.length = 0;
    const changed = await rescan();
    assert.deepEqual(names(changed), ['foo', 'lodash', 'minimist']);
    assert.ok(changed.vulnerabilities.some((v) => v.package.name === 'lodash'));
    assert.deepEqual(
      queries.map((q) => q.name),
      ['lodash'],
      'only the new package is looked up',
    );
    assert.equal(cache.layers.stats.extractions, 1, 'the new package.json mattered: extracted once');
    assert.equal(cache.layers.stats.lowerScans, 1);
    assert.equal(found(changed), found(await scan(`container:${c.name}`, { store: e.store, now })));

    const before = { ...cache.layers.stats };
    queries.length = 0;
    matchCalls = 0;
    const again = await rescan();
    assert.equal(matchCalls, 0, 'no matching');
    assert.equal(queries.length, 0, 'no lookups');
    assert.equal(cache.layers.stats.extractions, before.extractions, 'no extraction');
    assert.equal(
      cache.layers.stats.unchanged,
      before.unchanged + 1,
      'answered from the unchanged writable layer',
    );
    assert.equal(found(again), found(changed));

    // A file no extractor or check looks at (not one in /etc, /var or /tmp, say: the secret checks
    // read those): the writable layer changed, the inventory did not.
    mkdirSync(`/proc/${c.pid}/root/usr/share/doc`, { recursive: true });
    writeFileSync(`/proc/${c.pid}/root/usr/share/doc/notes.txt`, 'hello');
    matchCalls = 0;
    const unrelated = await rescan();
    assert.equal(cache.layers.stats.extractions, before.extractions, 'nothing extracted');
    assert.equal(cache.layers.stats.unaffected, before.unaffected + 1);
    assert.equal(matchCalls, 0, 'nothing matched');
    assert.equal(found(unrelated), found(changed));
    assert.equal(found(unrelated), found(await scan(`container:${c.name}`, { store: e.store, now })));

    // The same package file rewritten with its size and mtime kept: its ctime tells.
    const lodash = `/proc/${c.pid}/root/app/node_modules/lodash/package.json`;
    const { atime, mtime } = statSync(lodash);
    writeFileSync(lodash, '{"name":"lodash","version":"4.17.21"}');
    utimesSync(lodash, atime, mtime);
    const rewritten = await rescan();
    assert.ok(rewritten.packages.some((p) => p.name === 'lodash' && p.version === '4.17.21'));
    assert.equal(cache.layers.stats.extractions, before.extractions + 1);
  });

  test('lower files deleted in the container (a whiteout, an opaque directory) disappear', async (t) => {
    const e = need(t);
    if (!e) return;
    const cache = new ScanCache();
    const c = start(e, e.image);
    const rescan = () => scan(`container:${c.name}`, { store: e.store, cache, now });
    const uncached = () => scan(`container:${c.name}`, { store: e.store, now });
    assert.deepEqual(names(await rescan()), ['foo', 'minimist']);

    unlinkSync(`/proc/${c.pid}/root/var/lib/dpkg/status`); // a whiteout in the writable layer
    const deleted = await rescan();
    assert.deepEqual(names(deleted), ['minimist']);
    assert.equal(found(deleted), found(await uncached()));

    // The directory removed and made again: opaque (an attribute only the kernel reads).
    rmSync(`/proc/${c.pid}/root/app/node_modules`, { recursive: true });
    mkdirSync(`/proc/${c.pid}/root/app/node_modules`);
    writeFileSync(`/proc/${c.pid}/root/var/lib/dpkg/status`, dpkgStatus('baz', '3.0'));
    const replaced = await rescan();
    assert.deepEqual(names(replaced), ['baz']);
    assert.equal(found(replaced), found(await uncached()));
    assert.equal(cache.layers.stats.fallbacks, 0);
  });

  test('an image of two layers is merged by the kernel for its one lower scan', async (t) => {
    const e = need(t);
    if (!e) return;
    const cache = new ScanCache();
    const [a, b] = [start(e, e.layered), start(e, e.layered)];
    const first = await scan(`container:${a.name}`, { store: e.store, cache, now });
    const second = await scan(`container:${b.name}`, { store: e.store, cache, now });
    assert.deepEqual(names(first), ['bar', 'minimist'], 'the upper image layer replaced the status');
    assert.equal(cache.layers.stats.lowerScans, 1);
    assert.equal(cache.layers.stats.lowerHits, 1);
    assert.equal(cache.layers.stats.fallbacks, 0);
    assert.equal(found(first), found(await scan(`container:${a.name}`, { store: e.store, now })));
    assert.equal(found(second), found(first));
    // Nothing of the mount is left behind.
    const mounts = execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' });
    assert.ok(!mounts.includes('containment-layers-'), 'the lower layers were unmounted');
  });

  test('a container with a volume is walked through its root, as before', async (t) => {
    const e = need(t);
    if (!e) return;
    const volume = join(e.tmp, 'volume');
    mkdirSync(join(volume, 'node_modules/lodash'), { recursive: true });
    writeFileSync(join(volume, 'node_modules/lodash/package.json'), '{"name":"lodash","version":"4.17.20"}');
    const cache = new ScanCache();
    const c = start(e, e.image, ['-v', `${volume}:/srv`]);
    const result = await scan(`container:${c.name}`, { store: e.store, cache, now });
    assert.equal(cache.layers.stats.fallbacks, 1);
    assert.deepEqual(names(result), ['foo', 'lodash', 'minimist'], 'the volume is part of what is scanned');
  });

  test("a pod's service-account token mount is no volume; anything else at that path is", async (t) => {
    const e = need(t);
    if (!e) return;
    /** A tmpfs laid out as the kubelet's atomic writer lays out a projected token volume. */
    const tokenVolume = (name: string, extra?: (dir: string) => void): string => {
      const dir = join(e.tmp, name);
      mkdirSync(dir);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
      t.after(() => execFileSync('umount', ['-l', dir]));
      const data = '..2026_12_07_18_00_00.123456789';
      mkdirSync(join(dir, data));
      for (const key of ['token', 'ca.crt', 'namespace']) {
        writeFileSync(join(dir, data, key), `${key} of the pod\n`, { mode: 0o644 });
        symlinkSync(`..data/${key}`, join(dir, key));
      }
      symlinkSync(data, join(dir, '..data'));
      extra?.(dir);
      return dir;
    };
    const at = '/var/run/secrets/kubernetes.io/serviceaccount';

    const cache = new ScanCache();
    const pod = start(e, e.image, ['-v', `${tokenVolume('sa')}:${at}:ro`]);
    const result = await scan(`container:${pod.name}`, { store: e.store, cache, now });
    assert.equal(cache.layers.stats.fallbacks, 0, 'served from its layers');
    assert.equal(found(result), found(await scan(`container:${pod.name}`, { store: e.store, now })));

    // Writable, or holding more than the token's keys: a volume, walked through the root.
    const writable = start(e, e.image, ['-v', `${tokenVolume('sa-rw')}:${at}`]);
    await scan(`container:${writable.name}`, { store: e.store, cache, now });
    assert.equal(cache.layers.stats.fallbacks, 1, 'a writable mount there is a volume');
    const hiding = tokenVolume('sa-more', (dir) => {
      mkdirSync(join(dir, 'node_modules/lodash'), { recursive: true });
      writeFileSync(join(dir, 'node_modules/lodash/package.json'), '{"name":"lodash","version":"4.17.20"}');
    });
    const other = start(e, e.image, ['-v', `${hiding}:${at}:ro`]);
    const walked = await scan(`container:${other.name}`, { store: e.store, cache, now });
    assert.equal(cache.layers.stats.fallbacks, 2, 'more than the token volume: a volume');
    assert.deepEqual(names(walked), ['foo', 'lodash', 'minimist'], 'what hides there is scanned');
  });
});
