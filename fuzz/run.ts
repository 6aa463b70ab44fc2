/**
 * `npm run fuzz [-- --seconds N] [--target name…] [--seed N]`: structure-aware fuzzing of every
 * parser of untrusted bytes (see fuzz/targets.ts and docs/fuzzing.md). Each target first replays
 * its committed corpus (`fuzz/corpus/<target>/`), then generated inputs for its time budget. A
 * typed-error violation, or an input that runs longer than the hang limit, is written to
 * `fuzz/findings/` and fails the run.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WorkerJob, WorkerMessage } from './worker.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface FuzzOptions {
  names: string[];
  seconds: number;
  seed: number;
  /** An input running longer than this is a hang. */
  hangMs?: number;
  corpusRoot?: string;
  /** Where failing inputs are written; none when undefined. */
  findingsDir?: string;
  log?: (line: string) => void;
}

export interface FuzzFinding {
  target: string;
  kind: 'failure' | 'hang' | 'worker-crash';
  error: string;
  input?: Buffer;
  file?: string;
}

export interface FuzzReport {
  runs: Record<string, number>;
  findings: FuzzFinding[];
}

/** Runs the targets one after another in one worker; a hang ends the worker and the run. */
export function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const hangMs = options.hangMs ?? 10_000;
  const job: WorkerJob = {
    names: options.names,
    seconds: options.seconds,
    seed: options.seed,
    corpusRoot: options.corpusRoot ?? join(here, 'corpus'),
  };
  const report: FuzzReport = { runs: {}, findings: [] };
  const save = (f: FuzzFinding): void => {
    if (f.input && options.findingsDir) {
      mkdirSync(options.findingsDir, { recursive: true });
      f.file = join(
        options.findingsDir,
        `${f.target}-${f.kind}-${createHash('sha256').update(f.input).digest('hex').slice(0, 12)}`,
      );
      writeFileSync(f.file, f.input);
    }
    report.findings.push(f);
    options.log?.(
      `FINDING ${f.target} (${f.kind}): ${f.error.split('\n')[0]}${f.file ? ` → ${f.file}` : ''}`,
    );
  };
  return new Promise((resolve) => {
    const worker = new Worker(new URL('./worker.ts', import.meta.url), { workerData: job });
    let last: { target: string; input: Buffer } | undefined;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        save({
          target: last?.target ?? '?',
          kind: 'hang',
          error: `an input ran longer than ${hangMs} ms`,
          ...(last ? { input: last.input } : {}),
        });
        void worker.terminate();
      }, hangMs);
    };
    arm();
    worker.on('message', (m: WorkerMessage) => {
      arm();
      if (m.kind === 'input') last = { target: m.target, input: Buffer.from(m.input) };
      else if (m.kind === 'done') {
        report.runs[m.target] = m.runs;
        options.log?.(`${m.target}: ${m.runs} inputs (${m.corpus} from the corpus), no finding`);
      } else save({ target: m.target, kind: 'failure', error: m.error, input: Buffer.from(m.input) });
    });
    worker.on('error', (e) =>
      save({ target: last?.target ?? '?', kind: 'worker-crash', error: e.stack ?? e.message }),
    );
    worker.on('exit', () => {
      clearTimeout(timer);
      resolve(report);
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i === -1 ? undefined : args[i + 1];
  };
  const { targets } = await import('./targets.js');
  const chosen = args.flatMap((a, i) => (args[i - 1] === '--target' ? [a] : []));
  const names = chosen.length > 0 ? chosen : targets.map((t) => t.name);
  const unknown = names.filter((n) => !targets.some((t) => t.name === n));
  if (unknown.length > 0) {
    console.error(
      `error[USAGE]: unknown fuzz target(s) ${unknown.join(', ')}; known: ${targets.map((t) => t.name).join(', ')}`,
    );
    process.exit(2);
  }
  const seconds = Number(value('--seconds') ?? 30);
  const seed = Number(value('--seed') ?? Date.now() % 2 ** 31);
  console.log(`fuzzing ${names.length} target(s), ${seconds} s each, seed ${seed}`);
  const report = await fuzz({
    names,
    seconds,
    seed,
    findingsDir: join(here, 'findings'),
    log: (line) => console.log(line),
  });
  process.exit(report.findings.length > 0 ? 1 : 0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
