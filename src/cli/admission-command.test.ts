/** `containment admission`: flag errors, and the real process serving HTTPS until SIGTERM. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { httpsCall } from '../testing/https-call.js';
import { createTestServingCertificate } from '../testing/k8s/control-plane.js';
import type { TestServingCertificate } from '../testing/k8s/control-plane.js';
import { repoRoot } from '../testing/shared-data.js';
import { runMain } from './run-main.test-helper.js';

describe('containment admission', () => {
  let dir: string;
  let cert: TestServingCertificate;
  let certFile: string;
  let keyFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'containment-admission-cli-'));
    cert = createTestServingCertificate();
    certFile = join(dir, 'tls.crt');
    keyFile = join(dir, 'tls.key');
    writeFileSync(certFile, cert.certPem);
    writeFileSync(keyFile, cert.keyPem);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('bad flags: one line with a stable code, exit 2, nothing listening', async () => {
    for (const v of [
      'CONTAINMENT_SERVER',
      'CONTAINMENT_TOKEN',
      'CONTAINMENT_TLS_CERT',
      'CONTAINMENT_TLS_KEY',
    ])
      delete process.env[v];
    const tls = ['--tls-cert', certFile, '--tls-key', keyFile, '--port', '0'];
    for (const [args, pattern] of [
      [['admission'], /^error\[USAGE\]: --tls-cert and --tls-key are required\n$/],
      [
        ['admission', ...tls, '--deny-unknown-images'],
        /^error\[USAGE\]: --deny-unknown-images needs --server/,
      ],
      [['admission', ...tls, '--server', 'http://127.0.0.1:9'], /^error\[USAGE\]: --server needs --token/],
      [['admission', ...tls, '--mode', 'block'], /^error\[USAGE\]: .*--mode/],
      [
        [
          'admission',
          ...tls,
          '--threshold',
          'CRITICAL=many',
          '--server',
          'http://127.0.0.1:9',
          '--token',
          't',
        ],
        /^error\[USAGE\]: --threshold/,
      ],
      [
        ['admission', '--tls-cert', join(dir, 'nope.crt'), '--tls-key', keyFile],
        /^error\[USAGE\]: cannot read --tls-cert .*nope\.crt: ENOENT\n$/,
      ],
      [
        ['admission', '--tls-cert', keyFile, '--tls-key', certFile, '--port', '0'],
        /^error\[USAGE\]: TLS key pair refused: /,
      ],
    ] as const) {
      const r = await runMain(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(' '));
    }
  });

  test('serves HTTPS reviews (Pod Security only without a scanner) and stops on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [
        join(repoRoot, 'bin', 'containment.js'),
        'admission',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--tls-cert',
        certFile,
        '--tls-key',
        keyFile,
        '--level',
        'restricted',
      ],
      {
        env: { ...process.env, CONTAINMENT_LOG_LEVEL: 'info', CONTAINMENT_SERVER: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not listening: ${stderr}`)), 30_000);
        child.stderr.on('data', (c: Buffer) => {
          stderr += c.toString();
          const m = /"url":"(https:\/\/[^"]+)"[^\n]*"msg":"admission webhook listening"/.exec(stderr);
          if (m?.[1]) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
      });
      assert.equal((await httpsCall(`${url}/healthz`, { ca: cert.caPem })).status, 200);
      const res = await httpsCall(`${url}/validate`, {
        ca: cert.caPem,
        body: {
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: {
            uid: 'cli-1',
            kind: { group: '', version: 'v1', kind: 'Pod' },
            namespace: 'ns',
            operation: 'CREATE',
            object: {
              apiVersion: 'v1',
              kind: 'Pod',
              metadata: { name: 'p' },
              spec: { containers: [{ name: 'a', image: 'r/a:1' }] },
            },
          },
        },
      });
      assert.equal(res.status, 200, res.text);
      const review = res.json as {
        apiVersion: string;
        response: { uid: string; allowed: boolean; status: { code: number; message: string } };
      };
      assert.equal(review.apiVersion, 'admission.k8s.io/v1');
      assert.equal(review.response.uid, 'cli-1');
      assert.equal(review.response.allowed, false);
      assert.equal(review.response.status.code, 403);
      assert.match(
        review.response.status.message,
        /^Pod Security "restricted": spec\.containers\[0\]\.securityContext\.allowPrivilegeEscalation: /m,
      );
      // The denial is logged: the audit trail of what was refused.
      await new Promise((r) => setTimeout(r, 200));
      assert.match(stderr, /"uid":"cli-1"[^\n]*"allowed":false/);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });
});
