import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { DirectoryRootFs } from './directory-root-fs.js';

const SECRET = 'HOST-SECRET-7f3a9c';

/** A temp root with hostile links, and a sibling "host" directory holding a secret. */
describe('DirectoryRootFs: hostile roots', () => {
  let base: string;
  let root: string;
  let hostDir: string;
  let fs: DirectoryRootFs;
  const r = (p: string): string => join(root, p);

  before(() => {
    base = mkdtempSync(join(tmpdir(), 'rootfs-test-'));
    root = join(base, 'root');
    hostDir = join(base, 'host');
    mkdirSync(hostDir);
    writeFileSync(join(hostDir, 'secret'), SECRET);
    mkdirSync(join(hostDir, 'sub'));
    writeFileSync(join(hostDir, 'sub', 'secret'), SECRET);

    mkdirSync(r('etc'), { recursive: true });
    writeFileSync(r('etc/os-release'), 'ID=test\n');
    symlinkSync('/etc/shadow', r('etc/shadow'));
    symlinkSync(join(hostDir, 'secret'), r('abs-secret'));
    symlinkSync(hostDir, r('abs-dir'));
    symlinkSync('../../../../../../../../../..' + join(hostDir, 'secret'), r('etc/dotdot-secret'));
    symlinkSync('../../../../../../../../../..' + hostDir, r('dotdot-dir'));
    // In-root copies of what the links name, so following them in-root finds these instead.
    mkdirSync(r(hostDir.slice(1)), { recursive: true });
    writeFileSync(r(join(hostDir.slice(1), 'secret')), 'in-root secret');
    mkdirSync(r('usr/lib'), { recursive: true });
    writeFileSync(r('usr/lib/os-release'), 'ID=lib\n');
    symlinkSync('../usr/lib/os-release', r('etc/rel-link'));
    symlinkSync('b', r('a'));
    symlinkSync('a', r('b'));
    symlinkSync('self', r('self'));
    // 41 links in a chain (Linux gives up after 40), and a chain of exactly 40.
    for (let i = 0; i < 41; i++) symlinkSync(`chain${i + 1}`, r(`chain${i}`));
    writeFileSync(r('chain41'), 'end of chain');
    writeFileSync(r('plainfile'), 'plain');
    spawnSync('mkfifo', [r('fifo')]);
    writeFileSync(r('big'), Buffer.alloc(2048));
    for (const d of ['proc', 'sys', 'dev']) {
      mkdirSync(r(d));
      writeFileSync(r(`${d}/inside`), 'pseudo');
    }
    symlinkSync('/', r('rootlink'));
    fs = new DirectoryRootFs(root);
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  test('absolute links to host files resolve inside the root', async () => {
    assert.equal(await fs.readText('/etc/shadow'), undefined, 'the root has no /etc/shadow');
    assert.equal(await fs.readText('/abs-secret'), 'in-root secret');
    assert.equal(await fs.resolve('/abs-secret'), join(hostDir, 'secret'));
    assert.equal(await fs.readText('/abs-dir/secret'), 'in-root secret');
    assert.equal(await fs.readText('/abs-dir/sub/secret'), undefined);
    assert.equal(await fs.stat('/abs-dir/sub'), undefined);
    assert.equal(await fs.readRange('/abs-dir/sub/secret', 0, 64), undefined);
    assert.equal((await fs.readRange('/abs-secret', 3, 4))?.toString(), 'root');
  });

  test('../ chains stop at the root', async () => {
    assert.equal(await fs.readText('/etc/dotdot-secret'), 'in-root secret');
    assert.equal(await fs.readText('/dotdot-dir/sub/secret'), undefined);
    assert.equal(await fs.readText('/../../../../../../../..' + join(hostDir, 'sub/secret')), undefined);
    assert.equal(await fs.readText('/../etc/os-release'), 'ID=test\n', '.. at the root is the root');
    assert.equal(await fs.resolve('/../../..'), '/');
    assert.equal(await fs.readText('/etc/../../etc/os-release'), 'ID=test\n');
  });

  test('loops, self links and chains over 40 links give undefined', async () => {
    for (const p of ['/a', '/b', '/self', '/a/x', '/chain0']) {
      assert.equal(await fs.readFile(p), undefined, p);
      assert.equal(await fs.stat(p), undefined, p);
      assert.equal(await fs.resolve(p), undefined, p);
    }
    assert.equal(await fs.readText('/chain1'), 'end of chain', 'exactly 40 links is fine');
    assert.equal((await fs.lstat('/self'))?.type, 'symlink');
    assert.equal(await fs.readlink('/self'), 'self');
  });

  test('an intermediate component that is a file', async () => {
    assert.equal(await fs.readFile('/plainfile/x'), undefined);
    assert.equal(await fs.stat('/etc/os-release/..'), undefined);
    assert.deepEqual(await fs.readdir('/plainfile'), []);
  });

  test('a FIFO does not block and reads as undefined', async () => {
    assert.equal((await fs.lstat('/fifo'))?.type, 'other');
    assert.equal(await fs.readFile('/fifo'), undefined);
  });

  test('files over the limit throw FILE_TOO_LARGE', async () => {
    await assert.rejects(
      fs.readFile('/big', { maxBytes: 1024 }),
      (e: unknown) =>
        e instanceof ContainmentError && e.code === ErrorCodes.FILE_TOO_LARGE && /2048/.test(e.message),
    );
    assert.equal((await fs.readFile('/big', { maxBytes: 2048 }))?.length, 2048);
  });

  test('readdir of a link to an outside dir lists the in-root target, never the host dir', async () => {
    assert.deepEqual(
      (await fs.readdir('/abs-dir')).map((e) => e.name),
      ['secret'],
    );
    assert.deepEqual(
      (await fs.readdir('/dotdot-dir')).map((e) => e.name),
      ['secret'],
    );
    assert.deepEqual(
      (await fs.readdir('/rootlink/etc')).map((e) => e.name).sort(),
      (await fs.readdir('/etc')).map((e) => e.name).sort(),
    );
    const names = (await fs.readdir('/')).map((e) => e.name);
    assert.ok(names.includes('abs-dir') && !names.includes('secret'));
    assert.equal((await fs.readdir('/')).find((e) => e.name === 'abs-dir')?.type, 'symlink');
  });

  test('resolve gives canonical in-root paths', async () => {
    assert.equal(await fs.resolve('/etc/rel-link'), '/usr/lib/os-release');
    assert.equal(await fs.resolve('//etc/./rel-link'), '/usr/lib/os-release');
    assert.equal(await fs.resolve('/rootlink/rootlink/etc'), '/etc');
    assert.equal(await fs.resolve('/etc/nothing'), undefined);
    assert.equal(await fs.readText('/etc/rel-link'), 'ID=lib\n');
  });

  test('walk does not follow directory links and skips /proc, /sys, /dev', async () => {
    const paths: string[] = [];
    for await (const entry of fs.walk()) paths.push(entry.path);
    assert.ok(paths.includes('/etc/os-release'));
    assert.ok(paths.includes('/proc') && !paths.includes('/proc/inside'), 'pseudo dirs listed, not entered');
    assert.ok(!paths.some((p) => p.startsWith('/sys/') || p.startsWith('/dev/')));
    assert.ok(
      !paths.some(
        (p) =>
          p.startsWith('/abs-dir') || p.startsWith('/rootlink') || /^\/chain([0-9]|[1-3][0-9]|40)$/.test(p),
      ),
    );
    assert.equal(new Set(paths).size, paths.length, 'no duplicates');
    const fromLink: string[] = [];
    for await (const entry of fs.walk('/abs-dir')) fromLink.push(entry.path);
    assert.deepEqual(fromLink, [join(hostDir, 'secret')], 'start is resolved in-root');
    for (const p of paths) {
      const text = (await fs.stat(p))?.type === 'file' ? await fs.readText(p) : undefined;
      assert.ok(!text?.includes(SECRET), p);
    }
  });
});

describe('DirectoryRootFs: a container swapping directories for links while we read', () => {
  test('every read gives the in-root content or nothing, never the host secret', async () => {
    const base = mkdtempSync(join(tmpdir(), 'rootfs-race-'));
    const root = join(base, 'root');
    const hostDir = join(base, 'host');
    try {
      mkdirSync(join(hostDir, 'd'), { recursive: true });
      writeFileSync(join(hostDir, 'd', 'f'), SECRET);
      writeFileSync(join(hostDir, 'f'), SECRET);
      mkdirSync(join(root, 'real', 'd'), { recursive: true });
      writeFileSync(join(root, 'real', 'd', 'f'), 'inside');
      writeFileSync(join(root, 'real', 'f'), 'inside');
      symlinkSync(hostDir, join(root, 'evil'));
      // The hostile container: swaps /a between the real directory and a link to the host dir.
      const swapper = spawn(
        process.execPath,
        [
          '-e',
          `const fs = require('node:fs'); const [, a, real, evil] = process.argv;
           const deadline = Date.now() + 60000; // never outlive a stuck test
           while (Date.now() < deadline) {
             try { fs.renameSync(real, a); fs.renameSync(a, real); fs.renameSync(evil, a); fs.renameSync(a, evil); } catch {}
           }`,
          '--',
          join(root, 'a'),
          join(root, 'real'),
          join(root, 'evil'),
        ],
        { stdio: 'ignore' },
      );
      const fs = new DirectoryRootFs(root);
      const seen = { inside: 0, missing: 0 };
      try {
        for (let i = 0; i < 4000; i++) {
          for (const p of ['/a/f', '/a/d/f']) {
            const text = await fs.readText(p);
            assert.ok(text === undefined || text === 'inside', `read ${p} gave ${text}`);
            seen[text === undefined ? 'missing' : 'inside']++;
          }
          const st = await fs.stat('/a/d/f');
          assert.ok(st === undefined || st.size === 'inside'.length, 'stat of a host file');
          const names = (await fs.readdir('/a/d')).map((e) => e.name);
          assert.ok(names.length === 0 || (names.length === 1 && names[0] === 'f'));
          if (i % 100 === 0) {
            for await (const entry of fs.walk('/')) {
              assert.ok(!entry.path.startsWith('/evil'), entry.path);
              if (entry.stat.type === 'file') assert.equal(entry.stat.size, 'inside'.length, entry.path);
            }
          }
        }
      } finally {
        swapper.kill('SIGKILL');
        await new Promise((resolve) => swapper.once('exit', resolve));
      }
      assert.ok(seen.inside > 0, 'the in-root file was read at least once');
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('DirectoryRootFs: directory descriptors kept between lookups', () => {
  test('stay bounded over many directories and are released by close()', async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'containment-fdcache-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    for (let i = 0; i < 300; i++) {
      mkdirSync(join(root, `d${i}`, 'sub'), { recursive: true });
      writeFileSync(join(root, `d${i}`, 'sub', 'f'), `file ${i}`);
    }
    const openFds = (): number => readdirSync('/proc/self/fd').length;
    const before = openFds();
    const fs = new DirectoryRootFs(root);
    for (let i = 0; i < 300; i++) assert.equal(await fs.readText(`/d${i}/sub/f`), `file ${i}`);
    assert.ok(openFds() - before <= 64 + 4, `at most the cache limit stays open (${openFds() - before})`);
    fs.close();
    assert.equal(openFds(), before, 'close() releases every kept descriptor');
    assert.equal(await fs.readText('/d7/sub/f'), 'file 7', 'usable after close()');
    fs.close();
  });
});
