/**
 * The input-threat rules on a committed corpus of attack strings (each must be reported, as its own
 * kind) and of benign inputs (none may be reported); the rates are printed. Plus the limits: a
 * pathological input is scanned in bounded time.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inputThreatMode, scanInput } from './input-threats.js';

const DIR = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures', 'input-threats');
const attacks = (
  JSON.parse(readFileSync(join(DIR, 'attacks.json'), 'utf8')) as {
    cases: { kind: string; input: string }[];
  }
).cases;
const benign = (JSON.parse(readFileSync(join(DIR, 'benign.json'), 'utf8')) as { cases: unknown[] }).cases;

describe('input threat rules', () => {
  it('reports every attack in the corpus as its kind', () => {
    const missed: string[] = [];
    for (const { kind, input } of attacks) {
      const kinds = new Set(scanInput(input, 'body').map((m) => m.kind));
      if (!kinds.has(kind as never))
        missed.push(`${kind}: ${JSON.stringify(input)} → ${[...kinds].join(',') || 'nothing'}`);
    }
    const rate = ((attacks.length - missed.length) / attacks.length) * 100;
    console.log(
      `input threats: detection ${attacks.length - missed.length}/${attacks.length} (${rate.toFixed(1)}%) of the attack corpus`,
    );
    assert.deepEqual(missed, []);
  });

  it('reports nothing in the benign corpus', () => {
    const flagged: string[] = [];
    for (const input of benign) {
      const matches = scanInput(input, 'body');
      if (matches.length > 0)
        flagged.push(`${JSON.stringify(input).slice(0, 60)} → ${matches.map((m) => m.rule).join(',')}`);
    }
    const rate = (flagged.length / benign.length) * 100;
    console.log(
      `input threats: false positives ${flagged.length}/${benign.length} (${rate.toFixed(1)}%) of the benign corpus`,
    );
    assert.deepEqual(flagged, []);
  });

  it('held-out corpus (never used to tune the rules): the honest rates, printed', () => {
    const holdout = JSON.parse(readFileSync(join(DIR, 'holdout.json'), 'utf8')) as {
      attacks: { kind: string; input: string }[];
      benign: unknown[];
    };
    const detected = holdout.attacks.filter(({ kind, input }) =>
      scanInput(input, 'body').some((m) => m.kind === kind),
    ).length;
    const flagged = holdout.benign.filter((input) => scanInput(input, 'body').length > 0).length;
    const detection = (detected / holdout.attacks.length) * 100;
    const falsePositives = (flagged / holdout.benign.length) * 100;
    console.log(
      `input threats (held out): detection ${detected}/${holdout.attacks.length} (${detection.toFixed(1)}%), ` +
        `false positives ${flagged}/${holdout.benign.length} (${falsePositives.toFixed(1)}%)`,
    );
    // Floors, not targets: a rule change that loses much of either fails here.
    assert.ok(detection >= 70, `detection ${detection}%`);
    assert.ok(falsePositives <= 10, `false positives ${falsePositives}%`);
  });

  it('names the field, checks keys, and bounds the work on hostile shapes', () => {
    const [m] = scanInput({ user: { name: "x' or 'a'='a" } }, 'body');
    assert.equal(m?.field, 'body.user.name');
    assert.equal(scanInput({ '<script>': 1 }, 'query')[0]?.kind, 'xss');
    const deep: Record<string, unknown> = {};
    let at = deep;
    for (let i = 0; i < 1000; i++) at = (at.n = {}) as Record<string, unknown>;
    at.v = '<script>';
    assert.deepEqual(scanInput(deep, 'body'), [], 'beyond the depth limit nothing is walked');
    const started = performance.now();
    for (const s of ['<a'.repeat(50_000), "'".repeat(100_000), ';'.repeat(100_000), '../'.repeat(30_000)])
      scanInput(s, 'body');
    // Generous: linear rules take milliseconds; a backtracking rule would take minutes.
    assert.ok(performance.now() - started < 20_000);
  });

  it('modes: only report and block turn it on', () => {
    assert.equal(inputThreatMode('block'), 'block');
    assert.equal(inputThreatMode('report'), 'report');
    for (const v of [undefined, 'BLOCK', true, 'on']) assert.equal(inputThreatMode(v), 'off');
  });
});
