/**
 * The import watch on a real directory (inotify): a write to the advisory database or its WAL asks
 * for a check, a burst of writes asks for few, and the `-shm` file readers touch, other files and
 * anything after `close` ask for none.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { watchAdvisoryImports } from './import-watch.js';

const dir = mkdtempSync(join(tmpdir(), 'containment-import-watch-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const settle = () => new Promise((r) => setTimeout(r, 300));

test('a database write asks for one check; -shm, other files and a closed watch do not', async () => {
  let checks = 0;
  const errors: unknown[] = [];
  const watch = watchAdvisoryImports(
    dir,
    'vulndb.sqlite',
    async () => {
      checks += 1;
    },
    (e) => errors.push(e),
  );
  try {
    await settle();
    writeFileSync(join(dir, 'vulndb.sqlite-shm'), 'x');
    writeFileSync(join(dir, 'scanner.sqlite-wal'), 'x');
    await settle();
    assert.equal(checks, 0, 'a reader-side or foreign file asked for a check');

    for (let i = 0; i < 50; i++) appendFileSync(join(dir, 'vulndb.sqlite-wal'), 'page');
    await settle();
    assert.ok(checks >= 1 && checks <= 3, `a burst of 50 writes asked for ${checks} checks`);

    const before = checks;
    writeFileSync(join(dir, 'vulndb.sqlite'), 'x');
    await settle();
    assert.equal(checks, before + 1);
  } finally {
    watch.close();
  }
  const closed = checks;
  writeFileSync(join(dir, 'vulndb.sqlite-wal'), 'after close');
  await settle();
  assert.equal(checks, closed);
  assert.deepEqual(errors, []);
});
