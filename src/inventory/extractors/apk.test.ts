import assert from 'node:assert/strict';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { sharedDataOrSkip } from '../../testing/shared-data.js';
import type { OsInfo } from '../types.js';
import { contextFor } from './extractor.test-helper.js';
import { apkExtractor, parseApkInstalled } from './apk.js';

const temp = mkdtempSync(join(tmpdir(), 'containment-apk-'));
after(() => rmSync(temp, { recursive: true, force: true }));
let rootCount = 0;

function newRoot(): string {
  const root = join(temp, `root-${rootCount++}`);
  mkdirSync(join(root, 'lib/apk/db'), { recursive: true });
  return root;
}

const ALPINE: OsInfo = { id: 'alpine', versionId: '3.20.3', ecosystem: 'Alpine:v3.20' };

describe('parseApkInstalled', () => {
  test('origin becomes the source; repeated F:/R: lines and CRLF do not confuse it', () => {
    const text = [
      'C:Q1abc=',
      'P:libcrypto3',
      'V:3.3.2-r0',
      'A:x86_64',
      'o:openssl',
      'F:lib',
      'R:libcrypto.so.3',
      'F:usr/lib',
      'R:other',
      '',
      'P:busybox\r',
      'V:1.36.1-r29\r',
      'A:aarch64\r',
      '\r',
      '',
      'P:no-version',
      '',
    ].join('\n');
    const pkgs = parseApkInstalled(text, '/lib/apk/db/installed', 'Alpine:v3.20', ALPINE);
    assert.deepEqual(
      pkgs.map((p) => [p.name, p.version, p.source]),
      [
        ['libcrypto3', '3.3.2-r0', { name: 'openssl', version: '3.3.2-r0' }],
        ['busybox', '1.36.1-r29', undefined],
      ],
    );
    assert.equal(pkgs[0]?.purl, 'pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&distro=alpine-3.20.3');
    assert.equal(pkgs[1]?.purl, 'pkg:apk/alpine/busybox@1.36.1-r29?arch=aarch64&distro=alpine-3.20.3');
  });
});

describe('apkExtractor', () => {
  test('real installed database sample from osv-scanner', async (t) => {
    const data = sharedDataOrSkip(t);
    if (!data) return;
    const sample = join(data, 'acceptance', 'osv-scanner__locks-many_installed.apkdb');
    const text = readFileSync(sample, 'utf8');
    const root = newRoot();
    copyFileSync(sample, join(root, 'lib/apk/db/installed'));
    const ctx = await contextFor(root, ALPINE);
    const pkgs = await apkExtractor.extract(ctx);
    const names = [...text.matchAll(/^P:(.*)$/gm)].map((m) => m[1]);
    assert.ok(names.length > 0);
    assert.deepEqual(
      pkgs.map((p) => p.name),
      names,
    );
    const apkTools = pkgs.find((p) => p.name === 'apk-tools');
    assert.deepEqual(apkTools?.source, { name: 'apk-tools', version: '2.12.10-r1' });
    assert.equal(apkTools?.ecosystem, 'Alpine:v3.20');
    assert.equal(apkTools?.location, '/lib/apk/db/installed');
    assert.equal(apkTools?.extractor, 'apk');
    assert.deepEqual(ctx.notes, []);
  });

  test('/lib/apk linked to /usr/lib/apk is read once', async () => {
    const root = join(temp, `root-${rootCount++}`);
    mkdirSync(join(root, 'usr/lib/apk/db'), { recursive: true });
    mkdirSync(join(root, 'lib'));
    writeFileSync(join(root, 'usr/lib/apk/db/installed'), 'P:musl\nV:1.2.5-r0\no:musl\n\n');
    symlinkSync('../usr/lib/apk', join(root, 'lib/apk'));
    const pkgs = await apkExtractor.extract(await contextFor(root, ALPINE));
    assert.deepEqual(
      pkgs.map((p) => p.name),
      ['musl'],
    );
  });

  test('Wolfi keeps its own ecosystem and purl vendor', async () => {
    const root = newRoot();
    writeFileSync(join(root, 'lib/apk/db/installed'), 'P:glibc\nV:2.40-r3\nA:x86_64\no:glibc\n');
    const ctx = await contextFor(root, { id: 'wolfi', versionId: '20230201', ecosystem: 'Wolfi' });
    const [p] = await apkExtractor.extract(ctx);
    assert.equal(p?.ecosystem, 'Wolfi');
    assert.equal(p?.purl, 'pkg:apk/wolfi/glibc@2.40-r3?arch=x86_64&distro=wolfi-20230201');
    assert.deepEqual(ctx.notes, []);
  });

  test('no OS detected: best-effort Alpine ecosystem and a note', async () => {
    const root = newRoot();
    writeFileSync(join(root, 'lib/apk/db/installed'), 'P:zlib\nV:1.3.1-r1\n');
    const ctx = await contextFor(root);
    const [p] = await apkExtractor.extract(ctx);
    assert.equal(p?.ecosystem, 'Alpine');
    assert.equal(ctx.notes.length, 1);
  });

  test('a database link escaping the root reads nothing from the host', async () => {
    const outside = join(temp, 'host-installed');
    writeFileSync(outside, 'P:host-only\nV:1\n');
    const root = newRoot();
    symlinkSync(outside, join(root, 'lib/apk/db/installed'));
    assert.deepEqual(await apkExtractor.extract(await contextFor(root, ALPINE)), []);
  });
});
