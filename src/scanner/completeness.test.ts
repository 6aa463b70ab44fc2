/**
 * Issue 12 §3 end to end: an incomplete scan is `unknown`, never a pass — in the CLI gate, in the
 * scanner's stored result and `GET /v1/images`, and at the admission gate (denied under
 * `--deny-unknown-images`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decideAdmission } from '../admission/admission-policy.js';
import type { AdmissionRequest } from '../admission/admission-review.js';
import { gateFails } from '../cli/scan-run.js';
import { HttpImageVerdictSource } from '../posture/image-scan-verdict.js';
import { scan } from '../scan/scan.js';
import { sharedDataDir } from '../testing/shared-data.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { describeEachBackend, startHarness } from './scanner-harness.test-helper.js';
import type { BackendHarness } from './scanner-harness.test-helper.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const scratch = mkdtempSync(join(tmpdir(), 'containment-incomplete-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

test('containment scan: a FIFO status file gives completeness incomplete, verdict unknown, and fails the gate', async () => {
  const dir = join(scratch, 'root');
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'var/lib/dpkg'), { recursive: true });
  writeFileSync(join(dir, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
  execFileSync('mkfifo', [join(dir, 'var/lib/dpkg/status')]);
  const store = openSqliteAdvisoryStore(join(scratch, 'vulndb.sqlite'), { create: true });
  try {
    const result = await scan(dir, { store });
    assert.equal(result.completeness, 'incomplete');
    assert.deepEqual(
      result.gaps.map((g) => g.code),
      ['PACKAGE_DB_NOT_A_FILE'],
    );
    assert.equal(result.summary.compliance.verdict, 'unknown');
    assert.equal(result.summary.completeness, 'incomplete');
    assert.equal(result.vulnerabilities.length, 0);
    assert.equal(gateFails(result, result), true, 'no findings, yet the gate fails');
  } finally {
    store.close();
  }
});

let h: BackendHarness;
const IMAGE = 'registry.local/hollow:1';

describeEachBackend('an incomplete agent report', { skip: !existsSync(osvNpm) }, (backend) => {
  let base = '';
  before(async () => {
    h = await startHarness(osvNpm, { backend: backend.name });
    base = await h.app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await h?.close();
  });

  test('is stored incomplete, listed so by /v1/images, and denied by the admission gate', async () => {
    const agent = await h.app.inject({
      method: 'POST',
      url: '/v1/clusters',
      headers: { authorization: `Bearer ${h.adminToken}` },
      payload: { name: 'c1' },
    });
    const agentToken = (agent.json() as { agentToken: string }).agentToken;
    const posted = await h.app.inject({
      method: 'POST',
      url: '/v1/reports',
      headers: { authorization: `Bearer ${agentToken}` },
      payload: {
        reportId: 'incomplete-1',
        workload: { cluster: 'c1', namespace: 'ns', pod: 'p1', node: 'n1', image: IMAGE },
        scanTime: new Date().toISOString(),
        inventory: {
          packages: [],
          insecureConfigurations: [],
          completeness: 'incomplete',
          gaps: [
            {
              code: 'PACKAGE_DB_NOT_A_FILE',
              extractor: 'dpkg',
              path: '/var/lib/dpkg/status',
              message: 'is a special file',
            },
          ],
        },
        inventoryHash: 'incomplete-hash',
      },
    });
    assert.equal(posted.statusCode, 201, posted.body);
    const scanId = (posted.json() as { scanId: number }).scanId;
    const stored = await h.app.inject({
      method: 'GET',
      url: `/v1/scans/${scanId}`,
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    const detail = stored.json() as {
      summary: { completeness: string; compliance: { verdict: string; passed: boolean } };
    };
    assert.equal(detail.summary.completeness, 'incomplete');
    assert.equal(detail.summary.compliance.verdict, 'unknown');
    assert.equal(detail.summary.compliance.passed, false);

    const images = await h.app.inject({
      method: 'GET',
      url: `/v1/images?image=${encodeURIComponent(IMAGE)}`,
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    const [entry] = (images.json() as { images: Array<{ completeness: string }> }).images;
    assert.equal(entry?.completeness, 'incomplete');

    const source = new HttpImageVerdictSource({ server: base, token: h.adminToken });
    const verdict = await source.verdict(IMAGE);
    assert.equal(verdict.status, 'unknown');
    const request = {
      uid: 'u1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace: 'ns',
      object: { kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ name: 'c', image: IMAGE }] } },
    } as unknown as AdmissionRequest;
    const policy = { mode: 'deny' as const, level: 'privileged' as const, allowedRegistries: [] };
    const denied = await decideAdmission(request, { ...policy, denyUnknownImages: true }, source);
    assert.equal(denied.allowed, false);
    assert.match(denied.reasons.join('\n'), /incomplete.*unknown images are denied/);
    const warned = await decideAdmission(request, { ...policy, denyUnknownImages: false }, source);
    assert.equal(warned.allowed, true);
    assert.match(warned.warnings.join('\n'), /is incomplete/);
  });

  test('a declared-only package (issue 14) is stored but never counted toward findings', async () => {
    const agent = await h.app.inject({
      method: 'POST',
      url: '/v1/clusters',
      headers: { authorization: `Bearer ${h.adminToken}` },
      payload: { name: 'c2' },
    });
    const agentToken = (agent.json() as { agentToken: string }).agentToken;
    const counts = async (provenance: object, n: number): Promise<number> => {
      const posted = await h.app.inject({
        method: 'POST',
        url: '/v1/reports',
        headers: { authorization: `Bearer ${agentToken}` },
        payload: {
          reportId: `declared-${n}`,
          workload: { cluster: 'c2', namespace: 'ns', pod: `p${n}`, node: 'n1', image: 'x:1' },
          scanTime: new Date().toISOString(),
          inventory: {
            packages: [{ name: 'minimist', version: '1.2.5', ecosystem: 'npm', ...provenance }],
            insecureConfigurations: [],
          },
          inventoryHash: `declared-${n}`,
        },
      });
      assert.equal(posted.statusCode, 201, posted.body);
      const scanId = (posted.json() as { scanId: number }).scanId;
      const detail = await h.app.inject({
        method: 'GET',
        url: `/v1/scans/${scanId}`,
        headers: { authorization: `Bearer ${h.adminToken}` },
      });
      const body = detail.json() as { vulnerabilities: unknown[]; inventory?: { packages: object[] } };
      return body.vulnerabilities.length;
    };
    assert.ok((await counts({}, 1)) > 0, 'installed minimist 1.2.5 has findings');
    assert.equal(await counts({ provenance: 'declared' }, 2), 0);
  });
});
