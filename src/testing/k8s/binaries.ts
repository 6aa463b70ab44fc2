/**
 * The real control-plane binaries the Kubernetes tests run (kube-apiserver and etcd), built from
 * the Go module proxy into a per-version cache outside the repository — the way
 * controller-runtime's envtest uses real binaries. Nothing is downloaded except Go modules.
 */
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Newest v1.36.x the module proxy served when this was written; override to try another. */
export const kubernetesVersion: string = process.env.CONTAINMENT_K8S_VERSION ?? 'v1.36.3';
export const etcdVersion: string = process.env.CONTAINMENT_ETCD_VERSION ?? 'v3.6.16';

export const k8sCacheDir: string =
  process.env.CONTAINMENT_K8S_CACHE ?? join(homedir(), '.cache', 'containment', 'k8s');

export interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
}

export const binaryPaths: ControlPlaneBinaries = {
  kubeApiserver: join(k8sCacheDir, kubernetesVersion, 'kube-apiserver'),
  etcd: join(k8sCacheDir, `etcd-${etcdVersion}`, 'etcd'),
};

/** What `requireOrSkip` names when the binaries are missing. */
export const binariesWhat = `kube-apiserver ${kubernetesVersion} + etcd ${etcdVersion} (build them with \`node --import tsx scripts/k8s/build.ts\`; needs Go)`;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The built binaries, or undefined when either is missing. */
export function findBinaries(): ControlPlaneBinaries | undefined {
  return isExecutable(binaryPaths.kubeApiserver) && isExecutable(binaryPaths.etcd) ? binaryPaths : undefined;
}

/** The `go` command: on PATH, else where the official tarball installs it. */
export function goCommand(): string | undefined {
  for (const candidate of ['go', '/usr/local/go/bin/go']) {
    if (spawnSync(candidate, ['version'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return undefined;
}

// Reproducible, static binaries; modules resolved from the proxy, never from a go.work or a newer toolchain.
const goEnv = { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local', GOWORK: 'off', CGO_ENABLED: '0' };

function go(goCmd: string, cwd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): string {
  // go's own progress (module downloads) goes to our stderr, so stdout stays free for results.
  const r = spawnSync(goCmd, args, {
    cwd,
    env: { ...goEnv, ...extraEnv },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`go ${args.join(' ')} failed in ${cwd} (exit ${r.status ?? r.signal})`);
  return r.stdout;
}

/** Runs `build` in a throwaway module dir and moves its output into place only when complete. */
function buildInto(out: string, build: (moduleDir: string, partial: string) => void): void {
  mkdirSync(dirname(out), { recursive: true });
  const moduleDir = mkdtempSync(join(tmpdir(), 'containment-k8s-build-'));
  const partial = `${out}.partial-${process.pid}`;
  try {
    build(moduleDir, partial);
    renameSync(partial, out);
  } finally {
    rmSync(moduleDir, { recursive: true, force: true });
    rmSync(partial, { force: true });
  }
}

/**
 * Builds k8s.io/kubernetes's commands (`cmd/<name>`) at the control plane's version into
 * `outs[name]`, in one wrapper module (one `go mod tidy`, compiled packages shared). Each binary is
 * moved into place only when it is complete.
 */
function buildKubernetesCommands(goCmd: string, outs: Record<string, string>): void {
  const version = kubernetesVersion;
  const commands = Object.keys(outs);
  // k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging/...;
  // a wrapper module must replace each of them with the published v0.<minor>.<patch> instead.
  const stagingVersion = version.replace(/^v1\./, 'v0.');
  const dir = mkdtempSync(join(tmpdir(), 'containment-k8s-build-'));
  try {
    go(goCmd, dir, ['mod', 'init', 'local/kubernetes-bin']);
    const info = JSON.parse(go(goCmd, dir, ['mod', 'download', '-json', `k8s.io/kubernetes@${version}`])) as {
      GoMod?: string;
    };
    if (!info.GoMod) throw new Error(`the module proxy gave no go.mod for k8s.io/kubernetes@${version}`);
    const staging = [...readFileSync(info.GoMod, 'utf8').matchAll(/^\s*(\S+)\s+=>\s+\.\/staging\//gm)].map(
      (m) => m[1],
    );
    if (staging.length === 0)
      throw new Error(`no staging replacements found in k8s.io/kubernetes@${version}'s go.mod`);
    go(goCmd, dir, [
      'mod',
      'edit',
      `-require=k8s.io/kubernetes@${version}`,
      ...staging.map((m) => `-replace=${m}=${m}@${stagingVersion}`),
    ]);
    const imports = commands.map((c) => `import _ "k8s.io/kubernetes/cmd/${c}"\n`).join('');
    writeFileSync(join(dir, 'tools.go'), `//go:build tools\n\npackage tools\n\n${imports}`);
    go(goCmd, dir, ['mod', 'tidy']);
    const minor = /^v1\.(\d+)\./.exec(version)?.[1] ?? '';
    const ldflags = [
      '-s -w',
      `-X k8s.io/component-base/version.gitVersion=${version}`,
      '-X k8s.io/component-base/version.gitMajor=1',
      `-X k8s.io/component-base/version.gitMinor=${minor}`,
    ].join(' ');
    // One `go build` for all of them: each package compiles once, whichever commands import it.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    go(goCmd, dir, [
      'build',
      '-trimpath',
      '-ldflags',
      ldflags,
      '-o',
      `${bin}/`,
      ...commands.map((c) => `k8s.io/kubernetes/cmd/${c}`),
    ]);
    for (const [command, out] of Object.entries(outs)) {
      mkdirSync(dirname(out), { recursive: true });
      const partial = `${out}.partial-${process.pid}`;
      try {
        copyFileSync(join(bin, command), partial);
        chmodSync(partial, 0o755);
        renameSync(partial, out);
      } finally {
        rmSync(partial, { force: true });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function buildEtcd(goCmd: string, out: string): void {
  buildInto(out, (dir, partial) => {
    go(goCmd, dir, ['mod', 'init', 'local/etcd-bin']);
    writeFileSync(
      join(dir, 'main.go'),
      'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n',
    );
    go(goCmd, dir, ['get', `go.etcd.io/etcd/server/v3@${etcdVersion}`]);
    go(goCmd, dir, ['mod', 'tidy']);
    go(goCmd, dir, ['build', '-trimpath', '-ldflags', '-s -w', '-o', partial, '.']);
  });
}

/**
 * Builds whichever binary is missing (minutes on a cold Go cache, nothing when both exist).
 * Throws when Go is not installed.
 */
export function buildBinaries(
  log: (message: string) => void = (m) => console.error(m),
): ControlPlaneBinaries {
  const missing = [
    { path: binaryPaths.etcd, name: `etcd ${etcdVersion}`, build: buildEtcd },
    {
      path: binaryPaths.kubeApiserver,
      name: `kube-apiserver ${kubernetesVersion}`,
      build: (goCmd: string, out: string) => buildKubernetesCommands(goCmd, { 'kube-apiserver': out }),
    },
  ].filter((b) => !isExecutable(b.path));
  if (missing.length === 0) return binaryPaths;
  const goCmd = goCommand();
  if (!goCmd)
    throw new Error(
      `Go is needed to build ${missing.map((b) => b.name).join(' and ')}, and it is not installed`,
    );
  for (const b of missing) {
    const started = Date.now();
    log(`building ${b.name} from the Go module proxy into ${b.path} ...`);
    b.build(goCmd, b.path);
    log(`built ${b.name} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  return binaryPaths;
}

// ---- Helm, for the chart tests (deploy/helm/containment) ----

/** The Helm release the chart tests render with; built from the Go module proxy like the rest. */
export const helmVersion: string = process.env.CONTAINMENT_HELM_VERSION ?? 'v3.22.0';

export const helmCacheDir: string =
  process.env.CONTAINMENT_HELM_CACHE ?? join(homedir(), '.cache', 'containment', 'helm');

export const helmPath: string = join(helmCacheDir, helmVersion, 'helm');

/** What `requireOrSkip` names when helm is missing. */
export const helmWhat = `helm ${helmVersion} (build it with \`node --import tsx scripts/k8s/build.ts\`; needs Go)`;

/** The built helm binary, or undefined when it is missing. */
export function findHelm(): string | undefined {
  return isExecutable(helmPath) ? helmPath : undefined;
}

function buildHelmBinary(goCmd: string, out: string): void {
  const module = 'helm.sh/helm/v3';
  buildInto(out, (dir, partial) => {
    // Helm's Makefile stamps the Kubernetes version `helm template`/`lint` assume (from its client-go
    // requirement, major+1) and its own version; without them helm would claim to be Kubernetes v1.20.
    const info = JSON.parse(go(goCmd, dir, ['mod', 'download', '-json', `${module}@${helmVersion}`])) as {
      GoMod?: string;
    };
    if (!info.GoMod) throw new Error(`the module proxy gave no go.mod for ${module}@${helmVersion}`);
    const clientGo = /^\s*k8s\.io\/client-go\s+v(\d+)\.(\d+)\./m.exec(readFileSync(info.GoMod, 'utf8'));
    if (!clientGo) throw new Error(`no k8s.io/client-go requirement in ${module}@${helmVersion}'s go.mod`);
    const [k8sMajor, k8sMinor] = [String(Number(clientGo[1]) + 1), clientGo[2] ?? ''];
    const ldflags = [
      '-s -w',
      `-X ${module}/internal/version.version=${helmVersion}`,
      ...['pkg/lint/rules', 'pkg/chartutil'].flatMap((pkg) => [
        `-X ${module}/${pkg}.k8sVersionMajor=${k8sMajor}`,
        `-X ${module}/${pkg}.k8sVersionMinor=${k8sMinor}`,
      ]),
    ].join(' ');
    // `go install module@version` builds with helm's own go.mod (no wrapper module needed: it has no
    // replace directives); GOBIN is the throwaway dir, and only a finished binary is copied into place.
    const bin = join(dir, 'bin');
    go(goCmd, dir, ['install', '-trimpath', '-ldflags', ldflags, `${module}/cmd/helm@${helmVersion}`], {
      GOBIN: bin,
      GOFLAGS: '',
    });
    copyFileSync(join(bin, 'helm'), partial);
  });
}

/** Builds helm when it is missing (about 2 minutes on a cold cache). Throws when Go is not installed. */
export function buildHelm(log: (message: string) => void = (m) => console.error(m)): string {
  if (isExecutable(helmPath)) return helmPath;
  const goCmd = goCommand();
  if (!goCmd) throw new Error(`Go is needed to build helm ${helmVersion}, and it is not installed`);
  const started = Date.now();
  log(`building helm ${helmVersion} from the Go module proxy into ${helmPath} ...`);
  buildHelmBinary(goCmd, helmPath);
  log(`built helm ${helmVersion} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return helmPath;
}

// ---- kwok, for the fleet benchmark's 1,000 fake nodes (bench/fleet/operators.ts) ----

/** Newest kwok the module proxy served that builds with Go 1.26 (its go.mod says go 1.24). */
export const kwokVersion: string = process.env.CONTAINMENT_KWOK_VERSION ?? 'v0.8.0';

export const kwokPath: string = join(k8sCacheDir, `kwok-${kwokVersion}`, 'kwok');

/** What a benchmark names when kwok is missing. */
export const kwokWhat = `kwok ${kwokVersion} (build it with \`node --import tsx scripts/k8s/build.ts --kwok\`; needs Go)`;

/** The built kwok binary, or undefined when it is missing. */
export function findKwok(): string | undefined {
  return isExecutable(kwokPath) && kwokStageFiles() ? kwokPath : undefined;
}

/**
 * Builds kwok when it is missing. Only the fleet benchmark needs it, so the tests' build
 * (scripts/k8s/build.ts without --kwok, as CI runs it) never pays for it.
 */
export function buildKwok(log: (message: string) => void = (m) => console.error(m)): string {
  if (isExecutable(kwokPath)) return kwokPath;
  const goCmd = goCommand();
  if (!goCmd) throw new Error(`Go is needed to build kwok ${kwokVersion}, and it is not installed`);
  const started = Date.now();
  log(`building kwok ${kwokVersion} from the Go module proxy into ${kwokPath} ...`);
  buildInto(kwokPath, (dir, partial) => {
    go(goCmd, dir, ['mod', 'init', 'local/kwok-bin']);
    writeFileSync(
      join(dir, 'tools.go'),
      '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kwok/cmd/kwok"\n',
    );
    go(goCmd, dir, ['get', `sigs.k8s.io/kwok@${kwokVersion}`]);
    go(goCmd, dir, ['mod', 'tidy']);
    go(goCmd, dir, ['build', '-trimpath', '-ldflags', '-s -w', '-o', partial, 'sigs.k8s.io/kwok/cmd/kwok']);
  });
  log(`built kwok ${kwokVersion} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return kwokPath;
}

/**
 * kwok's own stage definitions (node initialise + heartbeat with Lease, pod ready/complete/delete:
 * what `kwokctl` configures by default), read from the kwok module that `buildKwok` downloaded
 * into the Go module cache; kwok does nothing without stages. Undefined when they are not there.
 */
export function kwokStageFiles(): string[] | undefined {
  const goCmd = goCommand();
  if (!goCmd) return undefined;
  const modCache = spawnSync(goCmd, ['env', 'GOMODCACHE'], { encoding: 'utf8' }).stdout.trim();
  const dir = join(modCache, `sigs.k8s.io/kwok@${kwokVersion}`, 'kustomize', 'stage');
  const files = [
    'node/fast/node-initialize.yaml',
    'node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
    'pod/fast/pod-ready.yaml',
    'pod/fast/pod-complete.yaml',
    'pod/fast/pod-delete.yaml',
  ].map((f) => join(dir, f));
  return files.every((f) => existsSync(f)) ? files : undefined;
}

// ---- A real node: kubelet, and the controllers a DaemonSet needs (opt-in test, never CI's build) ----

/**
 * What turns the test control plane into a one-node cluster that runs a DaemonSet: the kubelet,
 * kube-controller-manager (the DaemonSet controller, service-account tokens, kube-root-ca.crt),
 * kube-scheduler (DaemonSet pods are bound by the default scheduler) and kube-proxy (the in-cluster
 * client's `kubernetes` Service address). All at the control plane's version; kubelet 1.36 still
 * accepts containerd 1.6's CRI (it falls back when the runtime lacks the RuntimeConfig call).
 */
export interface NodeBinaries {
  kubelet: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubeProxy: string;
}

export const nodeBinaryPaths: NodeBinaries = {
  kubelet: join(k8sCacheDir, kubernetesVersion, 'kubelet'),
  kubeControllerManager: join(k8sCacheDir, kubernetesVersion, 'kube-controller-manager'),
  kubeScheduler: join(k8sCacheDir, kubernetesVersion, 'kube-scheduler'),
  kubeProxy: join(k8sCacheDir, kubernetesVersion, 'kube-proxy'),
};

const nodeCommands: Record<keyof NodeBinaries, string> = {
  kubelet: 'kubelet',
  kubeControllerManager: 'kube-controller-manager',
  kubeScheduler: 'kube-scheduler',
  kubeProxy: 'kube-proxy',
};

/** What the kubelet test names when the node binaries are missing. */
export const nodeBinariesWhat = `kubelet, kube-controller-manager, kube-scheduler and kube-proxy ${kubernetesVersion} (build them with \`node --import tsx scripts/k8s/build.ts --node\`; needs Go)`;

/** The built node binaries, or undefined when any is missing. */
export function findNodeBinaries(): NodeBinaries | undefined {
  return Object.values(nodeBinaryPaths).every(isExecutable) ? nodeBinaryPaths : undefined;
}

/**
 * Builds whichever node binary is missing (several minutes on 2 cores, less once kube-apiserver's
 * packages are in Go's build cache). Only the opt-in kubelet test needs them, so CI's
 * `scripts/k8s/build.ts` (without --node) never pays for them. Throws when Go is not installed.
 */
export function buildNodeBinaries(log: (message: string) => void = (m) => console.error(m)): NodeBinaries {
  const missing = (Object.keys(nodeCommands) as (keyof NodeBinaries)[]).filter(
    (k) => !isExecutable(nodeBinaryPaths[k]),
  );
  if (missing.length === 0) return nodeBinaryPaths;
  const goCmd = goCommand();
  const names = missing.map((k) => nodeCommands[k]).join(', ');
  if (!goCmd) throw new Error(`Go is needed to build ${names} ${kubernetesVersion}, and it is not installed`);
  const started = Date.now();
  log(
    `building ${names} ${kubernetesVersion} from the Go module proxy into ${dirname(nodeBinaryPaths.kubelet)} ...`,
  );
  buildKubernetesCommands(
    goCmd,
    Object.fromEntries(missing.map((k) => [nodeCommands[k], nodeBinaryPaths[k]])),
  );
  log(`built ${names} ${kubernetesVersion} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return nodeBinaryPaths;
}
