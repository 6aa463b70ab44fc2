/**
 * `containment db import|status --database` and `containment server --database` (two real server
 * processes on one PostgreSQL database, configured through CONTAINMENT_DATABASE).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { createTestDatabase, postgresReachable, postgresWhat } from '../testing/postgres.js';
import type { TestDatabase } from '../testing/postgres.js';
import { api, newAdminToken, startScannerProcess } from '../testing/scanner-process.js';
import type { ScannerProcess } from '../testing/scanner-process.js';
import { requireOrSkip, sharedDataOrSkip } from '../testing/shared-data.js';
import { containment } from '../testing/tools.js';

const available = await postgresReachable();
let database: TestDatabase | undefined;
/** The database URL with a password (trust auth ignores it): it must never be printed. */
let url = '';
const processes: ScannerProcess[] = [];

before(async () => {
  if (!available) return;
  database = await createTestDatabase('server_cmd');
  const withPassword = new URL(database.url);
  withPassword.password = 'hunter2';
  url = withPassword.toString();
});
after(async () => {
  for (const p of processes) await p.kill();
  await database?.drop();
});

function need(t: TestContext): string | undefined {
  const shared = sharedDataOrSkip(t);
  return shared !== undefined && requireOrSkip(t, available, postgresWhat) ? shared : undefined;
}

test('--database must be a PostgreSQL URL; a database without advisories is refused clearly', async (t) => {
  if (!need(t)) return;
  const bad = containment(['db', 'status', '--database', 'mysql://localhost/x']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /postgres:\/\/ or postgresql:\/\//);
  const empty = containment(['server', '--port', '0'], {
    CONTAINMENT_DATABASE: url,
    CONTAINMENT_ADMIN_TOKEN: '',
  });
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /error\[DB_UNREADABLE\]: .*holds no advisories/);
  assert.ok(!empty.stderr.includes('hunter2'));
});

test('db import and status --database fill and read the shared advisory store', async (t) => {
  const shared = need(t);
  if (!shared) return;
  const osvNpm = join(shared, 'osv', 'npm');
  const imported = containment(['db', 'import', osvNpm, '--database', url, '--format', 'json']);
  assert.equal(imported.status, 0, imported.stderr);
  assert.ok(!imported.stdout.includes('hunter2'), 'the password was printed');
  const report = JSON.parse(imported.stdout) as { added: number; invalid: number };
  const files = readdirSync(osvNpm).filter((f) => f.endsWith('.json')).length;
  assert.equal(report.added + report.invalid, files);
  assert.ok(report.added > 0);
  const status = containment(['db', 'status', '--format', 'json'], { CONTAINMENT_DATABASE: url });
  assert.equal(status.status, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as { records: number }).records, report.added);
});

test('two server processes on one database: one bootstrap token, shared clusters, reports and findings', async (t) => {
  if (!need(t)) return;
  const admin = newAdminToken();
  const env = { CONTAINMENT_DATABASE: url, CONTAINMENT_ADMIN_TOKEN: admin };
  processes.push(...(await Promise.all([startScannerProcess([], env), startScannerProcess([], env)])));
  const [one, two] = processes as [ScannerProcess, ScannerProcess];
  assert.ok(!one.stderr().includes('hunter2'));

  const created = await api<{ agentToken: string }>(one.url, admin, 'POST', '/v1/clusters', { name: 'prod' });
  assert.equal(created.status, 201);
  const report = {
    reportId: 'cli-r1',
    workload: { cluster: 'prod', namespace: 'shop', pod: 'web', node: 'n1', image: 'app:1' },
    scanTime: '2025-03-01T00:00:00Z',
    inventory: {
      packages: [
        {
          name: 'minimist',
          version: '1.2.5',
          ecosystem: 'npm',
          location: '/app/node_modules/minimist/package.json',
          extractor: 'npm',
        },
      ],
      insecureConfigurations: [],
    },
    inventoryHash: 'h1',
  };
  assert.equal((await api(two.url, created.body.agentToken, 'POST', '/v1/reports', report)).status, 201);
  assert.equal((await api(one.url, created.body.agentToken, 'POST', '/v1/reports', report)).status, 200);
  const findings = await api<{ vulnerablePackages: { id: string; aliases: string[] }[] }>(
    one.url,
    admin,
    'GET',
    '/v1/findings?cluster=prod&namespace=shop&pod=web',
  );
  assert.equal(findings.status, 200);
  assert.ok(findings.body.vulnerablePackages.some((v) => [v.id, ...v.aliases].includes('CVE-2021-44906')));
  const tokens = await api<{ tokens: { name: string }[] }>(two.url, admin, 'GET', '/v1/tokens');
  assert.equal(tokens.body.tokens.filter((x) => x.name.includes('CONTAINMENT_ADMIN_TOKEN')).length, 1);
  assert.deepEqual(await Promise.all([one.stop(), two.stop()]), [0, 0]);
});
