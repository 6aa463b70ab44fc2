import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ImageConfig } from '../context.js';
import { runsAsRoot } from './runs-as-root.js';
import { contextFor, makeRoot } from './test-root.test-helper.js';

const PASSWD = 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n';

async function run(t: Parameters<typeof makeRoot>[0], image?: ImageConfig) {
  const { ctx } = await contextFor(await makeRoot(t, { '/etc/passwd': PASSWD }), image ? { image } : {});
  return runsAsRoot.check(ctx);
}

test('runs_as_root: root users', async (t) => {
  for (const User of [undefined, '', '0', 'root', '0:0', 'root:root', '0:1000', 'toor', 'toor:app']) {
    const f = await run(t, User === undefined ? {} : { User });
    assert.equal(f?.id, 'runs_as_root', String(User));
    assert.equal(f?.severity, 'MEDIUM');
    assert.deepEqual(f?.evidence, ['config.User']);
  }
  assert.match((await run(t, { User: 'toor' }))?.details ?? '', /toor has uid 0 in \/etc\/passwd/);
});

test('runs_as_root: non-root users and non-image targets', async (t) => {
  for (const User of ['1000', 'app', 'app:0', '1000:0', 'nobody']) {
    assert.equal(await run(t, { User }), undefined, User);
  }
  assert.equal(await run(t), undefined);
});
