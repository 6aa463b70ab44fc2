/**
 * The streamed reading of dpkg/apk databases gives exactly what parsing the whole text gives,
 * however the bytes are chunked (a differential property), and never holds more than about the
 * record limit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { damaged, paragraphs } from '../../../fuzz/grammar.js';
import { apkFieldsToPackage, apkRecordFields, parseApkInstalled } from './apk.js';
import { dpkgParagraphToPackage, parseControlParagraphs, parseDpkgStatus } from './dpkg.js';
import { RecordSplitter } from './extractor-support.js';

const seed = process.env.FC_SEED === undefined ? 99 : Number(process.env.FC_SEED);

function stream(bytes: Buffer, chunk: number, onRecord: (text: string) => void): { truncated: boolean } {
  const splitter = new RecordSplitter(1 << 20, onRecord);
  for (let at = 0; at < bytes.length; at += chunk) splitter.push(bytes.subarray(at, at + chunk));
  return splitter.end();
}

test('dpkg: streamed in any chunking = parsed whole', () => {
  const doc = damaged(paragraphs(['Package', 'Version', 'Status', 'Source', 'Description']));
  fc.assert(
    fc.property(doc, fc.integer({ min: 1, max: 64 }), (bytes, chunk) => {
      const whole = parseDpkgStatus(bytes.toString('utf8'), '/s', 'Debian:12');
      const streamed: unknown[] = [];
      stream(bytes, chunk, (text) => {
        for (const p of parseControlParagraphs(text)) {
          const pkg = dpkgParagraphToPackage(p, '/s', 'Debian:12');
          if (pkg) streamed.push(pkg);
        }
      });
      assert.deepEqual(streamed, whole);
    }),
    { seed, numRuns: 500 },
  );
});

test('apk: streamed in any chunking = parsed whole', () => {
  const line = fc
    .tuple(fc.constantFrom('P', 'V', 'o', 'A', 'F'), fc.string({ maxLength: 6 }))
    .map(([k, v]) => `${k}:${v}`);
  const doc = damaged(
    fc
      .array(fc.array(line, { maxLength: 4 }), { maxLength: 4 })
      .map((rs) => rs.map((r) => r.join('\n')).join('\n\n') + '\n'),
  );
  fc.assert(
    fc.property(doc, fc.integer({ min: 1, max: 64 }), (bytes, chunk) => {
      const whole = parseApkInstalled(bytes.toString('utf8'), '/db', 'Alpine:v3.20');
      const streamed: unknown[] = [];
      stream(bytes, chunk, (text) => {
        const pkg = apkFieldsToPackage(apkRecordFields(text), '/db', 'Alpine:v3.20');
        if (pkg) streamed.push(pkg);
      });
      assert.deepEqual(streamed, whole);
    }),
    { seed, numRuns: 500 },
  );
});

test('a record over the limit is counted, skipped, and the next one is whole', () => {
  const records: string[] = [];
  const splitter = new RecordSplitter(10, (t) => records.push(t));
  splitter.push(Buffer.from('P:aaaaaaaaaaaaaaaaaaaa\n\nP:b\n'));
  assert.deepEqual(splitter.end(), { truncated: false, oversized: 1 });
  assert.deepEqual(records, ['P:b']);
});
