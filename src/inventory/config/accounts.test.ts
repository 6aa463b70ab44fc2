import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyPasswordAccount } from './accounts.js';
import { contextFor, makeRoot, populate, tempDir } from './test-root.test-helper.js';
import type { RootSpec } from './test-root.test-helper.js';

const HASH = '$y$j9T$abcdefghijklmnopqrstu.$0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcde';
const PASSWD =
  'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/sh\n';

async function run(t: Parameters<typeof makeRoot>[0], spec: RootSpec) {
  const { ctx } = await contextFor(await makeRoot(t, spec));
  return emptyPasswordAccount.check(ctx);
}

test('empty_password_account: an empty shadow field is reported by user name, never the hash', async (t) => {
  const f = await run(t, {
    '/etc/passwd': PASSWD,
    '/etc/shadow': `root:${HASH}:19000:0:99999:7:::\nalice::19000:0:99999:7:::\nbob:!:19000::::::\n`,
  });
  assert.equal(f?.id, 'empty_password_account');
  assert.equal(f?.severity, 'HIGH');
  assert.deepEqual(f?.evidence, ['/etc/shadow']);
  assert.match(f?.details ?? '', /alice/);
  assert.doesNotMatch(f?.details ?? '', /root|bob/);
  assert.ok(!(f?.details ?? '').includes(HASH.slice(0, 10)));
});

test('empty_password_account: root (or any uid 0) with an empty password is CRITICAL', async (t) => {
  const f = await run(t, { '/etc/passwd': PASSWD, '/etc/shadow': 'root::19000:0:99999:7:::\n' });
  assert.equal(f?.severity, 'CRITICAL');
  const toor = await run(t, {
    '/etc/passwd': PASSWD + 'toor:x:0:0::/root:/bin/sh\n',
    '/etc/shadow': 'toor::19000::::::\n',
  });
  assert.equal(toor?.severity, 'CRITICAL');
  assert.match(toor?.details ?? '', /toor has uid 0/);
});

test('empty_password_account: locked and disabled fields are not empty', async (t) => {
  const f = await run(t, {
    '/etc/passwd': PASSWD + 'daemon:*:1:1::/:/usr/sbin/nologin\n',
    '/etc/shadow': `root:*:19000:0:99999:7:::\nalice:!!:19000::::::\nbob:!*:19000::::::\ndaemon:!${HASH}:1::::::\n# comment::\n`,
  });
  assert.equal(f, undefined);
});

test('empty_password_account: an empty /etc/passwd field counts, `x` defers to shadow', async (t) => {
  const f = await run(t, {
    '/etc/passwd': 'root:x:0:0::/root:/bin/sh\nguest::1002:1002::/home/guest:/bin/sh\n',
    '/etc/shadow': `root:${HASH}:1::::::\nguest:${HASH}:1::::::\n`,
  });
  assert.deepEqual(f?.evidence, ['/etc/passwd']);
  assert.match(f?.details ?? '', /guest \(\/etc\/passwd\)/);
});

test('empty_password_account: /etc/shadow linked to a host file is not read', async (t) => {
  const host = await tempDir(t);
  await populate(host, { '/shadow': 'root::19000:0:99999:7:::\n', '/passwd': 'root::0:0::/root:/bin/sh\n' });
  const f = await run(t, {
    '/etc/passwd': { link: `${host}/passwd` },
    '/etc/shadow': { link: `../../../../../../../../..${host}/shadow` },
  });
  assert.equal(f, undefined);
});
