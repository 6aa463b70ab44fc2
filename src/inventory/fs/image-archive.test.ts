import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import tar from 'tar-stream';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { requireOrSkip } from '../../testing/shared-data.js';
import { isImageArchive, openImageArchive } from './image-archive.js';

interface E {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device';
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
  size?: number;
}

async function tarOf(entries: E[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = type === 'file' ? Buffer.from(e.content ?? '') : undefined;
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(body ? { size: body.length } : {}),
    };
    if (body) pack.entry(header, body);
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const scratch = mkdtempSync(join(tmpdir(), 'image-archive-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let counter = 0;
function scratchFile(data: Buffer): string {
  const file = join(scratch, `archive-${counter++}.tar`);
  writeFileSync(file, data);
  return file;
}

const CONFIG = { architecture: 'amd64', os: 'linux', config: { User: 'app', Env: ['PATH=/usr/bin', 'A=1'] } };

/** docker save layout: `<n>/layer.tar`, a config json and manifest.json. */
async function dockerArchive(
  layers: Buffer[],
  opts: { config?: unknown; manifest?: unknown; extra?: E[] } = {},
): Promise<string> {
  const config = Buffer.from(JSON.stringify(opts.config ?? CONFIG));
  const entries: E[] = layers.map((l, i) => ({ name: `layer${i}/layer.tar`, content: l }));
  entries.push({ name: `${sha(config)}.json`, content: config });
  const manifest = opts.manifest ?? [
    {
      Config: `${sha(config)}.json`,
      RepoTags: ['example/app:1'],
      Layers: layers.map((_, i) => `layer${i}/layer.tar`),
    },
  ];
  entries.push({ name: 'manifest.json', content: JSON.stringify(manifest) });
  entries.push(...(opts.extra ?? []));
  return scratchFile(await tarOf(entries));
}

/** OCI image layout archive; layers as [bytes, mediaType]. */
async function ociArchive(layers: Array<[Buffer, string]>): Promise<string> {
  const config = Buffer.from(JSON.stringify(CONFIG));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${sha(config)}`,
        size: config.length,
      },
      layers: layers.map(([b, mediaType]) => ({ mediaType, digest: `sha256:${sha(b)}`, size: b.length })),
    }),
  );
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: `sha256:${sha(manifest)}`,
        size: manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': 'example/oci:2' },
      },
    ],
  };
  const entries: E[] = [
    { name: 'blobs/', type: 'directory' },
    { name: 'blobs/sha256/', type: 'directory' },
    ...layers.map(([b]) => ({ name: `blobs/sha256/${sha(b)}`, content: b })),
    { name: `blobs/sha256/${sha(config)}`, content: config },
    { name: `blobs/sha256/${sha(manifest)}`, content: manifest },
    { name: 'index.json', content: JSON.stringify(index) },
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
  ];
  return scratchFile(await tarOf(entries));
}

/** Three layers: base files, an upper layer with overwrite + whiteout + opaque dir, a third adding a file. */
async function standardLayers(): Promise<Buffer[]> {
  const l1 = await tarOf([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
    { name: 'etc/motd', content: 'old motd' },
    { name: 'etc/removed', content: 'bye' },
    { name: 'opt/app/', type: 'directory' },
    { name: 'opt/app/lower-only', content: 'lower' },
    { name: 'opt/app/sub/deep', content: 'lower deep' },
    { name: 'usr/bin/su', content: 'setuid', mode: 0o4755 },
    { name: 'usr/bin/su-link', type: 'link', linkname: 'usr/bin/su' },
    { name: 'usr/bin/sh', type: 'symlink', linkname: '/bin/dash' },
    { name: 'dev/null', type: 'character-device' },
    { name: 'run/fifo', type: 'fifo' },
  ]);
  const l2 = await tarOf([
    { name: 'etc/motd', content: 'new motd' },
    { name: 'etc/.wh.removed' },
    { name: 'opt/app/upper-before', content: 'upper' },
    { name: 'opt/app/.wh..wh..opq' },
    { name: 'opt/app/upper-after', content: 'upper 2' },
  ]);
  const l3 = await tarOf([{ name: 'srv/third', content: 'third', mode: 0o2775 }]);
  return [l1, l2, l3];
}

async function assertCode(
  promise: Promise<unknown>,
  code: string,
  pattern?: RegExp,
): Promise<ContainmentError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof ContainmentError, `expected a ContainmentError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes('\n'), 'one-line message');
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** No temp dirs are left behind by failed opens. */
function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('containment-image-'));
}

async function checkStandardTree(path: string): Promise<void> {
  const tmp = mkdtempSync(join(scratch, 'tmp-'));
  const archive = await openImageArchive(path, { tmpDir: tmp });
  try {
    const { fs } = archive;
    assert.equal(await fs.readText('/etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
    assert.equal(await fs.readText('/etc/motd'), 'new motd', 'upper layer overwrites');
    assert.equal(await fs.lstat('/etc/removed'), undefined, 'whiteout deletes');
    const app = (await fs.readdir('/opt/app')).map((e) => e.name).sort();
    assert.deepEqual(app, ['upper-after', 'upper-before'], 'opaque dir hides lower entries, keeps its own');
    assert.equal(await fs.readText('/srv/third'), 'third');
    assert.equal(((await fs.stat('/srv/third'))?.mode ?? 0) & 0o7777, 0o2775, 'setgid kept');
    assert.equal(((await fs.stat('/usr/bin/su'))?.mode ?? 0) & 0o7777, 0o4755, 'setuid kept');
    assert.equal(await fs.readText('/usr/bin/su-link'), 'setuid', 'hard link inside the tree');
    assert.equal(await fs.readlink('/usr/bin/sh'), '/bin/dash');
    assert.equal(
      (await fs.lstat('/dev/null'))?.type,
      'directory',
      'device not created, a directory stands in',
    );
    assert.equal((await fs.lstat('/run/fifo'))?.type, 'directory', 'fifo not created, a directory stands in');
    assert.ok(
      archive.notes.some((n) => n.includes('/dev/null')),
      archive.notes.join('; '),
    );
    assert.ok(
      archive.notes.some((n) => n.includes('/run/fifo')),
      archive.notes.join('; '),
    );
    assert.deepEqual(archive.image.config.Env, ['PATH=/usr/bin', 'A=1']);
    assert.equal(archive.image.config.User, 'app');
    assert.equal(archive.image.layers, 3);
    assert.deepEqual(readdirSync(tmp), [], 'read in place: nothing written under the temp dir');
  } finally {
    await archive.cleanup();
  }
  assert.deepEqual(readdirSync(tmp), [], 'nothing left behind');
}

describe('openImageArchive: layouts', () => {
  test('docker-archive with plain and gzip layers', async () => {
    const [l1, l2, l3] = (await standardLayers()) as [Buffer, Buffer, Buffer];
    const path = await dockerArchive([l1, gzipSync(l2), l3]);
    assert.equal(await isImageArchive(path), true);
    await checkStandardTree(path);
    const archive = await openImageArchive(path);
    await archive.cleanup();
    assert.deepEqual(archive.image.repoTags, ['example/app:1']);
    assert.equal(archive.image.format, 'docker-archive');
    assert.match(archive.image.id, /^sha256:[a-f0-9]{64}$/);
  });

  test('gzip-compressed docker-archive (docker save | gzip)', async () => {
    const layers = await standardLayers();
    const plain = readFileSync(await dockerArchive(layers));
    const path = scratchFile(gzipSync(plain));
    assert.equal(await isImageArchive(path), true);
    await checkStandardTree(path);
  });

  test('OCI layout archive with tar and tar+gzip layers', async () => {
    const [l1, l2, l3] = (await standardLayers()) as [Buffer, Buffer, Buffer];
    const path = await ociArchive([
      [gzipSync(l1), 'application/vnd.oci.image.layer.v1.tar+gzip'],
      [l2, 'application/vnd.oci.image.layer.v1.tar'],
      [gzipSync(l3), 'application/vnd.oci.image.layer.v1.tar+gzip'],
    ]);
    assert.equal(await isImageArchive(path), true);
    await checkStandardTree(path);
    const archive = await openImageArchive(path);
    await archive.cleanup();
    assert.equal(archive.image.format, 'oci-archive');
    assert.deepEqual(archive.image.repoTags, ['example/oci:2']);
    assert.match(archive.image.digest ?? '', /^sha256:[a-f0-9]{64}$/);
  });

  test('zstd layers (OCI media type, or a bare zstd frame in a docker-archive) are read', async () => {
    const l1 = await tarOf([{ name: 'etc/os-release', content: 'ID=debian\n' }]);
    const l2 = await tarOf([{ name: 'etc/motd', content: 'zstd motd' }]);
    const oci = await ociArchive([
      [zstdCompressSync(l1), 'application/vnd.oci.image.layer.v1.tar+zstd'],
      [zstdCompressSync(l2), 'application/vnd.oci.image.layer.v1.tar+zstd'],
    ]);
    const docker = await dockerArchive([zstdCompressSync(l1), zstdCompressSync(l2)]);
    for (const path of [oci, docker]) {
      const archive = await openImageArchive(path);
      try {
        assert.equal(await archive.fs.readText('/etc/os-release'), 'ID=debian\n');
        assert.equal(await archive.fs.readText('/etc/motd'), 'zstd motd');
      } finally {
        await archive.cleanup();
      }
    }
  });
});

describe('openImageArchive: hostile layers', () => {
  const host = mkdtempSync(join(tmpdir(), 'image-archive-host-'));
  const secret = join(host, 'secret');
  writeFileSync(secret, 'HOST SECRET');
  after(() => rmSync(host, { recursive: true, force: true }));

  function assertHostUntouched(): void {
    assert.deepEqual(readdirSync(host), ['secret']);
    assert.equal(readFileSync(secret, 'utf8'), 'HOST SECRET');
  }

  test('`..` escapes are rejected naming the entry, and nothing is left behind', async () => {
    const tmp = mkdtempSync(join(scratch, 'tmp-'));
    for (const name of ['../escape', 'a/../../escape', './../../../../tmp/escape']) {
      const layer = await tarOf([
        { name: 'ok', content: 'fine' },
        { name, content: 'bad' },
      ]);
      const e = await assertCode(
        openImageArchive(await dockerArchive([layer]), { tmpDir: tmp }),
        ErrorCodes.ARCHIVE_PATH_ESCAPE,
      );
      assert.ok(e.message.includes(JSON.stringify(name)), e.message);
      assert.deepEqual(leftovers(tmp), []);
    }
  });

  test('absolute names are rebased into the root', async () => {
    const layer = await tarOf([{ name: '/etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' }]);
    const archive = await openImageArchive(await dockerArchive([layer]));
    try {
      assert.match((await archive.fs.readText('/etc/passwd')) ?? '', /^root:x:0:0/);
    } finally {
      await archive.cleanup();
    }
  });

  for (const [label, linkname] of [
    ['absolute link to a host directory', host],
    ['relative ../ chain', '../../../../../../../../..' + host],
  ] as const) {
    test(`${label}: a later entry through it stays inside (same layer and next layer)`, async () => {
      const one = await tarOf([
        { name: 'evil', type: 'symlink', linkname },
        { name: 'evil/pwned', content: 'written' },
      ]);
      const two = [
        await tarOf([{ name: 'evil', type: 'symlink', linkname }]),
        await tarOf([{ name: 'evil/pwned', content: 'written' }]),
      ];
      for (const layers of [[one], two]) {
        const archive = await openImageArchive(await dockerArchive(layers));
        try {
          assertHostUntouched();
          // In-root semantics: the link names the image's own `<host>` directory.
          assert.equal(await archive.fs.readText(`${host}/pwned`), 'written');
          assert.equal(await archive.fs.readText('/evil/pwned'), 'written');
          assert.equal(await archive.fs.readText('/evil/secret'), undefined);
        } finally {
          await archive.cleanup();
        }
        assertHostUntouched();
      }
    });
  }

  test('link to /etc then etc/passwd, and a link to the root via ..', async () => {
    const layer = await tarOf([
      { name: 'evil', type: 'symlink', linkname: '/etc' },
      { name: 'evil/passwd', content: 'image passwd' },
      { name: 'up', type: 'symlink', linkname: '../../..' },
      { name: 'up/top', content: 'top' },
    ]);
    const archive = await openImageArchive(await dockerArchive([layer]));
    try {
      assert.equal(await archive.fs.readText('/etc/passwd'), 'image passwd');
      assert.equal(await archive.fs.readText('/top'), 'top');
    } finally {
      await archive.cleanup();
    }
    assert.notEqual(readFileSync('/etc/passwd', 'utf8'), 'image passwd');
    assert.equal(existsSync('/top'), false);
  });

  test('a file entry over an existing link replaces the link, never writes through it', async () => {
    const layers = [
      await tarOf([{ name: 'target', type: 'symlink', linkname: secret }]),
      await tarOf([{ name: 'target', content: 'replaced' }]),
    ];
    const archive = await openImageArchive(await dockerArchive(layers));
    try {
      assert.equal(await archive.fs.readText('/target'), 'replaced');
      assert.equal((await archive.fs.lstat('/target'))?.type, 'file');
    } finally {
      await archive.cleanup();
    }
    assertHostUntouched();
  });

  test('hard links to host paths are not created', async () => {
    for (const linkname of [secret, `../../../../../../..${secret}`]) {
      const layer = await tarOf([{ name: 'stolen', type: 'link', linkname }]);
      await assertCode(
        openImageArchive(await dockerArchive([layer])),
        linkname.startsWith('..') ? ErrorCodes.ARCHIVE_PATH_ESCAPE : ErrorCodes.ARCHIVE_CORRUPT,
      );
    }
    // Through an in-image link to the host directory: resolved in-root, so the host file is not found.
    const layer = await tarOf([
      { name: 'hostdir', type: 'symlink', linkname: host },
      { name: 'stolen', type: 'link', linkname: 'hostdir/secret' },
    ]);
    await assertCode(
      openImageArchive(await dockerArchive([layer])),
      ErrorCodes.ARCHIVE_CORRUPT,
      /hard link target/,
    );
    assertHostUntouched();
  });

  test('whiteouts cannot delete outside: `.wh...` and whiteouts through links', async () => {
    const bad = await tarOf([{ name: 'a/.wh...' }]);
    await assertCode(openImageArchive(await dockerArchive([bad])), ErrorCodes.ARCHIVE_CORRUPT, /whiteout/);
    const layers = [
      await tarOf([{ name: 'h', type: 'symlink', linkname: host }]),
      await tarOf([{ name: 'h/.wh.secret' }, { name: 'h/.wh..wh..opq' }]),
    ];
    const archive = await openImageArchive(await dockerArchive(layers));
    await archive.cleanup();
    assertHostUntouched();
  });

  test('size limits: per entry and total (decompression bomb)', async () => {
    const big = await tarOf([{ name: 'big', content: Buffer.alloc(4096) }]);
    await assertCode(
      openImageArchive(await dockerArchive([big]), { maxEntryBytes: 1000 }),
      ErrorCodes.FILE_TOO_LARGE,
      /"big" is 4096 bytes/,
    );
    const tmp = mkdtempSync(join(scratch, 'tmp-'));
    const bomb = gzipSync(await tarOf([{ name: 'zeros', content: Buffer.alloc(8 * 1024 * 1024) }]));
    assert.ok(bomb.length < 100_000);
    await assertCode(
      openImageArchive(await dockerArchive([bomb]), { maxTotalBytes: 1024 * 1024, tmpDir: tmp }),
      ErrorCodes.FILE_TOO_LARGE,
      /limit/,
    );
    assert.deepEqual(leftovers(tmp), []);
  });

  test('devices and FIFOs are not created: an empty directory stands in, hiding lower layers', async () => {
    const lower = await tarOf([{ name: 'pipe', content: 'lower layer file' }]);
    const layer = await tarOf([
      { name: 'dev/sda', type: 'character-device' },
      { name: 'pipe', type: 'fifo' },
      { name: 'x', content: 'y' },
    ]);
    const archive = await openImageArchive(await dockerArchive([lower, layer]));
    try {
      assert.deepEqual(
        (await archive.fs.readdir('/')).map((e) => [e.name, e.type]),
        [
          ['dev', 'directory'],
          ['pipe', 'directory'],
          ['x', 'file'],
        ],
      );
      assert.deepEqual(await archive.fs.readdir('/pipe'), []);
      assert.deepEqual(await archive.fs.readdir('/dev/sda'), []);
      assert.equal(archive.notes.length, 2);
    } finally {
      await archive.cleanup();
    }
  });
});

describe('openImageArchive: corrupt input', () => {
  test('a missing path is TARGET_NOT_FOUND', async () => {
    await assertCode(openImageArchive(join(scratch, 'nope.tar')), ErrorCodes.TARGET_NOT_FOUND);
    assert.equal(await isImageArchive(join(scratch, 'nope.tar')), false);
  });

  test('not a tar, truncated, bad manifest, missing layer: ARCHIVE_CORRUPT and no leftovers', async () => {
    const tmp = mkdtempSync(join(scratch, 'tmp-'));
    const good = readFileSync(await dockerArchive(await standardLayers()));
    const layer = await tarOf([{ name: 'a', content: 'x' }]);
    const cases: Array<[string, string, RegExp]> = [
      [
        'not a tar',
        scratchFile(Buffer.from('hello, this is not a tar archive at all'.repeat(40))),
        /not a readable tar/,
      ],
      ['truncated', scratchFile(good.subarray(0, Math.floor(good.length / 2) + 100)), /./],
      [
        'truncated gzip',
        scratchFile(gzipSync(good).subarray(0, Math.floor(gzipSync(good).length / 2))),
        /unexpected end/,
      ],
      ['no manifest', scratchFile(await tarOf([{ name: 'hello', content: 'x' }])), /manifest/],
      [
        'manifest not json',
        scratchFile(await tarOf([{ name: 'manifest.json', content: '{nope' }])),
        /not valid JSON/,
      ],
      [
        'manifest wrong shape',
        await dockerArchive([layer], { manifest: { Config: 1 } }),
        /manifest.json is invalid/,
      ],
      [
        'layer listed but missing',
        await dockerArchive([layer], {
          manifest: [
            { Config: `${sha(Buffer.from(JSON.stringify(CONFIG)))}.json`, Layers: ['gone/layer.tar'] },
          ],
        }),
        /gone\/layer.tar.*missing/,
      ],
      ['empty file', scratchFile(Buffer.alloc(0)), /manifest/],
    ];
    for (const [label, path, pattern] of cases) {
      await assertCode(openImageArchive(path, { tmpDir: tmp }), ErrorCodes.ARCHIVE_CORRUPT, pattern).catch(
        (e) => {
          throw new Error(`${label}: ${(e as Error).message}`);
        },
      );
      assert.deepEqual(leftovers(tmp), [], label);
    }
    assert.equal(await isImageArchive(cases[0]![1]), false);
    assert.equal(await isImageArchive(cases[3]![1]), false);
  });

  test('isImageArchive: directories and plain tars are not archives', async () => {
    assert.equal(await isImageArchive(scratch), false);
    assert.equal(
      await isImageArchive(scratchFile(await tarOf([{ name: 'etc/passwd', content: 'x' }]))),
      false,
    );
    assert.equal(
      await isImageArchive(scratchFile(await tarOf([{ name: './oci-layout', content: '{}' }]))),
      true,
    );
  });

  test('isImageArchive: a large unread entry before manifest.json (as podman save writes) does not stall', async () => {
    const layer = Buffer.alloc(8 * 1024 * 1024, 0x61); // far beyond the streams' buffers
    const archive = await tarOf([
      { name: 'layer.tar', content: layer },
      { name: 'manifest.json', content: '[]' },
    ]);
    assert.equal(await isImageArchive(scratchFile(archive)), true);
  });
});

describe('openImageArchive: real podman archives', () => {
  const podman = '/usr/bin/podman';
  test('podman save docker-archive and oci-archive', async (t) => {
    if (!requireOrSkip(t, existsSync(podman), 'podman')) return;
    const dir = mkdtempSync(join(scratch, 'podman-'));
    const rootDir = join(dir, 'root');
    mkdirSync(join(rootDir, 'etc'), { recursive: true });
    mkdirSync(join(rootDir, 'usr/bin'), { recursive: true });
    writeFileSync(join(rootDir, 'etc/os-release'), 'ID=alpine\nVERSION_ID=3.19.1\n');
    writeFileSync(join(rootDir, 'usr/bin/hello'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    const rootTar = join(dir, 'root.tar');
    const made = spawnSync('tar', ['-C', rootDir, '-cf', rootTar, '.']);
    assert.equal(made.status, 0, made.stderr?.toString());
    const name = `localhost/containment-test-${process.pid}-${Date.now()}:v1`;
    const run = (...args: string[]): string => {
      const r = spawnSync(podman, args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `podman ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    run('import', '--change', 'USER=nobody', '--change', 'ENV=FOO=bar', rootTar, name);
    try {
      for (const format of ['docker-archive', 'oci-archive']) {
        const out = join(dir, `${format}.tar`);
        run('save', '--format', format, '-o', out, name);
        assert.equal(await isImageArchive(out), true, format);
        const archive = await openImageArchive(out);
        try {
          assert.equal(
            await archive.fs.readText('/etc/os-release'),
            'ID=alpine\nVERSION_ID=3.19.1\n',
            format,
          );
          assert.equal(await archive.fs.readText('/usr/bin/hello'), '#!/bin/sh\necho hi\n', format);
          assert.equal((await archive.fs.stat('/usr/bin/hello'))!.mode & 0o777, 0o755, format);
          assert.equal(archive.image.config.User, 'nobody', format);
          assert.ok(archive.image.config.Env?.includes('FOO=bar'), format);
          assert.equal(archive.image.layers, 1, format);
          assert.ok(
            archive.image.repoTags?.some((tag) => tag.includes('containment-test-')),
            format,
          );
        } finally {
          await archive.cleanup();
        }
      }
    } finally {
      spawnSync(podman, ['rmi', '-f', name]);
    }
  });
});

describe('openImageArchive: read in place', () => {
  test('compressed layers: large files stream again, executables keep their ends for ranged reads', async () => {
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
    const layer = await tarOf([
      { name: 'usr/bin/tool', content: big, mode: 0o755 },
      { name: 'var/data.bin', content: big },
      { name: 'etc/small', content: 'small' },
    ]);
    const archive = await openImageArchive(await dockerArchive([gzipSync(layer)]), { keepBytes: 64 * 1024 });
    try {
      const { fs } = archive;
      assert.equal(await fs.readText('/etc/small'), 'small');
      assert.deepEqual(await fs.readRange('/usr/bin/tool', 0, 64), big.subarray(0, 64), 'head');
      assert.deepEqual(
        await fs.readRange('/usr/bin/tool', big.length - 100, 200),
        big.subarray(-100),
        'tail',
      );
      assert.deepEqual(await fs.readRange('/usr/bin/tool', 500_000, 10), big.subarray(500_000, 500_010));
      assert.ok((await fs.readFile('/var/data.bin'))?.equals(big), 'a file past the keep budget');
      assert.ok((await fs.readFile('/usr/bin/tool'))?.equals(big));
    } finally {
      await archive.cleanup();
    }
  });

  test('nothing is written under the temp dir while an archive is opened and every file read', async () => {
    const tmp = mkdtempSync(join(scratch, 'tmpdir-'));
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp; // os.tmpdir() reads it on every call
    try {
      const layers = await standardLayers();
      for (const path of [
        await dockerArchive([layers[0]!, gzipSync(layers[1]!), zstdCompressSync(layers[2]!)]),
        scratchFile(gzipSync(readFileSync(await dockerArchive(layers)))),
      ]) {
        const archive = await openImageArchive(path);
        try {
          let files = 0;
          for await (const { path: file, stat } of archive.fs.walk('/')) {
            if (stat.type === 'file') files += (await archive.fs.readFile(file)) ? 1 : 0;
          }
          assert.ok(files >= 6, `read ${files} files`);
          assert.deepEqual(readdirSync(tmp), [], 'nothing under TMPDIR during the scan');
        } finally {
          await archive.cleanup();
        }
      }
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    assert.deepEqual(readdirSync(tmp), []);
  });

  test('link loops and links above the root resolve inside the image', async () => {
    const layer = await tarOf([
      { name: 'a', type: 'symlink', linkname: 'b' },
      { name: 'b', type: 'symlink', linkname: 'a' },
      { name: 'up', type: 'symlink', linkname: '../../../../etc' },
      { name: 'etc/passwd', content: 'image passwd' },
    ]);
    const archive = await openImageArchive(await dockerArchive([layer]));
    try {
      assert.equal(await archive.fs.readFile('/a'), undefined, 'loop');
      assert.equal(await archive.fs.stat('/a/x'), undefined);
      assert.equal(await archive.fs.readText('/up/passwd'), 'image passwd');
      assert.equal(await archive.fs.resolve('/up/passwd'), '/etc/passwd');
      assert.equal(await archive.fs.readText('/etc/../../../etc/passwd'), 'image passwd');
    } finally {
      await archive.cleanup();
    }
  });
});
