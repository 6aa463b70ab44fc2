/**
 * Runs fuzz targets in a worker thread so the parent can stop a hung one (a synchronous endless
 * loop cannot be interrupted from inside). Posts each input before running it, then the outcome.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { targets } from './targets.js';

export interface WorkerJob {
  names: string[];
  seconds: number;
  seed: number;
  corpusRoot: string;
}

export type WorkerMessage =
  | { kind: 'input'; target: string; input: Uint8Array }
  | { kind: 'done'; target: string; runs: number; corpus: number }
  | { kind: 'failure'; target: string; input: Uint8Array; error: string };

const job = workerData as WorkerJob;
const post = (m: WorkerMessage): void => parentPort?.postMessage(m);

function corpusOf(name: string): Buffer[] {
  const dir = join(job.corpusRoot, name);
  try {
    return readdirSync(dir)
      .sort()
      .map((f) => readFileSync(join(dir, f)));
  } catch {
    return [];
  }
}

for (const target of targets.filter((t) => job.names.includes(t.name))) {
  const corpus = corpusOf(target.name);
  let runs = 0;
  const property = fc.asyncProperty(target.input, async (input) => {
    runs += 1;
    post({ kind: 'input', target: target.name, input });
    try {
      await target.run(input);
    } catch (e) {
      if (!target.expected(e)) throw e;
    }
  });
  const details = await fc.check(property, {
    seed: job.seed,
    numRuns: Number.MAX_SAFE_INTEGER,
    interruptAfterTimeLimit: job.seconds * 1000,
    markInterruptAsFailure: false,
    examples: corpus.map((c) => [c] as [Buffer]),
  });
  if (details.failed && details.counterexample) {
    const [input] = details.counterexample;
    const error =
      details.errorInstance instanceof Error
        ? (details.errorInstance.stack ?? details.errorInstance.message)
        : String(details.errorInstance);
    post({ kind: 'failure', target: target.name, input, error });
  } else {
    post({ kind: 'done', target: target.name, runs, corpus: corpus.length });
  }
}
