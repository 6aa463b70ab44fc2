/** Runs the `containment` CLI in this process (no tsx start-up per call), capturing its output. */
import { main } from './main.js';

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

export async function runMain(args: readonly string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const { write: writeOut } = process.stdout;
  const { write: writeErr } = process.stderr;
  // The CLI writes text; binary chunks are node:test's own reports (serialized to the parent on
  // stdout while a test awaits): they go through, or they would land in the captured output and
  // the test's result would be lost.
  const capture =
    (into: string[], write: (chunk: Uint8Array) => boolean) =>
    (chunk: string | Uint8Array): boolean => {
      if (typeof chunk !== 'string') return write(chunk);
      into.push(chunk);
      return true;
    };
  process.stdout.write = capture(out, (c) => writeOut.call(process.stdout, c)) as typeof process.stdout.write;
  process.stderr.write = capture(err, (c) => writeErr.call(process.stderr, c)) as typeof process.stderr.write;
  const before = process.exitCode;
  try {
    const status = await main(args);
    return { status, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
    process.exitCode = before;
  }
}
