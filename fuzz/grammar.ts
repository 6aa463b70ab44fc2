/**
 * Structure-aware input generators for the fuzz targets (fast-check): each produces bytes that
 * are mostly well-formed for its format, then damages some of them (bit flips, truncation,
 * spliced garbage, duplicated slices) — the inputs a coverage-guided fuzzer would reach, aimed
 * at the parsers' edge cases directly.
 */
import fc from 'fast-check';
import type { Arbitrary } from 'fast-check';

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'duplicate'; at: number; length: number }
  | { op: 'set'; at: number; value: number };

const mutation: Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), length: fc.nat({ max: 64 }) }),
  fc.record({
    op: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.constantFrom(0, 0xff, 0x7f, 0x80, 0x0a, 0x3a, 0x20, 0x2f, 0x2e),
  }),
);

function apply(input: Buffer, m: Mutation): Buffer {
  if (input.length === 0) return m.op === 'insert' ? Buffer.from(m.bytes) : input;
  const at = m.at % (input.length + 1);
  switch (m.op) {
    case 'flip': {
      const out = Buffer.from(input);
      const i = Math.min(at, out.length - 1);
      out[i] = (out[i] ?? 0) ^ (1 << m.bit);
      return out;
    }
    case 'truncate':
      return input.subarray(0, at);
    case 'insert':
      return Buffer.concat([input.subarray(0, at), m.bytes, input.subarray(at)]);
    case 'duplicate':
      return Buffer.concat([input.subarray(0, at), input.subarray(at, at + m.length), input.subarray(at)]);
    case 'set': {
      const out = Buffer.from(input);
      out[Math.min(at, out.length - 1)] = m.value;
      return out;
    }
  }
}

/** Well-formed documents, most of them then damaged by 1–4 mutations. */
export function damaged(document: Arbitrary<Buffer | string>): Arbitrary<Buffer> {
  return fc
    .tuple(
      document,
      fc.oneof(
        { weight: 1, arbitrary: fc.constant([]) },
        { weight: 3, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 4 }) },
      ),
    )
    .map(([doc, ms]) => ms.reduce(apply, Buffer.isBuffer(doc) ? doc : Buffer.from(doc, 'utf8')));
}

export const token = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'a',
    '1.0',
    '1:2.3-4',
    '~',
    '\t',
    '\r',
    '../',
    '\u00e9',
    '\u0000',
    'x'.repeat(300),
  ),
  fc.string({ maxLength: 12 }),
);

/** RFC 822-style paragraphs (dpkg status, Python METADATA). */
export function paragraphs(fields: readonly string[]): Arbitrary<string> {
  const line = fc.oneof(
    fc.tuple(fc.constantFrom(...fields), token).map(([k, v]) => `${k}: ${v}`),
    token.map((v) => ` ${v}`),
    fc.constantFrom('#comment', ':', 'nocolon', ' .', ''),
  );
  return fc
    .array(fc.array(line, { maxLength: 8 }), { maxLength: 6 })
    .chain((ps) =>
      fc.constantFrom('\n', '\r\n').map((nl) => ps.map((p) => p.join(nl)).join(`${nl}${nl}`) + nl),
    );
}

/** JSON values with the given keys likely (package.json, lockfiles, OSV records, CloudEvents). */
export function jsonWith(shape: Arbitrary<unknown>): Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: shape.map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  );
}

/** A minimal ustar archive of the given entries (sync: generators cannot await). */
export interface TarEntry {
  name: string;
  type: '0' | '1' | '2' | '3' | '5' | '6';
  linkname?: string;
  data?: Buffer;
  mode?: number;
}

export function ustar(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    h.write(e.name.slice(0, 100), 0, 'utf8');
    h.write(`${(e.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    const size = e.type === '0' ? (e.data?.length ?? 0) : 0;
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(e.type, 156);
    if (e.linkname) h.write(e.linkname.slice(0, 100), 157, 'utf8');
    h.write('ustar\u000000', 257, 'latin1');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h);
    if (size > 0 && e.data) {
      blocks.push(e.data, Buffer.alloc((512 - (size % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
