import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCodes } from '../errors.js';
import { resolveDataDir, resolveDbPath } from './paths.js';

const env = { HOME: '/home/ada', XDG_DATA_HOME: '/xdg', CONTAINMENT_DATA_DIR: '/env-data' };

test('--db wins over everything', () => {
  assert.equal(resolveDbPath({ db: '/tmp/x.sqlite', dataDir: '/flag', env }), '/tmp/x.sqlite');
});

test('the data dir: --data-dir, then CONTAINMENT_DATA_DIR, then XDG_DATA_HOME, then ~/.local/share', () => {
  assert.equal(resolveDbPath({ dataDir: '/flag', env }), join('/flag', 'vulndb.sqlite'));
  assert.equal(resolveDataDir({ env }), '/env-data');
  assert.equal(resolveDataDir({ env: { ...env, CONTAINMENT_DATA_DIR: '' } }), join('/xdg', 'containment'));
  assert.equal(
    resolveDataDir({ env: { HOME: '/home/ada' } }),
    join('/home/ada', '.local', 'share', 'containment'),
  );
  // A relative XDG_DATA_HOME is invalid per the XDG spec and ignored.
  assert.equal(
    resolveDbPath({ env: { HOME: '/home/ada', XDG_DATA_HOME: 'rel' } }),
    join('/home/ada', '.local', 'share', 'containment', 'vulndb.sqlite'),
  );
});

test('no HOME and nothing configured is a usage error, not a path under "undefined"', () => {
  assert.throws(
    () => resolveDbPath({ env: {} }),
    (e: { code?: string; message: string }) =>
      e.code === ErrorCodes.USAGE && e.message.includes('--data-dir'),
  );
  assert.equal(resolveDbPath({ db: 'local.sqlite', env: {} }), 'local.sqlite');
});
