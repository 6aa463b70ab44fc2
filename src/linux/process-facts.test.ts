/** The root overlay of a process, from mountinfo text as Podman and the newer mount API write it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rootOverlay } from './process-facts.js';

const storage = '/var/lib/containers/storage/overlay';
const root = (options: string, id = 121): string =>
  `${id} 68 0:52 / / rw,relatime - overlay overlay rw,${options},workdir=${storage}/c/work,uuid=on`;

test('layers, upper layer and the mounts inside the root', () => {
  const text = [
    root(`lowerdir=${storage}/l/AAA:${storage}/l/B\\040B,upperdir=${storage}/c/diff`),
    '122 121 0:55 / /proc rw,nosuid - proc proc rw',
    '130 121 254:0 /ud/hosts /etc/hosts rw - ext4 /dev/vda rw',
    '131 121 254:0 /vol /srv\\040data rw - ext4 /dev/vda rw',
    '132 121 0:60 / /run/secrets/kubernetes.io/serviceaccount ro,relatime - tmpfs tmpfs rw,size=4096k',
  ].join('\n');
  assert.deepEqual(rootOverlay(text), {
    lowerDirs: [`${storage}/l/AAA`, `${storage}/l/B B`],
    upperDir: `${storage}/c/diff`,
    mounts: [
      { path: '/proc', fsType: 'proc', readOnly: false },
      { path: '/etc/hosts', fsType: 'ext4', readOnly: false },
      { path: '/srv data', fsType: 'ext4', readOnly: false },
      // Read-only per mount (the sixth field), whatever the superblock's options say.
      { path: '/run/secrets/kubernetes.io/serviceaccount', fsType: 'tmpfs', readOnly: true },
    ],
    stacked: false,
  });
});

test('lowerdir+= options; a root mounted over the runtime one is flagged; no overlay, nothing', () => {
  const plus = root(`lowerdir+=/a,lowerdir+=/b,upperdir=/u`);
  assert.deepEqual(rootOverlay(plus)?.lowerDirs, ['/a', '/b']);
  const stacked = [plus, root('lowerdir=/etc,upperdir=/u', 140)].join('\n');
  assert.equal(rootOverlay(stacked)?.stacked, true);
  assert.equal(rootOverlay('1 0 8:1 / / rw - ext4 /dev/sda1 rw'), undefined);
});
