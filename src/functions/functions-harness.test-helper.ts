/** Starts a real function runtime (SQLite in a temp dir, QuickJS sandbox, loopback port 0) for tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { PolicyHost } from './host/policy-host.js';
import { runFunctions } from './run-functions.js';
import type { RunFunctionsOptions, RunningFunctions } from './run-functions.js';

export const GUEST_AUTH = '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:functions-test-key-0123456789abcdef';

// Response bodies are whatever JSON the API sent; tests assert on their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJson = any;

export interface Harness {
  running: RunningFunctions;
  url: string;
  dataDir: string;
  /** fetch against the runtime with Basic auth (`auth` defaults to guest's). */
  call(
    method: string,
    path: string,
    body?: unknown,
    auth?: string | null,
  ): Promise<{ status: number; body: AnyJson }>;
  close(): Promise<void>;
}

export async function startHarness(
  options: {
    policyHost?: PolicyHost;
    guestAuth?: string | null;
    dataDir?: string;
    rateLimit?: RunFunctionsOptions['rateLimit'];
    acceptLegacySignature?: boolean;
  } = {},
): Promise<Harness> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'functions-'));
  const running = await runFunctions({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    logger: pino({ level: 'silent' }),
    ...(options.guestAuth === null ? {} : { guestAuth: options.guestAuth ?? GUEST_AUTH }),
    ...(options.policyHost === undefined ? {} : { policyHost: options.policyHost }),
    ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }),
    sandbox: { workers: 1 },
    acceptLegacySignature: options.acceptLegacySignature === true,
  });
  return {
    running,
    url: running.url,
    dataDir,
    async call(method, path, body, auth = GUEST_AUTH) {
      const headers: Record<string, string> = {};
      if (auth !== null) headers.authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${running.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
    },
    async close() {
      await running.close();
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `get` yields a value (activations are stored when they end). */
export async function eventually<T>(
  get: () => Promise<T | undefined>,
  what: string,
  ms = 10_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
