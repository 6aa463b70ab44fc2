/**
 * The posture benchmark (`npm run bench:posture`, first half): a real kube-apiserver + etcd with
 * 5,000 pods in 200 namespaces (plus a Deployment, Service, ResourceQuota and NetworkPolicy in
 * every other namespace), then `containment posture --kubeconfig … --format json` end to end, a
 * new process per run (BENCH_RUNS, default 3): median wall time and peak RSS (`/usr/bin/time`).
 * Targets: < 10 s, < 300 MB. Figures, not a test: nothing fails on a missed target.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { binariesWhat, findBinaries } from '../src/testing/k8s/binaries.js';
import { startControlPlane } from '../src/testing/k8s/control-plane.js';
import type { ControlPlane } from '../src/testing/k8s/control-plane.js';
import { repoRoot } from '../src/testing/shared-data.js';

const NAMESPACES = Number(process.env.BENCH_NAMESPACES ?? 200);
const PODS = Number(process.env.BENCH_PODS ?? 5000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONCURRENCY = 48;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function podOf(i: number, ns: string): unknown {
  const hardened = i % 3 === 0;
  const container = (name: string, image: string) => ({
    name,
    image,
    ports: [{ containerPort: 8080 }],
    resources: i % 2 === 0 ? { limits: { cpu: '500m', memory: '256Mi' } } : {},
    securityContext: hardened
      ? { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true }
      : i % 7 === 0
        ? { privileged: true }
        : {},
  });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `pod-${i}`, namespace: ns, labels: { app: `app-${i % 10}` } },
    spec: {
      nodeName: `node-${i % 20}`,
      ...(hardened
        ? {
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
            automountServiceAccountToken: false,
          }
        : {}),
      containers: [
        container('app', `registry.example.com/team-${i % 10}/app:1.${i % 50}`),
        container('sidecar', 'envoyproxy/envoy:v1.30'),
      ],
      volumes: i % 11 === 0 ? [{ name: 'host', hostPath: { path: '/var/log' } }] : [],
    },
  };
}

async function pool<T>(items: T[], worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await worker(items[next++]!);
    }),
  );
}

export async function populate(cp: ControlPlane): Promise<void> {
  const post = async (path: string, body: unknown): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const r = await cp.request('POST', path, { body });
      if (r.status === 201 || r.status === 409) return;
      if (attempt >= 3) throw new Error(`POST ${path}: ${r.status} ${r.text.slice(0, 200)}`);
      await new Promise((res) => setTimeout(res, 200 * (attempt + 1)));
    }
  };
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `bench-${i}`);
  await pool(namespaces, (ns) => post('/api/v1/namespaces', { metadata: { name: ns } }));
  await pool(
    namespaces.filter((_, i) => i % 2 === 0),
    async (ns) => {
      await post(`/api/v1/namespaces/${ns}/resourcequotas`, {
        metadata: { name: 'quota' },
        spec: { hard: { pods: '100' } },
      });
      await post(`/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`, {
        metadata: { name: 'deny' },
        spec: { podSelector: {}, policyTypes: ['Ingress'] },
      });
      await post(`/api/v1/namespaces/${ns}/services`, {
        metadata: { name: 'web' },
        spec: { type: 'NodePort', ports: [{ port: 80 }] },
      });
      const template = podOf(0, ns) as { spec: unknown };
      await post(`/apis/apps/v1/namespaces/${ns}/deployments`, {
        metadata: { name: 'web' },
        spec: {
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: template.spec },
        },
      });
    },
  );
  const started = performance.now();
  await pool(
    Array.from({ length: PODS }, (_, i) => i),
    (i) => {
      const ns = namespaces[i % NAMESPACES]!;
      return post(`/api/v1/namespaces/${ns}/pods`, podOf(i, ns));
    },
  );
  console.log(
    `created ${PODS} pods in ${NAMESPACES} namespaces in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

/** The CLI compiled to one ESM file beside a copy of package.json (VERSION reads it), deps external. */
async function bundleCli(): Promise<{ dir: string; entry: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'posture-bench-cli-'));
  mkdirSync(join(dir, 'dist', 'cli'), { recursive: true });
  copyFileSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  await build({
    entryPoints: [join(repoRoot, 'src', 'cli', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile: join(dir, 'dist', 'cli', 'main.js'),
    logLevel: 'warning',
  });
  const entry = join(dir, 'dist', 'cli', 'run.js');
  writeFileSync(
    entry,
    "const { main } = await import('./main.js');\nprocess.exitCode = await main(process.argv.slice(2));\n",
  );
  return { dir, entry };
}

function measure(label: string, args: string[], timeBin: string | undefined): void {
  const times: number[] = [];
  const rss: number[] = [];
  let summary = '';
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now();
    const r = timeBin
      ? spawnSync(timeBin, ['-f', '%M', process.execPath, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 })
      : spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 30 });
    times.push(performance.now() - start);
    if (r.status !== 0) throw new Error(`posture failed (${r.status}): ${r.stderr.slice(-500)}`);
    if (timeBin) rss.push(Number(r.stderr.trim().split('\n').pop()) / 1024);
    const report = JSON.parse(r.stdout) as {
      score: number;
      evaluated: number;
      findings: unknown[];
      namespaces: unknown[];
    };
    summary = `${report.evaluated} objects, ${report.findings.length} findings, ${report.namespaces.length} namespaces scored, overall score ${report.score}`;
  }
  console.log(`posture --kubeconfig, ${label}: ${summary}`);
  console.log(
    `  wall time: median ${(median(times) / 1000).toFixed(2)} s (min ${(Math.min(...times) / 1000).toFixed(2)}, max ${(Math.max(...times) / 1000).toFixed(2)}, ${RUNS} runs; target < 10 s)`,
  );
  if (rss.length > 0)
    console.log(
      `  peak RSS:  median ${median(rss).toFixed(0)} MB (max ${Math.max(...rss).toFixed(0)}; target < 300 MB)`,
    );
  else console.log('  peak RSS:  not measured (/usr/bin/time missing: apt-get install time)');
}

async function main(): Promise<void> {
  const binaries = findBinaries();
  if (!binaries) {
    console.error(
      `bench:posture skipped: ${binariesWhat} not built (node --import tsx scripts/k8s/build.ts)`,
    );
    process.exit(1);
  }
  const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
  const cp = await startControlPlane({ binaries, name: 'posture-bench', readyTimeoutMs: 180_000 });
  try {
    await populate(cp);
    const compiled = await bundleCli();
    try {
      const variants: [string, string][] = [
        ['through tsx (a checkout: bin/containment.js)', join(repoRoot, 'bin', 'containment.js')],
        ['compiled (esbuild bundle of src/cli/main.ts, as an installed package runs)', compiled.entry],
      ];
      for (const [label, entry] of variants)
        measure(label, [entry, 'posture', '--kubeconfig', cp.kubeconfigPath, '--format', 'json'], timeBin);
    } finally {
      rmSync(compiled.dir, { recursive: true, force: true });
    }
    console.log(
      `  machine: ${cpus().length} cores, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await cp.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
