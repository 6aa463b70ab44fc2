/**
 * `containment cluster|token|trigger …` and `scan --report-to` as real processes against a real
 * scanner server on loopback (runScannerServer on SQLite with real OSV records).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ScanResult } from '../scan/scan-result.js';
import { inventoryHash, reportInventory } from '../scanner/agent-report.js';
import { runScannerServer } from '../scanner/run-server.js';
import type { RunningServer } from '../scanner/run-server.js';
import { isCI, repoRoot, sharedDataDir } from '../testing/shared-data.js';
import { importFromPath } from '../vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(osvNpm);
if (!haveData && isCI()) throw new Error(`shared OSV data not found at ${osvNpm}`);

const ADMIN = `ctm_0011223344556677_${'d'.repeat(43)}`;
const RUN_MAIN =
  "const { main } = await import('./src/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));";

type Json = Record<string, unknown>;

let dir: string;
let server: RunningServer;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a child process; CONTAINMENT_SERVER/TOKEN point at the test server unless overridden. */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', RUN_MAIN, ...args], {
    cwd: repoRoot,
    env: {
      ...process.env,
      CONTAINMENT_SERVER: server.url,
      CONTAINMENT_TOKEN: ADMIN,
      CONTAINMENT_DATA_DIR: dir,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function api(
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Json };
}

/** A failed command: exit 2 and exactly one `error[CODE]: …` line. */
function assertError(run: Run, code: string): void {
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stdout, '');
  const lines = run.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0] ?? '', new RegExp(`^error\\[${code}\\]: \\S`));
}

describe('API commands', { skip: !haveData }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'containment-api-cli-'));
    const advisories = openSqliteAdvisoryStore(join(dir, 'vulndb.sqlite'), { create: true });
    await importFromPath(advisories, osvNpm);
    advisories.close();
    server = await runScannerServer({
      host: '127.0.0.1',
      port: 0,
      dataDir: dir,
      advisoryDbPath: join(dir, 'vulndb.sqlite'),
      triggerAllow: ['127.0.0.0/8'],
      adminToken: ADMIN,
    });
  });
  after(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('cluster add prints a working agent token; list and remove; errors carry the API code', async () => {
    const added = await cli(['cluster', 'add', 'prod', '--server', server.url, '--token', ADMIN], {
      CONTAINMENT_SERVER: undefined,
      CONTAINMENT_TOKEN: undefined,
    });
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /^ctm_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
    const agent = added.stdout.trim();
    // An agent token may write reports but not read: 403, not 401, proves it is valid and an agent's.
    assert.equal((await api(agent, 'GET', '/v1/clusters')).status, 403);

    const [again, listed, badToken, unreachable, removed] = await Promise.all([
      cli(['cluster', 'add', 'prod']),
      cli(['cluster', 'list']),
      cli(['cluster', 'list'], { CONTAINMENT_TOKEN: `ctm_0123456789abcdef_${'A'.repeat(43)}` }),
      cli(['cluster', 'list', '--server', 'http://127.0.0.1:9']),
      cli(['cluster', 'remove', 'never-added']),
    ]);
    assertError(again, 'CLUSTER_EXISTS');
    assert.match(listed.stdout, /^NAME\s+WORKLOADS\s+CREATED\n.*\nprod\s+0\s+\d{4}-/);
    assertError(badToken, 'UNAUTHENTICATED');
    assertError(unreachable, 'SERVER_UNREACHABLE');
    assertError(removed, 'NOT_FOUND');
  });

  test('token create prints the token alone (or JSON), with the asked scope; list and revoke', async () => {
    const [plain, json] = await Promise.all([
      cli([
        'token',
        'create',
        '--role',
        'viewer',
        '--cluster',
        'prod',
        '--namespace',
        'a',
        '--namespace',
        'b',
      ]),
      cli(['token', 'create', '--role', 'analyst', '--cluster', 'prod', '--name', 'ci', '--format', 'json']),
    ]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^ctm_\S+\n$/);
    const viewer = plain.stdout.trim();
    assert.equal((await api(viewer, 'GET', '/v1/workloads')).status, 200);
    const issued = JSON.parse(json.stdout) as { token: string; role: string; name: string; scope: Json };
    assert.match(issued.token, /^ctm_/);
    assert.deepEqual(
      [issued.role, issued.name, issued.scope],
      ['analyst', 'ci', { cluster: 'prod', namespaces: '*' }],
    );

    const [list, forbidden] = await Promise.all([
      cli(['token', 'list', '--format', 'json']),
      cli(['token', 'create', '--role', 'viewer'], { CONTAINMENT_TOKEN: viewer }),
    ]);
    const tokens = JSON.parse(list.stdout) as { id: string; role: string; scope: Json }[];
    const listedViewer = tokens.find((t) => t.role === 'viewer');
    assert.ok(listedViewer);
    assert.deepEqual(listedViewer.scope, { cluster: 'prod', namespaces: ['a', 'b'] });
    // The secret is base64url and may itself contain `_`: take everything after `ctm_<id>_`.
    const secret = viewer.slice('ctm_'.length + 17);
    assert.equal(secret.length, 43);
    assert.ok(!JSON.stringify(tokens).includes(secret), 'list never shows a secret');
    assertError(forbidden, 'FORBIDDEN');

    assert.equal((await cli(['token', 'revoke', listedViewer.id])).code, 0);
    assert.equal((await api(viewer, 'GET', '/v1/workloads')).status, 401);
  });

  test('trigger add, list and remove', async () => {
    const [added, openwhiskWithoutKey] = await Promise.all([
      cli([
        'trigger',
        'add',
        '--cluster',
        'prod',
        '--url',
        'http://127.0.0.1:1/hook',
        '--kind',
        'cloudevents',
        '--secret',
        's3cret',
        '--namespace',
        'a',
        '--every-scan',
      ]),
      cli([
        'trigger',
        'add',
        '--cluster',
        'prod',
        '--url',
        'http://127.0.0.1:1/x',
        '--kind',
        'openwhisk',
        '--secret',
        's',
      ]),
    ]);
    assert.equal(added.code, 0, added.stderr);
    const id = added.stdout.trim();
    assertError(openwhiskWithoutKey, 'REQUEST_INVALID');
    const listed = JSON.parse((await cli(['trigger', 'list', '--format', 'json'])).stdout) as Json[];
    assert.deepEqual(
      listed.map((t) => [t.id, t.cluster, t.namespaces, t.kind, t.everyScan, t.url]),
      [[id, 'prod', ['a'], 'cloudevents', true, 'http://127.0.0.1:1/hook']],
    );
    assert.ok(!JSON.stringify(listed).includes('s3cret'));
    assert.equal((await cli(['trigger', 'remove', id])).code, 0);
    assert.deepEqual((await api(ADMIN, 'GET', '/v1/triggers')).body.triggers, []);
  });

  test('scan --report-to records the scan on the server and still prints it locally', async () => {
    const agent = (await api(ADMIN, 'POST', '/v1/clusters', { name: 'ci' })).body.agentToken as string;
    const target = join(dir, 'rootfs');
    mkdirSync(join(target, 'app', 'node_modules', 'minimist'), { recursive: true });
    writeFileSync(
      join(target, 'app', 'node_modules', 'minimist', 'package.json'),
      JSON.stringify({ name: 'minimist', version: '1.2.5' }),
    );
    const run = await cli(
      ['scan', target, '--format', 'json', '--report-to', server.url, '--workload', 'ci/builds/job-7'],
      { CONTAINMENT_TOKEN: agent, CONTAINMENT_SERVER: undefined },
    );
    assert.equal(run.code, 0, run.stderr);
    const local = JSON.parse(run.stdout) as ScanResult;
    assert.ok(
      local.vulnerabilities.some((v) => v.id === 'CVE-2021-44906' || v.aliases.includes('CVE-2021-44906')),
    );

    const findings = await api(ADMIN, 'GET', '/v1/findings?cluster=ci&namespace=builds&pod=job-7');
    assert.equal(findings.status, 200, JSON.stringify(findings.body));
    assert.deepEqual(
      (findings.body.vulnerablePackages as { id: string }[]).map((v) => v.id).sort(),
      local.vulnerabilities.map((v) => v.id).sort(),
    );
    assert.deepEqual(findings.body.workload, {
      cluster: 'ci',
      namespace: 'builds',
      pod: 'job-7',
      node: hostname(),
      image: target,
    });
    const scans = (await api(ADMIN, 'GET', '/v1/scans?cluster=ci')).body.scans as {
      inventoryHash: string;
      scanTime: string;
    }[];
    assert.equal(scans.length, 1);
    const expected = inventoryHash(
      reportInventory({
        ...(local.os ? { os: local.os } : {}),
        packages: local.packages,
        insecureConfigurations: local.insecureConfigurations,
      }),
    );
    assert.match(expected, /^[0-9a-f]{64}$/);
    assert.equal(scans[0]?.inventoryHash, expected);
    assert.equal(scans[0]?.scanTime, local.scanTime);

    // Misuse fails before scanning.
    assertError(await cli(['scan', target, '--report-to', server.url]), 'USAGE');
  });
});
