import assert from 'node:assert/strict';
import { test } from 'node:test';
import { remoteShellInstalled, remoteShellPermissive } from './remote-shell.js';
import { contextFor, makeRoot, osPackage, populate, tempDir } from './test-root.test-helper.js';
import type { RootSpec } from './test-root.test-helper.js';

const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);

async function installed(
  t: Parameters<typeof makeRoot>[0],
  spec: RootSpec,
  packages = [] as ReturnType<typeof osPackage>[],
) {
  const { ctx } = await contextFor(await makeRoot(t, spec), { packages });
  return remoteShellInstalled.check(ctx);
}

async function permissive(
  t: Parameters<typeof makeRoot>[0],
  spec: RootSpec,
  packages = [] as ReturnType<typeof osPackage>[],
) {
  const { ctx } = await contextFor(await makeRoot(t, spec), { packages });
  return remoteShellPermissive.check(ctx);
}

test('remote_shell_installed: openssh-server package and its sshd binary', async (t) => {
  const f = await installed(t, { '/usr/sbin/sshd': { content: ELF, mode: 0o755 } }, [
    osPackage('openssh-server'),
    osPackage('openssh-client'),
  ]);
  assert.ok(f);
  assert.equal(f.id, 'remote_shell_installed');
  assert.equal(f.severity, 'HIGH');
  assert.deepEqual(f.evidence, ['/var/lib/dpkg/status', '/usr/sbin/sshd']);
  assert.match(f.details ?? '', /openssh-server/);
  assert.doesNotMatch(f.details ?? '', /openssh-client/);
});

test('remote_shell_installed: busybox-extras on Alpine (package only)', async (t) => {
  const f = await installed(t, {}, [osPackage('busybox-extras', 'apk', '/lib/apk/db/installed')]);
  assert.deepEqual(f?.evidence, ['/lib/apk/db/installed']);
});

test('remote_shell_installed: an sshd copied in without a package is found', async (t) => {
  const f = await installed(t, {
    '/opt/tools/bin/sshd': { content: ELF, mode: 0o700 },
    '/tmp/dropbear': { content: ELF, mode: 0o755 },
  });
  assert.deepEqual(f?.evidence, ['/opt/tools/bin/sshd', '/tmp/dropbear']);
  assert.match(f?.details ?? '', /no package owns them/);
});

test('remote_shell_installed: merged /usr names each daemon once', async (t) => {
  const f = await installed(t, {
    '/usr/sbin/sshd': { content: ELF, mode: 0o755 },
    '/sbin': { link: 'usr/sbin' },
  });
  assert.deepEqual(f?.evidence, ['/usr/sbin/sshd']);
});

test('remote_shell_installed: a busybox telnetd applet link counts', async (t) => {
  const f = await installed(t, {
    '/bin/busybox': { content: ELF, mode: 0o755 },
    '/usr/sbin/telnetd': { link: '../../bin/busybox' },
  });
  assert.deepEqual(f?.evidence, ['/usr/sbin/telnetd']);
});

test('remote_shell_installed: clients, scripts and non-OS packages are not servers', async (t) => {
  const f = await installed(
    t,
    {
      '/etc/init.d/dropbear': { content: '#!/bin/sh\n', mode: 0o755 },
      '/etc/pam.d/sshd': 'auth include common-auth\n',
      '/usr/share/doc/sshd': { content: 'doc', mode: 0o755 },
      '/usr/local/bin/sshd': { content: 'not executable', mode: 0o644 },
      '/usr/bin/ssh': { content: ELF, mode: 0o755 },
    },
    [osPackage('openssh-client'), osPackage('telnet'), { ...osPackage('ttyd', 'npm'), ecosystem: 'npm' }],
  );
  assert.equal(f, undefined);
});

test('remote_shell_installed: a link to a host sshd does not count', async (t) => {
  const host = await tempDir(t);
  await populate(host, { '/sshd': { content: ELF, mode: 0o755 } });
  const f = await installed(t, { '/usr/sbin/sshd': { link: `${host}/sshd` } });
  assert.equal(f, undefined);
});

test('remote_shell_permissive: PermitRootLogin yes is CRITICAL with its file', async (t) => {
  const f = await permissive(t, { '/etc/ssh/sshd_config': 'Port 22\nPermitRootLogin yes\n' });
  assert.equal(f?.id, 'remote_shell_permissive');
  assert.equal(f?.severity, 'CRITICAL');
  assert.deepEqual(f?.evidence, ['/etc/ssh/sshd_config']);
  assert.match(f?.details ?? '', /PermitRootLogin yes at \/etc\/ssh\/sshd_config:2/);
});

test('remote_shell_permissive: keywords and values are case-insensitive, `=` and quotes accepted', async (t) => {
  const f = await permissive(t, { '/etc/ssh/sshd_config': '  permitrootlogin="YES"\n' });
  assert.equal(f?.severity, 'CRITICAL');
  const g = await permissive(t, { '/etc/ssh/sshd_config': 'PERMITEMPTYPASSWORDS = Yes\n' });
  assert.match(g?.details ?? '', /PermitEmptyPasswords yes/);
});

test('remote_shell_permissive: defaults and prohibit-password are not permissive', async (t) => {
  for (const config of [
    '# PermitRootLogin yes\nPermitRootLogin prohibit-password\n',
    'PermitRootLogin without-password\nPermitEmptyPasswords no\n',
    'Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n',
  ]) {
    assert.equal(await permissive(t, { '/etc/ssh/sshd_config': config }), undefined, config);
  }
});

test('remote_shell_permissive: the first value wins, includes processed where they appear', async (t) => {
  // Debian 12 layout: the Include comes first, so a drop-in beats the main file.
  const safe = await permissive(t, {
    '/etc/ssh/sshd_config': 'Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\n',
    '/etc/ssh/sshd_config.d/10-hardening.conf': 'PermitRootLogin no\n',
  });
  assert.equal(safe, undefined);

  const dropIn = await permissive(t, {
    '/etc/ssh/sshd_config': 'Include sshd_config.d/*.conf\nPermitRootLogin no\n',
    '/etc/ssh/sshd_config.d/20-b.conf': 'PermitRootLogin no\n',
    '/etc/ssh/sshd_config.d/10-a.conf': 'PermitRootLogin yes\n', // sorted first
    '/etc/ssh/sshd_config.d/.hidden.conf': 'PermitEmptyPasswords yes\n', // `*` skips dot files
  });
  assert.deepEqual(dropIn?.evidence, ['/etc/ssh/sshd_config.d/10-a.conf']);
  assert.doesNotMatch(dropIn?.details ?? '', /Empty/);

  const late = await permissive(t, {
    '/etc/ssh/sshd_config': 'PermitRootLogin yes\nInclude /etc/ssh/sshd_config.d/*.conf\n',
    '/etc/ssh/sshd_config.d/10-hardening.conf': 'PermitRootLogin no\n',
  });
  assert.deepEqual(late?.evidence, ['/etc/ssh/sshd_config']);
});

test('remote_shell_permissive: Match blocks are conditional (HIGH) and end with their file', async (t) => {
  const conditional = await permissive(t, {
    '/etc/ssh/sshd_config': 'PermitRootLogin no\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n',
  });
  assert.equal(conditional?.severity, 'HIGH');
  assert.match(conditional?.details ?? '', /Match Address 10\.0\.0\.0\/8/);

  // A Match opened in an included file does not swallow the includer's later lines.
  const leaked = await permissive(t, {
    '/etc/ssh/sshd_config': 'Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\n',
    '/etc/ssh/sshd_config.d/50-sftp.conf': 'Match Group sftp\n  ForceCommand internal-sftp\n',
  });
  assert.equal(leaked?.severity, 'CRITICAL');

  // An Include inside a Match block is conditional too.
  const inside = await permissive(t, {
    '/etc/ssh/sshd_config': 'Match User admin\n  Include admin.conf\n',
    '/etc/ssh/admin.conf': 'PermitRootLogin yes\n',
  });
  assert.equal(inside?.severity, 'HIGH');
  assert.deepEqual(inside?.evidence, ['/etc/ssh/admin.conf']);

  // `Match all` applies to every connection.
  const all = await permissive(t, {
    '/etc/ssh/sshd_config': 'PermitRootLogin no\nMatch all\nPermitRootLogin yes\n',
  });
  assert.equal(all?.severity, 'CRITICAL');
});

test('remote_shell_permissive: root login with password authentication off is HIGH', async (t) => {
  const f = await permissive(t, {
    '/etc/ssh/sshd_config':
      'PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n',
  });
  assert.equal(f?.severity, 'HIGH');
  assert.match(f?.details ?? '', /keys only/);
  // Keyboard-interactive (PAM) left at its default still asks for a password.
  const pam = await permissive(t, {
    '/etc/ssh/sshd_config': 'PermitRootLogin yes\nPasswordAuthentication no\n',
  });
  assert.equal(pam?.severity, 'CRITICAL');
});

test('remote_shell_permissive: an Include cannot leave the root', async (t) => {
  const host = await tempDir(t);
  await populate(host, { '/evil.conf': 'PermitRootLogin yes\nPermitEmptyPasswords yes\n' });
  const f = await permissive(t, {
    '/etc/ssh/sshd_config': `Include ../../../../../../../../..${host}/evil.conf\nInclude ${host}/*.conf\nInclude sshd_config.d/*.conf\nPermitRootLogin no\n`,
    '/etc/ssh/sshd_config.d/link.conf': { link: `${host}/evil.conf` },
  });
  assert.equal(f, undefined);
  // …while the same relative include resolves to the root's own file.
  const own = await permissive(t, {
    '/etc/ssh/sshd_config': 'Include ../../../../../../../../../srv/evil.conf\n',
    '/srv/evil.conf': 'PermitRootLogin yes\n',
  });
  assert.deepEqual(own?.evidence, ['/srv/evil.conf']);
});

test('remote_shell_permissive: an Include loop stops at the depth limit', async (t) => {
  const f = await permissive(t, { '/etc/ssh/sshd_config': 'Include sshd_config\nPermitRootLogin yes\n' });
  assert.equal(f?.severity, 'CRITICAL');
});

test('remote_shell_permissive: dropbear without -w/-s/-g lets root log in with a password', async (t) => {
  const dropbear = [osPackage('dropbear')];
  const open = await permissive(t, { '/etc/default/dropbear': 'DROPBEAR_EXTRA_ARGS=""\n' }, dropbear);
  assert.equal(open?.severity, 'CRITICAL');
  assert.deepEqual(open?.evidence, ['/etc/default/dropbear']);
  const alpine = await permissive(t, { '/etc/conf.d/dropbear': 'DROPBEAR_OPTS="-p 2222 -ws"\n' }, dropbear);
  assert.equal(alpine, undefined);
  const noRoot = await permissive(t, { '/etc/default/dropbear': "DROPBEAR_EXTRA_ARGS='-w'\n" }, dropbear);
  assert.equal(noRoot, undefined);
  // Without dropbear installed the leftover defaults file means nothing.
  assert.equal(await permissive(t, { '/etc/default/dropbear': 'DROPBEAR_EXTRA_ARGS=""\n' }), undefined);
});
