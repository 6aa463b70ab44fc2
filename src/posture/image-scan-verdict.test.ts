import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  CLEAN_IMAGE,
  osvNpmDir,
  startScannerFixture,
  UNSCANNED_IMAGE,
  VULNERABLE_IMAGE,
} from '../admission/scanner-fixture.test-helper.js';
import type { ScannerFixture } from '../admission/scanner-fixture.test-helper.js';
import { SEVERITIES } from '../inventory/types.js';
import type { InsecureConfiguration, Severity } from '../inventory/types.js';
import { summarize } from '../matching/summary.js';
import { DEFAULT_THRESHOLDS } from '../matching/types.js';
import type { ComplianceThresholds } from '../matching/types.js';
import { requireOrSkip } from '../testing/shared-data.js';
import {
  digestOf,
  HttpImageVerdictSource,
  judgeImageScan,
  thresholdViolations,
} from './image-scan-verdict.js';

const haveData = existsSync(osvNpmDir);

describe('image scan verdict: thresholds', () => {
  it('applies the same rule as the scan compliance verdict (count > threshold fails)', () => {
    // Deterministic pseudo-random counts and thresholds, compared with summarize() itself.
    let seed = 7;
    const next = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let round = 0; round < 300; round++) {
      const counts = Object.fromEntries(SEVERITIES.map((s) => [s, next(8)])) as Record<Severity, number>;
      const thresholds: ComplianceThresholds = {
        CRITICAL: next(4),
        HIGH: next(6),
        MEDIUM: next(8),
        LOW: next(8),
      };
      const configs: InsecureConfiguration[] = SEVERITIES.flatMap((s) =>
        Array.from({ length: counts[s] }, (_, i) => ({ id: `c${i}`, severity: s, title: 't', evidence: [] })),
      );
      const expected = summarize([], configs, thresholds).compliance;
      const got = thresholdViolations(counts, thresholds);
      assert.equal(got.length === 0, expected.passed, JSON.stringify({ counts, thresholds }));
      assert.equal(got.length, expected.violations.length);
    }
  });

  it('says which counts exceed which limits; UNKNOWN is never thresholded', () => {
    const scan = {
      image: 'a:1',
      scanId: 3,
      scanTime: '2026-01-01T00:00:00.000Z',
      severityCounts: { CRITICAL: 3, HIGH: 5, MEDIUM: 21, LOW: 0, UNKNOWN: 999 },
    };
    const verdict = judgeImageScan('a:1', scan, DEFAULT_THRESHOLDS);
    assert.equal(verdict.status, 'fail');
    assert.deepEqual(verdict.status === 'fail' && verdict.reasons, [
      '3 CRITICAL > 0 allowed',
      '21 MEDIUM > 20 allowed',
    ]);
    assert.equal(judgeImageScan('a:1', scan, { CRITICAL: 3, HIGH: 5, MEDIUM: 21, LOW: 0 }).status, 'pass');
    assert.deepEqual(judgeImageScan('a:1', undefined), {
      status: 'unknown',
      image: 'a:1',
      unreachable: false,
      reason: 'never scanned',
    });
  });

  it('finds the digest of a pinned reference only', () => {
    const hex = 'a'.repeat(64);
    assert.equal(digestOf(`reg/app@sha256:${hex}`), `sha256:${hex}`);
    assert.equal(digestOf(`reg/app:1@sha256:${hex}`), `sha256:${hex}`);
    assert.equal(digestOf('reg/app:1'), undefined);
    assert.equal(digestOf(`reg/app@sha256:${hex.slice(1)}`), undefined);
  });
});

describe('image scan verdict: HTTP source against a real scanner', () => {
  let f: ScannerFixture;
  before(async () => {
    if (haveData) f = await startScannerFixture();
  });
  after(async () => {
    await f?.close();
  });

  it('passes the clean image, fails the vulnerable one with the reason, knows nothing of an unscanned one', async (t) => {
    if (!requireOrSkip(t, haveData, `OSV records in ${osvNpmDir}`)) return;
    const source = new HttpImageVerdictSource({ server: f.url, token: f.viewerToken });
    const clean = await source.verdict(CLEAN_IMAGE);
    assert.equal(clean.status, 'pass', JSON.stringify(clean));
    const vulnerable = await source.verdict(VULNERABLE_IMAGE);
    assert.equal(vulnerable.status, 'fail', JSON.stringify(vulnerable));
    assert.deepEqual(vulnerable.status === 'fail' && vulnerable.reasons, ['1 CRITICAL > 0 allowed']);
    const unknown = await source.verdict(UNSCANNED_IMAGE);
    assert.deepEqual(unknown, {
      status: 'unknown',
      image: UNSCANNED_IMAGE,
      unreachable: false,
      reason: 'never scanned',
    });
    // Thresholds are the caller's: one CRITICAL allowed makes the vulnerable image pass.
    const lenient = new HttpImageVerdictSource({
      server: f.url,
      token: f.viewerToken,
      thresholds: { ...DEFAULT_THRESHOLDS, CRITICAL: 1 },
    });
    assert.equal((await lenient.verdict(VULNERABLE_IMAGE)).status, 'pass');
  });

  it('uses the newest scan of an image: a fixed rebuild under the same tag passes', async (t) => {
    if (!requireOrSkip(t, haveData, `OSV records in ${osvNpmDir}`)) return;
    const image = 'registry.local/shop/rebuilt:2';
    await f.report(image, [['minimist', '1.2.5']]);
    const source = new HttpImageVerdictSource({ server: f.url, token: f.viewerToken, cacheTtlMs: 0 });
    assert.equal((await source.verdict(image)).status, 'fail');
    await f.report(image, [['minimist', '1.2.6']]);
    assert.equal((await source.verdict(image)).status, 'pass');
  });

  it('a digest-pinned reference finds the scan of that digest under any name', async (t) => {
    if (!requireOrSkip(t, haveData, `OSV records in ${osvNpmDir}`)) return;
    const digest = `sha256:${'b'.repeat(64)}`;
    await f.report('registry.local/shop/pinned:3', [['minimist', '1.2.5']], { imageDigest: digest });
    const source = new HttpImageVerdictSource({ server: f.url, token: f.viewerToken });
    const verdict = await source.verdict(`mirror.local/shop/pinned@${digest}`);
    assert.equal(verdict.status, 'fail', JSON.stringify(verdict));
    assert.equal(verdict.status === 'fail' && verdict.scan.imageDigest, digest);
  });

  it('caches answers for the TTL and shares one lookup among concurrent callers', async (t) => {
    if (!requireOrSkip(t, haveData, `OSV records in ${osvNpmDir}`)) return;
    let calls = 0;
    let now = 1_000;
    const counting: typeof fetch = (input, init) => {
      calls += 1;
      return fetch(input, init);
    };
    const source = new HttpImageVerdictSource({
      server: f.url,
      token: f.viewerToken,
      cacheTtlMs: 5000,
      fetch: counting,
      now: () => now,
    });
    const burst = await Promise.all(Array.from({ length: 20 }, () => source.verdict(VULNERABLE_IMAGE)));
    assert.ok(burst.every((v) => v.status === 'fail'));
    assert.equal(calls, 1);
    now += 4_999;
    await source.verdict(VULNERABLE_IMAGE);
    assert.equal(calls, 1);
    now += 2;
    await source.verdict(VULNERABLE_IMAGE);
    assert.equal(calls, 2, 'asked again once the TTL passed');
  });

  it('reports a refused token as unknown (scanner unreachable), with the code, and does not cache it', async (t) => {
    if (!requireOrSkip(t, haveData, `OSV records in ${osvNpmDir}`)) return;
    let calls = 0;
    const source = new HttpImageVerdictSource({
      server: f.url,
      token: `ctm_0123456789abcdef_${'A'.repeat(43)}`,
      fetch: (input, init) => {
        calls += 1;
        return fetch(input, init);
      },
    });
    const verdict = await source.verdict(VULNERABLE_IMAGE);
    assert.deepEqual(verdict, {
      status: 'unknown',
      image: VULNERABLE_IMAGE,
      unreachable: true,
      reason: 'scanner unreachable (HTTP 401 UNAUTHENTICATED)',
    });
    await source.verdict(VULNERABLE_IMAGE);
    assert.equal(calls, 2);
  });

  it('a token scoped to another cluster sees no scans: the image is unknown, not passed', async (t) => {
    if (!requireOrSkip(t, haveData, `OSV records in ${osvNpmDir}`)) return;
    const res = await fetch(`${f.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${f.harness.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'other', role: 'viewer', cluster: 'elsewhere', namespaces: '*' }),
    });
    const { token } = (await res.json()) as { token: string };
    const source = new HttpImageVerdictSource({ server: f.url, token });
    const verdict = await source.verdict(VULNERABLE_IMAGE);
    assert.equal(verdict.status, 'unknown');
  });
});

describe('image scan verdict: scanner down', () => {
  it('a closed port and a silent server both give unknown (unreachable) within the timeout', async () => {
    const closed = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(port));
      });
    });
    const refused = await new HttpImageVerdictSource({
      server: `http://127.0.0.1:${closed}`,
      token: 't',
    }).verdict('a:1');
    assert.deepEqual(refused, {
      status: 'unknown',
      image: 'a:1',
      unreachable: true,
      reason: 'scanner unreachable (ECONNREFUSED)',
    });
    // Accepts connections and never answers.
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const verdict = await new HttpImageVerdictSource({
        server: `http://127.0.0.1:${port}`,
        token: 't',
        timeoutMs: 200,
      }).verdict('a:1');
      assert.equal(verdict.status, 'unknown');
      assert.equal(
        verdict.status === 'unknown' && verdict.reason,
        'scanner unreachable (no answer in 200 ms)',
      );
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
