import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isContainmentError } from '../errors.js';
import { insecureDeployment } from '../testing/harden-fixture.js';
import { hardenWorkload, parseFieldPath, strategicMergeDiff } from './harden.js';
import { checkPodSecurity } from './pod-security.js';
import { metadataPathOf, podTemplateOf } from './workload-pods.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  volumes: 'name',
  ports: 'containerPort',
};

/**
 * Strategic merge as the API server applies it, for the fields these patches touch (the same
 * patches are applied by a real kube-apiserver in src/admission/admission-webhook.test.ts).
 */
function applyPatch(target: Obj, patch: Obj): Obj {
  const out: Obj = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    const mergeKey = MERGE_KEYS[key];
    if (value === null) delete out[key];
    else if (mergeKey && Array.isArray(value) && Array.isArray(out[key])) {
      const list = [...(out[key] as Obj[])];
      for (const item of value as Obj[]) {
        const i = list.findIndex((e) => e[mergeKey] === item[mergeKey]);
        if (i >= 0) list[i] = applyPatch(list[i] as Obj, item);
        else list.push(item);
      }
      out[key] = list;
    } else if (isObj(value) && isObj(out[key])) out[key] = applyPatch(out[key] as Obj, value);
    else out[key] = value;
  }
  return out;
}

function restrictedViolations(object: unknown): string[] {
  const t = podTemplateOf(object);
  assert.ok(t);
  return checkPodSecurity(
    'restricted',
    { ...(t.metadata ? { metadata: t.metadata } : {}), spec: t.spec },
    {
      specPath: t.specPath,
      metadataPath: metadataPathOf(t.specPath),
    },
  ).map((v) => `${v.path}: ${v.message}`);
}

describe('harden', () => {
  it('the patch brings the insecure fixture to restricted: no violations left', () => {
    const fixture = insecureDeployment();
    assert.ok(restrictedViolations(fixture).length >= 10, 'the fixture really is insecure');
    const result = hardenWorkload(fixture);
    assert.deepEqual(result.remaining, []);
    const patched = applyPatch(fixture, result.patch);
    assert.deepEqual(restrictedViolations(patched), []);
    // The input is not modified.
    assert.deepEqual(fixture, insecureDeployment());
  });

  it('sets the securityContext the issue asks for, keeping NET_BIND_SERVICE only where it was added', () => {
    const { patch, notes } = hardenWorkload(insecureDeployment());
    const spec = ((patch.spec as Obj).template as Obj).spec as Obj;
    assert.deepEqual(spec.securityContext, {
      runAsUser: null,
      seccompProfile: { type: 'RuntimeDefault' },
      sysctls: [{ name: 'kernel.shm_rmid_forced', value: '1' }],
      runAsNonRoot: true,
    });
    const containers = spec.containers as Obj[];
    const web = containers.find((c) => c.name === 'web') as Obj;
    assert.deepEqual(web.securityContext, {
      capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] },
      allowPrivilegeEscalation: false,
    });
    const agent = containers.find((c) => c.name === 'agent') as Obj;
    assert.deepEqual((agent.securityContext as Obj).capabilities, { drop: ['ALL'] });
    assert.equal((agent.securityContext as Obj).privileged, false);
    assert.deepEqual((spec.initContainers as Obj[])[0], {
      name: 'setup',
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
    });
    // What cannot simply be tightened is removed, and said so.
    assert.equal(spec.hostNetwork, false);
    assert.equal(spec.hostPID, false);
    assert.deepEqual(spec.volumes, [{ name: 'host-logs', hostPath: null, emptyDir: {} }]);
    assert.ok(notes.some((n) => n.includes('hostPath /var/log replaced by an emptyDir')));
    assert.ok(notes.some((n) => n.includes('hostNetwork') && n.includes('check the workload still works')));
    assert.ok(notes.some((n) => n.includes('NET_ADMIN removed')));
    assert.ok(notes.some((n) => n.includes('kernel.msgmax')));
    assert.deepEqual(((patch.spec as Obj).template as Obj).metadata, {
      annotations: { 'container.apparmor.security.beta.kubernetes.io/web': 'runtime/default' },
    });
  });

  it('an already restricted workload gets an empty patch and no notes', () => {
    const fixture = insecureDeployment();
    const hardened = applyPatch(fixture, hardenWorkload(fixture).patch);
    const again = hardenWorkload(hardened);
    assert.deepEqual(again.patch, {});
    assert.deepEqual(again.notes, []);
  });

  it('flags what it cannot fix: volume types restricted forbids, ephemeral containers; Pods are immutable', () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'x' },
      spec: {
        containers: [{ name: 'a', image: 'r/a:1' }],
        ephemeralContainers: [{ name: 'dbg', image: 'r/dbg:1', securityContext: { privileged: true } }],
        volumes: [{ name: 'share', nfs: { server: 'nfs.local', path: '/export' } }],
      },
    };
    const result = hardenWorkload(pod);
    assert.deepEqual(
      result.remaining.map((v) => v.path).sort(),
      [
        'spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation',
        'spec.ephemeralContainers[0].securityContext.capabilities.drop',
        'spec.ephemeralContainers[0].securityContext.privileged',
        'spec.volumes[0].nfs',
      ].sort(),
    );
    assert.ok(result.notes.some((n) => n.startsWith('not fixed automatically: spec.volumes[0].nfs')));
    assert.ok(result.notes.some((n) => n.includes('mostly immutable')));
    assert.equal(((result.patch.spec as Obj).containers as Obj[])[0]?.name, 'a');
  });

  it('refuses objects that own no pods, with a stable code', () => {
    assert.throws(
      () => hardenWorkload({ kind: 'Service', metadata: { name: 's' }, spec: {} }),
      (e) => isContainmentError(e) && e.code === 'MANIFEST_INVALID' && /kind Service/.test(e.message),
    );
  });

  it('field paths and strategic-merge differences', () => {
    assert.deepEqual(parseFieldPath('spec.a[2]["x.y/z"].b'), ['spec', 'a', 2, 'x.y/z', 'b']);
    assert.deepEqual(
      strategicMergeDiff(
        {
          containers: [
            { name: 'a', x: 1 },
            { name: 'b', x: 1 },
          ],
          gone: 1,
          same: { k: 1 },
        },
        {
          containers: [
            { name: 'a', x: 1 },
            { name: 'b', x: 2 },
          ],
          same: { k: 1 },
        },
      ),
      { gone: null, containers: [{ name: 'b', x: 2 }] },
    );
    // Elements without their merge key: the whole list is replaced.
    assert.deepEqual(strategicMergeDiff({ containers: [{ x: 1 }] }, { containers: [{ x: 2 }] }), {
      containers: [{ x: 2 }],
    });
    assert.equal(strategicMergeDiff({ a: [1] }, { a: [1] }), undefined);
  });
});
