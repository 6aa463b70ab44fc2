/**
 * fast-check generators of realistic version strings per ecosystem, for the comparator and range
 * properties. Small alphabets on purpose: collisions (equal and near-equal versions) are what
 * find ordering bugs, not long random strings.
 */
import fc from 'fast-check';
import type { Arbitrary } from 'fast-check';

const num = fc.oneof(
  fc.integer({ min: 0, max: 3 }),
  fc.integer({ min: 0, max: 20 }),
  fc.constantFrom(10, 100, 2024),
);
const dotted = (min: number, max: number): Arbitrary<string> =>
  fc.array(num, { minLength: min, maxLength: max }).map((parts) => parts.join('.'));
const opt = (a: Arbitrary<string>): Arbitrary<string> => fc.option(a, { nil: '' }).map((s) => s ?? '');

const semverPre = fc
  .array(fc.oneof(fc.constantFrom('alpha', 'beta', 'rc', 'pre', 'x-y', 'A'), num.map(String)), {
    minLength: 1,
    maxLength: 3,
  })
  .map((ids) => `-${ids.join('.')}`);
const semverBuild = fc
  .array(fc.constantFrom('build', '001', 'sha', '5'), { minLength: 1, maxLength: 2 })
  .map((b) => `+${b.join('.')}`);
export const semverVersion = fc
  .tuple(dotted(3, 3), opt(semverPre), opt(semverBuild))
  .map(([core, pre, build]) => core + pre + build);

const debianUpstream = fc
  .tuple(
    dotted(1, 4),
    opt(fc.constantFrom('~rc1', '~beta', '+dfsg', '+git20240101', 'a', 'b', '+really1.0', '~', '.0')),
  )
  .map(([a, b]) => a + b);
const debianRevision = fc
  .tuple(num, opt(fc.constantFrom('ubuntu1', '+deb12u1', '+b2', '~bpo12+1', '.1', 'build1')))
  .map(([n, s]) => `${n}${s}`);
export const debianVersion = fc
  .tuple(opt(fc.constantFrom('1:', '2:', '0:')), debianUpstream, opt(debianRevision.map((r) => `-${r}`)))
  .map(([e, u, r]) => e + u + r);

export const alpineVersion = fc
  .tuple(
    dotted(1, 4),
    opt(fc.constantFrom('a', 'b', 'z')),
    opt(
      fc
        .tuple(fc.constantFrom('_alpha', '_beta', '_pre', '_rc', '_p', '_git', '_svn'), opt(num.map(String)))
        .map(([s, n]) => s + n),
    ),
    opt(num.map((n) => `-r${n}`)),
  )
  .map((parts) => parts.join(''));

export const rpmVersion = fc
  .tuple(
    opt(fc.constantFrom('1:', '2:', '0:')),
    fc.tuple(dotted(1, 4), opt(fc.constantFrom('~rc1', '^post1', 'a', '_1', 'git1'))).map(([a, b]) => a + b),
    opt(
      fc
        .tuple(num, opt(fc.constantFrom('.el9', '.el9_4', '.fc40', '.1', '~beta')))
        .map(([n, s]) => `-${n}${s}`),
    ),
  )
  .map((parts) => parts.join(''));

export const pypiVersion = fc
  .tuple(
    opt(fc.constantFrom('1!', '0!')),
    dotted(1, 4),
    opt(
      fc
        .tuple(fc.constantFrom('a', 'b', 'rc', 'alpha', 'c', 'pre'), opt(num.map(String)))
        .map(([p, n]) => p + n),
    ),
    opt(num.map((n) => `.post${n}`)),
    opt(num.map((n) => `.dev${n}`)),
    opt(fc.constantFrom('+local', '+ubuntu.1', '+1')),
  )
  .map((parts) => parts.join(''));

export const goVersion = fc.oneof(
  semverVersion.map((v) => `v${v}`),
  fc.constantFrom(
    'v0.0.0-20240101000000-abcdefabcdef',
    'v1.2.4-0.20240101000000-abcdefabcdef',
    'v2.0.0+incompatible',
  ),
);

export const mavenVersion = fc
  .tuple(
    dotted(1, 4),
    opt(
      fc
        .tuple(
          fc.constantFrom('-', '.'),
          fc.constantFrom(
            'alpha',
            'beta',
            'milestone',
            'rc',
            'cr',
            'SNAPSHOT',
            'ga',
            'final',
            'sp',
            'RELEASE',
            'a',
            'b',
            'm',
            'foo',
          ),
          opt(num.map(String)),
        )
        .map((p) => p.join('')),
    ),
    opt(fc.constantFrom('-1', '-jre', '.Final', '-android')),
  )
  .map((parts) => parts.join(''));

export const rubygemsVersion = fc
  .tuple(
    dotted(1, 4),
    opt(
      fc
        .tuple(fc.constantFrom('.pre', '.rc', '.beta', '.a', '-alpha', '.b'), opt(num.map(String)))
        .map((p) => p.join('')),
    ),
  )
  .map((parts) => parts.join(''));

export const nugetVersion = fc
  .tuple(dotted(2, 4), opt(semverPre), opt(semverBuild))
  .map((parts) => parts.join(''));

export const packagistVersion = fc
  .tuple(
    opt(fc.constant('v')),
    dotted(1, 4),
    opt(
      fc
        .tuple(
          fc.constantFrom('-beta', '-alpha', '-RC', '-rc', '-patch', '-p', '-dev', '-stable', 'beta'),
          opt(num.map(String)),
        )
        .map((p) => p.join('')),
    ),
  )
  .map((parts) => parts.join(''));

/** Generator per ecosystem with a comparator (OSV names, as `getComparator` takes them). */
export const versionArbitraries: Readonly<Record<string, Arbitrary<string>>> = {
  Debian: debianVersion,
  Alpine: alpineVersion,
  'Red Hat': rpmVersion,
  PyPI: pypiVersion,
  npm: semverVersion,
  Go: goVersion,
  'crates.io': semverVersion,
  Maven: mavenVersion,
  RubyGems: rubygemsVersion,
  NuGet: nugetVersion,
  Packagist: packagistVersion,
};
