/**
 * Issue 14, "installed vs declared": a lockfile with no installed tree beside it is listed with
 * `provenance: declared` and does not count toward findings unless `includeDeclared`
 * (`--include-declared`); an installed tree still counts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { scan } from './scan.js';
import { importFromPath } from '../vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';

const scratch = mkdtempSync(join(tmpdir(), 'containment-declared-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function write(path: string, value: unknown): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
}

test('declared lockfile packages are listed but not counted, unless --include-declared', async () => {
  const root = join(scratch, 'root');
  const lock = {
    lockfileVersion: 3,
    packages: { '': { name: 'vendored' }, 'node_modules/minimist': { version: '1.2.5' } },
  };
  // A vendored project inside a gem: a lockfile, no node_modules.
  write(join(root, 'usr/lib/ruby/gems/x/vendor/package-lock.json'), lock);
  // An application with its installed tree: the same lockfile, and minimist installed.
  write(join(root, 'app/package-lock.json'), lock);
  write(join(root, 'app/node_modules/minimist/package.json'), { name: 'minimist', version: '1.2.5' });

  const records = join(scratch, 'records');
  write(join(records, 'GHSA-test.json'), {
    id: 'GHSA-TEST-0001',
    modified: '2024-01-01T00:00:00Z',
    affected: [
      {
        package: { ecosystem: 'npm', name: 'minimist' },
        ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.2.6' }] }],
      },
    ],
  });
  const store = openSqliteAdvisoryStore(join(scratch, 'db.sqlite'), { create: true });
  try {
    await importFromPath(store, records);
    const result = await scan(root, { store });
    const minimist = result.packages.filter((p) => p.name === 'minimist');
    assert.deepEqual(minimist.map((p) => `${p.location} ${p.provenance ?? 'installed'}`).sort(), [
      '/app/node_modules/minimist/package.json installed',
      '/usr/lib/ruby/gems/x/vendor/package-lock.json declared',
    ]);
    assert.deepEqual(
      result.vulnerabilities.map((v) => v.package.location),
      ['/app/node_modules/minimist/package.json'],
    );

    const all = await scan(root, { store, includeDeclared: true });
    assert.deepEqual(all.vulnerabilities.map((v) => v.package.location).sort(), [
      '/app/node_modules/minimist/package.json',
      '/usr/lib/ruby/gems/x/vendor/package-lock.json',
    ]);
  } finally {
    store.close();
  }
});
