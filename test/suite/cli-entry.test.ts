/**
 * bin/containment.js runs dist/ only when it was built from the sources in the tree, and the
 * TypeScript sources otherwise: a stale dist/ must never run. Checked on a miniature checkout (the
 * real bin/ files, a one-line src/cli/main.ts and dist/cli/main.js that say which one ran), so the
 * test needs no build of the whole project.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../../src/testing/shared-data.js';
import { sourceStamp, writeStamp } from '../../bin/source-stamp.mjs';

const MAIN = (from: string): string =>
  `export async function main(argv) { process.stdout.write('${from} ' + argv.join(' ')); return 0; }\n`;

function checkout(): string {
  const root = mkdtempSync(join(tmpdir(), 'containment-cli-entry-'));
  for (const d of ['bin', 'src/cli', 'dist/cli']) mkdirSync(join(root, d), { recursive: true });
  for (const f of ['containment.js', 'source-stamp.mjs'])
    copyFileSync(join(repoRoot, 'bin', f), join(root, 'bin', f));
  symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'x', version: '9.8.7', type: 'module' }));
  writeFileSync(join(root, 'tsconfig.json'), '{}');
  writeFileSync(join(root, 'src/cli/main.ts'), MAIN('sources'));
  writeFileSync(join(root, 'dist/cli/main.js'), MAIN('dist'));
  return root;
}

function cli(root: string, ...args: string[]): string {
  const env = { ...process.env };
  delete env.CONTAINMENT_USE_DIST;
  delete env.CONTAINMENT_USE_SOURCES;
  const r = spawnSync(process.execPath, [join(root, 'bin', 'containment.js'), ...args], {
    encoding: 'utf8',
    env,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('bin/containment.js runs dist/ only while it matches the sources', (t) => {
  const root = checkout();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.equal(cli(root, 'scan', '--help'), 'sources scan --help', 'never built: the sources run');

  writeStamp(root, sourceStamp(root));
  assert.equal(cli(root, 'scan', '--help'), 'dist scan --help', 'built from these sources: dist runs');

  // Same content, new mtime (a checkout touching files): still current, decided by content.
  const later = new Date(Date.now() + 60_000);
  utimesSync(join(root, 'src/cli/main.ts'), later, later);
  assert.equal(cli(root, 'x'), 'dist x');

  // An edit makes dist/ stale: the sources run.
  writeFileSync(join(root, 'src/cli/main.ts'), MAIN('edited'));
  assert.equal(cli(root, 'x'), 'edited x', 'stale dist/ must not run');

  writeFileSync(join(root, 'src/cli/other.ts'), 'export {};\n');
  writeFileSync(join(root, 'src/cli/main.ts'), MAIN('sources'));
  assert.equal(cli(root, 'x'), 'sources x', 'a new source file makes dist/ stale too');

  writeFileSync(join(root, 'src/cli/x.test.ts'), 'export {};\n');
  rmSync(join(root, 'src/cli/other.ts'));
  assert.equal(cli(root, 'x'), 'dist x', 'tests are not compiled into dist/: they do not make it stale');
});

test('--version answers from package.json without loading the CLI', (t) => {
  const root = checkout();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'dist/cli/main.js'), 'throw new Error("loaded");\n');
  writeFileSync(join(root, 'src/cli/main.ts'), 'throw new Error("loaded");\n');
  assert.equal(cli(root, '--version'), '9.8.7\n');
  assert.equal(cli(root, '-V'), '9.8.7\n');
});

test('long-running commands restart once with a small young generation; short ones do not', (t) => {
  const root = checkout();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  // A main that says which semi-space flag the process runs with.
  writeFileSync(
    join(root, 'dist/cli/main.js'),
    "export async function main(argv) { process.stdout.write(process.execArgv.filter((a) => a.startsWith('--max-semi')).join(',') + '|' + argv.join(' ')); return 0; }\n",
  );
  writeStamp(root, sourceStamp(root));
  for (const args of [['agent', '--help'], ['server'], ['up'], ['db', 'import', 'x'], ['db', 'update']])
    assert.equal(cli(root, ...args), `--max-semi-space-size=16|${args.join(' ')}`, args.join(' '));
  for (const args of [['scan', '--help'], ['db', 'status'], ['--version']])
    assert.doesNotMatch(cli(root, ...args), /max-semi/, args.join(' '));
  // A size chosen by the user wins, and no second flag is added.
  const chosen = spawnSync(
    process.execPath,
    ['--max-semi-space-size=8', join(root, 'bin', 'containment.js'), 'agent'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(chosen.stdout, '--max-semi-space-size=8|agent', chosen.stderr);
});
