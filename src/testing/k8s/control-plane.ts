/**
 * A real Kubernetes control plane for tests: etcd + kube-apiserver (see ./binaries.ts) on free
 * loopback ports, with a fresh CA, serving certificate, service-account key pair and an admin
 * client certificate (O=system:masters), RBAC authorization on. Every instance lives in its own
 * temp dir with its own ports, so several may run at once (one per simulated cluster).
 * No controller-manager, scheduler or kubelet runs: namespaces are never finalized, there is no
 * garbage collection, and pods are API objects only (set spec.nodeName yourself).
 */
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinaries } from './binaries.js';
import type { ControlPlaneBinaries } from './binaries.js';

/** The shape `@kubernetes/client-node`'s `KubeConfig.loadFromOptions` accepts (base64 PEM data). */
export interface KubeConfigOptions {
  clusters: { name: string; server: string; caData: string }[];
  users: { name: string; certData: string; keyData: string }[];
  contexts: { name: string; cluster: string; user: string }[];
  currentContext: string;
}

/** A client certificate issued by the control plane's CA: authenticates as `user` in `groups`. */
export interface ClientCredentials {
  user: string;
  groups: string[];
  certPem: string;
  keyPem: string;
}

export interface ApiResponse {
  status: number;
  text: string;
  /** The parsed JSON body, or undefined when the body is not JSON. */
  json: unknown;
}

export interface RequestOptions {
  body?: unknown;
  /** Defaults to `application/json`; use e.g. `application/merge-patch+json` for PATCH. */
  contentType?: string;
  /** Whose certificate to present; 'anonymous' presents none. Defaults to the admin. */
  as?: ClientCredentials | 'anonymous';
  /** Act as this user (`Impersonate-User`), e.g. `system:serviceaccount:<ns>:<name>`. */
  impersonate?: string;
  /** Reuse connections (many requests in a row); default: one connection per request. */
  agent?: https.Agent;
  timeoutMs?: number;
}

/** What `npm run k8s:down` needs to stop a control plane another process started. */
export interface ControlPlaneState {
  name: string;
  dir: string;
  server: string;
  kubeconfigPath: string;
  pids: { etcd: number; kubeApiserver: number };
  binaries: ControlPlaneBinaries;
}

export interface ControlPlane extends ControlPlaneState {
  caPem: string;
  admin: ClientCredentials;
  /** The admin's kubeconfig, for `new KubeConfig().loadFromOptions(...)`. */
  kubeConfig: KubeConfigOptions;
  /** Issues a client certificate for any user/groups (no RBAC bindings are created). */
  issueClient(user: string, groups?: string[]): ClientCredentials;
  kubeConfigFor(client: ClientCredentials): KubeConfigOptions;
  /** One HTTPS request to the API server (admin by default). */
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  /**
   * Compacts etcd's history up to its current revision, as kube-apiserver does every 5 minutes:
   * afterwards a watch from an older resourceVersion is answered 410 Gone. (A fresh etcd keeps
   * its whole history, so without this even resourceVersion "1" is not too old.)
   */
  compact(): Promise<void>;
  /** Stops etcd and kube-apiserver and deletes the instance's dir (data, certs, logs). */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Names the cluster, context and user in the kubeconfig. Default `containment-test`. */
  name?: string;
  binaries?: ControlPlaneBinaries;
  /** Let the processes outlive this one (for `npm run k8s:up`); otherwise they die with it. */
  detached?: boolean;
  /** How long to wait for `/readyz`. Default 90 s (a loaded 2-core machine is slow). */
  readyTimeoutMs?: number;
  /**
   * kube-apiserver's watch cache (default on). Off, every watch is served by etcd, so after
   * `compact()` a watch from an older resourceVersion gets 410 Gone. With it on, a fresh cache
   * (nothing evicted yet) answers any old resourceVersion with its current objects as ADDED.
   */
  watchCache?: boolean;
  /**
   * Serve a real node (./node.ts) on this non-loopback address of the host instead of 127.0.0.1:
   * the API server binds and advertises it (the `kubernetes` Service's endpoint), its certificate
   * also names it and the Service's IP 10.0.0.1, the ServiceAccount admission plugin mounts tokens
   * into pods, and it calls kubelets with a client certificate of the test CA.
   */
  nodeAddress?: string;
}

/** The `kubernetes` Service's ClusterIP: the first address of `--service-cluster-ip-range`. */
export const kubernetesServiceIp = '10.0.0.1';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

function newEcKey(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

/** `/O=a/O=b/CN=c`, escaping the characters openssl's -subj treats specially. */
function subject(cn: string, orgs: string[]): string {
  const esc = (v: string): string => v.replace(/[\\/+=,]/g, (c) => `\\${c}`);
  return [...orgs.map((o) => `/O=${esc(o)}`), `/CN=${esc(cn)}`].join('');
}

/** A small PKI in `dir`, driven through the real openssl CLI. */
class Pki {
  private serial = 0;
  private clients = 0;
  constructor(private readonly dir: string) {
    writeFileSync(join(dir, 'ca.key'), newEcKey(), { mode: 0o600 });
    this.sign('ca', '/CN=containment-test-ca', [
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
    ]);
  }

  get caPem(): string {
    return readFileSync(join(this.dir, 'ca.crt'), 'utf8');
  }

  /** Writes `<name>.crt` (and `<name>.key` unless present) signed by the CA; self-signed for 'ca'. */
  sign(name: string, subj: string, extensions: string[]): { certPem: string; keyPem: string } {
    const keyFile = join(this.dir, `${name}.key`);
    if (!existsSync(keyFile)) writeFileSync(keyFile, newEcKey(), { mode: 0o600 });
    const cnf = `${name}-${++this.serial}.cnf`;
    writeFileSync(
      join(this.dir, cnf),
      `[req]\ndistinguished_name = dn\n[dn]\n[ext]\n${extensions.join('\n')}\n`,
    );
    const signer = name === 'ca' ? [] : ['-CA', 'ca.crt', '-CAkey', 'ca.key'];
    openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        `${name}.key`,
        ...signer,
        '-config',
        cnf,
        '-extensions',
        'ext',
        '-subj',
        subj,
        '-days',
        '7',
        '-out',
        `${name}.crt`,
      ],
      this.dir,
    );
    rmSync(join(this.dir, cnf));
    return {
      certPem: readFileSync(join(this.dir, `${name}.crt`), 'utf8'),
      keyPem: readFileSync(keyFile, 'utf8'),
    };
  }

  client(user: string, groups: string[]): ClientCredentials {
    const file = `client-${++this.clients}`;
    const { certPem, keyPem } = this.sign(file, subject(user, groups), [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = clientAuth',
    ]);
    return { user, groups, certPem, keyPem };
  }
}

/** A TCP port free on 127.0.0.1 right now (someone may take it before it is bound: retry on that). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True when `pid` still runs `binary` (a reused pid must never be killed). */
function runs(pid: number, binary: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === binary;
  } catch {
    return false;
  }
}

async function terminate(pid: number, binary: string): Promise<void> {
  if (!runs(pid, binary)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(100);
  if (runs(pid, binary)) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(100);
}

/** True when both processes of `state` still run (for a control plane another process started). */
export function isControlPlaneRunning(state: ControlPlaneState): boolean {
  return (
    runs(state.pids.etcd, state.binaries.etcd) && runs(state.pids.kubeApiserver, state.binaries.kubeApiserver)
  );
}

/** Stops a control plane from its state (this process's or another's) and deletes its dir. */
export async function stopControlPlane(state: ControlPlaneState): Promise<void> {
  // The API server first, so it does not log a storm of etcd connection errors.
  await terminate(state.pids.kubeApiserver, state.binaries.kubeApiserver);
  await terminate(state.pids.etcd, state.binaries.etcd);
  rmSync(state.dir, { recursive: true, force: true });
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

interface Launched {
  pid: number;
  exited: () => boolean;
  log: string;
}

function launch(binary: string, args: string[], log: string, detached: boolean): Launched {
  const fd = openSync(log, 'a');
  const child = spawn(binary, args, { stdio: ['ignore', fd, fd], detached });
  closeSync(fd);
  let exited = false;
  child.on('exit', () => (exited = true));
  child.on('error', () => (exited = true));
  if (detached) child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${binary}`);
  return { pid: child.pid, exited: () => exited, log };
}

async function waitFor(
  what: string,
  proc: Launched,
  deadline: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  while (Date.now() < deadline) {
    if (proc.exited()) throw new Error(`${what} exited during startup:\n${logTail(proc.log)}`);
    if (await probe().catch(() => false)) return;
    await sleep(150);
  }
  throw new Error(`${what} was not ready in time:\n${logTail(proc.log)}`);
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/** etcd's JSON gateway (the v3 API over HTTP): the current revision, then a compaction to it. */
async function compactEtcd(etcdUrl: string): Promise<void> {
  const post = async (path: string, body: object): Promise<unknown> => {
    const res = await fetch(`${etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  };
  const range = (await post('/v3/kv/range', { key: Buffer.from('/').toString('base64'), limit: 1 })) as {
    header?: { revision?: string };
  };
  const revision = range.header?.revision;
  if (revision === undefined) throw new Error('etcd /v3/kv/range: no revision in the answer');
  await post('/v3/kv/compaction', { revision, physical: true });
}

function apiRequest(
  server: string,
  caPem: string,
  method: string,
  path: string,
  options: RequestOptions = {},
  admin?: ClientCredentials,
): Promise<ApiResponse> {
  const client = options.as === 'anonymous' ? undefined : (options.as ?? admin);
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(path, server),
      {
        method,
        ca: caPem,
        cert: client?.certPem,
        key: client?.keyPem,
        ...(options.agent === undefined ? {} : { agent: options.agent }),
        timeout: options.timeoutMs ?? 10_000,
        headers: {
          accept: 'application/json',
          ...(options.impersonate === undefined ? {} : { 'Impersonate-User': options.impersonate }),
          ...(body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.end(body);
  });
}

function kubeConfigOf(
  name: string,
  server: string,
  caPem: string,
  client: ClientCredentials,
): KubeConfigOptions {
  return {
    clusters: [{ name, server, caData: b64(caPem) }],
    users: [{ name: client.user, certData: b64(client.certPem), keyData: b64(client.keyPem) }],
    contexts: [{ name, cluster: name, user: client.user }],
    currentContext: name,
  };
}

/** The same configuration as a kubeconfig file (JSON is valid kubeconfig YAML). */
function kubeconfigFile(options: KubeConfigOptions): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: options.clusters.map((c) => ({
        name: c.name,
        cluster: { server: c.server, 'certificate-authority-data': c.caData },
      })),
      users: options.users.map((u) => ({
        name: u.name,
        user: { 'client-certificate-data': u.certData, 'client-key-data': u.keyData },
      })),
      contexts: options.contexts.map((c) => ({
        name: c.name,
        context: { cluster: c.cluster, user: c.user },
      })),
      'current-context': options.currentContext,
    },
    null,
    2,
  );
}

const portInUse = (log: string): boolean => /address already in use/i.test(logTail(log));

/**
 * Starts etcd and kube-apiserver and resolves once `/readyz` answers 200 to the admin. Throws when
 * the binaries are missing (check with `findBinaries()` + `requireOrSkip` first).
 */
export async function startControlPlane(options: StartOptions = {}): Promise<ControlPlane> {
  const binaries = options.binaries ?? findBinaries();
  if (!binaries)
    throw new Error('kube-apiserver/etcd are not built: run `node --import tsx scripts/k8s/build.ts`');
  // A free port can be taken by someone else before our process binds it: retry on that race.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binaries, options);
    } catch (err) {
      if (!(err instanceof PortRaceError) || attempt === 3)
        throw err instanceof PortRaceError ? err.cause : err;
    }
  }
}

class PortRaceError extends Error {}

async function startOnce(binaries: ControlPlaneBinaries, options: StartOptions): Promise<ControlPlane> {
  const name = options.name ?? 'containment-test';
  const detached = options.detached ?? false;
  const dir = mkdtempSync(join(tmpdir(), 'containment-k8s-'));
  const started: Launched[] = [];
  const killAll = (): void => {
    for (const p of started) {
      try {
        if (!p.exited()) process.kill(p.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Without this, a test run that crashes would leave API servers and etcd data behind.
  const onExit = detached ? undefined : killAll;
  try {
    const pki = new Pki(dir);
    pki.sign('apiserver', '/CN=kube-apiserver', [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = IP:127.0.0.1,DNS:localhost${options.nodeAddress ? `,IP:${options.nodeAddress},IP:${kubernetesServiceIp}` : ''}`,
    ]);
    const admin = pki.client('containment-admin', ['system:masters']);
    const address = options.nodeAddress ?? '127.0.0.1';
    const nodeFlags: string[] = [];
    if (options.nodeAddress) {
      const kubeletClient = pki.client('kube-apiserver-kubelet-client', ['system:masters']);
      writeFileSync(join(dir, 'kubelet-client.crt'), kubeletClient.certPem);
      writeFileSync(join(dir, 'kubelet-client.key'), kubeletClient.keyPem, { mode: 0o600 });
      nodeFlags.push(
        `--kubelet-client-certificate=${join(dir, 'kubelet-client.crt')}`,
        `--kubelet-client-key=${join(dir, 'kubelet-client.key')}`,
        // A test node's hostname resolves nowhere; its InternalIP is the address it serves on.
        '--kubelet-preferred-address-types=InternalIP',
      );
    }
    const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));

    const [etcdPort, peerPort, securePort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const server = `https://${address}:${securePort}`;
    if (onExit) process.on('exit', onExit);
    const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);

    const etcd = launch(
      binaries.etcd,
      [
        '--name=default',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        // Test data is thrown away: durability only costs time.
        '--unsafe-no-fsync=true',
      ],
      join(dir, 'etcd.log'),
      detached,
    );
    started.push(etcd);
    await waitFor('etcd', etcd, deadline, () => httpOk(`${etcdUrl}/health`)).catch((err: Error) => {
      throw portInUse(etcd.log) ? new PortRaceError('port race', { cause: err }) : err;
    });

    const apiserver = launch(
      binaries.kubeApiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        `--secure-port=${securePort}`,
        `--bind-address=${address}`,
        // Without it, startup fails on hosts that have no default route.
        `--advertise-address=${address}`,
        `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
        `--client-ca-file=${join(dir, 'ca.crt')}`,
        '--authorization-mode=RBAC',
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        `--service-account-issuer=${server}`,
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        // No controller-manager creates the `default` ServiceAccount this plugin would require
        // (a real node's test runs one, and its pods need their tokens).
        ...(options.nodeAddress ? nodeFlags : ['--disable-admission-plugins=ServiceAccount']),
        ...(options.watchCache === false ? ['--watch-cache=false'] : []),
      ],
      join(dir, 'kube-apiserver.log'),
      detached,
    );
    started.push(apiserver);
    const caPem = pki.caPem;
    await waitFor(
      'kube-apiserver',
      apiserver,
      deadline,
      async () => (await apiRequest(server, caPem, 'GET', '/readyz', {}, admin)).status === 200,
    ).catch((err: Error) => {
      throw portInUse(apiserver.log) ? new PortRaceError('port race', { cause: err }) : err;
    });

    const kubeConfig = kubeConfigOf(name, server, caPem, admin);
    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigFile(kubeConfig), { mode: 0o600 });
    const state: ControlPlaneState = {
      name,
      dir,
      server,
      kubeconfigPath,
      pids: { etcd: etcd.pid, kubeApiserver: apiserver.pid },
      binaries,
    };
    return {
      ...state,
      caPem,
      admin,
      kubeConfig,
      issueClient: (user, groups = []) => pki.client(user, groups),
      kubeConfigFor: (client) => kubeConfigOf(name, server, caPem, client),
      request: (method, path, opts) => apiRequest(server, caPem, method, path, opts, admin),
      compact: () => compactEtcd(etcdUrl),
      stop: async () => {
        if (onExit) process.off('exit', onExit);
        await stopControlPlane(state);
      },
    };
  } catch (err) {
    if (onExit) process.off('exit', onExit);
    killAll();
    throw err;
  }
}

/** A TLS serving certificate and the test CA that signed it (the CA goes into a webhook's caBundle). */
export interface TestServingCertificate {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * A fresh CA and a serving certificate it signed for `hosts` (IPs or DNS names; default
 * 127.0.0.1 and localhost), for servers the API server calls back, such as admission webhooks.
 */
export function createTestServingCertificate(
  hosts: readonly string[] = ['127.0.0.1', 'localhost'],
): TestServingCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'containment-serving-cert-'));
  try {
    const pki = new Pki(dir);
    const san = hosts.map((h) => (net.isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
    const { certPem, keyPem } = pki.sign('serving', `/CN=${hosts[0] ?? 'localhost'}`, [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = ${san}`,
    ]);
    return { caPem: pki.caPem, certPem, keyPem };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
