/** `containment server` as a real process: bootstrap admin token, listen, stop cleanly on SIGTERM. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startOidcProvider } from '../auth/oidc-provider.test-helper.js';
import { runMain } from '../cli/run-main.test-helper.js';
import { parseRateLimit } from '../cli/server-command.js';
import { repoRoot } from '../testing/shared-data.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';

let dir: string;
/** Every server this file starts; killed at the end so a failed assertion cannot leave one running. */
const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
});
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'containment-server-cmd-'));
  openSqliteAdvisoryStore(join(dir, 'vulndb.sqlite'), { create: true }).close();
});
after(() => rmSync(dir, { recursive: true, force: true }));

const RUN_MAIN =
  "const { main } = await import('./src/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));";

interface Started {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

async function startServer(env: Record<string, string>, args: string[] = []): Promise<Started> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      RUN_MAIN,
      'server',
      '--port',
      '0',
      '--data-dir',
      dir,
      ...args,
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, CONTAINMENT_ADMIN_TOKEN: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  const exit = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 20_000);
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
      const found = /"url":"(http:\/\/[^"]+)"/.exec(stderr);
      if (found?.[1]) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    void exit.then((code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
  });
  return { child, url, stdout: () => stdout, stderr: () => stderr, exit };
}

async function clusters(url: string, token: string): Promise<number> {
  return (await fetch(`${url}/v1/clusters`, { headers: { authorization: `Bearer ${token}` } })).status;
}

test('generates and prints the first admin token once, accepts CONTAINMENT_ADMIN_TOKEN, stops on SIGTERM', async () => {
  const first = await startServer({});
  // stdout and stderr are separate pipes: the token may arrive after the "listening" log line.
  for (let i = 0; i < 100 && !first.stdout().includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
  const generated = first.stdout().trim();
  assert.match(generated, /^ctm_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.equal(await clusters(first.url, generated), 200);
  assert.equal(await clusters(first.url, `${generated.slice(0, -1)}x`), 401);
  first.child.kill('SIGTERM');
  assert.equal(await first.exit, 0);

  // Restart with an operator-chosen token: registered as admin, and no second token is generated.
  const chosen = `ctm_00112233445566aa_${'b'.repeat(43)}`;
  const second = await startServer({ CONTAINMENT_ADMIN_TOKEN: chosen });
  assert.equal(second.stdout(), '');
  assert.equal(await clusters(second.url, chosen), 200);
  assert.equal(await clusters(second.url, generated), 200);
  second.child.kill('SIGINT');
  assert.equal(await second.exit, 0);
});

test('a malformed CONTAINMENT_ADMIN_TOKEN is a usage error', async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', RUN_MAIN, 'server', '--port', '0', '--data-dir', dir],
    {
      cwd: repoRoot,
      env: { ...process.env, CONTAINMENT_ADMIN_TOKEN: 'letmein' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 2);
  assert.match(stderr, /error\[USAGE\]: CONTAINMENT_ADMIN_TOKEN/);
});

test('OIDC and the rate limit come from the environment (CONTAINMENT_OIDC_*, CONTAINMENT_RATE_LIMIT)', async () => {
  const audience = 'https://scanner.test';
  const provider = await startOidcProvider({
    clients: { 'viewer-x': { roles: ['viewer'], namespaces: ['x'] } },
  });
  try {
    const server = await startServer({
      CONTAINMENT_OIDC_ISSUER: provider.issuer,
      CONTAINMENT_OIDC_AUDIENCE: audience,
      CONTAINMENT_RATE_LIMIT: '3/1m',
    });
    const token = await provider.issue('viewer-x', audience);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push(await clusters(server.url, token));
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    server.child.kill('SIGTERM');
    assert.equal(await server.exit, 0);
  } finally {
    provider.close();
  }
});

test('the dashboard OIDC client from the config file, the flag winning over the environment; sign-ins limited per address', async () => {
  const audience = 'https://scanner.test';
  const provider = await startOidcProvider({
    clients: { 'viewer-x': { roles: ['viewer'], namespaces: ['x'] } },
  });
  const config = join(dir, 'oidc-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      oidc: {
        issuer: provider.issuer,
        audience,
        clientId: 'from-file',
        redirectUri: 'https://dash.example/ui/oidc/callback',
      },
    }),
  );
  try {
    const server = await startServer(
      { CONTAINMENT_OIDC_CLIENT_ID: 'from-env', CONTAINMENT_SIGN_IN_RATE_LIMIT: '2/1m' },
      ['--config', config, '--oidc-client-id', 'from-flag'],
    );
    assert.deepEqual(await (await fetch(`${server.url}/ui/oidc`)).json(), { enabled: true });
    const login = await fetch(`${server.url}/ui/oidc/login?next=/ui/`, { redirect: 'manual' });
    assert.equal(login.status, 302);
    const target = new URL(login.headers.get('location') ?? '');
    assert.equal(target.origin, new URL(provider.issuer).origin, 'to the issuer from the file');
    assert.equal(target.searchParams.get('client_id'), 'from-flag', 'the flag wins');
    assert.equal(target.searchParams.get('redirect_uri'), 'https://dash.example/ui/oidc/callback');
    const signIn = async (): Promise<number> =>
      (
        await fetch(`${server.url}/ui/session`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-containment-csrf': '1' },
          body: JSON.stringify({ token: 'ctm_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }),
        })
      ).status;
    assert.deepEqual([await signIn(), await signIn(), await signIn()], [401, 401, 429]);
    server.child.kill('SIGTERM');
    assert.equal(await server.exit, 0);
  } finally {
    provider.close();
  }
});

test('a dashboard OIDC client without an issuer is a usage error', async () => {
  const bad = await runMain(['server', '--data-dir', dir, '--oidc-client-id', 'dash']);
  assert.equal(bad.status, 2);
  assert.match(
    bad.stderr,
    /^error\[USAGE\]: --oidc-client-id, --oidc-client-secret and --oidc-redirect-uri need --oidc-issuer/,
  );
});

test('detection retention: flag > environment > config file > 30 days; a bad value is one line', async () => {
  const config = join(dir, 'retention.json');
  writeFileSync(config, JSON.stringify({ detectionRetention: '7d' }));
  const retention = async (env: Record<string, string>, args: string[] = []): Promise<number> => {
    const server = await startServer(env, args);
    server.child.kill('SIGTERM');
    assert.equal(await server.exit, 0);
    return Number(/"detectionRetentionMs":(\d+)/.exec(server.stderr())?.[1]);
  };
  const day = 86_400_000;
  assert.equal(await retention({}), 30 * day);
  assert.equal(await retention({ CONTAINMENT_CONFIG: config }), 7 * day);
  const env = { CONTAINMENT_CONFIG: config, CONTAINMENT_DETECTION_RETENTION: '12h' };
  assert.equal(await retention(env), day / 2);
  assert.equal(await retention(env, ['--detection-retention', '0']), 0);

  const bad = await runMain(['server', '--data-dir', dir, '--detection-retention', '5x']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^error\[USAGE\]: .*--detection-retention.*30d/);
  writeFileSync(config, JSON.stringify({ detectionRetention: '5 days' }));
  const badFile = await runMain(['--config', config, 'server', '--data-dir', dir]);
  assert.equal(badFile.status, 2);
  assert.match(badFile.stderr, /^error\[CONFIG_INVALID\]: config detectionRetention 5 days/);
});

test('--match-cache: shared by default, local from the flag or the environment, nothing else', async () => {
  const mode = async (env: Record<string, string>, args: string[] = []): Promise<string | undefined> => {
    const server = await startServer(env, args);
    server.child.kill('SIGTERM');
    assert.equal(await server.exit, 0);
    return /"matchCache":"(\w+)"/.exec(server.stderr())?.[1];
  };
  assert.equal(await mode({}), 'shared');
  assert.equal(await mode({ CONTAINMENT_MATCH_CACHE: 'local' }), 'local');
  const bad = await runMain(['server', '--data-dir', dir, '--match-cache', 'everywhere']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--match-cache.*everywhere/);
});

test('--rate-limit syntax', () => {
  assert.deepEqual(parseRateLimit('600/1m'), { max: 600, windowMs: 60_000 });
  assert.deepEqual(parseRateLimit('20/s'), { max: 20, windowMs: 1000 });
  assert.deepEqual(parseRateLimit('5/500ms'), { max: 5, windowMs: 500 });
  assert.deepEqual(parseRateLimit('100/2h'), { max: 100, windowMs: 7_200_000 });
  assert.equal(parseRateLimit('off'), false);
  for (const bad of ['0/1m', '10', '10/', '10/1d', '-1/s', '1.5/s', '10/0s', '/s'])
    assert.throws(() => parseRateLimit(bad), /expected <requests>\/<window>/, bad);
});
