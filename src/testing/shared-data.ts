/**
 * Locates `../shared/data` (test vectors and real OSV records from other projects). Tests that
 * need it call `sharedDataOrSkip(t)`: under CI=true a missing directory fails the test; elsewhere
 * it skips loudly.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const sharedDataDir: string =
  process.env.CONTAINMENT_SHARED_DATA ?? join(repoRoot, '..', 'shared', 'data');

export function isCI(): boolean {
  return process.env.CI === 'true' || process.env.CI === '1';
}

/** Returns the shared data dir, or skips (fails under CI) the test when it is missing. */
export function sharedDataOrSkip(t: TestContext): string | undefined {
  if (existsSync(sharedDataDir)) return sharedDataDir;
  const msg = `SKIPPED: shared test data not found at ${sharedDataDir} (set CONTAINMENT_SHARED_DATA)`;
  if (isCI()) throw new Error(msg);
  console.warn(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return undefined;
}

/** Skips loudly (or fails in CI) when a real component a test needs is missing. */
export function requireOrSkip(t: TestContext, available: boolean, what: string): boolean {
  if (available) return true;
  const msg = `SKIPPED: ${what} is not available on this machine`;
  if (isCI()) throw new Error(`${msg} (mandatory under CI=true)`);
  console.warn(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return false;
}

export { repoRoot };
