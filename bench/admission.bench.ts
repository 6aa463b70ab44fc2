/**
 * The admission gate benchmark (second half of `npm run bench:posture`): the real
 * `containment admission` process (HTTPS, test CA) with the real `containment server` behind it
 * (SQLite, real OSV npm records, 40 scanned images), driven open-loop at 100 AdmissionReviews per
 * second for ~20 s from this process over keep-alive HTTPS: Pods and Deployments, mixed images
 * (clean, vulnerable, never scanned), some with Pod Security violations.
 *
 * Two runs: with the gate's default answer cache (5 s TTL), and with `--cache-ttl 0`, where every
 * review asks the scanner. Decision latency = request sent → response received, p50/p99/max.
 * Figures, not a test: nothing fails on a missed target (p99 < 50 ms).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { osvNpmDir } from '../src/admission/scanner-fixture.test-helper.js';
import { createTestServingCertificate } from '../src/testing/k8s/control-plane.js';
import { api, importAdvisories, newAdminToken, startScannerProcess } from '../src/testing/scanner-process.js';
import { repoRoot } from '../src/testing/shared-data.js';

const RATE = Number(process.env.BENCH_ADMISSION_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_ADMISSION_SECONDS ?? 20);
const IMAGES = 40;
const TARGET_P99_MS = 50;
const CLUSTER = 'bench';

const log = (line: string): void => void process.stderr.write(`[bench:admission] ${line}\n`);

interface Gate {
  url: string;
  stop(): Promise<void>;
}

function startGate(args: string[], certFile: string, keyFile: string): Promise<Gate> {
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
      ...args,
    ],
    // Info, as deployed: denials and warnings are logged (the audit trail), and cost what they cost.
    {
      cwd: repoRoot,
      env: { ...process.env, CONTAINMENT_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gate did not start: ${stderr}`)), 120_000);
    let listening = false;
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.length > 131_072) stderr = stderr.slice(-65_536);
      if (listening) return;
      const found = /"url":"(https:\/\/[^"]+)"/.exec(stderr);
      if (found?.[1]) {
        listening = true;
        clearTimeout(timer);
        resolve({
          url: found[1],
          stop: async () => {
            child.kill('SIGTERM');
            await exited;
          },
        });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`gate exited: ${stderr}`));
    });
  });
}

function imageName(i: number): string {
  return `registry.local/bench/app-${i}:1.${i}`;
}

/** Deterministic mix: 45% clean, 35% vulnerable, 10% never scanned; 10% with hostNetwork; 30% Deployments. */
function review(n: number): string {
  const r = (n * 2654435761) % 100;
  const image =
    r < 80
      ? imageName(n % IMAGES)
      : r < 90
        ? `registry.local/bench/unscanned-${n % 7}:1`
        : imageName((n * 7) % IMAGES);
  const podSpec = {
    containers: [
      { name: 'app', image },
      { name: 'sidecar', image: imageName((n + 1) % IMAGES) },
    ],
    ...(n % 10 === 3 ? { hostNetwork: true } : {}),
  };
  const deployment = n % 10 < 3;
  const object = deployment
    ? {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: `web-${n}`, namespace: 'shop' },
        spec: {
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: podSpec },
        },
      }
    : { apiVersion: 'v1', kind: 'Pod', metadata: { name: `pod-${n}`, namespace: 'shop' }, spec: podSpec };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `bench-${n}`,
      kind: deployment
        ? { group: 'apps', version: 'v1', kind: 'Deployment' }
        : { group: '', version: 'v1', kind: 'Pod' },
      resource: deployment
        ? { group: 'apps', version: 'v1', resource: 'deployments' }
        : { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'bench' },
      object,
      dryRun: false,
    },
  });
}

function post(
  url: string,
  body: string,
  agent: https.Agent,
  ca: string,
): Promise<{ status: number; allowed?: boolean }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${url}/validate`,
      { method: 'POST', agent, ca, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const parsed = JSON.parse(Buffer.concat(chunks).toString()) as { response?: { allowed?: boolean } };
          resolve({
            status: res.statusCode ?? 0,
            ...(parsed.response ? { allowed: parsed.response.allowed } : {}),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function drive(gate: Gate, ca: string, label: string): Promise<{ p50: number; p99: number }> {
  // The API server keeps connections to a webhook open; so does this client.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 32 });
  for (let i = 0; i < 50; i++) await post(gate.url, review(100_000 + i), agent, ca); // warm-up
  const total = RATE * SECONDS;
  const latencies: number[] = [];
  let allowed = 0;
  let denied = 0;
  let errors = 0;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let n = 0; n < total; n++) {
    // Open loop: each request leaves at its scheduled time, whether or not earlier ones are done.
    const due = start + (n * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const body = review(n);
    const sent = performance.now();
    inflight.push(
      post(gate.url, body, agent, ca).then(
        (res) => {
          latencies.push(performance.now() - sent);
          if (res.status !== 200) errors += 1;
          else if (res.allowed) allowed += 1;
          else denied += 1;
        },
        () => void (errors += 1),
      ),
    );
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const p50 = pct(latencies, 50);
  const p99 = pct(latencies, 99);
  console.log(
    `${label}: ${total} reviews in ${elapsed.toFixed(1)} s (${(total / elapsed).toFixed(0)}/s), ` +
      `allowed ${allowed}, denied ${denied}, errors ${errors}; ` +
      `latency p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${(latencies.at(-1) ?? NaN).toFixed(1)} ms ` +
      `(target p99 < ${TARGET_P99_MS} ms: ${p99 < TARGET_P99_MS ? 'met' : 'MISSED'})`,
  );
  return { p50, p99 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'containment-bench-admission-'));
  const admin = newAdminToken();
  let scanner: Awaited<ReturnType<typeof startScannerProcess>> | undefined;
  try {
    log('importing OSV npm records and starting the scanner ...');
    await importAdvisories(osvNpmDir, ['--data-dir', dir]);
    scanner = await startScannerProcess(
      ['--data-dir', dir, '--rate-limit', 'off'],
      {
        CONTAINMENT_ADMIN_TOKEN: admin,
      },
      120_000,
    );
    const cluster = await api<{ agentToken: string }>(scanner.url, admin, 'POST', '/v1/clusters', {
      name: CLUSTER,
    });
    const viewer = await api<{ token: string }>(scanner.url, admin, 'POST', '/v1/tokens', {
      name: 'admission',
      role: 'viewer',
      cluster: CLUSTER,
      namespaces: '*',
    });
    for (let i = 0; i < IMAGES; i++) {
      // Every third image carries minimist 1.2.5 (a CRITICAL advisory), the rest the fixed 1.2.6.
      const version = i % 3 === 0 ? '1.2.5' : '1.2.6';
      const res = await api(scanner.url, cluster.body.agentToken, 'POST', '/v1/reports', {
        reportId: `bench-${i}`,
        workload: {
          cluster: CLUSTER,
          namespace: 'shop',
          pod: `pod-${i}`,
          node: 'node-1',
          image: imageName(i),
        },
        scanTime: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
        inventory: {
          packages: [
            {
              name: 'minimist',
              version,
              ecosystem: 'npm',
              location: '/app/node_modules/minimist/package.json',
              extractor: 'npm',
            },
          ],
          insecureConfigurations: [],
        },
        inventoryHash: `bench-${i}-${version}`,
      });
      if (res.status !== 201) throw new Error(`report ${i}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    }
    const cert = createTestServingCertificate();
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    writeFileSync(certFile, cert.certPem);
    writeFileSync(keyFile, cert.keyPem, { mode: 0o600 });
    const gateArgs = [
      '--server',
      scanner.url,
      '--token',
      viewer.body.token,
      '--deny-unknown-images',
      '--allowed-registry',
      'registry.local',
    ];
    console.log(
      `admission gate, ${RATE} reviews/s for ${SECONDS} s, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    for (const [label, extra] of [
      ['cached (5 s TTL)', []],
      ['uncached (--cache-ttl 0)', ['--cache-ttl', '0']],
    ] as const) {
      const gate = await startGate([...gateArgs, ...extra], certFile, keyFile);
      try {
        await drive(gate, cert.caPem, label);
      } finally {
        await gate.stop();
      }
    }
  } finally {
    await scanner?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
