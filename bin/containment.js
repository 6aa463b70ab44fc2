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

// The long-lived commands keep V8's young generation small. V8 sizes it from the machine's
// memory (32 MiB semi-spaces on a 24 GiB host: 64 MiB of heap for short-lived objects), which
// made an agent with runtime detection hold 170-180 MB RSS; 16 MiB semi-spaces take ~32 MB off
// for a few more (cheap) scavenges. The flag must be given at start, so these commands replace
// this process once with one that has it (process.execve: same pid, no wrapper process left
// behind, signals and exit status unchanged) unless NODE_OPTIONS or node's own arguments already
// choose a size. Short commands never pay for the re-exec (bench:cli times their start-up);
// `db import` and `db update` do, as their peak RSS falls by a third (100k records: 496 → 340 MB).
const LONG_LIVED = new Set(['agent', 'server', 'up', 'db import', 'db update']);
if (
  (LONG_LIVED.has(argv[0]) || LONG_LIVED.has(`${argv[0]} ${argv[1]}`)) &&
  typeof process.execve === 'function' &&
  !`${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`.includes('--max-semi-space-size')
) {
  process.execve(process.execPath, [
    process.execPath,
    '--max-semi-space-size=16',
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    ...argv,
  ]);
}

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
