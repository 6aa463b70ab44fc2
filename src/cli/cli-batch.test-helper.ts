/**
 * Runs several `containment` command lines in one process (loading the TypeScript CLI costs seconds
 * per spawn) and prints their outcomes as one JSON array on stdout. Run as
 * `node --import tsx src/cli/cli-batch.test-helper.ts` with `[{ args, env }]` on stdin.
 */
import { readFileSync } from 'node:fs';
import { main } from './main.js';

interface Run {
  args: string[];
  env?: Record<string, string>;
}

const runs = JSON.parse(readFileSync(0, 'utf8')) as Run[];
const write = {
  out: process.stdout.write.bind(process.stdout),
  err: process.stderr.write.bind(process.stderr),
};
const results: { code: number; stdout: string; stderr: string }[] = [];
const baseEnv = { ...process.env };
for (const run of runs) {
  let stdout = '';
  let stderr = '';
  for (const key of Object.keys(process.env)) if (!(key in baseEnv)) delete process.env[key];
  Object.assign(process.env, baseEnv, run.env ?? {});
  process.stdout.write = ((chunk: string | Uint8Array) => (
    (stdout += String(chunk)),
    true
  )) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (
    (stderr += String(chunk)),
    true
  )) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(run.args);
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
    process.exitCode = undefined;
  }
  results.push({ code, stdout, stderr });
}
write.out(`${JSON.stringify(results)}\n`);
