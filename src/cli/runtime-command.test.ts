/** `containment runtime rules` with user rule files: listed, disabled, and bad files refused in one line. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runMain } from './run-main.test-helper.js';

const dir = mkdtempSync(join(tmpdir(), 'containment-rt-cli-'));

test('runtime rules lists built-ins, user rules and disabled ones', async () => {
  const file = join(dir, 'rules.yaml');
  writeFileSync(
    file,
    'disable: [new_listener]\nrules:\n  - { id: curl_run, title: curl ran, severity: LOW, event: exec, condition: { proc.name: curl } }\n',
  );
  const r = await runMain(['runtime', 'rules', '--rules', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^reverse_shell\s+CRITICAL\s+enabled\s+builtin/m);
  assert.match(r.stdout, /^new_listener\s+MEDIUM\s+disabled/m);
  assert.match(r.stdout, new RegExp(`^curl_run\\s+LOW\\s+enabled\\s+${file.replaceAll('/', '\\/')}`, 'm'));
});

test('a bad rule file is one CONFIG_INVALID line', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(
    file,
    'rules:\n  - { id: shell_in_container, title: x, severity: LOW, event: exec, condition: { proc.name: sh } }\n',
  );
  const r = await runMain(['runtime', 'rules', '--rules', file]);
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /^error\[CONFIG_INVALID\]: rule id shell_in_container .* already defined by builtin\n$/,
  );
  const missing = await runMain(['runtime', 'rules', '--rules', join(dir, 'nope.yaml')]);
  assert.match(missing.stderr, /^error\[CONFIG_INVALID\]: cannot read rule file/);
});
