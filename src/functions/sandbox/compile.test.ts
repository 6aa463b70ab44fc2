import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { compilePolicy } from './compile.js';

async function compileError(
  source: string,
  loader: 'ts' | 'js' = 'ts',
  filename = 'policy.ts',
): Promise<ContainmentError> {
  try {
    await compilePolicy(source, { filename, loader });
  } catch (e) {
    assert.ok(e instanceof ContainmentError, `expected a ContainmentError, got ${String(e)}`);
    return e;
  }
  assert.fail('compiled although it should not');
}

describe('compilePolicy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'policy-compile-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('bundles a TypeScript policy into one script assigning its exports to __policy', async () => {
    const { code } = await compilePolicy(
      `import type { Pod } from '@containment/policy-sdk';
       import { kubernetes } from '@containment/policy-sdk';
       interface Params { pod: string }
       const helper = (p: Params): string => p.pod.toUpperCase();
       export async function main(params: Params) { await kubernetes.quarantine(params.pod); return { pod: helper(params) }; }`,
      { filename: 'quarantine.ts', loader: 'ts' },
    );
    assert.match(code, /^var __policy = \(\(\) => \{/);
    assert.doesNotMatch(code, /\bimport\b|\bexport\b|interface Params/);
    assert.match(code, /globalThis\.__sdk/);
    // The script really is a plain script exposing main: evaluate it with a stub SDK global.
    const policy = new Function('globalThis', `${code}; return __policy;`)({ __sdk: { kubernetes: {} } }) as {
      main: unknown;
    };
    assert.equal(typeof policy.main, 'function');
  });

  it('accepts a default export instead of main', async () => {
    const { code } = await compilePolicy('export default (p) => ({ ok: p.n + 1 });', {
      filename: 'p.js',
      loader: 'js',
    });
    const policy = new Function(`${code}; return __policy;`)() as { default: (p: { n: number }) => unknown };
    assert.deepEqual(policy.default({ n: 1 }), { ok: 2 });
  });

  it('reports a syntax error as POLICY_COMPILE_FAILED with esbuild’s first message on one line', async () => {
    const e = await compileError('export function main( {\n  return 1;\n}\n');
    assert.equal(e.code, ErrorCodes.POLICY_COMPILE_FAILED);
    assert.match(e.message, /^policy\.ts:\d+:\d+: /);
    assert.doesNotMatch(e.message, /\n/);
  });

  it('refuses a TypeScript-only construct under the js loader', async () => {
    const e = await compileError('export function main(p: { a: number }) { return p; }', 'js', 'p.js');
    assert.match(e.message, /^p\.js:1:/);
  });

  it('refuses Node built-ins and packages', async () => {
    for (const spec of ['fs', 'node:child_process', 'openwhisk']) {
      const e = await compileError(
        `import * as m from '${spec}'; export function main() { return { m: typeof m }; }`,
      );
      assert.equal(e.code, ErrorCodes.POLICY_COMPILE_FAILED);
      assert.ok(e.message.includes(`"${spec}"`), e.message);
    }
    const e = await compileError(`export function main() { return require('fs'); }`);
    assert.ok(e.message.includes('"fs"'), e.message);
  });

  it('never reads host files: relative, absolute and text imports are refused', async () => {
    const secret = join(dir, 'secret.txt');
    writeFileSync(secret, 'TOP-SECRET-CONTENT');
    for (const spec of ['./secret.txt', secret, '/etc/hostname']) {
      const e = await compileError(
        `import s from ${JSON.stringify(spec)}; export function main() { return { s }; }`,
        'js',
        join(dir, 'p.js'),
      );
      assert.ok(e.message.includes('is not allowed'), e.message);
      assert.ok(!e.message.includes('TOP-SECRET'), e.message);
    }
  });

  it('refuses a module without main or a default export', async () => {
    const e = await compileError('export function handler() { return {}; }');
    assert.match(e.message, /must export a function main/);
  });
});
