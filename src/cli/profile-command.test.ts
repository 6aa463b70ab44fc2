/** `containment profile record`: user mistakes end as one line with a stable code, before any recording. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runMain } from './run-main.test-helper.js';

describe('containment profile record: bad input', () => {
  test('one line, a stable code, exit 2, nothing on stdout', async () => {
    for (const [args, code] of [
      [['profile', 'record', 'web'], 'USAGE'],
      [['profile', 'record', 'pod', 'web'], 'USAGE'],
      [['profile', 'record', 'container:web', '--container', 'app'], 'USAGE'],
      [['profile', 'record', 'container:web', '--spo-name', 'web'], 'USAGE'],
    ] as const) {
      const r = await runMain(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error\\[${code}\\]: [^\\n]+\\n$`), args.join(' '));
      assert.equal(r.stdout, '');
    }
  });
});
