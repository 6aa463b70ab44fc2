/**
 * A fresh clone on a machine with only Node: the tests that need Podman, nftables, Helm, bpftrace
 * or Go — and their before/after hooks — must skip loudly, not fail, when those are missing and
 * CI is unset. Runs a few such test files in a child process whose PATH hides the tools and whose
 * shared data (the GPL-licensed extras) does not exist, and checks the run passes with SKIPPED lines.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../../src/testing/shared-data.js';

const HIDDEN = new Set(['podman', 'nft', 'helm', 'bpftrace', 'go', 'kubectl', 'debootstrap']);

/** Test files that need the hidden tools, each with hooks that start or clean up real things. */
const FILES = [
  'test/e2e/up-loop.test.ts',
  'src/enforcement/local-enforcer.test.ts',
  'src/posture/engine/read-containers.test.ts',
  'src/versions/vectors.test.ts',
];

/** A directory of links to every program on PATH except the hidden ones. */
function pathWithout(hidden: Set<string>, into: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (hidden.has(name)) continue;
      try {
        accessSync(join(dir, name), constants.X_OK);
        symlinkSync(join(dir, name), join(into, name));
      } catch {
        // not executable, or an earlier PATH entry already provides it
      }
    }
  }
  return into;
}

test('without podman, nft, helm, bpftrace, go and the shared data, tool-dependent tests skip loudly', (t) => {
  const bin = mkdtempSync(join(tmpdir(), 'containment-fresh-clone-'));
  t.after(() => rmSync(bin, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: pathWithout(HIDDEN, bin),
    CONTAINMENT_SHARED_DATA: join(bin, 'no-shared-data'),
  };
  delete env.CI;
  delete env.NODE_TEST_CONTEXT; // set for test files by node --test; the child is a run of its own
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'run-tests.mjs'), ...FILES], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `the run failed:\n${output.slice(-6000)}`);
  assert.match(output, /^ℹ fail 0$/m);
  assert.doesNotMatch(output, /ENOENT/, 'a hook or helper still ran a missing program');
  const skipped = output.split('\n').filter((l) => l.includes('SKIPPED'));
  t.diagnostic(`${skipped.length} SKIPPED lines`);
  assert.ok(
    skipped.some((l) => /podman/.test(l)),
    'no loud skip names podman',
  );
  assert.ok(
    skipped.some((l) => /GPL-licensed/.test(l)),
    'no loud skip for the GPL-licensed vectors',
  );
});
