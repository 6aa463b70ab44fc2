/** `containment posture -f` on manifest files: scores, formats, gate, scan verdicts, bad input. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { PostureReport } from '../posture/types.js';
import { main } from './main.js';
import { repoRoot } from '../testing/shared-data.js';

const FIXTURE = join(repoRoot, 'src', 'posture', 'fixtures', 'hardened-deployment.yaml');
const dir = mkdtempSync(join(tmpdir(), 'posture-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * The CLI in this process (spawning tsx per case costs seconds on a loaded machine): stdout and
 * stderr captured, the exit status as `main` returns it. Runs are serialised by the caller.
 */
async function cli(args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const write = {
    out: process.stdout.write.bind(process.stdout),
    err: process.stderr.write.bind(process.stderr),
  };
  // The CLI writes strings; the test runner's own (binary) protocol messages pass through.
  const capture = (sink: string[], original: typeof process.stdout.write) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (typeof chunk !== 'string') return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
      sink.push(chunk);
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = capture(out, write.out);
  process.stderr.write = capture(err, write.err);
  try {
    const status = await main(['posture', ...args]);
    return { status, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
    process.exitCode = undefined;
  }
}

async function sequentially(runs: (() => Promise<Run>)[]): Promise<Run[]> {
  const results: Run[] = [];
  for (const r of runs) results.push(await r());
  return results;
}

const RISKY = `apiVersion: v1
kind: Pod
metadata: {name: risky, namespace: shop}
spec:
  containers:
  - name: app
    image: nginx:latest
    securityContext: {privileged: true}
`;

test('the hardened fixture scores 100 and passes --fail-below 100; a risky pod fails the gate', async () => {
  writeFileSync(join(dir, 'risky.yaml'), RISKY);
  const [clean, risky, sarif, table] = (await sequentially([
    () =>
      cli([
        '-f',
        FIXTURE,
        '--format',
        'json',
        '--allowed-registry',
        'registry.example.com',
        '--fail-below',
        '100',
      ]),
    () => cli(['-f', FIXTURE, '-f', join(dir, 'risky.yaml'), '--format', 'json', '--fail-below', '90']),
    () => cli(['-f', join(dir, 'risky.yaml'), '--format', 'sarif', '--level', 'baseline']),
    () => cli(['-f', FIXTURE]),
  ])) as [Run, Run, Run, Run];
  assert.equal(clean.status, 0, clean.stderr);
  const cleanReport = JSON.parse(clean.stdout) as PostureReport;
  assert.equal(cleanReport.score, 100);
  assert.deepEqual(cleanReport.namespaces, [{ namespace: 'shop', score: 100, findings: 0 }]);

  assert.equal(risky.status, 1, risky.stderr);
  assert.match(risky.stderr, /posture score \d+ is below 90/);
  const riskyReport = JSON.parse(risky.stdout) as PostureReport;
  const controls = riskyReport.findings.map((f) => f.control);
  for (const id of ['PSS-privileged', 'IMG-LATEST-TAG', 'RES-NO-MEMORY-LIMIT', 'RBAC-DEFAULT-SA-TOKEN'])
    assert.ok(controls.includes(id), id);
  const priv = riskyReport.findings.find((f) => f.control === 'PSS-privileged')!;
  assert.equal(priv.path, 'spec.containers[0].securityContext.privileged');
  assert.equal(priv.source, `${join(dir, 'risky.yaml')}#0`);

  assert.equal(sarif.status, 0, sarif.stderr);
  const run = (JSON.parse(sarif.stdout) as { runs: { results: { ruleId: string }[] }[] }).runs[0]!;
  assert.ok(run.results.some((r) => r.ruleId === 'PSS-privileged'));
  // baseline level: restricted-only controls are not reported
  assert.ok(!run.results.some((r) => r.ruleId === 'PSS-runAsNonRoot'));

  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /^Posture score: 100\/100 \(level restricted/);
});

test('--server: an image whose latest scan fails the thresholds is a finding', async () => {
  const server = createServer((req, res) => {
    const image = new URL(req.url ?? '/', 'http://x').searchParams.get('image');
    const bad =
      image ===
      'registry.example.com/acme/web:1.4.2@sha256:3f1e5b0c4d2a6e8f9a7b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f1a2b3c4d5e6f';
    assert.equal(req.headers.authorization, 'Bearer t0ken');
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        images: bad
          ? [
              {
                image,
                scanId: 7,
                scanTime: '2026-01-01T00:00:00Z',
                severityCounts: { CRITICAL: 2, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
              },
            ]
          : [],
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const r = await cli([
      '-f',
      FIXTURE,
      '--format',
      'json',
      '--server',
      `http://127.0.0.1:${port}`,
      '--token',
      't0ken',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as PostureReport;
    const failed = report.findings.filter((f) => f.control === 'IMG-SCAN-FAILED');
    assert.equal(failed.length, 2); // the init container and the app use the image
    assert.match(failed[0]!.message, /2 CRITICAL > 0 allowed/);
    assert.ok(report.score < 100);
  } finally {
    server.close();
  }
});

test('bad input: one line error[CODE], exit 2, nothing on stdout', async () => {
  writeFileSync(
    join(dir, 'broken.yaml'),
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n- not an object\n',
  );
  // Commander's own usage errors are followed by the help text (showHelpAfterError): first line checked.
  const usage: [string[], RegExp][] = [
    [['-f', FIXTURE, '--level', 'privileged'], /^error\[USAGE\]: .*--level/],
    [['-f', FIXTURE, '--fail-below', '101'], /^error\[USAGE\]: .*0-100/],
    [['-f', FIXTURE, '--format', 'xml'], /^error\[USAGE\]: .*--format/],
    [['-f', FIXTURE, '--allowed-registry', 'https://ghcr.io'], /^error\[USAGE\]: .*registry host/],
  ];
  for (const [args, pattern] of usage) {
    const r = await cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.split('\n')[0]!, pattern, args.join(' '));
    assert.equal(r.stdout, '');
  }
  const cases: [string[], RegExp][] = [
    [[], /^error\[USAGE\]: nothing to check/],
    [['-f', join(dir, 'nope.yaml')], /^error\[TARGET_NOT_FOUND\]/],
    [
      ['-f', join(dir, 'broken.yaml')],
      /^error\[MANIFEST_INVALID\]: .*broken\.yaml#1: not a Kubernetes object/,
    ],
    [['-f', FIXTURE, '--policy-reports'], /^error\[USAGE\]: --policy-reports .* needs --kubeconfig/],
    [['-f', FIXTURE, '--server', 'http://127.0.0.1:1'], /^error\[USAGE\]: --server and --token go together/],
    [['--engine', join(dir, 'no.sock')], /^error\[ENGINE_UNAVAILABLE\]/],
  ];
  delete process.env.CONTAINMENT_TOKEN;
  delete process.env.CONTAINMENT_SERVER;
  const runs = await sequentially(
    cases.map(
      ([args]) =>
        () =>
          cli(args),
    ),
  );
  runs.forEach((r, i) => {
    const [args, pattern] = cases[i]!;
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout, '');
  });
});
