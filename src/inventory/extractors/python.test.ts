import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { contextFor, tempDir } from './extractor.test-helper.js';
import { normalizePythonName, parsePythonMetadata, pypiPurl, pythonExtractor } from './python.js';

function write(root: string, path: string, content: string): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
}

test('parsePythonMetadata reads the first Name/Version headers and stops at the body', () => {
  const text = [
    'Metadata-Version: 2.1',
    'name: Flask_SQLAlchemy',
    'Version: 3.1.1',
    'Summary: Adds SQLAlchemy support',
    '  continued summary line',
    'Version: 9.9.9',
    '',
    'Name: body-is-not-metadata',
  ].join('\r\n');
  assert.deepEqual(parsePythonMetadata(text), { name: 'Flask_SQLAlchemy', version: '3.1.1' });
  assert.equal(parsePythonMetadata('Metadata-Version: 2.1\n\nName: x\nVersion: 1\n'), undefined);
  assert.equal(parsePythonMetadata('\u0000\u0001 garbage'), undefined);
});

test('PEP 503 name normalisation in the purl, name kept as written', () => {
  assert.equal(normalizePythonName('Flask_SQLAlchemy'), 'flask-sqlalchemy');
  assert.equal(normalizePythonName('zope.interface'), 'zope-interface');
  assert.equal(normalizePythonName('A-._b'), 'a-b');
  assert.equal(pypiPurl('PyYAML', '6.0.1'), 'pkg:pypi/pyyaml@6.0.1');
});

test('pythonExtractor finds dist-info, egg-info directories and files, and egg dirs', async (t) => {
  const root = tempDir(t, 'python');
  const site = 'usr/lib/python3/dist-packages';
  write(
    root,
    `${site}/requests-2.31.0.dist-info/METADATA`,
    'Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n\nbody',
  );
  write(root, `${site}/requests-2.31.0.dist-info/RECORD`, 'Name: not-this\nVersion: 0\n');
  write(root, `${site}/six-1.16.0.egg-info/PKG-INFO`, 'Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\n');
  write(root, `${site}/chardet-3.0.4.egg-info`, 'Metadata-Version: 1.1\nName: chardet\nVersion: 3.0.4\n');
  write(
    root,
    'opt/venv/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA',
    'Name: Jinja2\nVersion: 3.1.2\n',
  );
  write(root, 'opt/old/lib/simplejson-3.0.egg/EGG-INFO/PKG-INFO', 'Name: simplejson\nVersion: 3.0\n');
  write(root, `${site}/broken-1.0.dist-info/METADATA`, 'Metadata-Version: 2.1\nSummary: no name here\n');
  const ctx = await contextFor(root);
  const pkgs = await pythonExtractor.extract(ctx);
  assert.deepEqual(pkgs.map((p) => `${p.name}@${p.version} ${p.location}`).sort(), [
    'Jinja2@3.1.2 /opt/venv/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA',
    `chardet@3.0.4 /${site}/chardet-3.0.4.egg-info`,
    `requests@2.31.0 /${site}/requests-2.31.0.dist-info/METADATA`,
    'simplejson@3.0 /opt/old/lib/simplejson-3.0.egg/EGG-INFO/PKG-INFO',
    `six@1.16.0 /${site}/six-1.16.0.egg-info/PKG-INFO`,
  ]);
  const jinja = pkgs.find((p) => p.name === 'Jinja2');
  assert.equal(jinja?.purl, 'pkg:pypi/jinja2@3.1.2');
  assert.equal(jinja?.ecosystem, 'PyPI');
  assert.equal(jinja?.extractor, 'python');
  assert.deepEqual(ctx.notes, [
    `[PACKAGE_RECORD_INVALID] python: /${site}/broken-1.0.dist-info/METADATA: no Name/Version header`,
  ]);
});

test('pythonExtractor does not read metadata through a link leading out of the root', async (t) => {
  const root = tempDir(t, 'python');
  const outside = tempDir(t, 'python-outside');
  write(outside, 'METADATA', 'Name: host-package\nVersion: 1.0\n');
  mkdirSync(join(root, 'site/evil-1.0.dist-info'), { recursive: true });
  symlinkSync(join(outside, 'METADATA'), join(root, 'site/evil-1.0.dist-info/METADATA'));
  const ctx = await contextFor(root);
  const files = [
    ...ctx.files,
    { path: '/site/evil-1.0.dist-info/METADATA', stat: { ...ctx.files[0]!.stat, type: 'file' as const } },
  ];
  assert.deepEqual(await pythonExtractor.extract({ ...ctx, files }), []);
});
