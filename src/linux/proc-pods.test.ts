/**
 * Process → pod container mapping: realistic `/proc/<pid>/cgroup` texts of every runtime and
 * cgroup driver, look-alikes that must not map, a fake /proc tree, and a real Podman container
 * placed in a kubepods cgroup on this host.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { requireOrSkip } from '../testing/shared-data.js';
import {
  buildPodTestImage,
  podmanPodAvailable,
  runPodContainer,
} from '../agent/kubernetes/pod-container.test-helper.js';
import { listPodProcesses, parsePodCgroup, parsePodCgroupPath } from './proc-pods.js';

const UID = '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9';
const UID_ = UID.replaceAll('-', '_');
const ID = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** A v1 (hybrid) file: every controller line names the same path, plus the unified line. */
function v1(path: string): string {
  return ['12:pids', '11:memory', '10:cpu,cpuacct', '1:name=systemd', '0:']
    .map((h) => `${h}:${path}`)
    .join('\n')
    .concat('\n');
}
const v2 = (path: string): string => `0::${path}\n`;

describe('parsePodCgroup', () => {
  const valid: [string, string][] = [
    ['containerd, cgroupfs v1, burstable', v1(`/kubepods/burstable/pod${UID}/${ID}`)],
    ['containerd, cgroupfs, guaranteed (no QoS level)', v1(`/kubepods/pod${UID}/${ID}`)],
    ['Docker, cgroupfs', v1(`/kubepods/besteffort/pod${UID}/${ID}`)],
    ['CRI-O, cgroupfs', v1(`/kubepods/burstable/pod${UID}/crio-${ID}`)],
    ['Podman, cgroupfs (libpod leaf)', v1(`/kubepods/besteffort/pod${UID}/libpod-${ID}`)],
    [
      'containerd, systemd, cgroup v2',
      v2(
        `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`,
      ),
    ],
    [
      'CRI-O, systemd, v2',
      v2(`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${ID}.scope`),
    ],
    [
      'CRI-O, systemd, v2 with its `container` sub-cgroup',
      v2(
        `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${ID}.scope/container`,
      ),
    ],
    ['Docker, systemd, guaranteed', v2(`/kubepods.slice/kubepods-pod${UID_}.slice/docker-${ID}.scope`)],
    [
      'kind (nested kubelet with cgroup root /kubelet)',
      v2(
        `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${ID}.scope`,
      ),
    ],
    [
      'cgroupfs under a prefix (docker-in-docker node)',
      v2(`/docker/${'a'.repeat(64)}/kubepods/pod${UID}/${ID}`),
    ],
  ];
  for (const [name, text] of valid) {
    test(name, () => assert.deepEqual(parsePodCgroup(text), { podUid: UID, containerId: ID }));
  }

  test('a static pod UID (32-hex config hash) is kept as is', () => {
    const hash = '7d3b6c0e1f2a4b5c8d9e0f1a2b3c4d5e';
    assert.deepEqual(parsePodCgroup(v1(`/kubepods/burstable/pod${hash}/${ID}`)), {
      podUid: hash,
      containerId: ID,
    });
    assert.deepEqual(parsePodCgroup(v2(`/kubepods.slice/kubepods-pod${hash}.slice/crio-${ID}.scope`)), {
      podUid: hash,
      containerId: ID,
    });
  });

  test('hybrid host: the unified line wins over v1 lines naming another container', () => {
    const other = 'f'.repeat(64);
    const text = `4:memory:/kubepods/pod${UID}/${other}\n0::/kubepods/pod${UID}/${ID}\n`;
    assert.equal(parsePodCgroup(text)?.containerId, ID);
    // An unparseable unified line ("/" on a v1 host) leaves the decision to the v1 lines.
    assert.equal(parsePodCgroup(`4:memory:/kubepods/pod${UID}/${other}\n0::/\n`)?.containerId, other);
  });

  const lookAlikes: [string, string][] = [
    ['the host', v1('/')],
    ['a systemd service', v2('/system.slice/sshd.service')],
    ['a plain Docker container (no pod)', v2(`/system.slice/docker-${ID}.scope`)],
    ['a plain Podman container', v1(`/libpod_parent/libpod-${ID}`)],
    ['the pod cgroup itself (no container)', v1(`/kubepods/burstable/pod${UID}`)],
    ['CRI-O conmon', v2(`/kubepods.slice/kubepods-pod${UID_}.slice/crio-conmon-${ID}.scope`)],
    ['Podman conmon', v1(`/kubepods/besteffort/pod${UID}/conmon`)],
    ['a short container id', v1(`/kubepods/pod${UID}/${ID.slice(0, 12)}`)],
    ['an upper-case id', v1(`/kubepods/pod${UID}/${ID.toUpperCase()}`)],
    ['a 65-character id', v1(`/kubepods/pod${UID}/${ID}0`)],
    ['an unknown runtime prefix', v1(`/kubepods/pod${UID}/evil-${ID}`)],
    ['a pod segment that is no UID', v1(`/kubepods/burstable/podnotauid/${ID}`)],
    ['a UID with underscores in a cgroupfs path', v1(`/kubepods/pod${UID_}/${ID}`)],
    ['a UID with dashes in a slice name', v2(`/kubepods.slice/kubepods-pod${UID}.slice/docker-${ID}.scope`)],
    ['a systemd leaf without .scope', v2(`/kubepods.slice/kubepods-pod${UID_}.slice/docker-${ID}`)],
    ['a systemd leaf with no runtime prefix', v2(`/kubepods.slice/kubepods-pod${UID_}.slice/${ID}.scope`)],
    ['a cgroupfs leaf with .scope', v1(`/kubepods/pod${UID}/${ID}.scope`)],
    ['an unknown QoS level', v1(`/kubepods/gold/pod${UID}/${ID}`)],
    ['a look-alike root name', v1(`/kubepodsx/pod${UID}/${ID}`)],
    ['a pod directory outside kubepods', v1(`/user.slice/pod${UID}/${ID}`)],
    ['garbage', 'not a cgroup file'],
    ['empty', ''],
  ];
  for (const [name, text] of lookAlikes) {
    test(`rejects ${name}`, () => assert.equal(parsePodCgroup(text), undefined));
  }

  test('parsePodCgroupPath takes a bare path', () => {
    assert.deepEqual(parsePodCgroupPath(`/kubepods/pod${UID}/${ID}`), { podUid: UID, containerId: ID });
  });
});

describe('listPodProcesses', () => {
  test('one entry per container with its lowest pid, from a /proc tree', async (t) => {
    const proc = mkdtempSync(join(tmpdir(), 'containment-proc-'));
    t.after(() => rmSync(proc, { recursive: true, force: true }));
    const other = 'c'.repeat(64);
    const files: Record<string, string> = {
      '1': v1('/'),
      '250': v1(`/kubepods/pod${UID}/${ID}`),
      '37': v1(`/kubepods/pod${UID}/${ID}`), // lower pid, same container
      '1200': v2(`/kubepods.slice/kubepods-pod${UID_}.slice/crio-${other}.scope`),
      '1199': v2(`/kubepods.slice/kubepods-pod${UID_}.slice/crio-conmon-${other}.scope`),
    };
    for (const [pid, text] of Object.entries(files)) {
      mkdirSync(join(proc, pid));
      writeFileSync(join(proc, pid, 'cgroup'), text);
    }
    mkdirSync(join(proc, '999')); // exited while listing: no cgroup file
    mkdirSync(join(proc, 'self'));
    writeFileSync(join(proc, 'self', 'cgroup'), v1(`/kubepods/pod${UID}/${'d'.repeat(64)}`));
    const found = (await listPodProcesses(proc)).sort((a, b) => a.pid - b.pid);
    assert.deepEqual(found, [
      { podUid: UID, containerId: ID, pid: 37 },
      { podUid: UID, containerId: other, pid: 1200 },
    ]);
  });

  test('finds a real Podman container placed in a kubepods cgroup', async (t) => {
    const why = podmanPodAvailable();
    if (!requireOrSkip(t, why === undefined, why ?? '')) return;
    const image = buildPodTestImage();
    t.after(() => image.remove());
    const container = runPodContainer(image, randomUUID());
    t.after(() => container.remove());
    const uid = container.podUid;
    const info = { Id: container.id, State: { Pid: container.pid } };
    const mine = (await listPodProcesses()).filter((p) => p.podUid === uid);
    assert.deepEqual(mine, [{ podUid: uid, containerId: info.Id, pid: info.State.Pid }]);
  });
});
