import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ErrorCodes } from '../errors.js';
import { sharedDataOrSkip } from '../testing/shared-data.js';
import type { AdvisoryStore } from './advisory-store.js';
import { importFromPath, openRecordSource } from './record-sources.js';
import { openSqliteAdvisoryStore } from './sqlite-store.js';
import { buildZip } from '../testing/zip-writer.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'containment-sources-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function freshStore(): AdvisoryStore {
  return openSqliteAdvisoryStore(join(tmp, `db-${++n}.sqlite`), { create: true });
}

const rec = (id: string, name: string) =>
  JSON.stringify({
    id,
    modified: '2024-01-01T00:00:00Z',
    affected: [{ package: { ecosystem: 'npm', name } }],
  });

const isCode = (code: string, pattern?: RegExp) => (e: { code?: string; message: string }) =>
  e.code === code && (pattern === undefined || pattern.test(e.message)) && !e.message.includes('\n');

describe('zip archives', () => {
  test('good entries are imported; bad ones are reported by entry name; other files skipped', async () => {
    const zip = join(tmp, 'mixed.zip');
    writeFileSync(
      zip,
      buildZip([
        { name: 'TEST-1.json', data: rec('TEST-1', 'left-pad') },
        { name: 'nested/TEST-2.json', data: rec('TEST-2', 'right-pad') },
        { name: 'broken.json', data: '{"id": "TEST-3", ' },
        { name: 'no-id.json', data: '{"modified": "2024-01-01T00:00:00Z"}' },
        { name: 'README.txt', data: 'not a record' },
        // Names are only read, never used as paths.
        { name: '../../escape/TEST-4.json', data: rec('TEST-4', 'up-pad') },
      ]),
    );
    const store = freshStore();
    try {
      const progress: { processed: number; total: number }[] = [];
      const report = await importFromPath(store, zip, { onProgress: (p) => progress.push(p) });
      assert.deepEqual([...report.addedIds].sort(), ['TEST-1', 'TEST-2', 'TEST-4']);
      assert.equal(report.invalid, 2);
      const origins = report.invalidRecords.map((r) => r.origin).sort();
      assert.deepEqual(origins, [`${zip}!broken.json`, `${zip}!no-id.json`]);
      assert.match(
        report.invalidRecords.find((r) => r.origin.endsWith('broken.json'))?.reason ?? '',
        /not valid JSON/,
      );
      assert.match(report.invalidRecords.find((r) => r.origin.endsWith('no-id.json'))?.reason ?? '', /^id: /);
      assert.deepEqual(progress.at(-1), { processed: 5, total: 5 });
      assert.equal(store.lookup('npm', 'up-pad')[0]?.id, 'TEST-4');
    } finally {
      store.close();
    }
  });

  test('the shared records zipped like an osv.dev all.zip import the same as the directory', async (t) => {
    const shared = sharedDataOrSkip(t);
    if (shared === undefined) return;
    const dir = join(shared, 'osv', 'pypi');
    const names = ['PYSEC-2014-8.json', 'PYSEC-2021-98.json', 'GHSA-h75v-3vvj-5mfj.json'];
    const zip = join(tmp, 'pypi-all.zip');
    writeFileSync(zip, buildZip(names.map((name) => ({ name, data: readFileSync(join(dir, name)) }))));
    const store = freshStore();
    try {
      const report = await importFromPath(store, zip);
      assert.deepEqual([...report.addedIds].sort(), names.map((f) => f.replace('.json', '')).sort());
      assert.deepEqual(
        store.get('PYSEC-2021-98'),
        JSON.parse(readFileSync(join(dir, 'PYSEC-2021-98.json'), 'utf8')),
      );
    } finally {
      store.close();
    }
  });

  test('a corrupt or truncated zip is ARCHIVE_CORRUPT and imports nothing', async () => {
    const garbage = join(tmp, 'garbage.zip');
    writeFileSync(garbage, Buffer.from('PK\u0003\u0004 this is not really a zip archive at all'));
    const good = buildZip([
      { name: 'TEST-1.json', data: rec('TEST-1', 'a') },
      { name: 'TEST-2.json', data: rec('TEST-2', 'b') },
    ]);
    const truncated = join(tmp, 'truncated.zip');
    writeFileSync(truncated, good.subarray(0, good.length - 10));
    // Intact directory, damaged compressed data of the second entry.
    const damaged = Buffer.from(good);
    const second = damaged.indexOf('TEST-2.json') + 'TEST-2.json'.length;
    damaged.fill(0xff, second, second + 8);
    const damagedPath = join(tmp, 'damaged.zip');
    writeFileSync(damagedPath, damaged);

    const store = freshStore();
    try {
      for (const path of [garbage, truncated, damagedPath]) {
        await assert.rejects(
          importFromPath(store, path),
          isCode(ErrorCodes.ARCHIVE_CORRUPT, /corrupt zip/),
          path,
        );
      }
      assert.deepEqual(store.count(), { records: 0, withdrawn: 0 });
    } finally {
      store.close();
    }
  });

  test('an entry that inflates past its declared size is ARCHIVE_CORRUPT; a populated store keeps its records', async () => {
    const data = rec('TEST-BOMB', 'x') + ' '.repeat(100_000);
    const zip = Buffer.from(buildZip([{ name: 'TEST-BOMB.json', data: Buffer.from(data) }]));
    // The central directory (what is read) claims 100 bytes; inflation must stop there.
    const central = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    assert.equal(zip.readUInt32LE(central + 24), data.length);
    zip.writeUInt32LE(100, central + 24);
    const path = join(tmp, 'lying.zip');
    writeFileSync(path, zip);
    const store = freshStore();
    try {
      await store.importRecords([{ record: JSON.parse(rec('TEST-KEPT', 'k')), origin: 'kept.json' }]);
      await assert.rejects(
        importFromPath(store, path),
        isCode(ErrorCodes.ARCHIVE_CORRUPT, /lying\.zip!TEST-BOMB\.json/),
      );
      assert.deepEqual(store.count(), { records: 1, withdrawn: 0 });
      assert.equal(store.get('TEST-KEPT')?.id, 'TEST-KEPT');
    } finally {
      store.close();
    }
  });

  test('a zip without the .zip name is recognised by its signature', async () => {
    const path = join(tmp, 'download.bin');
    writeFileSync(path, buildZip([{ name: 'TEST-1.json', data: rec('TEST-1', 'a') }]));
    assert.equal((await openRecordSource(path)).kind, 'zip');
  });
});

describe('JSON files and directories', () => {
  test('a single file holds one record or an array of records', async () => {
    const one = join(tmp, 'one.json');
    writeFileSync(one, rec('TEST-ONE', 'one'));
    const many = join(tmp, 'many.json');
    writeFileSync(many, `[${rec('TEST-A', 'a')}, ${rec('TEST-B', 'b')}, {"id": "TEST-C"}]`);
    const store = freshStore();
    try {
      assert.deepEqual((await importFromPath(store, one)).addedIds, ['TEST-ONE']);
      const report = await importFromPath(store, many);
      assert.deepEqual(report.addedIds, ['TEST-A', 'TEST-B']);
      assert.deepEqual(
        report.invalidRecords.map((r) => r.origin),
        [`${many}[2]`],
      );
    } finally {
      store.close();
    }
  });

  test('a directory is read recursively for *.json; a broken file does not stop the rest', async () => {
    const dir = join(tmp, 'tree');
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    writeFileSync(join(dir, 'TEST-1.json'), rec('TEST-1', 'x'));
    writeFileSync(join(dir, 'a', 'b', 'TEST-2.json'), rec('TEST-2', 'y'));
    writeFileSync(join(dir, 'a', 'list.json'), `[${rec('TEST-3', 'z')}, ${rec('TEST-4', 'w')}]`);
    writeFileSync(join(dir, 'a', 'bad.json'), 'nope');
    writeFileSync(join(dir, 'a', 'TEST-5.yaml'), 'id: TEST-5');
    const store = freshStore();
    try {
      const progress: { processed: number; total: number }[] = [];
      const report = await importFromPath(store, dir, { onProgress: (p) => progress.push(p) });
      assert.deepEqual([...report.addedIds].sort(), ['TEST-1', 'TEST-2', 'TEST-3', 'TEST-4']);
      assert.deepEqual(
        report.invalidRecords.map((r) => r.origin),
        [join(dir, 'a', 'bad.json')],
      );
      assert.deepEqual(progress.at(-1), { processed: 5, total: 5 });
    } finally {
      store.close();
    }
  });

  test('a missing path is TARGET_NOT_FOUND; an unknown file type is TARGET_UNSUPPORTED', async () => {
    const store = freshStore();
    try {
      await assert.rejects(
        importFromPath(store, join(tmp, 'nope')),
        isCode(ErrorCodes.TARGET_NOT_FOUND, /nope/),
      );
      const text = join(tmp, 'notes.txt');
      writeFileSync(text, 'hello');
      await assert.rejects(importFromPath(store, text), isCode(ErrorCodes.TARGET_UNSUPPORTED));
    } finally {
      store.close();
    }
  });
});
