import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { compilePolicy } from './compile.js';
import { QuickJsSandbox } from './quickjs-sandbox.js';
import type { InvokeResult, JsonObject, JsonValue, SandboxLimits, SdkHandler } from './sandbox.js';

const LIMITS: SandboxLimits = {
  timeoutMs: 2000,
  memoryMb: 128,
  logLimitBytes: 64 * 1024,
  resultLimitBytes: 64 * 1024,
};
const TIMEOUT = /^The action exceeded its time limits of \d+ milliseconds\.$/;

declare global {
  var hostCanary: string | undefined;
}

const noSdk: SdkHandler = () => Promise.reject(new Error('no SDK in this test'));
let versions = 0;

describe('QuickJsSandbox', () => {
  let sandbox: QuickJsSandbox;
  let dir: string;
  before(() => {
    sandbox = new QuickJsSandbox({ workers: 2 });
    dir = mkdtempSync(join(tmpdir(), 'sandbox-'));
    globalThis.hostCanary = 'host';
  });
  after(async () => {
    await sandbox.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(
    source: string,
    options: {
      params?: JsonObject;
      limits?: Partial<SandboxLimits>;
      sdk?: SdkHandler;
      actionKey?: string;
    } = {},
  ): Promise<InvokeResult> {
    const { code } = await compilePolicy(source, { filename: 'policy.ts', loader: 'ts' });
    return sandbox.invoke({
      actionKey: options.actionKey ?? `guest/test-${++versions}@0.0.1`,
      code,
      params: options.params ?? {},
      limits: { ...LIMITS, ...options.limits },
      sdk: options.sdk ?? noSdk,
    });
  }

  /** After every attack: the host is untouched and the sandbox still serves a plain invocation. */
  async function assertHostIntact(): Promise<void> {
    assert.equal(globalThis.hostCanary, 'host');
    const r = await run('export function main(p: { n: number }) { return { doubled: p.n * 2 }; }', {
      params: { n: 21 },
    });
    assert.equal(r.status, 'success');
    assert.deepEqual(r.result, { doubled: 42 });
  }

  describe('happy path', () => {
    it('runs a JavaScript policy with parameters', async () => {
      const { code } = await compilePolicy(
        'export function main(p) { return { hello: p.name, n: p.list.length }; }',
        {
          filename: 'hello.js',
          loader: 'js',
        },
      );
      const r = await sandbox.invoke({
        actionKey: 'guest/hello@1',
        code,
        params: { name: 'world', list: [1, 2, 3] },
        limits: LIMITS,
        sdk: noSdk,
      });
      assert.equal(r.status, 'success');
      assert.deepEqual(r.result, { hello: 'world', n: 3 });
      assert.equal(r.error, undefined);
      assert.ok(r.durationMs >= 0);
    });

    it('runs an async TypeScript policy whose SDK calls round-trip JSON', async () => {
      const calls: [string, JsonValue[]][] = [];
      const r = await run(
        `import { vs, kubernetes, notify } from '@containment/policy-sdk';
         interface Finding { id: string; severity: string }
         export async function main(p: { pod: string }) {
           const findings = (await vs.getFindings({ namespace: 'shop', pod: p.pod }, '2024-01-01T00:00:00Z')) as Finding[];
           const critical = findings.filter((f) => f.severity === 'CRITICAL');
           if (critical.length > 0) await kubernetes.terminateGraceful(p.pod, { gracePeriodSeconds: 30 });
           await notify('#sec', 'handled ' + p.pod);
           return { critical: critical.map((f) => f.id) };
         }`,
        {
          params: { pod: 'web-1' },
          sdk: async (method, args) => {
            calls.push([method, args]);
            return method === 'vs.getFindings'
              ? [
                  { id: 'CVE-1', severity: 'CRITICAL' },
                  { id: 'CVE-2', severity: 'LOW' },
                ]
              : { ok: true };
          },
        },
      );
      assert.equal(r.status, 'success', r.error);
      assert.deepEqual(r.result, { critical: ['CVE-1'] });
      assert.deepEqual(calls, [
        ['vs.getFindings', [{ namespace: 'shop', pod: 'web-1' }, '2024-01-01T00:00:00Z']],
        ['kubernetes.terminateGraceful', ['web-1', { gracePeriodSeconds: 30 }]],
        ['notify', ['#sec', 'handled web-1']],
      ]);
    });

    it('calls a default export, and turns `return;` into {}', async () => {
      const r = await run('export default async function (p: { x: number }) { return { x: p.x }; }', {
        params: { x: 7 },
      });
      assert.deepEqual(r.result, { x: 7 });
      const empty = await run('export function main() { return; }');
      assert.equal(empty.status, 'success');
      assert.deepEqual(empty.result, {});
    });

    it('records console output as OpenWhisk log lines, one per line, stderr for warn/error', async () => {
      const r = await run(
        `export function main() {
           console.log('first', { a: 1 }, 2);
           console.error('bad\\nworse');
           console.info('info');
           return {};
         }`,
      );
      assert.equal(r.status, 'success');
      assert.equal(r.logs.length, 4);
      for (const line of r.logs)
        assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (stdout|stderr): /);
      assert.deepEqual(
        r.logs.map((l) => l.slice(25)),
        ['stdout: first {"a":1} 2', 'stderr: bad', 'stderr: worse', 'stdout: info'],
      );
    });
  });

  describe('activation status (OpenWhisk Node.js runtime semantics)', () => {
    it('a returned {error} is an application error', async () => {
      const r = await run(`export function main() { return { error: 'pod not found' }; }`);
      assert.equal(r.status, 'application error');
      assert.deepEqual(r.result, { error: 'pod not found' });
      assert.equal(r.error, 'pod not found');
    });

    it('a rejection, or a throw inside an async main, is an application error with the serialized error', async () => {
      const r = await run(`export async function main() { throw new TypeError('bad input'); }`);
      assert.equal(r.status, 'application error');
      const error = (r.result as { error: { name: string; message: string } }).error;
      assert.equal(error.name, 'TypeError');
      assert.equal(error.message, 'bad input');
      assert.equal(r.error, 'bad input');
      const plain = await run(`export function main() { return Promise.reject({ code: 42 }); }`);
      assert.equal(plain.status, 'application error');
      assert.deepEqual(plain.result, { error: { code: 42 } });
    });

    it('a synchronous throw from main is an action developer error', async () => {
      const r = await run(`export function main() { throw new RangeError('boom'); }`);
      assert.equal(r.status, 'action developer error');
      assert.equal(r.error, 'An error has occurred: RangeError: boom');
      assert.deepEqual(r.result, { error: r.error });
    });

    it('a result that is not a dictionary, or not JSON, is an action developer error', async () => {
      for (const value of ['42', '"text"', '[1, 2]', 'null']) {
        const r = await run(`export function main() { return ${value}; }`);
        assert.equal(r.status, 'action developer error', value);
        assert.equal(r.error, 'The action did not return a dictionary.');
      }
      const fn = await run(`export function main() { return { f: () => 1 }; }`);
      assert.equal(fn.status, 'action developer error');
      assert.match(
        fn.error ?? '',
        /^The action did not produce a valid JSON response: TypeError: a function is not JSON/,
      );
      const cycle = await run(`export function main() { const o: any = {}; o.self = o; return o; }`);
      assert.equal(cycle.status, 'action developer error');
      assert.match(cycle.error ?? '', /^The action did not produce a valid JSON response/);
    });

    it('a failing module initialization is an action developer error', async () => {
      const r = await run(`throw new Error('no config'); export function main() { return {}; }`);
      assert.equal(r.status, 'action developer error');
      assert.equal(r.error, 'Initialization has failed due to: Error: no config');
      assert.equal(r.coldStart, true);
    });
  });

  describe('limits and inputs', () => {
    it('rejects limits outside OpenWhisk’s ranges with POLICY_LIMITS_INVALID', async () => {
      const { code } = await compilePolicy('export function main() { return {}; }', {
        filename: 'p.js',
        loader: 'js',
      });
      for (const bad of [
        { timeoutMs: 99 },
        { timeoutMs: 300_001 },
        { timeoutMs: 1.5 },
        { memoryMb: 127 },
        { memoryMb: 513 },
        { logLimitBytes: 10 * 1024 * 1024 + 1 },
        { resultLimitBytes: 1024 * 1024 + 1 },
      ]) {
        await assert.rejects(
          sandbox.invoke({
            actionKey: 'guest/l@1',
            code,
            params: {},
            limits: { ...LIMITS, ...bad },
            sdk: noSdk,
          }),
          (e: unknown) => e instanceof ContainmentError && e.code === ErrorCodes.POLICY_LIMITS_INVALID,
          JSON.stringify(bad),
        );
      }
    });

    it('rejects parameters that are not a JSON object or exceed 1 MB with POLICY_PARAMS_INVALID', async () => {
      const { code } = await compilePolicy('export function main() { return {}; }', {
        filename: 'p.js',
        loader: 'js',
      });
      const cyclic: JsonObject = {};
      (cyclic as Record<string, unknown>).self = cyclic;
      for (const params of [[1] as unknown as JsonObject, { big: 'x'.repeat(1024 * 1024) }, cyclic]) {
        await assert.rejects(
          sandbox.invoke({ actionKey: 'guest/p@1', code, params, limits: LIMITS, sdk: noSdk }),
          (e: unknown) => e instanceof ContainmentError && e.code === ErrorCodes.POLICY_PARAMS_INVALID,
        );
      }
    });
  });

  describe('warm reuse and isolation', () => {
    const counter = `let n = 0;
      export function main(p: { set?: string }) {
        n += 1;
        const g = globalThis as any;
        if (p.set) { g.leak = p.set; (Object.prototype as any).polluted = p.set; }
        return { n, leak: g.leak ?? null, polluted: ({} as any).polluted ?? null };
      }`;

    it('reuses a warm instance for the same action: cold first, then warm with module state kept', async () => {
      const first = await run(counter, { actionKey: 'ns1/counter@1', params: { set: 'A' } });
      const second = await run(counter, { actionKey: 'ns1/counter@1' });
      assert.equal(first.coldStart, true);
      assert.deepEqual(first.result, { n: 1, leak: 'A', polluted: 'A' });
      assert.equal(second.coldStart, false);
      // As in an OpenWhisk warm container, the same action sees its own earlier state.
      assert.deepEqual(second.result, { n: 2, leak: 'A', polluted: 'A' });
    });

    it('never shares globals or prototypes between actions or namespaces', async () => {
      await run(counter, { actionKey: 'ns1/a@1', params: { set: 'from-a' } });
      for (const actionKey of ['ns1/b@1', 'ns2/a@1']) {
        const other = await run(counter, { actionKey });
        assert.equal(other.coldStart, true, actionKey);
        assert.deepEqual(other.result, { n: 1, leak: null, polluted: null }, actionKey);
      }
    });

    it('starts cold again when the code of an action changes', async () => {
      await run(counter, { actionKey: 'ns1/redeployed@1' });
      const changed = await run(counter.replace('n += 1', 'n += 10'), { actionKey: 'ns1/redeployed@1' });
      assert.equal(changed.coldStart, true);
      assert.deepEqual(changed.result, { n: 10, leak: null, polluted: null });
    });

    it('does not reuse an instance after a developer error or with work left running', async () => {
      const flaky = `import { notify } from '@containment/policy-sdk';
        let n = 0;
        export function main(p: { fail?: boolean; linger?: boolean }) {
          n += 1;
          if (p.fail) throw new Error('fail');
          if (p.linger) void notify('#c', 'not awaited');
          return { n };
        }`;
      assert.equal((await run(flaky, { actionKey: 'ns1/flaky@1' })).coldStart, true);
      assert.equal(
        (await run(flaky, { actionKey: 'ns1/flaky@1', params: { fail: true } })).status,
        'action developer error',
      );
      const afterFailure = await run(flaky, { actionKey: 'ns1/flaky@1' });
      assert.equal(afterFailure.coldStart, true);
      assert.deepEqual(afterFailure.result, { n: 1 });
      const slowSdk: SdkHandler = () => new Promise((r) => setTimeout(() => r(null), 100));
      await run(flaky, { actionKey: 'ns1/flaky@1', params: { linger: true }, sdk: slowSdk });
      assert.equal((await run(flaky, { actionKey: 'ns1/flaky@1' })).coldStart, true);
    });
  });

  describe('escapes are contained', () => {
    it('sees no process, require, fetch or host global — not through Function or constructor chains either', async () => {
      const r = await run(`export function main() {
        const viaFunction = Function('return this')();
        const viaChain = (() => {}).constructor.constructor('return this')();
        const viaAsyncChain = (async () => {}).constructor('return typeof process')();
        const names = ['process', 'require', 'module', 'fetch', 'std', 'os', 'Deno', 'Bun', 'hostCanary', 'setTimeout', 'WebAssembly', 'ArrayBuffer', 'SharedArrayBuffer', 'Uint8Array'];
        return {
          sameGlobal: viaFunction === globalThis && viaChain === globalThis,
          found: names.filter((n) => typeof viaFunction[n] !== 'undefined' || typeof viaChain[n] !== 'undefined'),
          keys: Object.getOwnPropertyNames(globalThis).filter((k) => /process|require|fetch|import/i.test(k)),
          asyncType: typeof viaAsyncChain,
        };
      }`);
      assert.equal(r.status, 'success', r.error);
      const result = r.result as { sameGlobal: boolean; found: string[]; keys: string[]; asyncType: string };
      assert.equal(result.sameGlobal, true);
      assert.deepEqual(result.found, []);
      assert.deepEqual(result.keys, []);
      assert.equal(result.asyncType, 'object'); // a promise of 'undefined', not a process
      await assertHostIntact();
    });

    it('cannot require a module or write a file through it', async () => {
      const file = join(dir, 'pwned-require');
      const r = await run(
        `export function main() { (globalThis as any).require('fs').writeFileSync(${JSON.stringify(file)}, 'x'); return {}; }`,
      );
      assert.equal(r.status, 'action developer error');
      assert.match(r.error ?? '', /not a function/);
      assert.equal(existsSync(file), false);
      await assertHostIntact();
    });

    it('cannot load a module with import()', async () => {
      const file = join(dir, 'pwned-import');
      const r = await run(`export async function main() {
        const name = ['f', 's'].join('');
        const fs = await import(name);
        fs.writeFileSync(${JSON.stringify(file)}, 'x');
        return {};
      }`);
      assert.equal(r.status, 'application error');
      assert.match(r.error ?? '', /could not load module 'fs'/);
      assert.equal(existsSync(file), false);
      await assertHostIntact();
    });

    it('writes to the guest global never reach the host', async () => {
      const r = await run(`export function main() {
        const g = Function('return this')();
        g.hostCanary = 'guest';
        g.Object.prototype.hostPolluted = true;
        return { canary: g.hostCanary };
      }`);
      assert.deepEqual(r.result, { canary: 'guest' });
      assert.equal((Object.prototype as Record<string, unknown>).hostPolluted, undefined);
      await assertHostIntact();
    });

    it('stops an endless loop at the deadline', async () => {
      const r = await run('export function main() { for (;;) {} }', { limits: { timeoutMs: 200 } });
      assert.equal(r.status, 'action developer error');
      assert.match(r.error ?? '', TIMEOUT);
      assert.equal(r.error, 'The action exceeded its time limits of 200 milliseconds.');
      await assertHostIntact();
    });

    it('stops an endless loop during initialization, reported as such', async () => {
      const r = await run('while (true) {} export function main() { return {}; }', {
        limits: { timeoutMs: 150 },
      });
      assert.equal(r.error, 'The action exceeded its time limits of 150 milliseconds during initialization.');
      await assertHostIntact();
    });

    it('stops an endless promise chain at the deadline', async () => {
      const r = await run(
        `export function main() {
          const spin = (): Promise<void> => Promise.resolve().then(spin);
          spin();
          return new Promise(() => {});
        }`,
        { limits: { timeoutMs: 200 } },
      );
      assert.equal(r.status, 'action developer error');
      assert.match(r.error ?? '', TIMEOUT);
      await assertHostIntact();
    });

    it('ends a memory bomb with memory exhausted, even if the policy catches the error', async () => {
      const bomb = `let hoard: number[] = [1.5];
        export async function main() {
          try { for (;;) hoard = hoard.concat(hoard); }
          catch (e) { hoard = []; throw e; }
        }`;
      const actionKey = 'guest/bomb@0.0.1';
      const r = await run(bomb, { actionKey, limits: { memoryMb: 128, timeoutMs: 20_000 } });
      assert.equal(r.status, 'action developer error');
      assert.equal(r.error, 'The action exhausted its memory and was aborted.');
      // The next invocation of the same action, at once, gets a fresh instance and memory.
      const next = await run('export function main() { return { ok: true }; }', { actionKey });
      assert.equal(next.status, 'success', next.error);
      await assertHostIntact();
    });

    it('ends a string bomb (which the QuickJS limit misses) and serves the next invocation at once', async () => {
      const actionKey = 'guest/string-bomb@0.0.1';
      const bomb = `export function main() {
        const hoard: string[] = [];
        for (let i = 0; ; i++) hoard.push('x'.repeat(1024 * 1024) + i);
      }`;
      const r = await run(bomb, { actionKey, limits: { memoryMb: 128, timeoutMs: 60_000 } });
      assert.equal(r.status, 'action developer error');
      assert.equal(r.error, 'The action exhausted its memory and was aborted.');
      // Same action key, same worker: the worker's memory passed its ceiling, so it retires — after
      // telling the host with the result, so this goes to its replacement.
      const next = await run('export function main() { return { ok: true }; }', { actionKey });
      assert.equal(next.status, 'success', next.error);
      await assertHostIntact();
    });

    it('ends runaway recursion with a stack overflow', async () => {
      const r = await run(
        'function down(n: number): number { return down(n + 1) + 1; } export function main() { return { d: down(0) }; }',
      );
      assert.equal(r.status, 'action developer error');
      assert.match(r.error ?? '', /stack overflow/);
      await assertHostIntact();
    });

    it('truncates a huge log at the log limit with a note', async () => {
      const limit = 16 * 1024;
      const r = await run(
        `export function main() { const line = 'y'.repeat(1000); for (let i = 0; i < 100000; i++) console.log(line); console.log('x'.repeat(5000000)); return { done: true }; }`,
        { limits: { logLimitBytes: limit } },
      );
      assert.equal(r.status, 'success');
      assert.deepEqual(r.result, { done: true });
      const note = r.logs.at(-1) ?? '';
      assert.match(
        note,
        /stderr: Logs were truncated because the total bytes size exceeds the limit of 16384 bytes\.$/,
      );
      const kept = r.logs.slice(0, -1).map((l) => l.replace(/^\S+ stdout: /, ''));
      assert.equal(kept.length, 16);
      assert.ok(kept.reduce((sum, l) => sum + Buffer.byteLength(l) + 1, 0) <= limit);
      await assertHostIntact();
    });

    it('refuses a huge result', async () => {
      const r = await run(`export function main() { return { blob: 'z'.repeat(2 * 1024 * 1024) }; }`, {
        limits: { resultLimitBytes: 1024 * 1024 },
      });
      assert.equal(r.status, 'action developer error');
      assert.match(
        r.error ?? '',
        /^The action produced a response that exceeded the allowed length: \d+ > 1048576 bytes\.$/,
      );
      await assertHostIntact();
    });

    it('passes SDK arguments and results as snapshots: mutation on either side changes nothing on the other', async () => {
      const shared = { pods: ['a', 'b'] };
      const seen: JsonValue[][] = [];
      const r = await run(
        `import { call, vs } from '@containment/policy-sdk';
         export async function main() {
           const arg: any = { pod: 'web-1', labels: { quarantine: 'no' } };
           const pending = vs.getFindings(arg, 'now');
           arg.pod = 'kube-apiserver';              // mutate after the call was made
           arg.labels.quarantine = 'yes';
           const first: any = await pending;
           first.pods.push('evil');                 // mutate what the host returned
           const second: any = await vs.getFindings({ pod: 'web-2' }, 'now');
           let refused = '';
           try { await call('vs.getFindings', () => 1); } catch (e: any) { refused = e.message; }
           return { first: first.pods, second: second.pods, refused };
         }`,
        {
          sdk: async (_method, args) => {
            seen.push(args);
            (args[0] as JsonObject).pod = 'host-changed'; // mutate what the guest sent
            return shared;
          },
        },
      );
      assert.equal(r.status, 'success', r.error);
      assert.deepEqual(r.result, {
        first: ['a', 'b', 'evil'],
        second: ['a', 'b'],
        refused: 'a function is not JSON',
      });
      assert.deepEqual(shared, { pods: ['a', 'b'] });
      assert.deepEqual(seen, [
        [{ pod: 'host-changed', labels: { quarantine: 'no' } }, 'now'],
        [{ pod: 'host-changed' }, 'now'],
      ]);
      await assertHostIntact();
    });

    it('refuses unknown SDK methods and reports SDK failures without reaching the host needlessly', async () => {
      const methods: string[] = [];
      const r = await run(
        `import sdk, { notify } from '@containment/policy-sdk';
         export async function main() {
           const out: string[] = [];
           try { await sdk.call('fs.writeFile', '/tmp/x'); } catch (e: any) { out.push(e.message); }
           try { await notify('#c', 'm'); } catch (e: any) { out.push(e.message); }
           return { out };
         }`,
        {
          sdk: async (method) => {
            methods.push(method);
            throw new Error('channel #c does not exist\nat secret/host/path.js:1');
          },
        },
      );
      assert.deepEqual(r.result, { out: ['unknown SDK method fs.writeFile', 'channel #c does not exist'] });
      assert.deepEqual(methods, ['notify']);
    });

    it('never lets an SDK call made after the deadline reach the host', async () => {
      const methods: string[] = [];
      const r = await run(
        `import { vs, kubernetes } from '@containment/policy-sdk';
         export async function main() {
           await vs.getFindings('web-1', 'now');
           await kubernetes.terminate('web-1');
           return {};
         }`,
        {
          limits: { timeoutMs: 150 },
          sdk: async (method) => {
            methods.push(method);
            if (method === 'vs.getFindings') await new Promise((r) => setTimeout(r, 400));
            return [];
          },
        },
      );
      assert.equal(r.status, 'action developer error');
      assert.match(r.error ?? '', TIMEOUT);
      await new Promise((r) => setTimeout(r, 500)); // the slow call has answered by now
      assert.deepEqual(methods, ['vs.getFindings']);
      await assertHostIntact();
    });
  });

  it('answers with a whisk internal error once closed', async () => {
    const closed = new QuickJsSandbox({ workers: 1 });
    await closed.close();
    const { code } = await compilePolicy('export function main() { return {}; }', {
      filename: 'p.js',
      loader: 'js',
    });
    const r = await closed.invoke({ actionKey: 'guest/c@1', code, params: {}, limits: LIMITS, sdk: noSdk });
    assert.equal(r.status, 'whisk internal error');
  });
});

describe('QuickJsSandbox host-side deadline', () => {
  it('terminates a worker stuck in native code past its deadline and replaces it', async () => {
    const sandbox = new QuickJsSandbox({ workers: 1, hostGraceMs: 300 });
    try {
      // lastIndexOf over a sparse array of 2^32-1 slots runs in C, where the interrupt handler is not consulted.
      const stuck = await compilePolicy(
        'export function main() { const a: number[] = []; a.length = 4294967295; return { i: a.lastIndexOf(1) }; }',
        { filename: 'stuck.ts', loader: 'ts' },
      );
      const r = await sandbox.invoke({
        actionKey: 'guest/stuck@1',
        code: stuck.code,
        params: {},
        limits: { ...LIMITS, timeoutMs: 100 },
        sdk: noSdk,
      });
      assert.equal(r.status, 'action developer error');
      assert.equal(r.error, 'The action exceeded its time limits of 100 milliseconds.');
      const ok = await compilePolicy('export function main() { return { alive: true }; }', {
        filename: 'ok.ts',
        loader: 'ts',
      });
      const next = await sandbox.invoke({
        actionKey: 'guest/ok@1',
        code: ok.code,
        params: {},
        limits: LIMITS,
        sdk: noSdk,
      });
      assert.equal(next.status, 'success');
      assert.deepEqual(next.result, { alive: true });
      assert.equal(next.coldStart, true);
    } finally {
      await sandbox.close();
    }
  });
});
