/**
 * Writes the committed seed corpus (`fuzz/corpus/<target>/`): a few generated inputs per target
 * with a fixed seed, small on purpose. Inputs that once found a bug are added by hand beside them
 * (named `regression-*`) and are kept forever. Run: `node --import tsx fuzz/seed-corpus.ts`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { targets } from './targets.js';

const root = join(dirname(fileURLToPath(import.meta.url)), 'corpus');
for (const target of targets) {
  const dir = join(root, target.name);
  mkdirSync(dir, { recursive: true });
  const count = target.name === 'rpm-sqlite' ? 2 : 6;
  fc.sample(target.input, { seed: 42, numRuns: count }).forEach((input, i) => {
    writeFileSync(join(dir, `seed-${i}`), input);
  });
}
