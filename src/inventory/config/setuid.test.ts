import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OsInfo } from '../types.js';
import { setuidBinaries, toMergedUsr } from './setuid.js';
import { contextFor, makeRoot } from './test-root.test-helper.js';
import type { RootSpec } from './test-root.test-helper.js';

const DEBIAN: OsInfo = { id: 'debian', versionId: '12' };
const ALPINE: OsInfo = { id: 'alpine', versionId: '3.20.0' };

async function run(t: Parameters<typeof makeRoot>[0], spec: RootSpec, os?: OsInfo) {
  const { ctx } = await contextFor(await makeRoot(t, spec), os ? { os } : {});
  return setuidBinaries.check(ctx);
}

/** What a stock Debian 12 has (see setuid-allowlist.ts), in both merged and unmerged layouts. */
const STOCK_DEBIAN: RootSpec = {
  '/usr/bin/passwd': { content: 'x', mode: 0o4755 },
  '/usr/bin/chage': { content: 'x', mode: 0o2755 },
  '/bin/su': { content: 'x', mode: 0o4755 },
  '/bin/mount': { content: 'x', mode: 0o4755 },
  '/sbin/unix_chkpwd': { content: 'x', mode: 0o2755 },
  '/usr/lib/x86_64-linux-gnu/utempter/utempter': { content: 'x', mode: 0o2755 },
  '/usr/lib/dbus-1.0/dbus-daemon-launch-helper': { content: 'x', mode: 0o4754 },
  '/usr/bin/ls': { content: 'x', mode: 0o755 },
  '/var/mail': { dir: true, mode: 0o2775 }, // setgid directories are normal
};

test('setuid_binaries: a stock Debian set is not reported', async (t) => {
  assert.equal(await run(t, STOCK_DEBIAN, DEBIAN), undefined);
});

test('setuid_binaries: unusual setuid and setgid files are, with their owners', async (t) => {
  const f = await run(
    t,
    {
      ...STOCK_DEBIAN,
      '/usr/local/bin/rootshell': { content: 'x', mode: 0o4755 },
      '/opt/app/helper': { content: 'x', mode: 0o2711 },
      '/usr/bin/doas': { content: 'x', mode: 0o4755 }, // Alpine's, not Debian's
    },
    DEBIAN,
  );
  assert.equal(f?.id, 'setuid_binaries');
  assert.equal(f?.severity, 'MEDIUM');
  assert.deepEqual(f?.evidence, ['/opt/app/helper', '/usr/bin/doas', '/usr/local/bin/rootshell']);
  assert.match(f?.details ?? '', /debian allowlist/);
  assert.match(f?.details ?? '', /\/opt\/app\/helper \(setgid gid \d+\)/);
  assert.match(f?.details ?? '', /rootshell \(setuid uid 0\)/);
});

test('setuid_binaries: the list follows the distribution, the union when unknown', async (t) => {
  const spec: RootSpec = {
    '/bin/bbsuid': { content: 'x', mode: 0o4111 },
    '/usr/bin/doas': { content: 'x', mode: 0o4755 },
  };
  assert.equal(await run(t, spec, ALPINE), undefined);
  assert.equal(await run(t, spec), undefined);
  assert.deepEqual((await run(t, spec, DEBIAN))?.evidence, ['/bin/bbsuid', '/usr/bin/doas']);
  const f = await run(t, spec, { id: 'fedora' });
  assert.match(f?.details ?? '', /rhel allowlist/);
});

test('toMergedUsr', () => {
  assert.equal(toMergedUsr('/bin/su'), '/usr/bin/su');
  assert.equal(toMergedUsr('/lib64/x'), '/usr/lib64/x');
  assert.equal(toMergedUsr('/binary/x'), '/binary/x');
  assert.equal(toMergedUsr('/usr/bin/su'), '/usr/bin/su');
});
