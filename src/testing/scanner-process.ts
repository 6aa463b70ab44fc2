/**
 * `containment server` as a real process, for the end-to-end crash test and the server benchmark:
 * started through bin/containment.js on port 0, its URL read from the "scanner listening" log line
 * on stderr; plus a small JSON client for its API and an admin token in the format the server
 * accepts.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import { repoRoot } from './shared-data.js';

export interface ScannerProcess {
  url: string;
  child: ChildProcess;
  /** The tail (64–128 KiB) of what the process wrote to stderr (pino JSON lines). */
  stderr(): string;
  /** Resolves with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
}

/** `ctm_<16 hex>_<43 base64url>`: what `CONTAINMENT_ADMIN_TOKEN` must look like. */
export function newAdminToken(): string {
  return `ctm_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`;
}

/**
 * `containment db import <osvPath> <where…>` (`--data-dir <dir>` or `--database <url>`) in a child
 * process; rejects with its stderr when it fails.
 */
export async function importAdvisories(osvPath: string, where: readonly string[]): Promise<void> {
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'bin', 'containment.js'), 'db', 'import', osvPath, ...where],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`db import failed (${code}): ${stderr}`);
}

/** Starts `containment server --port 0 <args>` and waits (up to `startMs`) until it listens. */
export async function startScannerProcess(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  startMs = 30_000,
): Promise<ScannerProcess> {
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'bin', 'containment.js'), 'server', '--port', '0', ...args],
    { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${startMs} ms: ${stderr}`));
    }, startMs);
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.length > 131_072) stderr = stderr.slice(-65_536);
      const found = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"scanner listening"/.exec(stderr);
      if (found?.[1]) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  return {
    url,
    child,
    stderr: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface ApiAnswer<T> {
  status: number;
  body: T;
}

/** A keep-alive agent for API clients (one per simulated agent, like a real one would have). */
export function keepAliveAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 1 });
}

/** One JSON request to the scanner API; the body of any status is returned. */
export function api<T = unknown>(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  agent?: http.Agent,
): Promise<ApiAnswer<T>> {
  return requestJson<T>(
    base,
    token,
    method,
    path,
    body === undefined ? undefined : JSON.stringify(body),
    agent,
  );
}

/** `api` with the body already serialized (a benchmark serializes its reports before timing). */
export function requestJson<T = unknown>(
  base: string,
  token: string,
  method: string,
  path: string,
  payload?: string,
  agent?: http.Agent,
): Promise<ApiAnswer<T>> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, base), {
      method,
      agent,
      headers: {
        authorization: `Bearer ${token}`,
        ...(payload === undefined
          ? {}
          : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: (text === '' ? undefined : JSON.parse(text)) as T });
      });
    });
    req.end(payload);
  });
}
