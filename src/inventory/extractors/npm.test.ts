import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { contextFor, tempDir } from './extractor.test-helper.js';
import { npmExtractor, npmPurl, parseNpmLockfile, parsePackageJson } from './npm.js';

function write(root: string, path: string, content: unknown): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
}

const summary = (pkgs: { name: string; version: string; location: string }[]) =>
  pkgs.map((p) => `${p.name}@${p.version} ${p.location}`).sort();

test('parsePackageJson takes name and version, rejects missing ones', () => {
  assert.deepEqual(parsePackageJson('{"name":"a","version":"1.0.0","main":"x"}'), {
    name: 'a',
    version: '1.0.0',
  });
  assert.equal(parsePackageJson('{"version":"1.0.0"}'), undefined);
  assert.equal(parsePackageJson('{"name":"a","version":3}'), undefined);
  assert.equal(parsePackageJson('[1,2]'), undefined);
  assert.throws(() => parsePackageJson('{"name":'));
});

test('parseNpmLockfile v2/v3 packages map: names from paths or name field, root/links/dev/non-semver skipped', () => {
  const lock = {
    lockfileVersion: 3,
    packages: {
      '': { name: 'app', version: '1.0.0' },
      'node_modules/lodash': { version: '4.17.21' },
      'node_modules/@babel/core': { version: '7.24.0' },
      'node_modules/@babel/core/node_modules/semver': { version: '6.3.1' },
      'node_modules/alias': { name: 'real-name', version: '2.0.0' },
      'node_modules/linked': { resolved: 'packages/linked', link: true },
      'node_modules/devonly': { version: '1.0.0', dev: true },
      'node_modules/fromgit': { version: 'git+https://example.com/x.git#abc' },
      'packages/linked': { name: 'linked', version: '0.1.0' },
    },
    // v2 files carry both; the packages map wins and dependencies is not read twice.
    dependencies: { lodash: { version: '4.17.21' } },
  };
  assert.deepEqual(
    parseNpmLockfile(JSON.stringify(lock)).map((r) => `${r.name}@${r.version}`),
    ['lodash@4.17.21', '@babel/core@7.24.0', 'semver@6.3.1', 'real-name@2.0.0'],
  );
});

test('parseNpmLockfile v1 nested dependencies', () => {
  const lock = {
    lockfileVersion: 1,
    dependencies: {
      express: {
        version: '4.18.2',
        dependencies: { debug: { version: '2.6.9', dependencies: { ms: { version: '2.0.0' } } } },
      },
      jest: { version: '29.0.0', dev: true, dependencies: { chalk: { version: '4.1.2' } } },
      aliased: { version: 'npm:other@1.0.0' },
    },
  };
  assert.deepEqual(
    parseNpmLockfile(JSON.stringify(lock)).map((r) => `${r.name}@${r.version}`),
    ['express@4.18.2', 'debug@2.6.9', 'ms@2.0.0', 'chalk@4.1.2'],
  );
  assert.throws(() => parseNpmLockfile('"just a string"'));
});

test('npmPurl encodes the scope', () => {
  assert.equal(npmPurl('@types/node', '20.1.0'), 'pkg:npm/%40types/node@20.1.0');
  assert.equal(npmPurl('left-pad', '1.3.0+build.1'), 'pkg:npm/left-pad@1.3.0%2Bbuild.1');
});

test('npmExtractor finds installed packages (scoped, nested, global) and ignores non-root package.json', async (t) => {
  const root = tempDir(t, 'npm');
  write(root, 'app/node_modules/express/package.json', { name: 'express', version: '4.18.2' });
  write(root, 'app/node_modules/express/lib/package.json', { name: 'not-a-package', version: '9.9.9' });
  write(root, 'app/node_modules/express/node_modules/debug/package.json', {
    name: 'debug',
    version: '2.6.9',
  });
  write(root, 'app/node_modules/@types/node/package.json', { name: '@types/node', version: '20.1.0' });
  write(root, 'app/node_modules/.package-lock.json', { lockfileVersion: 3, packages: {} });
  write(root, 'app/node_modules/nover/package.json', { name: 'nover' });
  write(root, 'app/package.json', { name: 'app', version: '1.0.0' });
  write(root, 'usr/local/lib/node_modules/npm/package.json', { name: 'npm', version: '10.2.4' });
  const ctx = await contextFor(root);
  const pkgs = await npmExtractor.extract(ctx);
  assert.deepEqual(summary(pkgs), [
    '@types/node@20.1.0 /app/node_modules/@types/node/package.json',
    'debug@2.6.9 /app/node_modules/express/node_modules/debug/package.json',
    'express@4.18.2 /app/node_modules/express/package.json',
    'npm@10.2.4 /usr/local/lib/node_modules/npm/package.json',
  ]);
  const types = pkgs.find((p) => p.name === '@types/node');
  assert.equal(types?.purl, 'pkg:npm/%40types/node@20.1.0');
  assert.equal(types?.ecosystem, 'npm');
  assert.equal(types?.extractor, 'npm');
  assert.deepEqual(ctx.notes, []);
});

test('npmExtractor reports lockfile packages, dropping those installed beside it', async (t) => {
  const root = tempDir(t, 'npm');
  write(root, 'srv/node_modules/lodash/package.json', { name: 'lodash', version: '4.17.21' });
  write(root, 'srv/node_modules/a/node_modules/ms/package.json', { name: 'ms', version: '2.1.3' });
  write(root, 'srv/package-lock.json', {
    lockfileVersion: 2,
    packages: {
      '': { name: 'srv' },
      'node_modules/lodash': { version: '4.17.21' },
      'node_modules/a/node_modules/ms': { version: '2.1.3' },
      'node_modules/minimist': { version: '1.2.5' },
    },
  });
  // A different project with the same lodash: not deduplicated against /srv.
  write(root, 'other/npm-shrinkwrap.json', {
    lockfileVersion: 1,
    dependencies: { lodash: { version: '4.17.21' } },
  });
  const ctx = await contextFor(root);
  assert.deepEqual(summary(await npmExtractor.extract(ctx)), [
    'lodash@4.17.21 /other/npm-shrinkwrap.json',
    'lodash@4.17.21 /srv/node_modules/lodash/package.json',
    'minimist@1.2.5 /srv/package-lock.json',
    'ms@2.1.3 /srv/node_modules/a/node_modules/ms/package.json',
  ]);
});

test('npmExtractor notes malformed files and never follows a link out of the root', async (t) => {
  const root = tempDir(t, 'npm');
  const outside = tempDir(t, 'npm-outside');
  write(outside, 'package.json', { name: 'host-secret', version: '6.6.6' });
  write(root, 'app/node_modules/broken/package.json', '{"name": "broken", "version": ');
  write(root, 'app/package-lock.json', 'not json at all');
  write(root, 'app/node_modules/ok/package.json', { name: 'ok', version: '1.0.0' });
  mkdirSync(join(root, 'app/node_modules/evil'), { recursive: true });
  symlinkSync(join(outside, 'package.json'), join(root, 'app/node_modules/evil/package.json'));
  const ctx = await contextFor(root);
  // The walk never lists links; pretend the container swapped a file for one after the walk.
  const files = [
    ...ctx.files,
    { path: '/app/node_modules/evil/package.json', stat: { ...ctx.files[0]!.stat, type: 'file' as const } },
  ];
  const pkgs = await npmExtractor.extract({ ...ctx, files });
  assert.deepEqual(summary(pkgs), ['ok@1.0.0 /app/node_modules/ok/package.json']);
  // Each is a gap: the swapped link is there but leads nowhere inside the root.
  assert.deepEqual(
    ctx.gaps.map((g) => `${g.code} ${g.path}`),
    [
      'PACKAGE_DB_CORRUPT /app/node_modules/broken/package.json',
      'PACKAGE_DB_UNREADABLE /app/node_modules/evil/package.json',
      'PACKAGE_DB_CORRUPT /app/package-lock.json',
    ],
  );
});

test('npmExtractor notes an oversized package.json instead of reading it', async (t) => {
  const root = tempDir(t, 'npm');
  write(
    root,
    'node_modules/huge/package.json',
    JSON.stringify({ name: 'huge', version: '1.0.0', pad: 'x'.repeat(1100 * 1024) }),
  );
  const ctx = await contextFor(root);
  assert.deepEqual(await npmExtractor.extract(ctx), []);
  assert.equal(ctx.gaps.length, 1);
  assert.equal(ctx.gaps[0]?.code, 'PACKAGE_DB_TOO_LARGE');
  assert.match(ctx.notes[0] ?? '', /huge\/package\.json.*read limit/);
});
