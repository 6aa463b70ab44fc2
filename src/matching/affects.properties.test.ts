/**
 * Range matching against a brute-force oracle (issue 12 §7): a version is affected iff it lies in
 * one of the intervals a range's events describe — `[introduced, fixed)`, `[introduced,
 * last_affected]`, `[introduced, ∞)` — and below the range's `limit` when it has one; the fixed
 * version reported is the end of that interval when it is a `fixed`. Events are given shuffled,
 * as OSV allows.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { getComparator } from '../versions/index.js';
import { versionArbitraries } from '../versions/version-arbitraries.test-helper.js';
import type { OsvRecord } from '../vulndb/osv.js';
import { affects } from './affects.js';

const seed = process.env.FC_SEED === undefined ? 4321 : Number(process.env.FC_SEED);

interface Interval {
  from: string; // '0' = from the beginning
  to?: { kind: 'fixed' | 'last_affected'; version: string };
}

for (const [ecosystem, versions] of Object.entries(versionArbitraries)) {
  const c = getComparator(ecosystem);
  assert.ok(c);
  const valid = versions.filter((v) => c.isValid(v));
  /** Distinct (by the comparator) versions, sorted. */
  const pool = fc.array(valid, { minLength: 1, maxLength: 10 }).map((list) => {
    const sorted = [...list].sort((a, b) => c.compare(a, b));
    return sorted.filter((v, i) => i === 0 || c.compare(sorted[i - 1]!, v) !== 0);
  });
  const scenario = pool.chain((points) =>
    fc
      .record({
        points: fc.constant(points),
        zeroStart: fc.boolean(),
        openEnd: fc.boolean(),
        ends: fc.array(fc.constantFrom('fixed', 'last_affected') as fc.Arbitrary<'fixed' | 'last_affected'>, {
          minLength: points.length,
          maxLength: points.length,
        }),
        limit: fc.option(valid, { nil: undefined }),
        query: fc.oneof(fc.constantFrom(...points), valid),
      })
      .chain((s) => {
        const intervals: Interval[] = [];
        const rest = [...s.points];
        if (s.zeroStart) {
          const end = rest.shift();
          intervals.push({ from: '0', ...(end ? { to: { kind: s.ends[0]!, version: end } } : {}) });
        }
        while (rest.length > 0) {
          const from = rest.shift()!;
          const end = rest.length > 1 || !s.openEnd ? rest.shift() : undefined;
          intervals.push({ from, ...(end ? { to: { kind: s.ends[intervals.length]!, version: end } } : {}) });
        }
        const events: Array<Record<string, string>> = intervals.flatMap((iv) => [
          { introduced: iv.from },
          ...(iv.to ? [{ [iv.to.kind]: iv.to.version }] : []),
        ]);
        if (s.limit !== undefined) events.push({ limit: s.limit });
        return fc
          .shuffledSubarray(events, { minLength: events.length, maxLength: events.length })
          .map((shuffled) => ({
            ...s,
            intervals,
            events: shuffled,
          }));
      }),
  );

  describe(`affects() on ${ecosystem} ranges matches the interval oracle`, () => {
    test('affected iff inside an interval (and under the limit); fix = that interval’s fixed end', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const record: OsvRecord = {
            id: 'PROP-1',
            modified: '2024-01-01T00:00:00Z',
            affected: [
              { package: { ecosystem, name: 'pkg' }, ranges: [{ type: 'ECOSYSTEM', events: s.events }] },
            ],
          };
          const q = s.query;
          const inside = s.intervals.find(
            (iv) =>
              (iv.from === '0' || c.compare(q, iv.from) >= 0) &&
              (!iv.to ||
                (iv.to.kind === 'fixed'
                  ? c.compare(q, iv.to.version) < 0
                  : c.compare(q, iv.to.version) <= 0)),
          );
          const underLimit = s.limit === undefined || c.compare(q, s.limit) < 0;
          const expected = inside !== undefined && underLimit;
          const got = affects(record, { ecosystem, name: 'pkg', version: q });
          assert.equal(got.affected, expected, `${q} in ${JSON.stringify(s.events)}`);
          if (expected) {
            assert.equal(got.fixedVersion, inside?.to?.kind === 'fixed' ? inside.to.version : undefined);
          }
        }),
        { seed, numRuns: 300 },
      );
    });
  });
}
