import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { requireOrSkip } from '../../testing/shared-data.js';
import type { OsInfo } from '../types.js';
import { contextFor } from './extractor.test-helper.js';
import { parseRpmHeader, parseSourceRpm, RpmHeaderError, rpmExtractor, rpmHeaderToPackage } from './rpm.js';

const temp = mkdtempSync(join(tmpdir(), 'containment-rpm-'));
after(() => rmSync(temp, { recursive: true, force: true }));
let rootCount = 0;

const RHEL9: OsInfo = { id: 'rhel', versionId: '9.4', ecosystem: 'Red Hat:enterprise_linux:9::baseos' };
const rpmAvailable = ['rpm', 'rpmbuild'].every((tool) => spawnSync(tool, ['--version']).status === 0);

function newRoot(dbDir = 'var/lib/rpm'): { root: string; dbDir: string } {
  const root = join(temp, `root-${rootCount++}`);
  mkdirSync(join(root, dbDir), { recursive: true });
  return { root, dbDir: join(root, dbDir) };
}

/**
 * A real rpmdb.sqlite made by this machine's rpm from packages built with rpmbuild: one with an
 * epoch, one without, and a package named gpg-pubkey (what `rpm --import` records).
 */
let realDb: string | undefined;
before(() => {
  if (!rpmAvailable) return;
  const build = join(temp, 'build');
  const specs: Array<[string, string, string, string | undefined]> = [
    ['hello-containment', '1.2.3', '4.el9', '2'],
    ['plain-pkg', '0.9', '1', undefined],
    ['gpg-pubkey', 'fd431d51', '4ae0493b', undefined],
  ];
  for (const [name, version, release, epoch] of specs) {
    const spec = join(build, `${name}.spec`);
    mkdirSync(build, { recursive: true });
    writeFileSync(
      spec,
      [
        `Name: ${name}`,
        `Version: ${version}`,
        `Release: ${release}`,
        ...(epoch ? [`Epoch: ${epoch}`] : []),
        'Summary: containment test package',
        'License: MIT',
        'BuildArch: noarch',
        '%description',
        'test',
        '%files',
        '',
      ].join('\n'),
    );
    execFileSync('rpmbuild', ['--define', `_topdir ${join(build, 'top')}`, '--quiet', '-bb', spec], {
      stdio: 'pipe',
    });
  }
  const rpmsDir = join(build, 'top', 'RPMS', 'noarch');
  const rpms = readdirSync(rpmsDir).map((f) => join(rpmsDir, f));
  const dbPath = join(temp, 'db');
  mkdirSync(dbPath);
  execFileSync('rpm', ['--dbpath', dbPath, '--initdb'], { stdio: 'pipe' });
  execFileSync('rpm', ['--dbpath', dbPath, '--justdb', '--nodeps', '-i', ...rpms], { stdio: 'pipe' });
  realDb = join(dbPath, 'rpmdb.sqlite');
});

function needRealDb(t: TestContext): string | undefined {
  if (!requireOrSkip(t, rpmAvailable, 'rpm and rpmbuild')) return undefined;
  return realDb;
}

/** The header blobs of the real database, read directly (test side). */
function realBlobs(db: string): Buffer[] {
  const copy = join(temp, `blobs-${rootCount++}.sqlite`);
  copyFileSync(db, copy);
  const handle = new Database(copy);
  try {
    return (handle.prepare('SELECT blob FROM Packages ORDER BY hnum').all() as Array<{ blob: Buffer }>).map(
      (r) => r.blob,
    );
  } finally {
    handle.close();
  }
}

/** Index of the entry with `tag` in a header blob. */
function entryAt(blob: Buffer, tag: number): number {
  const il = blob.readUInt32BE(0);
  for (let i = 0; i < il; i++) if (blob.readUInt32BE(8 + 16 * i) === tag) return 8 + 16 * i;
  throw new Error(`tag ${tag} not in blob`);
}

describe('parseSourceRpm', () => {
  test('strips version, release and .src.rpm; adds the epoch', () => {
    assert.deepEqual(parseSourceRpm('openssl-3.0.7-27.el9.src.rpm', 1), {
      name: 'openssl',
      version: '1:3.0.7-27.el9',
    });
    assert.deepEqual(parseSourceRpm('python3-dateutil-2.8.1-7.el9.src.rpm', undefined), {
      name: 'python3-dateutil',
      version: '2.8.1-7.el9',
    });
    assert.equal(parseSourceRpm('weird.src.rpm', undefined), undefined);
    assert.equal(parseSourceRpm('not-a-1-source', undefined), undefined);
  });
});

describe('rpmExtractor on a real rpmdb.sqlite', () => {
  test('lists what rpm -qa lists, minus gpg-pubkey', async (t) => {
    const db = needRealDb(t);
    if (!db) return;
    const { root, dbDir } = newRoot();
    copyFileSync(db, join(dbDir, 'rpmdb.sqlite'));
    const ctx = await contextFor(root, RHEL9);
    const pkgs = await rpmExtractor.extract(ctx);
    const qa = execFileSync(
      'rpm',
      [
        '--dbpath',
        join(db, '..'),
        '-qa',
        '--qf',
        '%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE} %{SOURCERPM}\n',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    )
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('gpg-pubkey '))
      .sort();
    assert.equal(qa.length, 2);
    assert.deepEqual(
      pkgs
        .map(
          (p) => `${p.name} ${p.version} ${p.source?.name}-${p.source?.version.replace(/^\d+:/, '')}.src.rpm`,
        )
        .sort(),
      qa,
    );
    const hello = pkgs.find((p) => p.name === 'hello-containment');
    assert.deepEqual(hello, {
      name: 'hello-containment',
      version: '2:1.2.3-4.el9',
      ecosystem: 'Red Hat:enterprise_linux:9::baseos',
      source: { name: 'hello-containment', version: '2:1.2.3-4.el9' },
      purl: 'pkg:rpm/redhat/hello-containment@1.2.3-4.el9?arch=noarch&distro=rhel-9.4&epoch=2',
      location: '/var/lib/rpm/rpmdb.sqlite',
      extractor: 'rpm',
    });
    assert.deepEqual(ctx.notes, []);
  });

  test('/var/lib/rpm linked to /usr/lib/sysimage/rpm is read once', async (t) => {
    const db = needRealDb(t);
    if (!db) return;
    const { root, dbDir } = newRoot('usr/lib/sysimage/rpm');
    copyFileSync(db, join(dbDir, 'rpmdb.sqlite'));
    mkdirSync(join(root, 'var/lib'), { recursive: true });
    symlinkSync('../../usr/lib/sysimage/rpm', join(root, 'var/lib/rpm'));
    const pkgs = await rpmExtractor.extract(await contextFor(root, RHEL9));
    assert.equal(pkgs.length, 2);
  });

  test('a non-empty -wal file is reported; the checkpointed packages are still listed', async (t) => {
    const db = needRealDb(t);
    if (!db) return;
    const { root, dbDir } = newRoot();
    copyFileSync(db, join(dbDir, 'rpmdb.sqlite'));
    writeFileSync(join(dbDir, 'rpmdb.sqlite-wal'), Buffer.alloc(4096, 1));
    const ctx = await contextFor(root, RHEL9);
    assert.equal((await rpmExtractor.extract(ctx)).length, 2);
    assert.equal(ctx.notes.length, 1);
    assert.match(ctx.notes[0] ?? '', /-wal/);
  });

  test('a database link to a host file is resolved inside the root and reads nothing', async (t) => {
    const db = needRealDb(t);
    if (!db) return;
    const { root, dbDir } = newRoot();
    symlinkSync(db, join(dbDir, 'rpmdb.sqlite')); // absolute host path, outside the root
    const ctx = await contextFor(root, RHEL9);
    assert.deepEqual(await rpmExtractor.extract(ctx), []);
  });

  test('malformed headers in a real SQLite database become one note; good ones are kept', async (t) => {
    const db = needRealDb(t);
    if (!db) return;
    const [good] = realBlobs(db);
    assert.ok(good);
    const { root, dbDir } = newRoot();
    // A database with rpm's own schema, written by SQLite, holding one good and two bad headers.
    const handle = new Database(join(dbDir, 'rpmdb.sqlite'));
    handle.exec("CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)");
    const insert = handle.prepare('INSERT INTO Packages (blob) VALUES (?)');
    insert.run(good);
    insert.run(good.subarray(0, 40));
    insert.run('text, not a blob');
    handle.close();
    const ctx = await contextFor(root, RHEL9);
    const pkgs = await rpmExtractor.extract(ctx);
    assert.equal(pkgs.length, 1);
    assert.equal(ctx.notes.length, 1);
    assert.match(ctx.notes[0] ?? '', /skipped 2 malformed package header\(s\).*header 2: /);
  });
});

describe('parseRpmHeader attacks (real header blob, then damaged)', () => {
  function hello(t: TestContext): Buffer | undefined {
    const db = needRealDb(t);
    if (!db) return undefined;
    const blob = realBlobs(db).find((b) => parseRpmHeader(b).name === 'hello-containment');
    assert.ok(blob);
    return Buffer.from(blob);
  }

  test('the undamaged blob parses', (t) => {
    const blob = hello(t);
    if (!blob) return;
    const h = parseRpmHeader(blob);
    assert.deepEqual(h, {
      name: 'hello-containment',
      version: '1.2.3',
      release: '4.el9',
      epoch: 2,
      arch: 'noarch',
      sourceRpm: 'hello-containment-1.2.3-4.el9.src.rpm',
    });
  });

  const damages: Array<[string, (b: Buffer) => Buffer, RegExp]> = [
    ['empty', () => Buffer.alloc(0), /truncated/],
    ['truncated to half', (b) => b.subarray(0, b.length >> 1), /claims/],
    ['index count lies (huge)', (b) => (b.writeUInt32BE(0x7fffffff, 0), b), /index count/],
    ['index count zero', (b) => (b.writeUInt32BE(0, 0), b), /index count/],
    ['data length lies', (b) => (b.writeUInt32BE(b.readUInt32BE(4) + 1, 4), b), /claims/],
    ['data length absurd', (b) => (b.writeUInt32BE(0xffffffff, 4), b), /data length/],
    ['NAME offset past the data', (b) => (b.writeUInt32BE(0xfffffff0, entryAt(b, 1000) + 8), b), /outside/],
    [
      'NAME string runs off the end',
      (b) => {
        const dl = b.readUInt32BE(4);
        b.writeUInt32BE(dl - 1, entryAt(b, 1000) + 8);
        b[b.length - 1] = 0x41;
        return b;
      },
      /not terminated/,
    ],
    [
      'EPOCH straddles the end',
      (b) => (b.writeUInt32BE(b.readUInt32BE(4) - 2, entryAt(b, 1003) + 8), b),
      /outside/,
    ],
    ['NAME typed INT32', (b) => (b.writeUInt32BE(4, entryAt(b, 1000) + 4), b), /expected a string/],
    ['NAME count zero', (b) => (b.writeUInt32BE(0, entryAt(b, 1000) + 12), b), /outside/],
    ['no NAME tag', (b) => (b.writeUInt32BE(999_999, entryAt(b, 1000)), b), /no NAME/],
  ];
  for (const [name, damage, message] of damages) {
    test(name, (t) => {
      const blob = hello(t);
      if (!blob) return;
      assert.throws(
        () => parseRpmHeader(damage(blob)),
        (e: unknown) => e instanceof RpmHeaderError && message.test(e.message),
      );
    });
  }

  test('random byte damage never escapes as anything but RpmHeaderError', (t) => {
    const original = hello(t);
    if (!original) return;
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const blob = Buffer.from(original);
      // Damage the index (where offsets and counts live) most of the time.
      const span = random(4) === 0 ? blob.length : 8 + 16 * blob.readUInt32BE(0);
      for (let j = 0; j <= random(4); j++) blob[random(span)] = random(256);
      try {
        const h = parseRpmHeader(random(8) === 0 ? blob.subarray(0, random(blob.length)) : blob);
        assert.equal(typeof h.name, 'string');
      } catch (e) {
        if (!(e instanceof RpmHeaderError)) throw e;
        rejected++;
      }
    }
    assert.ok(rejected > 0);
  });
});

describe('rpmExtractor: unsupported and broken databases', () => {
  const cases: Array<[string, string, string, RegExp]> = [
    [
      'Berkeley DB',
      'Packages',
      'PACKAGE_DB_UNSUPPORTED',
      /\/var\/lib\/rpm\/Packages: the rpm database in Berkeley DB format is not supported/,
    ],
    [
      'NDB',
      'Packages.db',
      'PACKAGE_DB_UNSUPPORTED',
      /\/var\/lib\/rpm\/Packages.db: the rpm database in NDB format is not supported/,
    ],
    ['garbage rpmdb.sqlite', 'rpmdb.sqlite', 'PACKAGE_DB_CORRUPT', /rpmdb.sqlite: not an SQLite database/],
  ];
  for (const [name, file, code, note] of cases) {
    test(`${name} → a gap (${code}), no packages`, async () => {
      const { root, dbDir } = newRoot();
      writeFileSync(join(dbDir, file), Buffer.alloc(8192, 0x61));
      const ctx = await contextFor(root, RHEL9);
      assert.deepEqual(await rpmExtractor.extract(ctx), []);
      assert.deepEqual(
        ctx.gaps.map((g) => g.code),
        [code],
      );
      assert.equal(ctx.notes.length, 1);
      assert.match(ctx.notes[0] ?? '', note);
    });
  }

  test('an SQLite database without a Packages table → a note', async () => {
    const { root, dbDir } = newRoot();
    const handle = new Database(join(dbDir, 'rpmdb.sqlite'));
    handle.exec('CREATE TABLE other (x)');
    handle.close();
    const ctx = await contextFor(root, RHEL9);
    assert.deepEqual(await rpmExtractor.extract(ctx), []);
    assert.match(ctx.notes[0] ?? '', /no such table: Packages/);
    assert.equal(ctx.gaps[0]?.code, 'PACKAGE_DB_CORRUPT');
  });

  test('gpg-pubkey headers are not packages; unknown OS gives no purl vendor', () => {
    assert.equal(
      rpmHeaderToPackage({ name: 'gpg-pubkey', version: 'fd431d51', release: '4ae0493b' }, '/db', 'Red Hat'),
      undefined,
    );
    const p = rpmHeaderToPackage({ name: 'bash', version: '5.1.8', release: '9.el9' }, '/db', 'Red Hat');
    assert.deepEqual(p, {
      name: 'bash',
      version: '5.1.8-9.el9',
      ecosystem: 'Red Hat',
      location: '/db',
      extractor: 'rpm',
    });
  });
});
