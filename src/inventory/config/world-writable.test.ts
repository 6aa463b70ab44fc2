import assert from 'node:assert/strict';
import { test } from 'node:test';
import { worldWritableSystemDirs, worldWritableSystemFiles } from './world-writable.js';
import { contextFor, makeRoot } from './test-root.test-helper.js';
import type { RootSpec } from './test-root.test-helper.js';

const STOCK: RootSpec = {
  '/tmp': { dir: true, mode: 0o1777 },
  '/var/tmp': { dir: true, mode: 0o1777 },
  '/run/lock': { dir: true, mode: 0o1777 },
  '/etc/passwd': { content: 'root:x:0:0::/root:/bin/sh\n', mode: 0o644 },
  '/usr/bin/ls': { content: 'x', mode: 0o755 },
  '/var/mail': { dir: true, mode: 0o2775 },
  '/data/shared': { dir: true, mode: 0o777 }, // a volume outside the system trees
  '/tmp/scratch.txt': { content: 'x', mode: 0o666 },
};

async function run(t: Parameters<typeof makeRoot>[0], spec: RootSpec) {
  const { ctx } = await contextFor(await makeRoot(t, spec));
  return { dirs: await worldWritableSystemDirs.check(ctx), files: await worldWritableSystemFiles.check(ctx) };
}

test('world-writable: a stock layout with sticky temporary directories is fine', async (t) => {
  const { dirs, files } = await run(t, STOCK);
  assert.equal(dirs, undefined);
  assert.equal(files, undefined);
});

test('world_writable_system_dirs: o+w without sticky under system paths', async (t) => {
  const { dirs } = await run(t, {
    ...STOCK,
    '/etc/cron.d': { dir: true, mode: 0o777 },
    '/usr/local/bin': { dir: true, mode: 0o757 },
    '/var/www/uploads': { dir: true, mode: 0o777 },
    '/tmp': { dir: true, mode: 0o777 }, // /tmp without its sticky bit
    '/opt/app': { dir: true, mode: 0o1777 }, // sticky: fine
  });
  assert.equal(dirs?.id, 'world_writable_system_dirs');
  assert.equal(dirs?.severity, 'MEDIUM');
  assert.deepEqual(dirs?.evidence, ['/etc/cron.d', '/tmp', '/usr/local/bin', '/var/www/uploads']);
});

test('world_writable_system_dirs: the root directory itself', async (t) => {
  const dir = await makeRoot(t, STOCK);
  const { chmod } = await import('node:fs/promises');
  await chmod(dir, 0o777);
  const { ctx } = await contextFor(dir);
  assert.deepEqual((await worldWritableSystemDirs.check(ctx))?.evidence, ['/']);
});

test('world_writable_system_files: o+w files in /etc and /usr', async (t) => {
  const { files } = await run(t, {
    ...STOCK,
    '/etc/passwd': { content: 'root:x:0:0::/root:/bin/sh\n', mode: 0o666 },
    '/usr/lib/libx.so': { content: 'x', mode: 0o777 },
  });
  assert.equal(files?.id, 'world_writable_system_files');
  assert.deepEqual(files?.evidence, ['/etc/passwd', '/usr/lib/libx.so']);
});
