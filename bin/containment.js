#!/usr/bin/env node
// In a checkout (src/ present) the TypeScript sources run through tsx, so what runs is what is
// in the tree; an installed package (or CONTAINMENT_USE_DIST=1 after `npm run build`) runs dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = new URL('../src/cli/main.ts', import.meta.url);
let entry = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(fileURLToPath(source)) && !process.env.CONTAINMENT_USE_DIST) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = source;
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
