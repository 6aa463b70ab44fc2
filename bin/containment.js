#!/usr/bin/env node
// Runs the compiled CLI in dist/ whenever it was built from the sources in this tree (npm ci and
// npm install build it through `prepare`; `npm run build` refreshes it). In a checkout whose
// sources changed since the build, the TypeScript sources run through tsx instead — slower, but
// what runs is always what is in the tree; a stale dist/ never runs.
import { existsSync, readFileSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

// Node caches compiled code on disk between starts (Node >= 22.1).
module.enableCompileCache?.();

const root = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);

// `--version` needs nothing but package.json.
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write(
    `${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`,
  );
} else {
  process.exitCode = await (await entry()).main(argv);
}

async function entry() {
  const dist = new URL('../dist/cli/main.js', import.meta.url);
  const source = new URL('../src/cli/main.ts', import.meta.url);
  // An installed package has no sources; CONTAINMENT_USE_DIST=1 forces dist/ in a checkout.
  if (!existsSync(fileURLToPath(source)) || process.env.CONTAINMENT_USE_DIST) return import(dist.href);
  // CONTAINMENT_USE_SOURCES=1 forces the sources (to debug the TypeScript itself).
  const { distIsCurrent } = await import('./source-stamp.mjs');
  if (!process.env.CONTAINMENT_USE_SOURCES && distIsCurrent(root)) return import(dist.href);
  if (process.stderr.isTTY)
    process.stderr.write(
      'containment: dist/ is missing or older than src/, running the sources through tsx (npm run build makes this fast)\n',
    );
  const { register } = await import('tsx/esm/api');
  register();
  return import(source.href);
}
