/**
 * The real `containment operator` process as the operator benchmarks start it (bench/operator.bench.ts
 * and its fleet section, bench/fleet/operators.ts): from an esbuild bundle of the CLI (dependencies
 * external, as a `npm run build` install would run, without tsx's transpiler in the RSS), or through
 * tsx with BENCH_OPERATOR_TSX=1.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { repoRoot } from '../src/testing/shared-data.js';

export const tsxEntry = join(repoRoot, 'bin', 'containment.js');

/** The CLI as one ESM file in `tmp`, resolving its dependencies from the checkout's node_modules. */
export async function bundleCli(tmp: string): Promise<string> {
  const { build } = await import('esbuild');
  const dir = join(tmp, 'cli');
  mkdirSync(join(dir, 'dist', 'cli'), { recursive: true });
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  // The CLI reads its version from ../../package.json next to itself.
  symlinkSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    `import { main } from ${JSON.stringify(join(repoRoot, 'src', 'cli', 'main.ts'))};\nprocess.exitCode = await main(process.argv.slice(2));\n`,
  );
  const outfile = join(dir, 'dist', 'cli', 'containment.mjs');
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

export interface OperatorProcess {
  child: ChildProcess;
  startMs: number;
  /** Its log after start-up (kept only when asked for: the fleet section reads its final stats). */
  log: () => string;
}

export function startOperatorProcess(options: {
  cliEntry: string;
  node: string;
  kubeconfig: string;
  evidenceDir: string;
  nodeOptions?: string;
  keepLog?: boolean;
}): Promise<OperatorProcess> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeOptions ? options.nodeOptions.split(' ') : []),
      options.cliEntry,
      'operator',
      '--node',
      options.node,
      '--kubeconfig',
      options.kubeconfig,
      '--evidence-dir',
      options.evidenceDir,
    ],
    { env: { ...process.env, CONTAINMENT_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  let kept = '';
  return new Promise((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('operator started')) {
        child.stderr?.removeAllListeners('data');
        // BENCH_OPERATOR_LOG=1 shows the operator's own log lines.
        if (process.env.BENCH_OPERATOR_LOG === '1') child.stderr?.pipe(process.stderr);
        else if (options.keepLog) child.stderr?.on('data', (more: Buffer) => (kept += more.toString()));
        else child.stderr?.resume();
        resolve({ child, startMs: performance.now() - started, log: () => kept });
      }
    });
    child.on('exit', (code) => reject(new Error(`operator exited (${code}): ${stderr}`)));
  });
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  child.removeAllListeners('exit');
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  await exited;
}
