/**
 * The fuzz targets: every parser that takes untrusted bytes. Each says which errors are the typed
 * ones it may throw for bad input; anything else thrown, a hang, or a write outside the scratch
 * root is a finding (see `fuzz/run.ts`).
 */
import { createSign, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import type { Arbitrary } from 'fast-check';
import { createOidcVerifier } from '../src/auth/oidc.js';
import type { OidcVerifier } from '../src/auth/oidc.js';
import { isContainmentError } from '../src/errors.js';
import { cloudEventOf } from '../src/functions/adapters/openwhisk/notices-entry.js';
import { parseApkInstalled } from '../src/inventory/extractors/apk.js';
import { parseDpkgStatus } from '../src/inventory/extractors/dpkg.js';
import { RecordSplitter } from '../src/inventory/extractors/extractor-support.js';
import {
  GoBuildInfoError,
  goBuildInfoToPackages,
  readGoBuildInfo,
} from '../src/inventory/extractors/go-binary.js';
import { scanJavaArchive } from '../src/inventory/extractors/java.js';
import { parseNpmLockfile, parsePackageJson } from '../src/inventory/extractors/npm.js';
import { parsePythonMetadata } from '../src/inventory/extractors/python.js';
import {
  parseRpmHeader,
  readRpmSqlite,
  RpmDatabaseError,
  RpmHeaderError,
} from '../src/inventory/extractors/rpm.js';
import { openImageArchive } from '../src/inventory/fs/image-archive.js';
import { osInfoFromRelease, parseOsRelease } from '../src/inventory/os-release.js';
import { buildZip } from '../src/testing/zip-writer.js';
import { ImportTally } from '../src/vulndb/import-tally.js';
import { openRecordSource } from '../src/vulndb/record-sources.js';
import { damaged, jsonWith, paragraphs, token, ustar } from './grammar.js';
import type { TarEntry } from './grammar.js';

export interface FuzzTarget {
  name: string;
  input: Arbitrary<Buffer>;
  run(input: Buffer): unknown;
  /** The typed errors bad input may raise; anything else thrown is a finding. */
  expected(e: unknown): boolean;
}

const none = (): boolean => false;
const containment = (e: unknown): boolean => isContainmentError(e);

/** Feeds the stream splitter in small uneven chunks with a small record limit. */
function splitAll(input: Buffer): void {
  const splitter = new RecordSplitter(4096, () => undefined);
  for (let at = 0; at < input.length; at += 7) splitter.push(input.subarray(at, at + 7));
  splitter.end();
}

const version = fc.constantFrom(
  '1.0.0',
  '0',
  '2.3-1',
  '1:1.2~rc1-3',
  '*',
  '-1',
  '',
  'v1.2.3',
  '1.0.0-beta.1',
);

/** A small real rpmdb.sqlite whose blobs are rpm headers (some deliberately odd). */
function rpmHeaderBlob(tags: Array<[number, number, Buffer]>): Buffer {
  const index = Buffer.alloc(16 * tags.length);
  const data: Buffer[] = [];
  let offset = 0;
  tags.forEach(([tag, type, value], i) => {
    index.writeUInt32BE(tag, 16 * i);
    index.writeUInt32BE(type, 16 * i + 4);
    index.writeUInt32BE(offset, 16 * i + 8);
    index.writeUInt32BE(1, 16 * i + 12);
    data.push(value);
    offset += value.length;
  });
  const head = Buffer.alloc(8);
  head.writeUInt32BE(tags.length, 0);
  head.writeUInt32BE(offset, 4);
  return Buffer.concat([head, index, ...data]);
}
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);
const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const headerArb = fc
  .tuple(token, token, fc.option(token), fc.option(fc.integer()), fc.option(token))
  .map(([name, ver, release, epoch, src]) =>
    rpmHeaderBlob([
      [1000, 6, cstr(name)],
      [1001, 6, cstr(ver)],
      ...(release !== null ? ([[1002, 6, cstr(release)]] as Array<[number, number, Buffer]>) : []),
      ...(epoch !== null ? ([[1003, 4, int32(epoch)]] as Array<[number, number, Buffer]>) : []),
      ...(src !== null ? ([[1044, 6, cstr(src)]] as Array<[number, number, Buffer]>) : []),
    ]),
  );

let sqliteSeed: Buffer | undefined;
function rpmSqliteSeed(): Buffer {
  if (sqliteSeed) return sqliteSeed;
  const db = new Database(':memory:');
  db.exec('CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO Packages (blob) VALUES (?)');
  for (const sample of fc.sample(headerArb, { seed: 1, numRuns: 30 })) insert.run(sample);
  sqliteSeed = db.serialize();
  db.close();
  return sqliteSeed;
}

const pom = fc.tuple(token, token, token).map(([g, a, v]) => ({
  name: `META-INF/maven/${g}/${a}/pom.properties`,
  data: `groupId=${g}\nartifactId=${a}\nversion=${v}\n`,
}));
const jarArb: Arbitrary<Buffer> = fc.letrec<{ jar: Buffer }>((tie) => ({
  jar: fc
    .array(
      fc.oneof(
        { weight: 3, arbitrary: pom },
        {
          weight: 1,
          arbitrary: fc.record({
            name: fc.constantFrom('lib/x.jar', 'a.war', '../e.jar', 'BOOT-INF/lib/y.jar'),
            data: tie('jar') as Arbitrary<Buffer>,
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({ name: fc.constantFrom('META-INF/MANIFEST.MF', 'x.class'), data: token }),
        },
      ),
      { maxLength: 4 },
    )
    .map((entries) => buildZip(entries.map((e) => ({ ...e, deflate: e.name.length % 2 === 0 })))),
})).jar;

/** Writes each input to a fresh file in a scratch root, and checks nothing lands beside it. */
class Scratch {
  readonly root = mkdtempSync(join(tmpdir(), 'containment-fuzz-'));
  readonly canary = join(this.root, 'canary');
  private n = 0;
  constructor() {
    mkdirSync(this.canary);
  }
  file(name: string, bytes: Buffer): string {
    const dir = join(this.root, `in-${this.n++}`);
    mkdirSync(dir);
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  }
  /** Throws when anything was written into the canary directory or left in the tmp dir. */
  check(tmp: string): void {
    if (readdirSync(this.canary).length > 0) throw new Error(`ESCAPE: wrote into ${this.canary}`);
    if (existsSync(tmp) && readdirSync(tmp).length > 0)
      throw new Error(`LEFTOVER: ${readdirSync(tmp).join(',')}`);
  }
  clear(): void {
    for (const e of readdirSync(this.root))
      if (e !== 'canary') rmSync(join(this.root, e), { recursive: true, force: true });
  }
}
let scratch: Scratch | undefined;
const scratchRoot = (): Scratch => (scratch ??= new Scratch());

const tarName = fc.constantFrom(
  'etc/os-release',
  'var/lib/dpkg/status',
  '../canary/x',
  '/abs',
  'a/../../canary/y',
  'a/.wh.b',
  'a/.wh..wh..opq',
  'link',
  'dir/',
  'layer.tar',
  'manifest.json',
  './',
  'a/b/c',
);
const tarEntry: Arbitrary<TarEntry> = fc.record(
  {
    name: fc.oneof(
      tarName,
      fc.tuple(tarName, tarName).map(([a, b]) => `${a}/${b}`),
    ),
    type: fc.constantFrom('0', '0', '1', '2', '3', '5', '6'),
    linkname: fc.oneof(tarName, fc.constantFrom('/etc/passwd', '../../..', 'canary')),
    data: fc.string({ maxLength: 40 }).map((s) => Buffer.from(s)),
    mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o000, 0o7777),
  },
  { requiredKeys: ['name', 'type'] },
);
const imageArb: Arbitrary<Buffer> = fc
  .tuple(fc.array(fc.array(tarEntry, { maxLength: 6 }), { minLength: 1, maxLength: 3 }), fc.boolean())
  .map(([layers, lieAboutLayers]) => {
    const config = Buffer.from('{"config":{"User":"0"}}');
    const layerNames = layers.map((_, i) => `l${i}/layer.tar`);
    const manifest = [
      {
        Config: 'c.json',
        RepoTags: ['x:1'],
        Layers: lieAboutLayers ? ['../../canary/z', ...layerNames] : layerNames,
      },
    ];
    return ustar([
      ...layers.map((entries, i) => ({ name: layerNames[i]!, type: '0' as const, data: ustar(entries) })),
      { name: 'c.json', type: '0', data: config },
      { name: 'manifest.json', type: '0', data: Buffer.from(JSON.stringify(manifest)) },
    ]);
  });

const osvRecord = fc.record(
  {
    id: token,
    modified: fc.constantFrom('2024-01-01T00:00:00Z', 'yesterday'),
    withdrawn: fc.constantFrom('2024-01-01T00:00:00Z'),
    details: token,
    affected: fc.array(
      fc.record(
        {
          package: fc.record({
            ecosystem: fc.constantFrom(
              'npm',
              'PyPI',
              'Debian:12',
              'Alpine:v3.20',
              'Go',
              'Maven',
              'Nope',
              'Red Hat',
            ),
            name: token,
          }),
          ranges: fc.array(
            fc.record({
              type: fc.constantFrom('ECOSYSTEM', 'SEMVER', 'GIT', 'OTHER'),
              events: fc.array(
                fc.oneof(
                  version.map((v) => ({ introduced: v })),
                  version.map((v) => ({ fixed: v })),
                  version.map((v) => ({ last_affected: v })),
                  version.map((v) => ({ limit: v })),
                ),
                { maxLength: 5 },
              ),
            }),
            { maxLength: 2 },
          ),
          versions: fc.array(version, { maxLength: 3 }),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 3 },
    ),
  },
  { requiredKeys: ['id', 'modified'] },
);

const cloudEvent = fc.record(
  {
    specversion: fc.constantFrom('1.0', '0.3', 1),
    id: token,
    source: token,
    type: fc.constantFrom('dev.containment.vulnerability.found', 'x', ''),
    subject: token,
    time: token,
    datacontenttype: fc.constantFrom('application/json', 'text/plain'),
    data: fc.jsonValue({ maxDepth: 2 }),
    data_base64: token,
  },
  { requiredKeys: [] },
);

/** A local issuer: a JWKS on loopback, and tokens signed by its key or forged. */
interface Issuer {
  verifier: OidcVerifier;
  key: KeyObject;
}
let issuer: Promise<Issuer> | undefined;
function localIssuer(): Promise<Issuer> {
  issuer ??= (async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' };
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    server.unref();
    const { port } = server.address() as AddressInfo;
    const verifier = createOidcVerifier({
      issuer: 'https://issuer.test',
      audience: 'containment',
      jwksUri: `http://127.0.0.1:${port}/jwks`,
      rolesClaim: 'roles',
      namespacesClaim: 'ns',
      clusterClaim: 'cluster',
    });
    return { verifier, key: privateKey };
  })();
  return issuer;
}
const b64 = (v: unknown): string =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const jwtArb = fc
  .record({
    alg: fc.constantFrom('ES256', 'none', 'HS256', 'RS256', 'ES512', ''),
    kid: fc.constantFrom('k1', 'k2', '../x'),
    claims: fc.record(
      {
        iss: fc.constantFrom('https://issuer.test', 'https://evil.test'),
        aud: fc.constantFrom('containment', 'other'),
        sub: token,
        exp: fc.constantFrom(4_000_000_000, 1, -1, 'soon'),
        roles: fc.oneof(
          fc.constantFrom('admin', 'viewer', 'agent'),
          fc.array(token, { maxLength: 3 }),
          fc.integer(),
        ),
        ns: fc.oneof(fc.constant('*'), fc.array(token, { maxLength: 3 }), fc.constant({})),
        cluster: fc.oneof(token, fc.constant(null)),
      },
      { requiredKeys: [] },
    ),
    sign: fc.boolean(),
  })
  .map(({ alg, kid, claims, sign }) => JSON.stringify({ header: { alg, kid, typ: 'JWT' }, claims, sign }));

export const targets: readonly FuzzTarget[] = [
  {
    name: 'dpkg-status',
    input: damaged(
      paragraphs(['Package', 'Version', 'Status', 'Source', 'Architecture', 'Description', 'Conffiles']),
    ),
    run(input) {
      parseDpkgStatus(input.toString('utf8'), '/var/lib/dpkg/status', 'Debian:12');
      splitAll(input);
    },
    expected: none,
  },
  {
    name: 'apk-installed',
    input: damaged(
      fc
        .array(
          fc.array(
            fc
              .tuple(fc.constantFrom('P', 'V', 'A', 'o', 'F', 'R', 'Z', ''), token)
              .map(([k, v]) => `${k}:${v}`),
            { maxLength: 6 },
          ),
          { maxLength: 5 },
        )
        .map((rs) => rs.map((r) => r.join('\n')).join('\n\n') + '\n'),
    ),
    run(input) {
      parseApkInstalled(input.toString('utf8'), '/lib/apk/db/installed', 'Alpine:v3.20');
      splitAll(input);
    },
    expected: none,
  },
  {
    name: 'rpm-header',
    input: damaged(headerArb),
    run: (input) => parseRpmHeader(input),
    expected: (e) => e instanceof RpmHeaderError,
  },
  {
    name: 'rpm-sqlite',
    input: damaged(fc.constant(0).map(() => rpmSqliteSeed())),
    run: (input) => readRpmSqlite(input),
    expected: (e) => e instanceof RpmDatabaseError,
  },
  {
    name: 'python-metadata',
    input: damaged(
      paragraphs(['Metadata-Version', 'Name', 'Version', 'Summary', 'Description', 'name', 'VERSION']),
    ),
    run: (input) => parsePythonMetadata(input.toString('utf8')),
    expected: none,
  },
  {
    name: 'npm-json',
    input: damaged(
      jsonWith(
        fc.oneof(
          fc.record({ name: token, version }, { requiredKeys: [] }),
          fc.record(
            {
              lockfileVersion: fc.constantFrom(1, 2, 3),
              packages: fc.dictionary(
                fc.constantFrom(
                  '',
                  'node_modules/a',
                  'node_modules/@s/b',
                  'x/node_modules/c',
                  'node_modules/',
                ),
                fc.record(
                  { version, name: token, dev: fc.boolean(), link: fc.boolean() },
                  { requiredKeys: [] },
                ),
              ),
              dependencies: fc.dictionary(
                token,
                fc.record({ version, dev: fc.boolean() }, { requiredKeys: [] }),
              ),
            },
            { requiredKeys: [] },
          ),
        ),
      ),
    ),
    run(input) {
      const text = input.toString('utf8');
      try {
        parsePackageJson(text);
      } finally {
        parseNpmLockfile(text);
      }
    },
    expected: (e) =>
      e instanceof SyntaxError || (e instanceof Error && e.message === 'lockfile is not a JSON object'),
  },
  {
    name: 'go-buildinfo',
    input: damaged(
      fc
        .tuple(fc.constantFrom(8, 4), fc.constantFrom(0, 2), fc.string({ maxLength: 200 }))
        .map(([ptr, flags, mod]) => {
          const size = 0x400;
          const file = Buffer.alloc(size);
          file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
          file.writeBigUInt64LE(64n, 0x20);
          file.writeUInt16LE(56, 0x36);
          file.writeUInt16LE(1, 0x38);
          file.writeUInt32LE(1, 64);
          file.writeBigUInt64LE(0x400000n, 64 + 0x10);
          file.writeBigUInt64LE(BigInt(size), 64 + 0x20);
          file.write('\xff Go buildinf:', 0x100, 'latin1');
          file[0x10e] = ptr;
          file[0x10f] = flags;
          file[0x120] = 8;
          file.write('go1.22.3', 0x121, 'latin1');
          file[0x129] = Math.min(mod.length, 127);
          file.write(mod.slice(0, 127), 0x12a, 'latin1');
          return file;
        }),
    ),
    run(input) {
      const info = readGoBuildInfo(input);
      if (info) goBuildInfoToPackages(info, '/bin/x');
    },
    expected: (e) => e instanceof GoBuildInfoError,
  },
  {
    name: 'jar',
    input: damaged(jarArb),
    run: (input) => scanJavaArchive(input, '/app.jar', { maxDepth: 3, maxTotalBytes: 1 << 20 }),
    expected: none,
  },
  {
    name: 'os-release',
    input: damaged(
      fc
        .array(
          fc
            .tuple(
              fc.constantFrom('ID', 'VERSION_ID', 'VERSION_CODENAME', 'PRETTY_NAME', 'ID_LIKE', 'x'),
              token,
              fc.constantFrom('', '"', "'"),
            )
            .map(([k, v, q]) => `${k}=${q}${v}${q}`),
          { maxLength: 8 },
        )
        .map((ls) => ls.join('\n')),
    ),
    run: (input) => osInfoFromRelease(parseOsRelease(input.toString('utf8'))),
    expected: none,
  },
  {
    name: 'image-archive',
    input: damaged(imageArb),
    async run(input) {
      const s = scratchRoot();
      const tmp = join(s.root, `tmp-${Math.random().toString(36).slice(2)}`);
      mkdirSync(tmp);
      try {
        const archive = await openImageArchive(s.file('image.tar', input), {
          tmpDir: tmp,
          maxTotalBytes: 1 << 24,
        }).catch((e: unknown) => {
          s.check(tmp);
          throw e;
        });
        for await (const entry of archive.fs.walk('/')) void entry;
        await archive.cleanup();
        s.check(tmp);
      } finally {
        s.clear();
      }
    },
    expected: containment,
  },
  {
    name: 'osv-import',
    input: damaged(jsonWith(fc.oneof(osvRecord, fc.array(osvRecord, { maxLength: 3 })))),
    async run(input) {
      const s = scratchRoot();
      try {
        const source = await openRecordSource(s.file('records.json', input));
        const tally = new ImportTally();
        for await (const item of source.items) tally.validate(item);
      } finally {
        s.clear();
      }
    },
    expected: none,
  },
  {
    name: 'cloud-event',
    input: damaged(
      fc
        .tuple(
          fc.constantFrom('application/cloudevents+json', 'application/json', 'text/plain', ''),
          jsonWith(cloudEvent),
        )
        .map(([ct, body]) => JSON.stringify({ ct, body })),
    ),
    run(input) {
      let ct = '';
      let body = input.toString('utf8');
      try {
        ({ ct, body } = JSON.parse(body) as { ct: string; body: string });
      } catch {
        // a damaged envelope: the bytes are the body
      }
      return cloudEventOf(
        {
          'content-type': String(ct),
          'ce-id': '1',
          'ce-source': 's',
          'ce-type': 't',
          'ce-specversion': '1.0',
        },
        String(body),
      );
    },
    expected: (e) =>
      e instanceof SyntaxError || (e instanceof Error && e.message.startsWith('not a CloudEvent')),
  },
  {
    name: 'jwt',
    input: damaged(jwtArb),
    async run(input) {
      const { verifier, key } = await localIssuer();
      let jwt = input.toString('utf8');
      try {
        const spec = JSON.parse(jwt) as { header: unknown; claims: unknown; sign: boolean };
        const signingInput = `${b64(spec.header)}.${b64(spec.claims)}`;
        const signature = spec.sign
          ? createSign('SHA256')
              .update(signingInput)
              .sign({ key, dsaEncoding: 'ieee-p1363' })
              .toString('base64url')
          : 'AAAA';
        jwt = `${signingInput}.${signature}`;
      } catch {
        // damaged spec: the bytes themselves are the token
      }
      await verifier.verify(jwt);
    },
    expected: containment,
  },
];
