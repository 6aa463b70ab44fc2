import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ErrorCodes } from '../errors.js';
import type { AdvisoryStore } from './advisory-store.js';
import { DEFAULT_OSV_BASE_URL, downloadAndImport, ecosystemArchiveUrl } from './download.js';
import type { UpdateProgress } from './download.js';
import { openSqliteAdvisoryStore } from './sqlite-store.js';
import { buildZip } from '../testing/zip-writer.js';

const rec = (id: string, ecosystem: string, name: string) =>
  JSON.stringify({ id, modified: '2024-01-01T00:00:00Z', affected: [{ package: { ecosystem, name } }] });

const archives = new Map<string, Buffer>([
  ['/PyPI/all.zip', buildZip([{ name: 'TEST-PY-1.json', data: rec('TEST-PY-1', 'PyPI', 'requests') }])],
  [
    '/Red%20Hat/all.zip',
    buildZip([
      { name: 'TEST-RH-1.json', data: rec('TEST-RH-1', 'Red Hat', 'openssl') },
      { name: 'TEST-RH-2.json', data: rec('TEST-RH-2', 'Red Hat', 'curl') },
    ]),
  ],
]);

let tmp: string;
let server: Server;
let baseUrl: string;
const requested: string[] = [];

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'containment-download-'));
  server = createServer((req, res) => {
    requested.push(req.url ?? '');
    const body = archives.get(req.url ?? '');
    if (req.url === '/Truncated/all.zip') {
      // Promise more than is sent, then hang up.
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(10));
      res.destroy();
      return;
    }
    if (body === undefined) {
      res.writeHead(404).end('no such ecosystem');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
after(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
function freshStore(): AdvisoryStore {
  return openSqliteAdvisoryStore(join(tmp, `db-${++n}.sqlite`), { create: true });
}

const downloadFailed = (pattern: RegExp) => (e: { code?: string; message: string }) =>
  e.code === ErrorCodes.DB_DOWNLOAD_FAILED &&
  pattern.test(e.message) &&
  e.message.includes('containment db import <path>') &&
  !e.message.includes('\n');

describe('downloadAndImport', () => {
  test('archive URLs follow osv.dev’s layout and encode ecosystem names', () => {
    assert.equal(
      ecosystemArchiveUrl(DEFAULT_OSV_BASE_URL, 'Red Hat'),
      'https://osv-vulnerabilities.storage.googleapis.com/Red%20Hat/all.zip',
    );
    assert.equal(
      ecosystemArchiveUrl('http://mirror/osv//', 'Ubuntu:22.04:LTS'),
      'http://mirror/osv/Ubuntu%3A22.04%3ALTS/all.zip',
    );
  });

  test('downloads each ecosystem’s all.zip from a local server and imports them as one import', async () => {
    const store = freshStore();
    requested.length = 0;
    try {
      const progress: UpdateProgress[] = [];
      const report = await downloadAndImport(store, {
        baseUrl,
        ecosystems: ['PyPI', 'Red Hat'],
        onProgress: (p) => progress.push(p),
      });
      assert.deepEqual(requested, ['/PyPI/all.zip', '/Red%20Hat/all.zip']);
      assert.deepEqual([...report.addedIds].sort(), ['TEST-PY-1', 'TEST-RH-1', 'TEST-RH-2']);
      assert.deepEqual(
        report.downloads.map((d) => [d.ecosystem, d.bytes]),
        [
          ['PyPI', archives.get('/PyPI/all.zip')?.length],
          ['Red Hat', archives.get('/Red%20Hat/all.zip')?.length],
        ],
      );
      assert.equal(store.lookup('Red Hat', 'curl')[0]?.id, 'TEST-RH-2');
      assert.deepEqual(progress.at(-1), { phase: 'import', processed: 3, total: 3 });
      assert.ok(progress.some((p) => p.phase === 'download' && p.ecosystem === 'Red Hat' && p.bytes > 0));

      const again = await downloadAndImport(store, { baseUrl, ecosystems: ['PyPI', 'Red Hat'] });
      assert.deepEqual([again.added, again.changed, again.unchanged], [0, 0, 3]);
    } finally {
      store.close();
    }
  });

  test('an HTTP error or a short body fails the whole update and imports nothing', async () => {
    const store = freshStore();
    try {
      await assert.rejects(
        downloadAndImport(store, { baseUrl, ecosystems: ['PyPI', 'Nonexistent'] }),
        downloadFailed(/Nonexistent\/all\.zip: HTTP 404/),
      );
      await assert.rejects(
        downloadAndImport(store, { baseUrl, ecosystems: ['PyPI', 'Truncated'] }),
        downloadFailed(/Truncated\/all\.zip/),
      );
      assert.deepEqual(store.count(), { records: 0, withdrawn: 0 });
    } finally {
      store.close();
    }
  });

  test('an unreachable server is DB_DOWNLOAD_FAILED naming the offline import', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const store = freshStore();
    try {
      await assert.rejects(
        downloadAndImport(store, { baseUrl: `http://127.0.0.1:${port}`, ecosystems: ['Debian'] }),
        downloadFailed(/ECONNREFUSED/),
      );
    } finally {
      store.close();
    }
  });

  test('a fetch that throws is reported the same way (injected fetch)', async () => {
    const store = freshStore();
    try {
      const offline: typeof fetch = () =>
        Promise.reject(new TypeError('fetch failed', { cause: new Error('getaddrinfo ENOTFOUND osv') }));
      await assert.rejects(
        downloadAndImport(store, { ecosystems: ['npm'], fetchImpl: offline }),
        downloadFailed(/ENOTFOUND/),
      );
    } finally {
      store.close();
    }
  });
});
