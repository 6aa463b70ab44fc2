#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with Node's own test runner (Node 20's
// `--test` does not expand globs itself). Arguments narrow the run to paths containing them.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = [];
for (const dir of ['src', 'test']) {
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.test.ts')) continue;
    const file = join(entry.parentPath ?? entry.path, entry.name);
    if (filters.length === 0 || filters.some((f) => file.includes(f))) files.push(file);
  }
}
files.sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  // A hung test fails after 5 minutes instead of stalling the run, and a test file whose tests
  // are done exits even if a failed assertion left a child process or a socket behind (with its
  // results all written first: test-exit.mjs).
  [
    '--import',
    'tsx',
    '--import',
    join(import.meta.dirname, 'test-exit.mjs'),
    '--test',
    '--test-reporter=spec',
    '--test-timeout=300000',
    '--test-force-exit',
    ...flags,
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
