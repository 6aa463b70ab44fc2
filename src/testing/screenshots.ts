/**
 * Where browser tests write their screenshots: `docs/images/` when CONTAINMENT_UPDATE_SCREENSHOTS=1
 * (to refresh the pictures the docs show), else a temporary folder, so that running the tests
 * leaves a checkout as it was.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function screenshotDir(repoRoot: string): string {
  return process.env.CONTAINMENT_UPDATE_SCREENSHOTS === '1'
    ? join(repoRoot, 'docs', 'images')
    : mkdtempSync(join(tmpdir(), 'containment-screenshots-'));
}
