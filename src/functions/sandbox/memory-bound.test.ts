/**
 * The memory limit holds for every kind of allocation: the process running bombs grows by at most
 * (concurrent bombs) × (limit + the module's fixed 16 MB + a stated overhead), each bomb ends with
 * OpenWhisk's memory error, and another namespace's action is served meanwhile. RSS is sampled,
 * since the point is what the node sees, not what QuickJS counts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compilePolicy } from './compile.js';
import { Messages } from './protocol.js';
import { QuickJsSandbox } from './quickjs-sandbox.js';
import type { InvokeResult } from './sandbox.js';

const MB = 1024 * 1024;
const LIMIT_MB = 128;
/** The module's initial memory plus per-instance JS objects and allocator slack, per running bomb. */
const OVERHEAD_MB = 16 + 48;
const WORKERS = 2;

const BOMBS = {
  arrays: 'const a = []; while (true) a.push(new Array(1e5).fill(1));',
  strings: 'const a = []; for (let i = 0; ; i++) a.push("x".repeat(1024 * 1024) + i);',
  objects: 'const a = []; for (let i = 0; ; i++) a.push({ i, s: "k" + i, o: { i } });',
  maps: 'const m = new Map(); for (let i = 0; ; i++) m.set("key-" + i, [i, i + 1]);',
};

describe('sandbox memory bound (RSS sampled)', () => {
  let sandbox: QuickJsSandbox;
  before(() => {
    sandbox = new QuickJsSandbox({ workers: WORKERS });
  });
  after(async () => {
    await sandbox.close();
  });

  async function invoke(actionKey: string, body: string, timeoutMs = 120_000): Promise<InvokeResult> {
    const { code } = await compilePolicy(`export function main() { ${body} }`, {
      filename: 'policy.js',
      loader: 'js',
    });
    return sandbox.invoke({
      actionKey,
      code,
      params: {},
      limits: { timeoutMs, memoryMb: LIMIT_MB, logLimitBytes: 1024, resultLimitBytes: 1024 },
      sdk: () => Promise.reject(new Error('no SDK here')),
    });
  }

  it('bounds the process for every kind of bomb, concurrently, and keeps serving other namespaces', async () => {
    // Warm both workers so their own start-up is in the baseline.
    await Promise.all([invoke('warm/a@1', 'return {}'), invoke('warm/b@1', 'return {}')]);
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 25);
    try {
      const bombs = Object.entries(BOMBS).map(([kind, body]) => invoke(`tenant-${kind}/bomb@1`, body));
      const bystander = invoke('bystander/ok@1', 'return { ok: true };');
      const results = await Promise.all(bombs);
      for (const [i, r] of results.entries())
        assert.equal(r.error, Messages.memoryExhausted, `${Object.keys(BOMBS)[i]}: ${r.status} ${r.error}`);
      const other = await bystander;
      assert.equal(other.status, 'success', other.error);
      assert.deepEqual(other.result, { ok: true });
    } finally {
      clearInterval(sampler);
    }
    const grewMb = (peak - baseline) / MB;
    const boundMb = WORKERS * (LIMIT_MB + OVERHEAD_MB);
    console.log(`memory bombs: process grew ${grewMb.toFixed(0)} MB at most (bound ${boundMb} MB)`);
    assert.ok(grewMb <= boundMb, `grew ${grewMb.toFixed(0)} MB, bound ${boundMb} MB`);
  });
});
