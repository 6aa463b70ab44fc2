/**
 * Runs every version vector file in testdata/versions (written by golang/mod, node-semver,
 * pypa/packaging and osv-scalibr) and the GPL-licensed ones of dpkg, apk-tools and rpm, which the
 * repository cannot carry and are read from the shared data when present, against our comparators. Each line must
 * hold, and every comparison must also hold reversed (antisymmetry). The few lines where we
 * deliberately differ are listed per file with the reason; the test fails if such a line starts
 * passing, so the list cannot go stale.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { externalDataFileOrSkip, sharedDataOrSkip } from '../testing/shared-data.js';
import { alpineComparator, compareAlpine } from './alpine.js';
import { compareSemver, getComparator } from './index.js';
import { rpmvercmp } from './rpm.js';
import type { VersionComparator } from './types.js';
import type { Ordering } from './util.js';

type Compare = (a: string, b: string) => Ordering;

interface VectorFile {
  /** how lines are written: `a op b`, `a b -1|0|1`, apk-tools' version.data, or one version per line */
  format: 'ops' | 'triples' | 'apk' | 'validity';
  compare?: Compare;
  comparator?: VersionComparator;
  /** validity files: what isValid must say for every line */
  valid?: boolean;
  /** every version in the comparisons must also pass isValid (files listing valid versions only) */
  allValid?: boolean;
  /** line → why we deliberately differ */
  deviations?: Readonly<Record<string, string>>;
}

function comparator(ecosystem: string): VersionComparator {
  const c = getComparator(ecosystem);
  assert.ok(c, `no comparator for ${ecosystem}`);
  return c;
}

const debian = comparator('Debian');
const rpm = comparator('Red Hat');
const pypi = comparator('PyPI');
const maven = comparator('Maven');
const rubygems = comparator('RubyGems');
const packagist = comparator('Packagist');

// Alpine: we follow apk-tools (its own vectors all pass); osv-scalibr's hand-written file has
// its own opinion on a few invalid strings.
const APK_REVISION =
  'invalid "-r" without digits: apk-tools 3 stops comparing there (INVALID token), so it sorts ' +
  'below a real revision; scalibr reads it as -r0 like apk-tools 2, which contradicts its own "1 > 1-ruff"';
const APK_DIGITS_BEAT_LETTER =
  'apk-tools 2 and 3 agree: after equal tokens, a further number ranks above a letter (`0.r1` has an ' +
  'empty number before `r`), so `0.r1 > 0r2`';
const APK_GRAMMAR =
  'apk-tools 3 rejects a digit after the letter (`!0.1a1` in its vectors) and an empty number; osv.dev ' +
  'accepts these real versions. isValid follows apk-tools; compare still orders them (apk-tools 2 rule)';
// Packagist: `#` is punctuation to PHP's canonicalizer (a separator), so `1.2.3.#` is `1.2.3.` with an
// empty last part, below `1.2.3`. scalibr compares a literal `#` as PHP's internal number placeholder,
// which makes `1.2.3 = 1.2.3.# = 1.2.3.1`, not a consistent order.
const PHP_HASH = 'PHP turns `#` into a separator; scalibr treats it as a number placeholder';

const FILES: Readonly<Record<string, VectorFile>> = {
  'alpine-apk-tools.txt': { format: 'apk' },
  'alpine-generated.txt': { format: 'ops', comparator: alpineComparator },
  'alpine.txt': {
    format: 'ops',
    comparator: alpineComparator,
    deviations: {
      '1-r = 1-r0': APK_REVISION,
      '1-r0-1 = 1-r-2': APK_REVISION,
      '0.r1 < 0r2': APK_DIGITS_BEAT_LETTER,
      '0.8.21.r2 < 0.8.21r2': APK_DIGITS_BEAT_LETTER,
    },
  },
  'alpine-osvdev-valid_versions.txt': {
    format: 'validity',
    comparator: alpineComparator,
    valid: true,
    deviations: Object.fromEntries(
      [
        '6.6.2p1-r0',
        '6.6.4p1-r2',
        '16.6.4p1-r1',
        '3.3.3p1-r3',
        '6.7.1p1-r1',
        '10.2.22.r0',
        '10.2.24.r0',
        '0.8.21.r2',
      ].map((v) => [v, APK_GRAMMAR]),
    ),
  },
  'alpine-osvdev-invalid_versions.txt': { format: 'validity', comparator: alpineComparator, valid: false },
  'debian.txt': { format: 'ops', comparator: debian },
  'debian-generated.txt': { format: 'ops', comparator: debian },
  'debian-dpkg-perl.txt': { format: 'triples', comparator: debian },
  'redhat.txt': { format: 'ops', comparator: rpm },
  'redhat-rpmvercmp.txt': { format: 'triples', compare: rpmvercmp },
  'pypi.txt': { format: 'ops', comparator: pypi },
  'pypi-generated.txt': { format: 'ops', comparator: pypi },
  'pypi-pypa-packaging.txt': { format: 'ops', comparator: pypi, allValid: true },
  'npm-node-semver.txt': { format: 'ops', comparator: comparator('npm'), allValid: true },
  // Generic SEMVER ranges and crates.io share compareSemver.
  'semver.txt': { format: 'ops', compare: compareSemver },
  'go-golang-mod.txt': { format: 'ops', comparator: comparator('Go'), allValid: true },
  'maven.txt': { format: 'ops', comparator: maven },
  'maven-generated.txt': { format: 'ops', comparator: maven },
  'rubygems.txt': { format: 'ops', comparator: rubygems },
  'rubygems-generated.txt': { format: 'ops', comparator: rubygems },
  'nuget.txt': { format: 'ops', comparator: comparator('NuGet') },
  'packagist.txt': {
    format: 'ops',
    comparator: packagist,
    deviations: { '1.2.3.# = 1.2.3': PHP_HASH, '1.2.3.# = 1.2.3.1': PHP_HASH },
  },
  'packagist-generated.txt': { format: 'ops', comparator: packagist },
};
/** Ecosystems we do not support yet (not needed by the scanner so far). */
const NOT_COVERED = new Set(['cran.txt', 'cran-generated.txt', 'hackage.txt', 'pub.txt']);

/** GPL-licensed vector files: not in testdata/, read from the shared data when present. */
const EXTERNAL = new Set(['alpine-apk-tools.txt', 'debian-dpkg-perl.txt', 'redhat-rpmvercmp.txt']);

const OPS: Readonly<Record<string, Ordering>> = { '<': -1, '=': 0, '>': 1 };

function isComment(line: string): boolean {
  return line.startsWith('#') || line.startsWith('//');
}

/** Checks one comparison both ways; returns a failure description or undefined. */
function checkPair(compare: Compare, a: string, b: string, expected: Ordering): string | undefined {
  const got = compare(a, b);
  const back = compare(b, a);
  if (got !== expected) return `got ${got}`;
  if (back !== -expected && !(back === 0 && expected === 0)) return `reversed got ${back}`;
  return undefined;
}

/** apk-tools' version_test.c: `a op b` with op from <,>,=,~ (and `!` to negate), or a validity line. */
function checkApkLine(line: string): string | undefined {
  const fields = line.split(/\s+/);
  if (fields.length === 1) {
    const word = fields[0] ?? '';
    const shouldBeValid = !word.startsWith('!');
    const version = shouldBeValid ? word : word.slice(1);
    return alpineComparator.isValid(version) === shouldBeValid ? undefined : `isValid != ${shouldBeValid}`;
  }
  const [a = '', rawOp = '', b = ''] = fields;
  const negated = rawOp.startsWith('!');
  const op = negated ? rawOp.slice(1) : rawOp;
  const fuzzy = op.includes('~');
  const r = compareAlpine(a, b, fuzzy);
  const accepted = (r < 0 && op.includes('<')) || (r > 0 && op.includes('>')) || (r === 0 && /[=~]/.test(op));
  if (accepted === negated) return `got ${r}`;
  if (!fuzzy && compareAlpine(b, a) !== -r && !(r === 0 && compareAlpine(b, a) === 0))
    return 'not antisymmetric';
  return undefined;
}

function runFile(path: string, spec: VectorFile): { lines: number; failures: Record<string, string> } {
  const compare: Compare | undefined = spec.compare ?? spec.comparator?.compare;
  const failures: Record<string, string> = {};
  let lines = 0;
  const text = readFileSync(path, 'utf8').split('\n').slice(1); // first line names the source
  for (const raw of text) {
    const line = spec.format === 'apk' ? raw.replace(/#.*$/, '').trim() : raw.trim();
    if (line === '' || isComment(line)) {
      // golang/mod's table also lists versions it rejects; check those against isValid.
      const invalid = /^# invalid: (\S+)$/.exec(line);
      if (invalid?.[1] && spec.comparator && invalid[1] !== 'bad') {
        lines++;
        if (spec.comparator.isValid(invalid[1])) failures[line] = 'isValid accepted it';
      }
      continue;
    }
    lines++;
    let failure: string | undefined;
    if (spec.format === 'apk') {
      failure = checkApkLine(line);
    } else if (spec.format === 'validity') {
      failure = spec.comparator?.isValid(line) === spec.valid ? undefined : `isValid != ${spec.valid}`;
    } else {
      const [a = '', x = '', y = ''] = line.split(/\s+/);
      const [b, expected] = spec.format === 'ops' ? [y, OPS[x]] : [x, Number(y) as Ordering];
      assert.ok(compare && expected !== undefined && [-1, 0, 1].includes(expected), `bad line: ${line}`);
      failure = checkPair(compare, a, b, expected);
      if (!failure && spec.allValid && !(spec.comparator?.isValid(a) && spec.comparator.isValid(b))) {
        failure = 'isValid rejected a version';
      }
    }
    if (failure) failures[line] = failure;
  }
  return { lines, failures };
}

test('every vector file is either run or deliberately not covered', (t) => {
  const dir = sharedDataOrSkip(t);
  if (!dir) return;
  const files = readdirSync(join(dir, 'versions')).filter((f) => f.endsWith('.txt'));
  const unknown = files.filter((f) => !(f in FILES) && !NOT_COVERED.has(f));
  assert.deepEqual(unknown, []);
  assert.deepEqual(
    Object.keys(FILES).filter((f) => !files.includes(f) && !EXTERNAL.has(f)),
    [],
  );
  assert.deepEqual(
    files.filter((f) => EXTERNAL.has(f)),
    [],
    'GPL-licensed vectors must not be copied into testdata/',
  );
});

for (const [file, spec] of Object.entries(FILES)) {
  test(`version vectors: ${file}`, (t) => {
    const dir = sharedDataOrSkip(t);
    if (!dir) return;
    const path = EXTERNAL.has(file)
      ? externalDataFileOrSkip(t, 'versions', file)
      : join(dir, 'versions', file);
    if (!path) return;
    const { lines, failures } = runFile(path, spec);
    const deviations = spec.deviations ?? {};
    t.diagnostic(`${file}: ${lines} lines checked, ${Object.keys(deviations).length} deliberate deviations`);
    assert.ok(lines > 0, `${file} has no vectors`);
    assert.deepEqual(
      Object.keys(failures).sort(),
      Object.keys(deviations).sort(),
      JSON.stringify(failures, null, 1),
    );
  });
}
