/**
 * The SecurityAction CRD against a real kube-apiserver: valid objects accepted, invalid ones
 * refused, and the API server and the zod contract (src/enforcement/security-action.ts) agree on
 * a table of samples — for the spec and for the status subresource.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { actionStatusSchema, securityActionSchema } from '../enforcement/security-action.js';
import { binariesWhat, findBinaries } from '../testing/k8s/binaries.js';
import { startControlPlane } from '../testing/k8s/control-plane.js';
import type { ApiResponse, ControlPlane } from '../testing/k8s/control-plane.js';
import { requireOrSkip } from '../testing/shared-data.js';
import { installCrd, loadCrdManifest } from './crd.test-helper.js';
import { API_VERSION, CRD_NAME, KIND } from './security-action-api.js';

const binaries = findBinaries();
const messageOf = (json: unknown): string => (json as { message?: string } | undefined)?.message ?? '';
const NS = 'crd-test';
const base = `/apis/${API_VERSION}/namespaces/${NS}/securityactions`;

const target = { namespace: NS, pod: 'web-0' };
type Sample = [label: string, spec: unknown, name?: string];
const specSamples: Sample[] = [
  ['minimal Quarantine', { target, action: 'Quarantine' }],
  [
    'every field',
    {
      target: { ...target, container: 'app', uid: '2f0a7c8e-1b2c-4d5e-8f90-a1b2c3d4e5f6' },
      action: 'TerminateGraceful',
      gracePeriodSeconds: 3600,
      reason: 'CVE-2024-0001 in openssl',
      findingsRef: 'scan/123',
      requestedBy: 'policy/reference@abc',
      dryRun: true,
    },
  ],
  ['grace 0', { target, action: 'Terminate', gracePeriodSeconds: 0 }],
  ['each action kind: Release', { target, action: 'Release' }],
  ['each action kind: Snapshot', { target, action: 'Snapshot' }],
  ['empty reason', { target, action: 'Snapshot', reason: '' }],
  ['128-character name', { target, action: 'Snapshot' }, 'a'.repeat(128)],
  // Refused by both:
  ['no target', { action: 'Quarantine' }],
  ['no action', { target }],
  ['unknown action', { target, action: 'Nuke' }],
  ['action in the wrong case', { target, action: 'quarantine' }],
  ['empty pod', { target: { namespace: NS, pod: '' }, action: 'Quarantine' }],
  ['no namespace in the target', { target: { pod: 'web-0' }, action: 'Quarantine' }],
  ['254-character pod', { target: { namespace: NS, pod: 'p'.repeat(254) }, action: 'Quarantine' }],
  ['negative grace', { target, action: 'TerminateGraceful', gracePeriodSeconds: -1 }],
  ['grace above an hour', { target, action: 'TerminateGraceful', gracePeriodSeconds: 3601 }],
  ['fractional grace', { target, action: 'TerminateGraceful', gracePeriodSeconds: 1.5 }],
  ['grace as a string', { target, action: 'TerminateGraceful', gracePeriodSeconds: '30' }],
  ['reason too long', { target, action: 'Quarantine', reason: 'r'.repeat(4097) }],
  ['findingsRef too long', { target, action: 'Quarantine', findingsRef: 'f'.repeat(1025) }],
  ['dryRun not a boolean', { target, action: 'Quarantine', dryRun: 'yes' }],
  ['misspelt field', { target, action: 'TerminateGraceful', gracePeriod: 5 }],
  ['unknown target field', { target: { ...target, node: 'n1' }, action: 'Quarantine' }],
  ['129-character name', { target, action: 'Snapshot' }, 'a'.repeat(129)],
  ['no spec', undefined],
];

const hash = 'a'.repeat(64);
const at = '2026-01-01T00:00:00Z';
const statusSamples: [string, unknown][] = [
  ['phase only', { phase: 'Running' }],
  [
    'complete',
    {
      phase: 'Succeeded',
      node: 'n1',
      startedAt: at,
      completedAt: at,
      message: 'done',
      evidence: [{ kind: 'manifest', uri: 'file:///x', sha256: hash, bytes: 10 }],
      conditions: [
        { type: 'PodLabelled', status: 'True', reason: 'Labelled', message: 'm', lastTransitionTime: at },
      ],
    },
  ],
  ['no phase', { node: 'n1' }],
  ['unknown phase', { phase: 'Done' }],
  ['bad sha256', { phase: 'Succeeded', evidence: [{ kind: 'k', uri: 'u', sha256: 'XYZ', bytes: 1 }] }],
  ['negative bytes', { phase: 'Succeeded', evidence: [{ kind: 'k', uri: 'u', sha256: hash, bytes: -1 }] }],
  [
    'condition status not True/False/Unknown',
    { phase: 'Failed', conditions: [{ type: 't', status: 'Maybe', lastTransitionTime: at }] },
  ],
  ['condition without time', { phase: 'Failed', conditions: [{ type: 't', status: 'True' }] }],
];

describe('SecurityAction CRD (real kube-apiserver)', () => {
  let cp: ControlPlane | undefined;

  before(async () => {
    if (!binaries) return;
    cp = await startControlPlane({ binaries, name: 'crd-test' });
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions(cp.kubeConfig);
    await installCrd(kc);
    assert.equal(
      (await cp.request('POST', '/api/v1/namespaces', { body: { metadata: { name: NS } } })).status,
      201,
    );
  });
  after(async () => {
    await cp?.stop();
  });

  it('is namespaced, v1alpha1, with a status subresource and the printer columns', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const crd = loadCrdManifest();
    assert.equal(crd.metadata?.name, CRD_NAME);
    assert.equal(crd.spec.scope, 'Namespaced');
    const created = await cp.request('POST', base, {
      body: {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: 'printed' },
        spec: { target, action: 'Quarantine' },
      },
    });
    assert.equal(created.status, 201, created.text);
    const obj = created.json as { metadata: { resourceVersion: string }; spec: Record<string, unknown> };
    // The schema's defaults, as the zod schema applies them.
    assert.deepEqual(
      { grace: obj.spec.gracePeriodSeconds, reason: obj.spec.reason, dryRun: obj.spec.dryRun },
      { grace: 30, reason: '', dryRun: false },
    );
    // Status only through the subresource: a status in the main resource is ignored.
    const withStatus = { ...obj, status: { phase: 'Running', node: 'node-1' } };
    const main = await cp.request('PUT', `${base}/printed`, { body: withStatus });
    assert.equal(main.status, 200, main.text);
    assert.equal((main.json as { status?: unknown }).status, undefined);
    const sub = await cp.request('PUT', `${base}/printed/status`, {
      body: main.json === undefined ? withStatus : { ...(main.json as object), status: withStatus.status },
    });
    assert.equal(sub.status, 200, sub.text);

    const table = await cp.request('GET', base, {});
    assert.equal(table.status, 200);
    const asTable = await new Promise<{
      columnDefinitions: { name: string }[];
      rows: { cells: unknown[] }[];
    }>((resolve, reject) => {
      void import('node:https').then(({ default: https }) => {
        const req = https.request(
          new URL(base, cp!.server),
          {
            ca: cp!.caPem,
            cert: cp!.admin.certPem,
            key: cp!.admin.keyPem,
            headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
          },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve(JSON.parse(text) as never));
          },
        );
        req.on('error', reject);
        req.end();
      });
    });
    const columns = asTable.columnDefinitions.map((c) => c.name);
    for (const c of ['Action', 'Target', 'Phase', 'Node', 'Age'])
      assert.ok(columns.includes(c), `column ${c} in ${columns.join(',')}`);
    const row = asTable.rows[0]?.cells ?? [];
    const cell = (name: string): unknown => row[columns.indexOf(name)];
    assert.deepEqual(
      [cell('Action'), cell('Target'), cell('Phase'), cell('Node')],
      ['Quarantine', 'web-0', 'Running', 'node-1'],
    );
  });

  it('agrees with the zod contract on every spec sample (accepted by one ⇔ accepted by the other)', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    let refused = 0;
    for (const [i, [label, spec, name]] of specSamples.entries()) {
      const object = {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: name ?? `sample-${i}` },
        ...(spec === undefined ? {} : { spec }),
      };
      const zodOk = securityActionSchema.safeParse(object).success;
      // Strict field validation, as kubectl applies it: unknown fields are errors, not pruned.
      const r: ApiResponse = await cp.request('POST', `${base}?dryRun=All&fieldValidation=Strict`, {
        body: object,
      });
      const serverOk: boolean = r.status === 201;
      if (!serverOk) {
        refused++;
        assert.ok([400, 422].includes(r.status), `${label}: refused with ${r.status}: ${r.text}`);
      }
      assert.equal(
        serverOk,
        zodOk,
        `${label}: API server ${r.status} (${r.text.slice(0, 200)}), zod ${zodOk ? 'accepts' : 'refuses'}`,
      );
    }
    assert.ok(refused >= 15, `${refused} invalid samples refused`);
  });

  it('refuses invalid objects with 422 and says which field is wrong', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const post = (spec: unknown, name: string) =>
      cp!.request('POST', base, { body: { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec } });
    const enumRefused = await post({ target, action: 'Nuke' }, 'bad-action');
    assert.equal(enumRefused.status, 422);
    assert.match(messageOf(enumRefused.json), /spec\.action: Unsupported value: "Nuke"/);
    const grace = await post({ target, action: 'TerminateGraceful', gracePeriodSeconds: 7200 }, 'bad-grace');
    assert.equal(grace.status, 422);
    assert.match(messageOf(grace.json), /spec\.gracePeriodSeconds/);
    const noPod = await post({ target: { namespace: NS }, action: 'Snapshot' }, 'no-pod');
    assert.equal(noPod.status, 422);
    assert.match(messageOf(noPod.json), /spec\.target\.pod: Required value/);
    // Nothing was stored.
    for (const name of ['bad-action', 'bad-grace', 'no-pod'])
      assert.equal((await cp.request('GET', `${base}/${name}`)).status, 404);
  });

  it('agrees with the zod contract on status samples written through the status subresource', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const created = await cp.request('POST', base, {
      body: {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: 'status-target' },
        spec: { target, action: 'Snapshot' },
      },
    });
    assert.equal(created.status, 201, created.text);
    const object = created.json as Record<string, unknown>;
    for (const [label, status] of statusSamples) {
      const zodOk = actionStatusSchema.safeParse(status).success;
      const r: ApiResponse = await cp.request(
        'PUT',
        `${base}/status-target/status?dryRun=All&fieldValidation=Strict`,
        {
          body: { ...object, status },
        },
      );
      const serverOk: boolean = r.status === 200;
      assert.equal(
        serverOk,
        zodOk,
        `${label}: API server ${r.status} (${r.text.slice(0, 200)}), zod ${zodOk ? 'accepts' : 'refuses'}`,
      );
    }
  });
});
