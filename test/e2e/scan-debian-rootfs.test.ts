/**
 * End to end with real parts: a debootstrapped Debian 12 root filesystem, the real OSV records of
 * testdata/, the `containment` CLI as a user runs it, and Podman for image archives and a
 * running container. Planted package entries give known findings.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { ScanResult } from '../../src/scan/scan-result.js';
import { isCI, requireOrSkip, sharedDataDir } from '../../src/testing/shared-data.js';
import { containment, debianRootfs, mustRun, podmanAvailable, run } from '../../src/testing/tools.js';
import { existsSync } from 'node:fs';

const fixtures = join(import.meta.dirname, 'fixtures');
const work = mkdtempSync(join(tmpdir(), 'containment-e2e-'));
const db = join(work, 'vulndb.sqlite');
const root = join(work, 'root');
const tag = `localhost/containment-e2e-${process.pid}:latest`;
let ready = false;

function parseScan(stdout: string): ScanResult {
  return JSON.parse(stdout) as ScanResult;
}

function scanJson(target: string, extra: string[] = []): ScanResult {
  const r = containment(['scan', target, '--db', db, '--format', 'json', ...extra]);
  assert.equal(r.status, 0, `scan failed: ${r.stderr}`);
  return parseScan(r.stdout);
}

const vulnKeys = (r: ScanResult): string[] =>
  r.vulnerabilities.map((v) => `${v.id} ${v.package.name}@${v.package.version}`).sort();
const pkgKeys = (r: ScanResult): string[] =>
  r.packages.map((p) => `${p.extractor} ${p.name}@${p.version} ${p.location}`).sort();

function plant(rootDir: string): void {
  // A package installed "by hand" into the image: real npm and PyPI versions the saved GHSA
  // records cover, and an ssh server in the dpkg database.
  const nm = join(rootDir, 'srv/app/node_modules');
  mkdirSync(join(nm, 'minimist'), { recursive: true });
  writeFileSync(join(nm, 'minimist/package.json'), JSON.stringify({ name: 'minimist', version: '1.2.5' }));
  mkdirSync(join(nm, 'lodash'), { recursive: true });
  writeFileSync(join(nm, 'lodash/package.json'), JSON.stringify({ name: 'lodash', version: '4.17.20' }));
  const site = join(rootDir, 'usr/lib/python3/dist-packages/requests-2.31.0.dist-info');
  mkdirSync(site, { recursive: true });
  writeFileSync(join(site, 'METADATA'), 'Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n\nbody\n');
  appendFileSync(
    join(rootDir, 'var/lib/dpkg/status'),
    '\nPackage: openssh-server\nStatus: install ok installed\nArchitecture: amd64\nSource: openssh\n' +
      'Version: 1:9.2p1-2+deb12u3\nDescription: secure shell (SSH) server\n',
  );
}

before(() => {
  const base = debianRootfs();
  if (!base || !existsSync(sharedDataDir)) return;
  mustRun('cp', ['-a', base, root]); // device nodes and ownership as debootstrap made them
  plant(root);
  for (const source of [join(sharedDataDir, 'osv'), fixtures]) {
    const r = containment(['db', 'import', source, '--db', db]);
    assert.equal(r.status, 0, r.stderr);
  }
  ready = true;
});

after(() => {
  if (podmanAvailable()) run('podman', ['rmi', '-f', tag]);
  rmSync(work, { recursive: true, force: true });
});

function needRoot(t: TestContext): boolean {
  if (!existsSync(sharedDataDir) && isCI()) throw new Error(`test data missing at ${sharedDataDir}`);
  return requireOrSkip(t, ready, 'a debootstrapped Debian root (debootstrap, root)');
}

describe('scanning a debootstrapped Debian 12 root', () => {
  test('inventory, OS, planted findings and configuration', (t) => {
    if (!needRoot(t)) return;
    const r = scanJson(root);
    assert.equal(r.schemaVersion, 1);
    assert.equal(r.target.kind, 'directory');
    assert.equal(r.os?.id, 'debian');
    assert.equal(r.ecosystem, 'Debian:12');

    const dpkg = r.packages.filter((p) => p.extractor === 'dpkg');
    const expected = readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8')
      .split(/\n\n+/)
      .filter((p) => /^Status: install ok installed$/m.test(p)).length;
    assert.equal(dpkg.length, expected, 'every installed dpkg package is listed');
    const libc = dpkg.find((p) => p.name === 'libc6');
    assert.equal(libc?.source?.name, 'glibc');
    assert.equal(libc?.ecosystem, 'Debian:12');

    const ids = new Set(r.vulnerabilities.map((v) => `${v.id}|${v.package.name}`));
    // Fixture Debian:12 record on the source package glibc reaches its binaries.
    assert.ok(ids.has('CVE-2099-0001|libc6'), [...ids].join(', '));
    assert.ok(ids.has('CVE-2099-0001|libc-bin'));
    // Its Debian:11 twin must not match a Debian 12 system.
    assert.ok(
      !r.vulnerabilities.some(
        (v) => v.id === 'CONTAINMENT-TEST-2026-0002' || v.aliases.includes('CONTAINMENT-TEST-2026-0002'),
      ),
    );
    // Real records: minimist 1.2.5 (GHSA-xvch-5gv4-984h, CRITICAL, fixed 1.2.6) ...
    const minimist = r.vulnerabilities.find((v) => v.package.name === 'minimist');
    assert.ok(minimist, 'minimist finding');
    assert.ok([minimist.id, ...minimist.aliases].includes('GHSA-xvch-5gv4-984h'));
    assert.ok([minimist.id, ...minimist.aliases].includes('CVE-2021-44906'));
    assert.equal(minimist.fixedVersion, '1.2.6');
    assert.equal(minimist.severity, 'CRITICAL');
    assert.equal(minimist.package.location, '/srv/app/node_modules/minimist/package.json');
    // ... lodash 4.17.20 (two advisories fixed in 4.17.21), requests 2.31.0 (fixed 2.32.2).
    assert.equal(r.vulnerabilities.filter((v) => v.package.name === 'lodash').length, 2);
    const requests = r.vulnerabilities.find((v) => v.package.name === 'requests');
    assert.equal(requests?.fixedVersion, '2.32.2');

    const configs = new Map(r.insecureConfigurations.map((c) => [c.id, c]));
    assert.ok(configs.has('remote_shell_installed'), 'openssh-server planted');
    assert.ok(!configs.has('runs_as_root'), 'a directory has no image config');

    assert.equal(
      r.summary.counts.CRITICAL,
      r.vulnerabilities.filter((v) => v.severity === 'CRITICAL').length,
    );
    assert.equal(r.summary.compliance.passed, false, 'CRITICAL findings exceed the default threshold of 0');
  });

  test('the gate: --exit-code with and without --severity, thresholds, ignore file', (t) => {
    if (!needRoot(t)) return;
    const all = containment(['scan', root, '--db', db, '--format', 'json', '--exit-code', '7']);
    assert.equal(all.status, 7, 'any finding fails the gate without --severity');
    const none = containment(['scan', root, '--db', db, '--format', 'json']);
    assert.equal(none.status, 0, 'no gate without --exit-code');

    // Ignore every CRITICAL finding (by alias) until a future date: the gate at CRITICAL passes
    // only if compliance passes too, so raise the CRITICAL threshold through the flag.
    const before = parseScan(none.stdout);
    const critical = before.vulnerabilities.filter((v) => v.severity === 'CRITICAL');
    assert.ok(critical.length > 0);
    const ignore = join(work, 'ignore.json');
    writeFileSync(
      ignore,
      JSON.stringify({
        ignore: critical.map((v) => ({
          id: v.aliases[0] ?? v.id,
          reason: 'accepted in review',
          expires: '2999-01-01',
        })),
      }),
    );
    const gated = containment([
      'scan',
      root,
      '--db',
      db,
      '--format',
      'json',
      '--severity',
      'critical',
      '--exit-code',
      '4',
      '--ignore-file',
      ignore,
      '--threshold',
      'HIGH=100',
      '--threshold',
      'MEDIUM=100',
      '--threshold',
      'LOW=100',
    ]);
    assert.equal(gated.status, 0, gated.stderr);
    const after = parseScan(gated.stdout);
    assert.equal(after.vulnerabilities.filter((v) => v.severity === 'CRITICAL').length, 0);
    assert.ok(after.ignored.length >= critical.length, 'ignored findings are reported, not dropped');
    assert.ok(
      after.vulnerabilities.every((v) => v.severity === 'CRITICAL'),
      '--severity filters what is shown',
    );

    const expired = join(work, 'expired.json');
    writeFileSync(
      expired,
      JSON.stringify({ ignore: [{ id: critical[0]?.id, reason: 'was accepted', expires: '2020-01-01' }] }),
    );
    const stale = containment(['scan', root, '--db', db, '--format', 'json', '--ignore-file', expired]);
    assert.ok(parseScan(stale.stdout).notes.some((n) => n.includes('expired')));
  });

  test('other formats render the same findings', (t) => {
    if (!needRoot(t)) return;
    const sarif = JSON.parse(containment(['scan', root, '--db', db, '--format', 'sarif']).stdout) as {
      version: string;
      runs: Array<{ results: Array<{ ruleId: string }> }>;
    };
    assert.equal(sarif.version, '2.1.0');
    assert.ok(
      sarif.runs[0]?.results.some((x) => x.ruleId === 'CVE-2021-44906' || x.ruleId === 'GHSA-xvch-5gv4-984h'),
    );
    const bom = JSON.parse(containment(['scan', root, '--db', db, '--format', 'cyclonedx']).stdout) as {
      bomFormat: string;
      components: unknown[];
    };
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.ok(bom.components.length > 80);
    const table = containment(['scan', root, '--db', db]);
    assert.match(table.stdout, /minimist/);
    assert.ok(!table.stdout.includes(String.fromCharCode(27)), 'no colour when not on a terminal');
  });

  test('an image archive of the same root gives the same packages and findings', (t) => {
    if (!needRoot(t) || !requireOrSkip(t, podmanAvailable(), 'podman')) return;
    const dirResult = scanJson(root);
    mustRun('sh', ['-c', `tar -C '${root}' -c . | podman import - ${tag}`]);
    for (const format of ['docker-archive', 'oci-archive']) {
      const archive = join(work, `image-${format}.tar`);
      mustRun('podman', ['save', '--format', format, '-o', archive, tag]);
      const fromArchive = scanJson(archive);
      assert.equal(fromArchive.target.kind, 'image-archive');
      assert.deepEqual(pkgKeys(fromArchive), pkgKeys(dirResult), `${format}: same packages`);
      assert.deepEqual(vulnKeys(fromArchive), vulnKeys(dirResult), `${format}: same vulnerabilities`);
      // An imported image has no USER: it runs as root, which only an image config can tell.
      assert.ok(
        fromArchive.insecureConfigurations.some((c) => c.id === 'runs_as_root'),
        format,
      );
    }
  });

  test('a running container is scanned live, including what was installed after start', (t) => {
    if (!needRoot(t) || !requireOrSkip(t, podmanAvailable(), 'podman')) return;
    if (run('podman', ['image', 'exists', tag]).status !== 0) {
      mustRun('sh', ['-c', `tar -C '${root}' -c . | podman import - ${tag}`]);
    }
    const name = `containment-e2e-${process.pid}`;
    mustRun('podman', ['run', '-d', '--name', name, tag, '/bin/sleep', '600']);
    try {
      const pid = mustRun('podman', ['inspect', name, '--format', '{{.State.Pid}}']).trim();
      const first = scanJson(`container:${name}`);
      assert.equal(first.target.kind, 'container');
      assert.deepEqual(
        pkgKeys(first).filter((k) => k.startsWith('dpkg')),
        pkgKeys(scanJson(root)).filter((k) => k.startsWith('dpkg')),
      );
      assert.ok(!first.packages.some((p) => p.name === 'ws'));
      // "Install" a vulnerable package into the running container's writable layer.
      const live = `/proc/${pid}/root/opt/late/node_modules/ws`;
      mkdirSync(live, { recursive: true });
      writeFileSync(`${live}/package.json`, JSON.stringify({ name: 'ws', version: '5.2.3' }));
      const second = scanJson(`pid:${pid}`);
      const ws = second.vulnerabilities.find((v) => v.package.name === 'ws');
      assert.ok(ws, 'the package written after start is found');
      assert.equal(ws.fixedVersion, '5.2.4');
    } finally {
      run('podman', ['rm', '-f', '-t', '0', name]);
    }
  });
});

describe('bad input gives one clear line and a non-zero exit', () => {
  const oneLine = (stderr: string, code: string): void => {
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0] ?? '', new RegExp(`^error\\[${code}\\]: `));
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  };

  test('missing path, corrupt archive, unreadable database, bad flags', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'containment-bad-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const goodDb = join(dir, 'db.sqlite');
    assert.equal(
      containment(['db', 'import', join(fixtures, 'containment-test-debian12-glibc.json'), '--db', goodDb])
        .status,
      0,
    );

    let r = containment(['scan', join(dir, 'nope'), '--db', goodDb]);
    assert.equal(r.status, 2);
    oneLine(r.stderr, 'TARGET_NOT_FOUND');

    const corrupt = join(dir, 'corrupt.tar');
    writeFileSync(corrupt, Buffer.concat([Buffer.from('manifest.json'), Buffer.alloc(600, 7)]));
    r = containment(['scan', corrupt, '--db', goodDb]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^error\[(ARCHIVE_CORRUPT|TARGET_UNSUPPORTED)\]: /);

    const notDb = join(dir, 'not-a-db.sqlite');
    writeFileSync(notDb, 'this is not sqlite'.repeat(100));
    r = containment(['scan', dir, '--db', notDb]);
    assert.equal(r.status, 2);
    oneLine(r.stderr, 'DB_UNREADABLE');

    r = containment(['scan', dir, '--db', join(dir, 'missing.sqlite')]);
    assert.equal(r.status, 2);
    oneLine(r.stderr, 'DB_UNREADABLE');
    assert.match(r.stderr, /db import/);

    r = containment(['scan', dir, '--db', goodDb, '--format', 'xml']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^error\[USAGE\]: /);

    r = containment(['scan', dir, '--db', goodDb, '--threshold', 'HIGH=lots']);
    assert.equal(r.status, 2);
    oneLine(r.stderr, 'USAGE');

    const output = join(dir, 'report.json');
    r = containment(['scan', dir, '--db', goodDb, '--format', 'json', '--output', output]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(parseScan(readFileSync(output, 'utf8')).target.ref, dir);
  });
});
