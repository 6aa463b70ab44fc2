/**
 * Matching off the event loop: a worker thread (`worker.ts`) with its own read-only connection to
 * the SQLite advisory database matches the packages the `PackageMatcher` has not cached. A worker
 * that fails is replaced on the next request; requests in flight on it are rejected.
 */
import { Worker } from 'node:worker_threads';
import type { Package } from '../../inventory/types.js';
import type { BareFinding, FindingSet } from '../finding-sets.js';
import type { MatchRequest, MatchResponse, MatchWorkerData } from './protocol.js';

/**
 * Built, the worker is worker.js beside this file. From sources under tsx, Node 20 does not apply
 * tsx's loader to a worker's entry module, so a tiny bootstrap registers it first.
 */
function workerEntry(): { entry: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts'))
    return { entry: new URL('./worker.js', import.meta.url), eval: false };
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const worker = JSON.stringify(new URL('./worker.ts', import.meta.url).href);
  return {
    entry: `import(${tsx}).then((api) => { api.register(); return import(${worker}); });`,
    eval: true,
  };
}

interface Pending {
  resolve: (sets: FindingSet[]) => void;
  reject: (error: Error) => void;
}

export class MatchWorkerPool {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly data: MatchWorkerData) {}

  /** One finding set per package, index-aligned. */
  match(packages: readonly Package[]): Promise<FindingSet[]> {
    if (this.closed) return Promise.reject(new Error('the match worker pool is closed'));
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    return new Promise<FindingSet[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: MatchRequest = { id, packages: [...packages] };
      worker.postMessage(request);
    });
  }

  private spawn(): Worker {
    const { entry, eval: isEval } = workerEntry();
    const worker = new Worker(entry, { eval: isEval, workerData: this.data });
    // Idle, it must not keep the process alive.
    worker.unref();
    worker.on('message', (response: MatchResponse) => {
      const pending = this.pending.get(response.id);
      if (!pending) return;
      this.pending.delete(response.id);
      if ('error' in response) pending.reject(new Error(`matching failed: ${response.error}`));
      else
        pending.resolve(
          response.sets.map((s) => ({
            digest: s.digest,
            body: s.body,
            findings: JSON.parse(s.body) as BareFinding[],
          })),
        );
    });
    const fail = (error: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, pending] of this.pending) {
        this.pending.delete(id);
        pending.reject(error);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the match worker exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}
