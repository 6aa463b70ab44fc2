/**
 * Test data from other projects (OSV records, version vectors, acceptance rows). The repository
 * carries every file whose licence allows it in `testdata/` (see testdata/SOURCES), so a clone is
 * self-contained: `sharedDataDir` is that copy. The few GPL-licensed vector files cannot ship here;
 * `externalDataFileOrSkip` reads them from CONTAINMENT_SHARED_DATA (or ../shared/data beside the
 * checkout) when present and skips loudly when not.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The in-repo copy of the shared test data (testdata/). */
export const sharedDataDir: string = join(repoRoot, 'testdata');

/** Optional extra: the full shared data set, for the GPL files the repository cannot carry. */
export const externalDataDir: string =
  process.env.CONTAINMENT_SHARED_DATA ?? join(repoRoot, '..', 'shared', 'data');

export function isCI(): boolean {
  return process.env.CI === 'true' || process.env.CI === '1';
}

function skipLoudly(t: TestContext, msg: string): void {
  console.warn(`\n*** ${msg} ***\n`);
  t.skip(msg);
}

/** Returns the in-repo test data dir; fails the test when a checkout lost it. */
export function sharedDataOrSkip(t: TestContext): string | undefined {
  if (existsSync(sharedDataDir)) return sharedDataDir;
  const msg = `SKIPPED: test data not found at ${sharedDataDir} (the repository's testdata/)`;
  if (isCI()) throw new Error(msg);
  skipLoudly(t, msg);
  return undefined;
}

/**
 * A data file outside the repository (GPL-licensed vectors). Skips loudly when it is missing —
 * also under CI=true: a clone never has it, so it is an optional extra, not a component CI installs.
 */
export function externalDataFileOrSkip(t: TestContext, ...path: string[]): string | undefined {
  const file = join(externalDataDir, ...path);
  if (existsSync(file)) return file;
  skipLoudly(
    t,
    `SKIPPED: ${path.join('/')} is GPL-licensed, so not in the repository, and not found at ${file} (set CONTAINMENT_SHARED_DATA)`,
  );
  return undefined;
}

/** Skips loudly (or fails in CI) when a real component a test needs is missing. */
export function requireOrSkip(t: TestContext, available: boolean, what: string): boolean {
  if (available) return true;
  const msg = `SKIPPED: ${what} is not available on this machine`;
  if (isCI()) throw new Error(`${msg} (mandatory under CI=true)`);
  skipLoudly(t, msg);
  return false;
}

/** A test's set-up environment, or undefined after skipping as above with the reason `env` holds instead. */
export function setUpOrSkip<E extends object>(t: TestContext, env: E | string): E | undefined {
  if (typeof env !== 'string') return env;
  requireOrSkip(t, false, env);
  return undefined;
}

export { repoRoot };
