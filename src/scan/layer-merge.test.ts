/**
 * The overlay merge on hand-made walks: whiteouts, replaced types, opaque directories (told by the
 * merged listing), the merged walk's order, and giving up on a listing the layers do not explain.
 * The same merge against real Podman containers: `container-layers.test.ts`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileEntry } from '../inventory/context.js';
import type { RootFsStat } from '../inventory/fs/root-fs.js';
import { indexLower, mergeLayers, UnmergeableLayers, walkOrder } from './layer-merge.js';
import type { LayerWalk } from './layer-merge.js';

const stat = (type: RootFsStat['type'], mode = 0o644, extra: Partial<RootFsStat> = {}): RootFsStat => ({
  type,
  size: 1,
  mode: (type === 'directory' ? 0o040000 : type === 'symlink' ? 0o120000 : 0o100000) | mode,
  uid: 0,
  gid: 0,
  mtimeMs: 0,
  ...extra,
});
const dir = stat('directory', 0o755);
const file = stat('file');
const whiteout = stat('other', 0, { mode: 0o020000, rdev: 0 });

/** A walk in walk order from `path → stat` pairs given in any order. */
function walk(entries: Record<string, RootFsStat>): LayerWalk {
  const list: FileEntry[] = Object.entries(entries).map(([path, s]) => ({ path, stat: s }));
  list.sort((a, b) => walkOrder(a.path, b.path));
  return { root: dir, entries: list };
}

const lower = indexLower(
  walk({
    '/etc': dir,
    '/etc/os-release': file,
    '/var': dir,
    '/var/lib': dir,
    '/var/lib/dpkg': dir,
    '/var/lib/dpkg/status': file,
    '/var/lib/dpkg/info': dir,
    '/var/lib/dpkg/info/a.list': file,
    '/usr': dir,
    '/usr/lib': dir,
    '/usr/lib/x': file,
  }),
);

/** The merged listing a kernel would give for `entries` (the merged walk's children). */
function lister(merged: Record<string, string[]>): (d: string) => Promise<string[]> {
  return async (d) => merged[d] ?? assert.fail(`unexpected listing of ${d}`);
}

test('walk order: ancestors first, siblings by name, as the walk sorts them', () => {
  const paths = ['/a-b', '/a/b', '/a', '/ab', '/a/b/c', '/B', '/a/a'];
  assert.deepEqual([...paths].sort(walkOrder), ['/B', '/a', '/a/a', '/a/b', '/a/b/c', '/a-b', '/ab']);
});

test('a whiteout deletes the lower entry and what is below it; an added file is a change', async () => {
  const upper = walk({
    '/var': dir,
    '/var/lib': dir,
    '/var/lib/dpkg': whiteout,
    '/etc': dir,
    '/etc/new': file,
  });
  const merged = await mergeLayers(
    lower,
    upper,
    lister({ '/etc': ['os-release', 'new'], '/var': ['lib'], '/var/lib': [] }),
  );
  assert.deepEqual(
    merged.entries.map((e) => e.path),
    ['/etc', '/etc/new', '/etc/os-release', '/usr', '/usr/lib', '/usr/lib/x', '/var', '/var/lib'],
  );
  const changed = (p: string) => merged.changes.find((c) => c.path === p);
  for (const p of ['/var/lib/dpkg', '/var/lib/dpkg/status', '/var/lib/dpkg/info/a.list']) {
    assert.equal(changed(p)?.after, undefined, `${p} deleted`);
    assert.ok(changed(p)?.before, `${p} was there`);
  }
  assert.deepEqual(changed('/etc/new'), { path: '/etc/new', after: file });
  assert.equal(changed('/usr/lib/x'), undefined, 'untouched lower entries are no change');
});

test('an opaque directory hides the lower contents; a file over a directory replaces it', async () => {
  const upper = walk({
    '/var': dir,
    '/var/lib': dir,
    '/var/lib/dpkg': dir,
    '/var/lib/dpkg/status': file,
    '/usr': dir,
    '/usr/lib': file,
  });
  const merged = await mergeLayers(
    lower,
    upper,
    // The kernel lists only the upper entries of /var/lib/dpkg: it is opaque.
    lister({ '/var': ['lib'], '/var/lib': ['dpkg'], '/var/lib/dpkg': ['status'], '/usr': ['lib'] }),
  );
  assert.deepEqual(
    merged.entries.map((e) => e.path),
    [
      '/etc',
      '/etc/os-release',
      '/usr',
      '/usr/lib',
      '/var',
      '/var/lib',
      '/var/lib/dpkg',
      '/var/lib/dpkg/status',
    ],
  );
  const deleted = merged.changes.filter((c) => c.after === undefined).map((c) => c.path);
  assert.deepEqual(deleted.sort(), ['/usr/lib/x', '/var/lib/dpkg/info', '/var/lib/dpkg/info/a.list']);
  assert.equal(merged.entries.find((e) => e.path === '/usr/lib')?.stat.type, 'file');
});

test('a listing the layers cannot explain gives up (the caller walks the merged view)', async () => {
  const upper = walk({ '/etc': dir, '/etc/new': file });
  await assert.rejects(
    mergeLayers(lower, upper, lister({ '/etc': ['new', 'os-release', 'from-nowhere'] })),
    UnmergeableLayers,
  );
});
