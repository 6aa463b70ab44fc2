/**
 * A real one-node Kubernetes cluster on this host for the opt-in kubelet test: the test control
 * plane (./control-plane.ts) served on a private bridge's address, kube-controller-manager and
 * kube-scheduler (DaemonSets need both), kube-proxy (nftables mode: the in-cluster client's
 * `kubernetes` Service), a kubelet, and Debian's containerd with Debian's CNI plugins behind it.
 * Nothing is pulled: images are OCI archives imported into containerd (./oci-image.ts), the pod
 * sandbox image included.
 *
 * Everything is private to this helper so it disturbs nothing else on the machine: containerd's
 * root, state and socket, the CNI configuration and address range (bridge `cntkl0`, 10.213.0.0/24),
 * kube-proxy's own nftables tables, and the kubelet's cgroup root (`/containment-kubelet-test`,
 * so its kubepods tree never meets the kubepods-shaped cgroups the Podman tests make: a kubelet
 * kills what it finds in pod cgroups it does not know). What cannot be private, said plainly: the
 * kubelet sets six kernel tunables it insists on (vm.overcommit_memory, kernel.panic, …); their
 * values are restored by `stop()`. One such node at a time (the paths are fixed).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { NodeBinaries } from './binaries.js';
import { freePort, startControlPlane } from './control-plane.js';
import type { ControlPlane } from './control-plane.js';

export const NODE_BASE = '/var/lib/containment-kubelet-test';
const RUN_DIR = '/run/containment-kubelet-test';
const CONTAINERD_SOCKET = join(RUN_DIR, 'containerd.sock');
const BRIDGE = 'cntkl0';
/** The node's address: the bridge's, where the API server listens and pods reach the host. */
export const NODE_ADDRESS = '10.213.0.1';
const POD_CIDR = '10.213.0.0/24';
const CGROUP_ROOT = '/containment-kubelet-test';
/** The pod sandbox ("pause") image the containerd configuration names; import it before pods run. */
export const SANDBOX_IMAGE = 'localhost/containment-pause:1';

/** Debian's containerd 1.6 (`apt install containerd`), runc and CNI plugins. */
const CONTAINERD = '/usr/bin/containerd';
const CTR = '/usr/bin/ctr';
const CNI_BIN = '/usr/lib/cni';

const SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
];

/** Undefined when this host can run the node; otherwise what is missing. */
export function nodePrerequisitesMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'root (a kubelet and containerd)';
  for (const [path, what] of [
    [CONTAINERD, 'containerd (apt install containerd)'],
    [CTR, 'ctr (apt install containerd)'],
    ['/usr/sbin/runc', 'runc (apt install runc)'],
    [join(CNI_BIN, 'bridge'), 'the CNI plugins (apt install containernetworking-plugins)'],
    ['/usr/sbin/nft', 'nft (apt install nftables), for kube-proxy'],
  ] as const)
    if (!existsSync(path)) return what;
  if (existsSync(CONTAINERD_SOCKET) && spawnSync(CTR, ['-a', CONTAINERD_SOCKET, 'version']).status === 0)
    return `no other test node (one runs: ${CONTAINERD_SOCKET} answers)`;
  return undefined;
}

export interface TestCluster {
  cp: ControlPlane;
  nodeName: string;
  /** Where each component logs (for a failing test's message). */
  logs: Record<string, string>;
  /** `ctr -n k8s.io …` against this node's containerd. */
  ctr(args: string[]): string;
  /** The last lines of every component's log. */
  logTails(lines?: number): string;
  /** Deletes every pod, stops every component, and removes what they left (state, bridge, rules). */
  stop(): Promise<void>;
}

export interface TestClusterOptions {
  binaries: NodeBinaries;
  /** OCI archives (./oci-image.ts) imported into containerd before the kubelet starts. */
  images: string[];
  nodeName?: string;
  /** How long to wait for the node to become Ready. Default 180 s (a loaded 2-core machine is slow). */
  readyTimeoutMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The bridge the CNI plugin will use, made now so the API server can bind its address first. */
function ensureBridge(): void {
  if (spawnSync('ip', ['link', 'show', BRIDGE], { stdio: 'ignore' }).status !== 0)
    must('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  const addrs = must('ip', ['-4', 'addr', 'show', 'dev', BRIDGE]);
  if (!addrs.includes(`${NODE_ADDRESS}/`)) must('ip', ['addr', 'add', `${NODE_ADDRESS}/24`, 'dev', BRIDGE]);
  must('ip', ['link', 'set', BRIDGE, 'up']);
}

/** The kubelet's cgroup root must exist in every hierarchy (v1 controllers and the unified one). */
function cgroupHierarchies(): string[] {
  const dirs: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    const fsType = fields[sep + 1];
    if (fsType === 'cgroup' || fsType === 'cgroup2') dirs.push(fields[4] as string);
  }
  return dirs;
}

/** Removes a cgroup tree bottom-up (the kubelet leaves its kubepods tree behind). */
function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  spawnSync('rmdir', [dir]);
}

/**
 * The kubelet's own iptables chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, …; kube-proxy here uses
 * nftables, so every KUBE- chain is the kubelet's): the rules jumping to them, then the chains.
 */
function removeKubeletIptablesRules(): void {
  for (const cmd of ['iptables', 'ip6tables'])
    for (const table of ['filter', 'nat', 'mangle']) {
      const r = spawnSync(cmd, ['-w', '-t', table, '-S'], { encoding: 'utf8' });
      if (r.status !== 0) continue;
      const lines = r.stdout.split('\n');
      for (const line of lines.filter(
        (l) => l.startsWith('-A ') && l.includes(' -j KUBE-') && !l.startsWith('-A KUBE-'),
      ))
        spawnSync(cmd, ['-w', '-t', table, '-D', ...splitRule(line.slice(3))]);
      const chains = lines.filter((l) => l.startsWith('-N KUBE-')).map((l) => l.slice(3).trim());
      for (const chain of chains) spawnSync(cmd, ['-w', '-t', table, '-F', chain]);
      for (const chain of chains) spawnSync(cmd, ['-w', '-t', table, '-X', chain]);
    }
}

/** An `iptables -S` rule's words, keeping quoted comments whole. */
function splitRule(rule: string): string[] {
  return [...rule.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? (m[2] as string));
}

function containerdConfig(): string {
  return `version = 2
root = "${join(NODE_BASE, 'containerd')}"
state = "${join(RUN_DIR, 'containerd')}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${CONTAINERD_SOCKET}"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${join(NODE_BASE, 'opt')}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${SANDBOX_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # This sandbox refuses lowering oom_score_adj below 0 (writing -998 fails with EIO), which the CRI
  # asks for every pod sandbox: runc then dies ("can't get final child's PID from pipe: EOF").
  # Restricted, containerd never sets a score below its own (0).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN}"
    conf_dir = "${join(NODE_BASE, 'cni', 'net.d')}"
`;
}

function cniConfig(): string {
  return JSON.stringify({
    cniVersion: '0.4.0',
    name: 'containment-kubelet-test',
    plugins: [
      {
        type: 'bridge',
        bridge: BRIDGE,
        // The bridge's address is the pods' default route: Service addresses (10.0.0.x) are only
        // rewritten by kube-proxy once a packet reaches this host.
        isGateway: true,
        isDefaultGateway: true,
        // Pods talk to this host only (API server, scanner): no masquerading, no host firewall rules.
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: POD_CIDR, gateway: NODE_ADDRESS }]],
          dataDir: join(NODE_BASE, 'cni', 'ipam'),
        },
      },
      { type: 'loopback' },
    ],
  });
}

interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
}

/** Starts the cluster; throws with the components' log tails when it does not come up. */
export async function startTestCluster(options: TestClusterOptions): Promise<TestCluster> {
  const missing = nodePrerequisitesMissing();
  if (missing) throw new Error(`cannot run a test node: missing ${missing}`);
  const nodeName = options.nodeName ?? 'containment-node';
  const { binaries } = options;
  rmSync(RUN_DIR, { recursive: true, force: true });
  for (const d of ['containerd', 'kubelet', 'cni/net.d', 'pod-logs', 'logs'])
    mkdirSync(join(NODE_BASE, d), { recursive: true });
  mkdirSync(RUN_DIR, { recursive: true });
  const logDir = join(NODE_BASE, 'logs');
  const procs: Proc[] = [];
  const logs: Record<string, string> = {};
  const sysctls = new Map(SYSCTLS.map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8').trim()]));
  let cp: ControlPlane | undefined;

  const launch = (name: string, cmd: string, args: string[]): Proc => {
    const log = join(logDir, `${name}.log`);
    const fd = openSync(log, 'w');
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.on('error', () => undefined);
    const p = { name, child, log };
    procs.push(p);
    logs[name] = log;
    return p;
  };
  const logTails = (lines = 20): string =>
    Object.entries(logs)
      .map(([name, file]) => `--- ${name} (${file}) ---\n${tail(file, lines)}`)
      .join('\n');
  const ctr = (args: string[]): string => must(CTR, ['-a', CONTAINERD_SOCKET, '-n', 'k8s.io', ...args]);

  const stopProc = async (p: Proc): Promise<void> => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return;
    p.child.kill('SIGTERM');
    for (let i = 0; i < 100 && p.child.exitCode === null && p.child.signalCode === null; i++)
      await sleep(100);
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  };

  const stop = async (): Promise<void> => {
    // Pods first, while the kubelet runs: it stops their containers and the CNI plugin frees their
    // addresses and veths (StopPodSandbox), so nothing is left for the hard way below.
    if (cp) {
      const kubelet = procs.find((p) => p.name === 'kubelet');
      if (kubelet && kubelet.child.exitCode === null) {
        const list = await cp.request('GET', '/api/v1/pods').catch(() => undefined);
        const pods =
          (list?.json as { items?: { metadata: { namespace: string; name: string } }[] })?.items ?? [];
        for (const p of pods)
          await cp
            .request('DELETE', `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`, {
              body: { gracePeriodSeconds: 0 },
            })
            .catch(() => undefined);
        for (let i = 0; i < 150; i++) {
          const r = spawnSync(CTR, ['-a', CONTAINERD_SOCKET, '-n', 'k8s.io', 'tasks', 'ls', '-q'], {
            encoding: 'utf8',
          });
          if (r.status !== 0 || r.stdout.trim() === '') break;
          await sleep(200);
        }
      }
    }
    for (const name of ['kube-scheduler', 'kube-controller-manager', 'kubelet']) {
      const p = procs.find((q) => q.name === name);
      if (p) await stopProc(p);
    }
    // Whatever still runs (a pod the kubelet could not stop in time): kill its task, drop it.
    if (procs.some((p) => p.name === 'containerd' && p.child.exitCode === null)) {
      const tasks = spawnSync(CTR, ['-a', CONTAINERD_SOCKET, '-n', 'k8s.io', 'tasks', 'ls', '-q'], {
        encoding: 'utf8',
      });
      for (const id of tasks.stdout?.split('\n').filter(Boolean) ?? []) {
        spawnSync(CTR, ['-a', CONTAINERD_SOCKET, '-n', 'k8s.io', 'tasks', 'kill', '-s', 'SIGKILL', id]);
        spawnSync(CTR, ['-a', CONTAINERD_SOCKET, '-n', 'k8s.io', 'tasks', 'rm', '-f', id]);
      }
    }
    const proxy = procs.find((p) => p.name === 'kube-proxy');
    if (proxy) {
      await stopProc(proxy);
      // Its nftables tables (kube-proxy leaves its rules behind on exit, by design).
      spawnSync(binaries.kubeProxy, ['--cleanup', '--proxy-mode=nftables'], {
        stdio: 'ignore',
        timeout: 60_000,
      });
    }
    const containerd = procs.find((p) => p.name === 'containerd');
    if (containerd) await stopProc(containerd);
    if (cp) await cp.stop();
    for (const [k, v] of sysctls) {
      try {
        writeFileSync(`/proc/sys/${k}`, v);
      } catch {
        // Read-only here: nothing was changed either.
      }
    }
    // Mounts containerd and the kubelet made under their roots (overlay rootfs, shm, secrets).
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m.startsWith(`${NODE_BASE}/`) || m.startsWith(`${RUN_DIR}/`))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    for (const h of cgroupHierarchies()) removeCgroupTree(join(h, CGROUP_ROOT));
    removeKubeletIptablesRules();
    spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
    rmSync(RUN_DIR, { recursive: true, force: true });
    for (const d of ['containerd', 'kubelet', 'cni', 'pod-logs', 'opt'])
      rmSync(join(NODE_BASE, d), { recursive: true, force: true });
  };

  try {
    ensureBridge();
    for (const h of cgroupHierarchies()) mkdirSync(join(h, CGROUP_ROOT), { recursive: true });
    cp = await startControlPlane({ name: 'kubelet-test', nodeAddress: NODE_ADDRESS });

    writeFileSync(join(NODE_BASE, 'containerd.toml'), containerdConfig());
    writeFileSync(join(NODE_BASE, 'cni', 'net.d', '10-containment.conflist'), cniConfig());
    const containerd = launch('containerd', CONTAINERD, ['--config', join(NODE_BASE, 'containerd.toml')]);
    for (let i = 0; ; i++) {
      if (spawnSync(CTR, ['-a', CONTAINERD_SOCKET, 'version'], { stdio: 'ignore' }).status === 0) break;
      if (containerd.child.exitCode !== null || i > 150)
        throw new Error(`containerd did not start:\n${tail(containerd.log, 20)}`);
      await sleep(200);
    }
    for (const image of options.images) ctr(['images', 'import', image]);

    const kubeconfig = cp.kubeconfigPath;
    const [kubeletPort, kubeletHealthz, proxyHealthz, proxyMetrics] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const kubeletConfig = join(NODE_BASE, 'kubelet-config.json');
    writeFileSync(
      kubeletConfig,
      JSON.stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        address: NODE_ADDRESS,
        port: kubeletPort,
        readOnlyPort: 0,
        healthzBindAddress: '127.0.0.1',
        healthzPort: kubeletHealthz,
        authentication: {
          anonymous: { enabled: false },
          webhook: { enabled: true },
          x509: { clientCAFile: join(cp.dir, 'ca.crt') },
        },
        authorization: { mode: 'Webhook' },
        containerRuntimeEndpoint: `unix://${CONTAINERD_SOCKET}`,
        cgroupDriver: 'cgroupfs',
        cgroupRoot: CGROUP_ROOT,
        // This host has cgroup v1 controllers (a hybrid hierarchy); kubelet 1.35+ refuses them unless told.
        failCgroupV1: false,
        failSwapOn: false,
        podLogsDir: join(NODE_BASE, 'pod-logs'),
        resolvConf: '/etc/resolv.conf',
        // The imported images cannot be pulled again: never garbage-collect them, never evict for disk.
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
        rotateCertificates: false,
        serializeImagePulls: false,
        syncFrequency: '10s',
        fileCheckFrequency: '10s',
      }),
    );
    launch('kubelet', binaries.kubelet, [
      `--config=${kubeletConfig}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${join(NODE_BASE, 'kubelet')}`,
      `--cert-dir=${join(NODE_BASE, 'kubelet', 'pki')}`,
      `--hostname-override=${nodeName}`,
      `--node-ip=${NODE_ADDRESS}`,
      '--v=2',
    ]);
    // What both controllers take: the admin's credentials, no leader election, loopback serving.
    const controllerArgs = async (): Promise<string[]> => [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${await freePort()}`,
    ];
    launch('kube-controller-manager', binaries.kubeControllerManager, [
      ...(await controllerArgs()),
      `--service-account-private-key-file=${join(cp.dir, 'sa.key')}`,
      `--root-ca-file=${join(cp.dir, 'ca.crt')}`,
      '--use-service-account-credentials=false',
      '--cluster-name=kubelet-test',
    ]);
    launch('kube-scheduler', binaries.kubeScheduler, await controllerArgs());
    launch('kube-proxy', binaries.kubeProxy, [
      `--kubeconfig=${kubeconfig}`,
      '--proxy-mode=nftables',
      `--hostname-override=${nodeName}`,
      `--cluster-cidr=${POD_CIDR}`,
      `--healthz-bind-address=127.0.0.1:${proxyHealthz}`,
      `--metrics-bind-address=127.0.0.1:${proxyMetrics}`,
      // Leave the host's conntrack table size alone.
      '--conntrack-max-per-core=0',
    ]);

    const deadline = Date.now() + (options.readyTimeoutMs ?? 180_000);
    for (;;) {
      const dead = procs.find((p) => p.child.exitCode !== null);
      if (dead) throw new Error(`${dead.name} exited (${dead.child.exitCode}):\n${tail(dead.log, 30)}`);
      const r = await cp.request('GET', `/api/v1/nodes/${nodeName}`).catch(() => undefined);
      const conditions =
        (r?.json as { status?: { conditions?: { type: string; status: string }[] } } | undefined)?.status
          ?.conditions ?? [];
      if (conditions.some((c) => c.type === 'Ready' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`node ${nodeName} was not Ready in time:\n${logTails()}`);
      await sleep(500);
    }
    return { cp, nodeName, logs, ctr, logTails, stop };
  } catch (err) {
    const tails = logTails();
    await stop();
    throw new Error(`${(err as Error).message}\n${tails}`, { cause: err });
  }
}
