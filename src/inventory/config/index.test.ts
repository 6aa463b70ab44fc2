import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configChecks, runConfigChecks } from './index.js';
import { contextFor, makeRoot, osPackage } from './test-root.test-helper.js';

test('configChecks: the stable ids, each once', () => {
  const ids = configChecks.map((c) => c.id);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), [
    'cloud_credentials_present',
    'empty_password_account',
    'private_key_present',
    'remote_shell_installed',
    'remote_shell_permissive',
    'runs_as_root',
    'setuid_binaries',
    'world_writable_system_dirs',
    'world_writable_system_files',
  ]);
  for (const c of configChecks) assert.ok(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'].includes(c.severity), c.id);
});

test('runConfigChecks: a clean root has no findings', async (t) => {
  const dir = await makeRoot(t, {
    '/etc/passwd': 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n',
    '/etc/shadow': 'root:*:19000:0:99999:7:::\napp:!:19000::::::\n',
    '/etc/ssh/sshd_config': 'PermitRootLogin no\n',
    '/usr/bin/passwd': { content: 'x', mode: 0o4755 },
    '/tmp': { dir: true, mode: 0o1777 },
    '/app/server.js': 'console.log(1)\n',
  });
  const { ctx } = await contextFor(dir, {
    os: { id: 'debian', versionId: '12' },
    image: { User: 'app' },
    packages: [osPackage('openssh-client')],
  });
  assert.deepEqual(await runConfigChecks(ctx), []);
});

test('runConfigChecks: an image with an sshd that lets root in', async (t) => {
  const dir = await makeRoot(t, {
    '/etc/passwd': 'root:x:0:0::/root:/bin/sh\n',
    '/etc/shadow': 'root::19000:0:99999:7:::\n',
    '/etc/ssh/sshd_config': 'PermitRootLogin yes\nPermitEmptyPasswords yes\n',
    '/usr/sbin/sshd': { content: 'x', mode: 0o755 },
  });
  const { ctx } = await contextFor(dir, { os: { id: 'debian' }, image: {} });
  const found = await runConfigChecks(ctx);
  assert.deepEqual(
    found.map((f) => [f.id, f.severity]),
    [
      ['remote_shell_installed', 'HIGH'],
      ['remote_shell_permissive', 'CRITICAL'],
      ['empty_password_account', 'CRITICAL'],
      ['runs_as_root', 'MEDIUM'],
    ],
  );
});
