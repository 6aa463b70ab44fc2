/**
 * Issue 12 §3: a package database that exists but cannot be read as one never looks clean. Each
 * attack makes the inventory `incomplete` with a stable gap code; a FIFO never blocks the scan;
 * a 100 MB status is read to its end.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { summarize } from '../matching/summary.js';
import { collectInventory } from './collect.js';
import { DirectoryRootFs } from './fs/directory-root-fs.js';
import type { Inventory } from './types.js';

const scratch = mkdtempSync(join(tmpdir(), 'containment-completeness-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;

const DEBIAN = 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n';
const PARAGRAPH = (name: string, version: string, padding = ''): string =>
  `Package: ${name}\nStatus: install ok installed\nVersion: ${version}\nArchitecture: amd64\n` +
  `Description: test package\n${padding}\n`;

/** A root with os-release, the given files written and `make` run on it. */
function root(files: Record<string, string | Buffer>, make?: (dir: string) => void): string {
  const dir = join(scratch, `r${n++}`);
  mkdirSync(join(dir, 'etc'), { recursive: true });
  writeFileSync(join(dir, 'etc/os-release'), DEBIAN);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  make?.(dir);
  return dir;
}

async function inventoryOf(dir: string): Promise<Inventory> {
  return collectInventory(new DirectoryRootFs(dir));
}

function gapCodes(inv: Inventory): string[] {
  return inv.gaps.map((g) => `${g.code} ${g.extractor} ${g.path}`);
}

function mkfifo(path: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  execFileSync('mkfifo', [path]);
}

describe('package databases that cannot be read make the inventory incomplete', { timeout: 120_000 }, () => {
  test('a complete root stays complete, and its verdict is pass', async () => {
    const inv = await inventoryOf(root({ 'var/lib/dpkg/status': PARAGRAPH('bash', '5.2.15-2+b2') }));
    assert.equal(inv.completeness, 'complete');
    assert.deepEqual(inv.gaps, []);
    assert.deepEqual(
      inv.packages.map((p) => p.name),
      ['bash'],
    );
    assert.equal(summarize([], [], undefined, inv.completeness).compliance.verdict, 'pass');
  });

  test('dpkg status as a FIFO: a gap, and the scan does not block on it', async () => {
    const dir = root({}, (d) => mkfifo(join(d, 'var/lib/dpkg/status')));
    const inv = await inventoryOf(dir);
    assert.equal(inv.completeness, 'incomplete');
    assert.deepEqual(gapCodes(inv), ['PACKAGE_DB_NOT_A_FILE dpkg /var/lib/dpkg/status']);
    assert.ok(
      inv.notes.some((note) => note.startsWith('[PACKAGE_DB_NOT_A_FILE] dpkg: /var/lib/dpkg/status')),
    );
    const summary = summarize([], [], undefined, inv.completeness);
    assert.equal(summary.compliance.verdict, 'unknown');
    assert.equal(summary.compliance.passed, false);
  });

  test('dpkg status as a character device (/dev/null’s numbers): a gap, not an empty database', async () => {
    const dir = root({}, (d) => {
      mkdirSync(join(d, 'var/lib/dpkg'), { recursive: true });
      execFileSync('mknod', [join(d, 'var/lib/dpkg/status'), 'c', '1', '3']);
    });
    const inv = await inventoryOf(dir);
    assert.deepEqual(gapCodes(inv), ['PACKAGE_DB_NOT_A_FILE dpkg /var/lib/dpkg/status']);
    assert.equal(inv.completeness, 'incomplete');
  });

  test('a directory in place of the status file (unreadable as a file, even for root)', async () => {
    const dir = root({}, (d) => mkdirSync(join(d, 'var/lib/dpkg/status'), { recursive: true }));
    const inv = await inventoryOf(dir);
    assert.deepEqual(gapCodes(inv), ['PACKAGE_DB_NOT_A_FILE dpkg /var/lib/dpkg/status']);
  });

  test('a status.d entry that is a FIFO, beside good ones', async () => {
    const dir = root({ 'var/lib/dpkg/status.d/base': PARAGRAPH('base-files', '12.4') }, (d) =>
      mkfifo(join(d, 'var/lib/dpkg/status.d/libssl3')),
    );
    const inv = await inventoryOf(dir);
    assert.deepEqual(
      inv.packages.map((p) => p.name),
      ['base-files'],
    );
    assert.deepEqual(gapCodes(inv), ['PACKAGE_DB_NOT_A_FILE dpkg /var/lib/dpkg/status.d/libssl3']);
  });

  test('a 100 MB status file is read to its end: the vulnerable package planted last is found', async () => {
    const dir = root({});
    mkdirSync(join(dir, 'var/lib/dpkg'), { recursive: true });
    const fd = openSync(join(dir, 'var/lib/dpkg/status'), 'w');
    const padding = ` ${'x'.repeat(9_950)}`;
    let written = 0;
    for (let i = 0; written < 100 * 1024 * 1024; i++) {
      written += writeSync(fd, PARAGRAPH(`pad${i}`, '1.0-1', padding) + '\n');
    }
    writeSync(fd, PARAGRAPH('openssl', '3.0.11-1~deb12u1'));
    closeSync(fd);
    const inv = await inventoryOf(dir);
    assert.equal(inv.completeness, 'complete', inv.notes.join('\n'));
    const last = inv.packages.at(-1);
    assert.equal(`${last?.name} ${last?.version}`, 'openssl 3.0.11-1~deb12u1');
    assert.ok(inv.packages.length > 10_000);
  });

  test('one record over the per-record limit is skipped with a gap; the rest is read', async () => {
    const huge = `Package: giant\nVersion: 1\nDescription: x\n ${'y'.repeat(17 * 1024 * 1024)}\n\n`;
    const dir = root({ 'var/lib/dpkg/status': huge + PARAGRAPH('curl', '7.88.1-10') });
    const inv = await inventoryOf(dir);
    assert.deepEqual(
      inv.packages.map((p) => p.name),
      ['curl'],
    );
    assert.deepEqual(gapCodes(inv), ['PACKAGE_RECORD_TOO_LARGE dpkg /var/lib/dpkg/status']);
  });

  test('a single endless line without newlines does not grow memory past the record limit', async () => {
    const dir = root({ 'var/lib/dpkg/status': Buffer.alloc(40 * 1024 * 1024, 0x41) });
    const inv = await inventoryOf(dir);
    assert.equal(inv.completeness, 'incomplete');
    assert.ok(
      gapCodes(inv).includes('PACKAGE_RECORD_TOO_LARGE dpkg /var/lib/dpkg/status'),
      gapCodes(inv).join(),
    );
  });

  test('a status file cut in the middle of a record is truncated; a missing final newline alone is not', async () => {
    const whole = await inventoryOf(root({ 'var/lib/dpkg/status': PARAGRAPH('bash', '5.2.15-2').trimEnd() }));
    assert.equal(whole.completeness, 'complete', whole.notes.join());
    assert.equal(whole.packages.length, 1);
    const text = PARAGRAPH('bash', '5.2.15-2') + '\n' + PARAGRAPH('libc6', '2.36-9').slice(0, 40);
    const inv = await inventoryOf(root({ 'var/lib/dpkg/status': text }));
    assert.ok(gapCodes(inv).includes('PACKAGE_DB_TRUNCATED dpkg /var/lib/dpkg/status'));
    assert.equal(inv.completeness, 'incomplete');
  });

  test('binary garbage where the status file should be is corrupt', async () => {
    const inv = await inventoryOf(
      root({ 'var/lib/dpkg/status': Buffer.from([0, 1, 2, 0xff, 10, 10, 0, 10]) }),
    );
    assert.deepEqual(gapCodes(inv), ['PACKAGE_DB_CORRUPT dpkg /var/lib/dpkg/status']);
  });

  test('an empty status file is an empty database, not a gap', async () => {
    const inv = await inventoryOf(root({ 'var/lib/dpkg/status': '' }));
    assert.equal(inv.completeness, 'complete');
  });

  test('apk installed as a FIFO, npm package.json, Python METADATA and a jar as FIFOs', async () => {
    const dir = root({}, (d) => {
      mkfifo(join(d, 'lib/apk/db/installed'));
      mkfifo(join(d, 'app/node_modules/left-pad/package.json'));
      mkfifo(join(d, 'usr/lib/python3/dist-packages/requests-2.0.dist-info/METADATA'));
      mkfifo(join(d, 'opt/app/lib/log4j-core-2.14.1.jar'));
    });
    const inv = await inventoryOf(dir);
    assert.deepEqual(gapCodes(inv).sort(), [
      'PACKAGE_DB_NOT_A_FILE apk /lib/apk/db/installed',
      'PACKAGE_DB_NOT_A_FILE java /opt/app/lib/log4j-core-2.14.1.jar',
      'PACKAGE_DB_NOT_A_FILE npm /app/node_modules/left-pad/package.json',
      'PACKAGE_DB_NOT_A_FILE python /usr/lib/python3/dist-packages/requests-2.0.dist-info/METADATA',
    ]);
  });

  test('rpm: a truncated rpmdb.sqlite and one with damaged pages', async () => {
    const make = (damage: (file: string) => void): string =>
      root({}, (d) => {
        mkdirSync(join(d, 'var/lib/rpm'), { recursive: true });
        const file = join(d, 'var/lib/rpm/rpmdb.sqlite');
        const db = new Database(file);
        db.exec('CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)');
        const insert = db.prepare('INSERT INTO Packages (blob) VALUES (?)');
        for (let i = 0; i < 400; i++) insert.run(Buffer.alloc(900, i % 251));
        db.close();
        damage(file);
      });
    const truncated = await inventoryOf(make((file) => truncateSync(file, 64 * 1024)));
    assert.deepEqual(gapCodes(truncated), ['PACKAGE_DB_TRUNCATED rpm /var/lib/rpm/rpmdb.sqlite']);

    const damaged = await inventoryOf(
      make((file) => {
        const fd = openSync(file, 'r+');
        // Page 2 onwards: the table's b-tree pages, overwritten with garbage.
        writeSync(fd, Buffer.alloc(3 * 4096, 0xee), 0, 3 * 4096, 4096);
        closeSync(fd);
      }),
    );
    assert.equal(damaged.completeness, 'incomplete');
    assert.ok(
      damaged.gaps.every((g) => ['PACKAGE_DB_CORRUPT', 'PACKAGE_RECORD_INVALID'].includes(g.code)),
      gapCodes(damaged).join(),
    );
    assert.ok(damaged.gaps.length > 0);
  });

  test('an exceeded threshold fails even an incomplete scan; otherwise it is unknown', () => {
    const finding = { severity: 'CRITICAL' } as Parameters<typeof summarize>[0][number];
    assert.equal(summarize([finding], [], undefined, 'incomplete').compliance.verdict, 'fail');
    assert.equal(summarize([], [], undefined, 'incomplete').compliance.verdict, 'unknown');
    assert.equal(summarize([finding], [], undefined, 'complete').compliance.verdict, 'fail');
  });
});
