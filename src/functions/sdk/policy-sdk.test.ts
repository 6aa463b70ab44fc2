import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

/** The module specifiers a source file imports (static and dynamic). */
function importsOf(url: URL): string[] {
  const text = readFileSync(url, 'utf8');
  return [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)].map((m) => m[1] as string);
}

describe('the policy SDK a bundled policy imports', () => {
  it('refuses calls until a host is bound, then hands every call to it unchanged', async () => {
    // A fresh module instance: nothing bound yet.
    const sdk = await import(`./policy-sdk.js?fresh=${Date.now()}`);
    await assert.rejects(sdk.vs.getFindings('local/app'), /vs\.getFindings: no policy SDK host is bound/);
    const calls: [string, unknown[]][] = [];
    sdk.bindPolicySdk(async (method: string, args: unknown[]) => {
      calls.push([method, args]);
      return { ok: method };
    });
    assert.deepEqual(await sdk.kubernetes.quarantine({ namespace: 'a', name: 'b' }, { wait: true }), {
      ok: 'kubernetes.quarantine',
    });
    await sdk.notify('ops', 'hello');
    await sdk.default.call('kubernetes.label', 'a/b', { x: 'y' });
    assert.deepEqual(calls, [
      ['kubernetes.quarantine', [{ namespace: 'a', name: 'b' }, { wait: true }]],
      ['notify', ['ops', 'hello']],
      ['kubernetes.label', ['a/b', { x: 'y' }]],
    ]);
  });

  it('imports nothing, and the one SDK host it is bound to imports no I/O', () => {
    assert.deepEqual(importsOf(new URL('./policy-sdk.ts', import.meta.url)), []);
    const host = importsOf(new URL('../host/sdk-host.ts', import.meta.url));
    assert.ok(host.length > 0);
    const io = host.filter((m) => m.startsWith('node:') || /clients|fetch|store|notifier\.js$/.test(m));
    // notifier.js is imported for its type only (it would bring pino): make sure of that.
    const text = readFileSync(new URL('../host/sdk-host.ts', import.meta.url), 'utf8');
    assert.match(text, /import type \{ Notification \} from '\.\/notifier\.js'/);
    assert.deepEqual(
      io.filter((m) => !m.endsWith('notifier.js')),
      [],
    );
  });
});
