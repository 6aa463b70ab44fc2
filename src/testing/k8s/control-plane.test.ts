import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { requireOrSkip } from '../shared-data.js';
import { hasCommand, mustRun } from '../tools.js';
import { binariesWhat, findBinaries } from './binaries.js';
import { startControlPlane } from './control-plane.js';
import type { ControlPlane } from './control-plane.js';

const binaries = findBinaries();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function items(json: unknown): string[] {
  return ((json as { items?: { metadata: { name: string } }[] }).items ?? []).map((i) => i.metadata.name);
}

describe('Kubernetes test control plane (real etcd + kube-apiserver)', () => {
  let a: ControlPlane | undefined;
  let b: ControlPlane | undefined;

  before(async () => {
    if (!binaries) return;
    // Two at once, as the multi-cluster tests will need.
    [a, b] = await Promise.all([
      startControlPlane({ binaries, name: 'cluster-a' }),
      startControlPlane({ binaries, name: 'cluster-b' }),
    ]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('is ready and serves the REST API to the admin certificate', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !a) return;
    const ready = await a.request('GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.text, 'ok');

    const ns = await a.request('POST', '/api/v1/namespaces', {
      body: { metadata: { name: 'harness-test' } },
    });
    assert.equal(ns.status, 201, ns.text);
    const cm = await a.request('POST', '/api/v1/namespaces/harness-test/configmaps', {
      body: { metadata: { name: 'settings' }, data: { mode: 'quarantine' } },
    });
    assert.equal(cm.status, 201, cm.text);
    const read = await a.request('GET', '/api/v1/namespaces/harness-test/configmaps/settings');
    assert.equal(read.status, 200);
    assert.deepEqual((read.json as { data: unknown }).data, { mode: 'quarantine' });
    // A namespace that does not exist is refused: the server really validates, it does not echo.
    const orphan = await a.request('POST', '/api/v1/namespaces/missing/configmaps', {
      body: { metadata: { name: 'x' } },
    });
    assert.equal(orphan.status, 404);
  });

  it('writes a kubeconfig whose credentials are the admin certificate for this server', (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !a) return;
    const file = JSON.parse(readFileSync(a.kubeconfigPath, 'utf8')) as {
      clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
      users: { user: { 'client-certificate-data': string } }[];
      'current-context': string;
    };
    assert.equal(file['current-context'], 'cluster-a');
    assert.equal(file.clusters[0]?.cluster.server, a.server);
    assert.equal(
      Buffer.from(file.clusters[0]?.cluster['certificate-authority-data'] ?? '', 'base64').toString(),
      a.caPem,
    );
    assert.equal(
      Buffer.from(file.users[0]?.user['client-certificate-data'] ?? '', 'base64').toString(),
      a.admin.certPem,
    );
    assert.equal(a.kubeConfig.clusters[0]?.server, a.server);
    assert.equal(a.kubeConfig.users[0]?.certData, file.users[0]?.user['client-certificate-data']);
  });

  it('gives a kubeconfig file a real client (kubectl) authenticates with as the admin', (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !a) return;
    // kubectl is not in Debian's own archive, so it is optional even under CI; the kubeconfig's
    // contents are checked above either way.
    if (!hasCommand('kubectl')) {
      t.skip('kubectl not installed: the kubeconfig is not tried with a real client');
      return;
    }
    const review = JSON.parse(
      mustRun('kubectl', ['--kubeconfig', a.kubeconfigPath, 'auth', 'whoami', '-o', 'json']),
    ) as {
      status: { userInfo: { username: string; groups: string[] } };
    };
    assert.equal(review.status.userInfo.username, 'containment-admin');
    assert.ok(review.status.userInfo.groups.includes('system:masters'));
  });

  it('enforces RBAC: anonymous, unbound and forged clients are refused', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !a) return;
    const anonymous = await a.request('GET', '/api/v1/namespaces', { as: 'anonymous' });
    assert.ok([401, 403].includes(anonymous.status), `anonymous got ${anonymous.status}`);

    const alice = a.issueClient('alice', ['team-a']);
    assert.equal((await a.request('GET', '/api/v1/namespaces', { as: alice })).status, 403);
    const rbac = '/apis/rbac.authorization.k8s.io/v1';
    const role = await a.request('POST', `${rbac}/clusterroles`, {
      body: {
        metadata: { name: 'namespace-reader' },
        rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list'] }],
      },
    });
    assert.equal(role.status, 201, role.text);
    const binding = await a.request('POST', `${rbac}/clusterrolebindings`, {
      body: {
        metadata: { name: 'team-a-namespace-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'namespace-reader' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'team-a' }],
      },
    });
    assert.equal(binding.status, 201, binding.text);
    // The authorizer learns of new bindings through a watch: allow it a moment.
    let list = await a.request('GET', '/api/v1/namespaces', { as: alice });
    for (let i = 0; i < 50 && list.status === 403; i++) {
      await new Promise((r) => setTimeout(r, 100));
      list = await a.request('GET', '/api/v1/namespaces', { as: alice });
    }
    assert.equal(list.status, 200, list.text);
    assert.ok(items(list.json).includes('default'));
    // The binding grants reading, and nothing more.
    const del = await a.request('DELETE', '/api/v1/namespaces/default', { as: alice });
    assert.equal(del.status, 403);

    // A certificate claiming system:masters, signed by a CA the server does not trust.
    const forged = mustRun(
      'openssl',
      'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /O=system:masters/CN=mallory -keyout - -out -'.split(
        ' ',
      ),
    );
    const mallory = {
      user: 'mallory',
      groups: ['system:masters'],
      keyPem: /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(forged)?.[0] ?? '',
      certPem: /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(forged)?.[0] ?? '',
    };
    // The server asks for client certificates without requiring them, so the handshake succeeds
    // and authentication fails: 401, not anonymous access.
    const status = await a.request('GET', '/api/v1/namespaces', { as: mallory });
    assert.equal(status.status, 401, status.text);
  });

  it('keeps two control planes apart: own data, own CA', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !a || !b) return;
    assert.notEqual(a.server, b.server);
    assert.notEqual(a.dir, b.dir);
    assert.equal(
      (await b.request('POST', '/api/v1/namespaces', { body: { metadata: { name: 'only-in-b' } } })).status,
      201,
    );
    assert.equal((await a.request('GET', '/api/v1/namespaces/only-in-b')).status, 404);
    assert.equal((await b.request('GET', '/api/v1/namespaces/only-in-b')).status, 200);
    // A's admin presented to B: B does not trust A's CA.
    const crossed = await b.request('GET', '/api/v1/namespaces', { as: a.admin });
    assert.equal(crossed.status, 401, crossed.text);
  });

  it('stops the processes and deletes the data dir', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !a) return;
    const { dir, pids } = a;
    assert.ok(existsSync(`${dir}/etcd`), 'etcd data dir exists while running');
    await a.stop();
    a = undefined;
    assert.equal(existsSync(dir), false);
    assert.equal(isAlive(pids.etcd), false);
    assert.equal(isAlive(pids.kubeApiserver), false);
  });
});
