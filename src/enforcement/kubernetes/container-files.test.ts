/**
 * A pod container's files in its evidence bundle: the writable layer of a real Podman container
 * placed in a kubepods cgroup (written files, a link to /etc/shadow, a file deleted from the
 * image), and kubelet log files from a pod-logs fixture — with attack tests (links out of the
 * logs directory) and the size caps (truncated, never a silent partial).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import tar from 'tar-stream';
import {
  buildPodTestImage,
  podmanPodAvailable,
  runPodContainer,
} from '../../agent/kubernetes/pod-container.test-helper.js';
import type { PodContainer, PodTestImage } from '../../agent/kubernetes/pod-container.test-helper.js';
import { requireOrSkip } from '../../testing/shared-data.js';
import { verifyBundle } from '../../linux/evidence.js';
import { copyPodLogs, tarWritableLayer } from './container-files.js';
import { writePodEvidence } from './pod-evidence.js';
import type { PodEvidenceInput } from './pod-evidence.js';

interface TarEntry {
  name: string;
  type: string;
  linkname?: string;
  body: Buffer;
}

async function readTar(path: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
    stream.on('end', () => {
      entries.push({
        name: header.name,
        type: header.type ?? 'file',
        ...(header.linkname ? { linkname: header.linkname } : {}),
        body: Buffer.concat(chunks),
      });
      next();
    });
    stream.resume();
  });
  await pipeline(createReadStream(path), extract as unknown as NodeJS.WritableStream);
  return entries;
}

const root = mkdtempSync(join(tmpdir(), 'containment-container-files-'));
after(() => rmSync(root, { recursive: true, force: true }));
const shadow = (() => {
  try {
    return readFileSync('/etc/shadow');
  } catch {
    return undefined;
  }
})();

/** A kubelet-style pod logs directory, with links out of it planted where a log would be. */
function podLogsFixture(uid: string): string {
  const dir = mkdtempSync(join(root, 'pod-logs-'));
  const pod = join(dir, `shop_web-0_${uid}`);
  mkdirSync(join(pod, 'app'), { recursive: true });
  writeFileSync(join(pod, 'app', '0.log'), '2026-01-01T00:00:00Z stdout F started\n');
  writeFileSync(join(pod, 'app', '1.log'), '2026-01-01T00:00:01Z stderr F boom\n');
  symlinkSync('/etc/shadow', join(pod, 'app', '2.log')); // a log file that is a link out
  symlinkSync('/etc', join(pod, 'sidecar')); // a container directory that is a link out
  symlinkSync('/etc', join(dir, `evil_web-0_${uid}`)); // a pod directory that is a link out
  mkdirSync(join(dir, `shop_other_${randomUUID()}`, 'app'), { recursive: true });
  writeFileSync(join(dir, `shop_other_${randomUUID()}`), 'another pod');
  return dir;
}

describe('writable layer tar and pod logs', () => {
  test('a layer fixture: files, links kept as links, whiteouts as .wh. entries, special files skipped', async () => {
    const layer = mkdtempSync(join(root, 'layer-'));
    mkdirSync(join(layer, 'etc'));
    writeFileSync(join(layer, 'etc', 'motd'), 'changed\n');
    symlinkSync('/etc/shadow', join(layer, 'etc', 'stolen'));
    symlinkSync('../../../../etc/shadow', join(layer, 'rel'));
    symlinkSync('/etc', join(layer, 'etcdir')); // a directory link out: kept as a link, never entered
    execFileSync('mknod', [join(layer, 'etc', 'removed'), 'c', '0', '0']);
    execFileSync('mkfifo', [join(layer, 'pipe')]);
    const out = join(root, 'layer.tar');
    const r = await tarWritableLayer(layer, out);
    assert.equal(r.file?.truncated, false);
    const entries = await readTar(out);
    const by = new Map(entries.map((e) => [e.name, e]));
    assert.equal(by.get('etc/motd')?.body.toString(), 'changed\n');
    assert.equal(by.get('etc/stolen')?.type, 'symlink');
    assert.equal(by.get('etc/stolen')?.linkname, '/etc/shadow');
    assert.equal(by.get('etc/stolen')?.body.length, 0);
    assert.equal(by.get('rel')?.type, 'symlink');
    assert.equal(by.get('etcdir')?.linkname, '/etc');
    assert.ok(!entries.some((e) => e.name.startsWith('etcdir/')), 'the linked directory was not walked');
    assert.equal(by.get('etc/.wh.removed')?.type, 'file');
    assert.equal(by.has('etc/removed'), false);
    assert.equal(by.has('pipe'), false);
    assert.match(r.notes.join(), /special files not archived: pipe/);
    if (shadow && shadow.length > 0)
      assert.ok(!readFileSync(out).includes(shadow), 'the host /etc/shadow is not in the tar');
  });

  test('the layer cap stops archiving at the entry that would pass it and says truncated', async () => {
    const layer = mkdtempSync(join(root, 'big-'));
    writeFileSync(join(layer, 'a-small'), 'x');
    writeFileSync(join(layer, 'b-big'), Buffer.alloc(64 * 1024, 1));
    writeFileSync(join(layer, 'c-after'), 'y');
    const out = join(root, 'big.tar');
    const r = await tarWritableLayer(layer, out, 16 * 1024);
    assert.equal(r.file?.truncated, true);
    assert.ok((r.file?.bytes ?? 0) <= 16 * 1024, `${r.file?.bytes} bytes`);
    assert.match(r.notes.join(), /16384-byte cap was reached at b-big .*truncated/);
    const names = (await readTar(out)).map((e) => e.name);
    assert.deepEqual(names, ['a-small'], 'a valid tar of what fitted, nothing after the cap');
  });

  test('pod logs: matched by pod UID, links out (file, container dir, pod dir) not followed, the cap truncates', async () => {
    const uid = randomUUID();
    const logsDir = podLogsFixture(uid);
    const bundle = mkdtempSync(join(root, 'logs-bundle-'));
    const r = await copyPodLogs({ podLogsDir: logsDir, podUid: uid, bundleDir: bundle });
    assert.deepEqual(
      r.files.map((f) => [f.path, f.truncated]),
      [
        ['logs/app/0.log', false],
        ['logs/app/1.log', false],
      ],
    );
    assert.equal(
      readFileSync(join(bundle, 'logs/app/1.log'), 'utf8'),
      '2026-01-01T00:00:01Z stderr F boom\n',
    );
    const note = r.notes.join('\n');
    assert.match(note, /links in the pod logs directory not followed: .*app\/2\.log/);
    assert.match(note, /sidecar/);
    assert.match(note, new RegExp(`evil_web-0_${uid}`));

    const capped = mkdtempSync(join(root, 'logs-capped-'));
    const c = await copyPodLogs({ podLogsDir: logsDir, podUid: uid, bundleDir: capped, maxBytes: 50 });
    assert.deepEqual(
      c.files.map((f) => [f.path, f.bytes, f.truncated]),
      [
        ['logs/app/0.log', 38, false],
        ['logs/app/1.log', 12, true],
      ],
    );
    assert.equal(readFileSync(join(capped, 'logs/app/1.log'), 'utf8'), '2026-01-01T0');
    assert.match(c.notes.join(), /50-byte log cap was reached .*truncated/);

    const none = await copyPodLogs({ podLogsDir: join(root, 'absent'), podUid: uid, bundleDir: capped });
    assert.deepEqual(none.files, []);
    assert.match(none.notes.join(), /pod logs directory .*absent.*no logs collected/);
  });

  describe('a real Podman container in a kubepods cgroup', () => {
    let image: PodTestImage | undefined;
    let container: PodContainer | undefined;
    const uid = randomUUID();
    const why = podmanPodAvailable();
    before(() => {
      if (why !== undefined) return;
      image = buildPodTestImage();
      container = runPodContainer(image, uid);
      const sh = (script: string): void => {
        execFileSync('podman', ['exec', container?.name ?? '', '/bin/busybox', 'sh', '-c', script], {
          stdio: 'pipe',
        });
      };
      sh(
        [
          '/bin/busybox mkdir -p /app/data',
          "/bin/busybox printf 'evil payload\\n' > /app/data/dropped.sh",
          '/bin/busybox ln -s /etc/shadow /app/data/shadow',
          '/bin/busybox rm /app/node_modules/minimist/package.json',
        ].join(' && '),
      );
    });
    after(() => {
      container?.remove();
      image?.remove();
    });

    test('the Snapshot bundle holds its changes (bytes, link as link, whiteout), its logs, all hashed', async (t) => {
      if (!requireOrSkip(t, why === undefined, `${why ?? ''} (a real pod container)`) || !container) return;
      const input: PodEvidenceInput = {
        evidenceDir: join(root, 'evidence'),
        namespace: 'shop',
        actionName: 'snap-real',
        actionUid: 'uid-real',
        node: 'n1',
        pod: { metadata: { name: 'web-0', uid }, spec: { nodeName: 'n1' } },
        events: [],
        containers: [{ containerId: container.id, pid: container.pid }],
        podLogsDir: podLogsFixture(uid),
      };
      const b = await writePodEvidence(input);
      assert.deepEqual(await verifyBundle(b.dir), []);
      const tarFile = b.manifest.files.find((f) => f.kind === 'filesystem-changes');
      assert.equal(tarFile?.path, `containers/${container.id}/filesystem-changes.tar`);
      assert.equal(tarFile?.truncated, undefined);
      assert.equal(b.manifest.truncated, undefined);
      const entries = await readTar(join(b.dir, tarFile?.path ?? ''));
      const by = new Map(entries.map((e) => [e.name, e]));
      assert.equal(by.get('app/data/dropped.sh')?.body.toString(), 'evil payload\n');
      assert.equal(by.get('app/data/shadow')?.type, 'symlink');
      assert.equal(by.get('app/data/shadow')?.linkname, '/etc/shadow');
      assert.equal(by.get('app/node_modules/minimist/.wh.package.json')?.type, 'file');
      if (shadow && shadow.length > 0)
        assert.ok(
          !readFileSync(join(b.dir, tarFile?.path ?? '')).includes(shadow),
          'no host /etc/shadow bytes',
        );
      assert.deepEqual(
        b.manifest.files.filter((f) => f.kind === 'logs').map((f) => f.path),
        ['logs/app/0.log', 'logs/app/1.log'],
      );

      // A cap smaller than the layer: the manifest says truncated, for the file and the bundle.
      const small = await writePodEvidence({
        ...input,
        actionName: 'snap-small',
        actionUid: 'u2',
        maxLayerBytes: 4096,
      });
      const capped = small.manifest.files.find((f) => f.kind === 'filesystem-changes');
      assert.equal(capped?.truncated, true);
      assert.equal(small.manifest.truncated, true);
      assert.match(small.manifest.notes.join(), /4096-byte cap was reached/);
      assert.deepEqual(await verifyBundle(small.dir), []);
    });

    test('a process that is not an overlay root gives a clear note instead of a tar', async (t) => {
      if (!requireOrSkip(t, why === undefined, `${why ?? ''} (a real pod container)`) || !container) return;
      const b = await writePodEvidence({
        evidenceDir: join(root, 'evidence'),
        namespace: 'shop',
        actionName: 'snap-hostroot',
        actionUid: 'u3',
        node: 'n1',
        pod: { metadata: { name: 'web-0', uid }, spec: { nodeName: 'n1' } },
        events: [],
        containers: [{ containerId: container.id, pid: container.pid }],
        // The layer's host path seen below a root where it does not exist.
        hostRoot: join(root, 'no-such-root'),
        podLogsDir: join(root, 'absent'),
      });
      assert.equal(
        b.manifest.files.some((f) => f.kind === 'filesystem-changes'),
        false,
      );
      assert.match(b.manifest.notes.join(), /writable layer .*no-such-root.*no filesystem-changes\.tar/);
    });
  });
});
