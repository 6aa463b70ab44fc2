/**
 * Every fuzz target for a short, bounded time on its committed corpus plus generated inputs
 * (issue 12 §7): no parser throws anything but its typed errors, hangs, or writes outside its
 * scratch root. 2 s per target (13 targets) keeps this under a minute; `npm run fuzz` runs longer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzz } from '../fuzz/run.js';
import { targets } from '../fuzz/targets.js';

test('fuzz targets: corpus and a bounded run find nothing', { timeout: 180_000 }, async () => {
  const seed = process.env.FC_SEED === undefined ? 20261207 : Number(process.env.FC_SEED);
  const report = await fuzz({ names: targets.map((t) => t.name), seconds: 2, seed, hangMs: 30_000 });
  assert.deepEqual(
    report.findings.map((f) => `${f.target} ${f.kind}: ${f.error.split('\n')[0]}`),
    [],
  );
  for (const t of targets) assert.ok((report.runs[t.name] ?? 0) > 0, `${t.name} ran`);
});
