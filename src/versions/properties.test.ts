/**
 * Every comparator is a total order over the versions its `isValid` accepts (issue 12 §7):
 * reflexive, antisymmetric, transitive, and consistent with its own equality (versions it calls
 * equal compare the same against everything). Realistic generators per ecosystem, plus short
 * strings over each format's alphabet that the comparator accepts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Arbitrary } from 'fast-check';
import { getComparator } from './index.js';
import type { VersionComparator } from './types.js';
import { versionArbitraries } from './version-arbitraries.test-helper.js';

/** Fixed seed per run unless FC_SEED is set: failures reproduce; `npm run fuzz` varies it. */
const seed = process.env.FC_SEED === undefined ? 1234 : Number(process.env.FC_SEED);
const params = { seed, numRuns: 400 };

const ALPHABET = '0123456789.-_~+:^abprcvVSNAPSHOTsdevpostl!';
const terse = fc
  .array(fc.constantFrom(...ALPHABET), { minLength: 1, maxLength: 10 })
  .map((cs) => cs.join(''));

function validVersions(c: VersionComparator, realistic: Arbitrary<string>): Arbitrary<string> {
  return fc
    .oneof({ weight: 4, arbitrary: realistic }, { weight: 1, arbitrary: terse })
    .filter((v) => c.isValid(v));
}

const sign = (n: number): number => (n > 0 ? 1 : n < 0 ? -1 : 0);

for (const [ecosystem, realistic] of Object.entries(versionArbitraries)) {
  const c = getComparator(ecosystem);
  describe(`${ecosystem} comparator is a total order`, () => {
    assert.ok(c, ecosystem);
    const v = validVersions(c, realistic);

    test('the realistic generator yields versions the comparator accepts', () => {
      const sample = fc.sample(realistic, { seed, numRuns: 300 });
      const rejected = sample.filter((s) => !c.isValid(s));
      assert.ok(
        rejected.length < sample.length / 4,
        `${ecosystem} rejects ${rejected.slice(0, 5).join(', ')}`,
      );
    });

    test('reflexive', () => {
      fc.assert(
        fc.property(v, (a) => c.compare(a, a) === 0),
        params,
      );
    });

    test('antisymmetric', () => {
      fc.assert(
        fc.property(v, v, (a, b) => sign(c.compare(a, b)) === -sign(c.compare(b, a))),
        params,
      );
    });

    test('transitive (a ≤ b ≤ c ⇒ a ≤ c), checked on sorted triples', () => {
      fc.assert(
        fc.property(v, v, v, (x, y, z) => {
          const [a, b, d] = [x, y, z].sort((p, q) => c.compare(p, q));
          return c.compare(a!, b!) <= 0 && c.compare(b!, d!) <= 0 && c.compare(a!, d!) <= 0;
        }),
        params,
      );
    });

    test('consistent with its equality: equal versions compare alike against everything', () => {
      fc.assert(
        fc.property(v, v, v, (a, b, x) => {
          if (c.compare(a, b) !== 0) return true;
          return c.compare(a, x) === c.compare(b, x);
        }),
        params,
      );
    });

    test('a sorted list is ordered pairwise', () => {
      fc.assert(
        fc.property(fc.array(v, { minLength: 2, maxLength: 12 }), (list) => {
          const sorted = [...list].sort((p, q) => c.compare(p, q));
          for (let i = 0; i < sorted.length; i++) {
            for (let j = i + 1; j < sorted.length; j++) {
              if (c.compare(sorted[i]!, sorted[j]!) > 0) return false;
            }
          }
          return true;
        }),
        { seed, numRuns: 150 },
      );
    });
  });
}
