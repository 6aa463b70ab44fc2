/** Pod objects → container ids and workload identities; /proc facts (pure parsers). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import { PodIndex, imageDigestOf, podWorkloadIdentity, runtimeContainerId, specUser } from './pod-index.js';
import { effectiveUid, rootUpperDir, uidInside } from '../../linux/process-facts.js';

const UID = '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9';
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const I = 'c'.repeat(64);
const DIGEST = `sha256:${'d'.repeat(64)}`;

function pod(overrides: Partial<k8s.V1ObjectMeta> = {}, statuses?: k8s.V1PodStatus): k8s.V1Pod {
  return {
    metadata: { name: 'web', namespace: 'shop', uid: UID, ...overrides },
    spec: {
      nodeName: 'node-a',
      securityContext: { runAsUser: 1000 },
      containers: [{ name: 'app', securityContext: { runAsUser: 33 } }, { name: 'sidecar' }],
      initContainers: [{ name: 'init' }],
    },
    status: statuses ?? {
      containerStatuses: [
        {
          name: 'app',
          containerID: `containerd://${A}`,
          image: 'registry.example/shop/web:1.0',
          imageID: `registry.example/shop/web@${DIGEST}`,
          ready: true,
          restartCount: 0,
        },
        // Waiting: no container id yet.
        { name: 'sidecar', image: 'busybox', imageID: '', ready: false, restartCount: 0 },
      ],
      initContainerStatuses: [
        {
          name: 'init',
          containerID: `cri-o://${I}`,
          image: 'init:1',
          imageID: `sha256:${'e'.repeat(64)}`,
          ready: false,
          restartCount: 0,
        },
      ],
    },
  };
}

describe('pod index', () => {
  test('container ids of every kind of container status, from any runtime', () => {
    assert.equal(runtimeContainerId(`containerd://${A}`), A);
    assert.equal(runtimeContainerId(`cri-o://${A}`), A);
    assert.equal(runtimeContainerId(`docker://${A}`), A);
    assert.equal(runtimeContainerId(''), undefined);
    assert.equal(runtimeContainerId(undefined), undefined);
    const index = new PodIndex();
    index.upsert(pod());
    assert.equal(index.size, 2);
    assert.equal(index.lookup({ podUid: UID, containerId: A })?.status.name, 'app');
    assert.equal(index.lookup({ podUid: UID, containerId: I })?.status.name, 'init');
  });

  test('the cgroup pod UID must be the pod’s own (or its static pod’s for a mirror)', () => {
    const index = new PodIndex();
    index.upsert(pod());
    assert.equal(index.lookup({ podUid: '00000000-0000-4000-8000-000000000000', containerId: A }), undefined);
    const mirror = new PodIndex();
    const hash = '7d3b6c0e1f2a4b5c8d9e0f1a2b3c4d5e';
    mirror.upsert(pod({ annotations: { 'kubernetes.io/config.mirror': hash } }));
    assert.equal(mirror.lookup({ podUid: hash, containerId: A })?.status.name, 'app');
  });

  test('an update replaces what was known; a delete forgets it', () => {
    const index = new PodIndex();
    index.upsert(pod());
    // Restarted: a new container id, the old one is no longer the pod's.
    index.upsert(
      pod(
        {},
        {
          containerStatuses: [
            {
              name: 'app',
              containerID: `containerd://${B}`,
              image: 'x',
              imageID: '',
              ready: true,
              restartCount: 1,
            },
          ],
        },
      ),
    );
    assert.equal(index.lookup({ podUid: UID, containerId: A }), undefined);
    assert.equal(index.lookup({ podUid: UID, containerId: B })?.status.restartCount, 1);
    index.remove(pod());
    assert.equal(index.size, 0);
  });

  test('workload identity: pod namespace and name, container name, node, image and its manifest digest', () => {
    const index = new PodIndex();
    index.upsert(pod());
    const app = index.lookup({ podUid: UID, containerId: A });
    assert.ok(app);
    assert.deepEqual(podWorkloadIdentity(app, { cluster: 'east', node: 'node-a' }), {
      cluster: 'east',
      namespace: 'shop',
      pod: 'web',
      container: 'app',
      node: 'node-a',
      image: 'registry.example/shop/web:1.0',
      imageDigest: DIGEST,
    });
    assert.equal(specUser(app), '33');
    const init = index.lookup({ podUid: UID, containerId: I });
    assert.ok(init);
    // A bare image id is no manifest digest.
    assert.equal(podWorkloadIdentity(init, { cluster: 'east', node: 'node-a' }).imageDigest, undefined);
    assert.equal(specUser(init), '1000', 'the pod-level runAsUser');
    assert.equal(imageDigestOf(`docker-pullable://nginx@${DIGEST}`), DIGEST);
    assert.equal(imageDigestOf('nginx@sha256:short'), undefined);
  });
});

describe('process facts', () => {
  test('effective uid, mapped into the container’s user namespace', () => {
    assert.equal(effectiveUid('Name:\tsleep\nUid:\t0\t100999\t0\t0\nGid:\t0\t0\t0\t0\n'), 100999);
    assert.equal(uidInside(0, '         0          0 4294967295\n'), 0);
    assert.equal(uidInside(100999, '         0     100000      65536\n'), 999);
    assert.equal(uidInside(5, '         0     100000      65536\n'), undefined);
  });

  test('the writable layer of the overlay mounted at /', () => {
    const mountinfo = [
      '1230 1100 0:88 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/l/ABC,upperdir=/var/lib/containers/storage/overlay/f00/diff,workdir=/var/lib/containers/storage/overlay/f00/work',
      '1231 1230 0:90 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
      '1232 1230 0:91 / /data rw - overlay overlay rw,lowerdir=/x,upperdir=/not/root,workdir=/y',
    ].join('\n');
    assert.equal(rootUpperDir(mountinfo), '/var/lib/containers/storage/overlay/f00/diff');
    assert.equal(
      rootUpperDir(
        '1 0 0:1 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/with\\040space/diff,workdir=/w',
      ),
      '/with space/diff',
    );
    assert.equal(rootUpperDir('1 0 8:1 / / rw - ext4 /dev/sda1 rw'), undefined);
  });
});
