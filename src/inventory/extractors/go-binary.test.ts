import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { requireOrSkip } from '../../testing/shared-data.js';
import { contextFor, tempDir } from './extractor.test-helper.js';
import {
  goBinaryExtractor,
  goBuildInfoToPackages,
  goToolchainVersion,
  mayCarryGoBuildInfo,
  parseGoModInfo,
  readGoBuildInfo,
} from './go-binary.js';

const run = promisify(execFile);
const GO = '/usr/local/go/bin/go';
const SYNC = { path: 'golang.org/x/sync', version: 'v0.17.0' };

interface Built {
  goVersion: string;
  plain: Buffer;
  stripped: Buffer;
}

/**
 * Builds one small program twice (plain and `-ldflags=-s -w`), offline: golang.org/x/sync comes
 * from the local module cache through a file:// GOPROXY and replaces a required v0.16.0 (a `=>`
 * line with a version); a second dependency is replaced by a local directory (a `=>` without one).
 */
async function buildOnce(t: TestContext): Promise<Built | undefined> {
  let modCache: string | undefined;
  if (existsSync(GO)) modCache = (await run(GO, ['env', 'GOMODCACHE'])).stdout.trim();
  const syncZip = modCache && join(modCache, `cache/download/${SYNC.path}/@v/${SYNC.version}.zip`);
  if (
    !requireOrSkip(
      t,
      !!syncZip && existsSync(syncZip),
      `${GO} with ${SYNC.path}@${SYNC.version} in the module cache`,
    )
  ) {
    return undefined;
  }
  const dir = tempDir(t, 'gobuild');
  mkdirSync(join(dir, 'local'));
  writeFileSync(
    join(dir, 'go.mod'),
    [
      'module example.com/app',
      'go 1.22',
      `require (\n\t${SYNC.path} v0.16.0\n\texample.com/local v0.0.0\n)`,
      `replace ${SYNC.path} v0.16.0 => ${SYNC.path} ${SYNC.version}`,
      'replace example.com/local => ./local',
    ].join('\n\n'),
  );
  writeFileSync(join(dir, 'local/go.mod'), 'module example.com/local\n\ngo 1.22\n');
  writeFileSync(join(dir, 'local/local.go'), 'package local\n\nfunc Hello() string { return "hi" }\n');
  writeFileSync(
    join(dir, 'main.go'),
    `package main

import (
	"fmt"

	"example.com/local"
	"golang.org/x/sync/errgroup"
)

func main() {
	var g errgroup.Group
	g.Go(func() error { fmt.Println(local.Hello()); return nil })
	_ = g.Wait()
}
`,
  );
  const env = {
    ...process.env,
    GOFLAGS: '-mod=mod',
    GOPROXY: `file://${modCache}/cache/download`,
    GOSUMDB: 'off',
    GOTOOLCHAIN: 'local',
    CGO_ENABLED: '0',
    GOMODCACHE: join(dir, 'modcache'),
    GOCACHE: join(dir, 'gocache'),
  };
  const opts = { cwd: dir, env };
  await run(GO, ['build', '-o', 'bin/app', '.'], opts);
  await run(GO, ['build', '-ldflags=-s -w', '-o', 'bin/app-stripped', '.'], opts);
  // The module cache is written read-only; let the temp dir cleanup delete it.
  await run(GO, ['clean', '-modcache'], opts);
  return {
    goVersion: (await run(GO, ['env', 'GOVERSION'], opts)).stdout.trim(),
    plain: readFileSync(join(dir, 'bin/app')),
    stripped: readFileSync(join(dir, 'bin/app-stripped')),
  };
}

function expectedPackages(goVersion: string): string[] {
  return [`stdlib@${goVersion.replace(/^go/, '')}`, `${SYNC.path}@${SYNC.version.slice(1)}`];
}

test('real Go binaries: build info of a plain, a -s -w and a section-table-less binary', async (t) => {
  const built = await buildOnce(t);
  if (!built) return;
  const info = readGoBuildInfo(built.plain);
  assert.ok(info);
  assert.equal(info.goVersion, built.goVersion);
  assert.equal(info.path, 'example.com/app');
  assert.deepEqual(info.main, { path: 'example.com/app', version: '(devel)' });
  const local = info.deps.find((d) => d.path === 'example.com/local');
  assert.equal(local?.replace?.path, './local');
  const sync = info.deps.find((d) => d.path === SYNC.path);
  assert.equal(sync?.version, 'v0.16.0');
  assert.equal(sync?.replace?.version, SYNC.version);
  assert.match(sync?.replace?.sum ?? '', /^h1:/);

  const packages = (b: Buffer) =>
    goBuildInfoToPackages(readGoBuildInfo(b)!, '/app').map((p) => `${p.name}@${p.version}`);
  assert.deepEqual(packages(built.plain), expectedPackages(built.goVersion));
  assert.deepEqual(packages(built.stripped), expectedPackages(built.goVersion));

  // sstrip-like: no section header table, so the header is found by scanning.
  const noSections = Buffer.from(built.stripped);
  noSections.fill(0, 0x28, 0x30); // e_shoff
  noSections.fill(0, 0x3c, 0x40); // e_shnum, e_shstrndx
  assert.deepEqual(packages(noSections), expectedPackages(built.goVersion));

  const pkgs = goBuildInfoToPackages(info, '/usr/bin/app');
  assert.equal(pkgs[1]?.purl, `pkg:golang/golang.org/x/sync@${SYNC.version}`);
  assert.equal(pkgs[0]?.purl, `pkg:golang/stdlib@${built.goVersion.slice(2)}`);
  assert.ok(
    pkgs.every((p) => p.ecosystem === 'Go' && p.extractor === 'go-binary' && p.location === '/usr/bin/app'),
  );

  await t.test(
    'extractor: finds the binary, notes a truncated ELF, ignores scripts and non-executables',
    async (t) => {
      const root = tempDir(t, 'goroot');
      mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
      writeFileSync(join(root, 'usr/local/bin/app'), built.stripped, { mode: 0o755 });
      writeFileSync(join(root, 'usr/local/bin/data.bin'), built.plain, { mode: 0o644 }); // not executable
      writeFileSync(join(root, 'usr/local/bin/cut'), built.plain.subarray(0, 8192), { mode: 0o755 });
      writeFileSync(join(root, 'usr/local/bin/script'), '#!/bin/sh\necho hi\n'.repeat(10), { mode: 0o755 });
      copyFileSync('/bin/ls', join(root, 'usr/local/bin/ls'));
      chmodSync(join(root, 'usr/local/bin/ls'), 0o755);
      const ctx = await contextFor(root);
      const found = await goBinaryExtractor.extract(ctx);
      assert.deepEqual(
        found.map((p) => `${p.name}@${p.version} ${p.location}`),
        expectedPackages(built.goVersion).map((p) => `${p} /usr/local/bin/app`),
      );
      assert.equal(ctx.notes.length, 1);
      // A Go binary cut short is a database that exists and cannot be read: a gap, not a skip.
      assert.match(
        ctx.notes[0] ?? '',
        /^\[PACKAGE_DB_CORRUPT\] go-binary: \/usr\/local\/bin\/cut: .*truncated/,
      );
    },
  );
});

/** A minimal little-endian ELF64 whose one loadable segment maps the whole file at 0x400000. */
function syntheticElf(body: (file: Buffer, va: (offset: number) => number) => void, size: number): Buffer {
  const file = Buffer.alloc(size);
  const base = 0x400000;
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  file.writeBigUInt64LE(64n, 0x20); // e_phoff
  file.writeUInt16LE(56, 0x36); // e_phentsize
  file.writeUInt16LE(1, 0x38); // e_phnum
  file.writeUInt32LE(1, 64); // PT_LOAD
  file.writeBigUInt64LE(0n, 64 + 0x08); // p_offset
  file.writeBigUInt64LE(BigInt(base), 64 + 0x10); // p_vaddr
  file.writeBigUInt64LE(BigInt(size), 64 + 0x20); // p_filesz
  body(file, (offset) => base + offset);
  return file;
}

const sentinel = 'S'.repeat(15) + '\n';

test('pre-1.18 format: version and module info through pointers to Go string headers', () => {
  const version = 'go1.16.15';
  const modinfo = `${sentinel}path\texample.com/old\nmod\texample.com/old\tv1.4.0\th1:aaa=\ndep\tgithub.com/pkg/errors\tv0.9.1\th1:bbb=\n${sentinel}`;
  const elf = syntheticElf((file, va) => {
    file.write('\xff Go buildinf:', 0x100, 'latin1');
    file[0x10e] = 8; // pointer size
    file[0x10f] = 0; // flags: little-endian, pointers
    file.writeBigUInt64LE(BigInt(va(0x140)), 0x110);
    file.writeBigUInt64LE(BigInt(va(0x150)), 0x118);
    file.writeBigUInt64LE(BigInt(va(0x200)), 0x140);
    file.writeBigUInt64LE(BigInt(version.length), 0x148);
    file.writeBigUInt64LE(BigInt(va(0x240)), 0x150);
    file.writeBigUInt64LE(BigInt(modinfo.length), 0x158);
    file.write(version, 0x200, 'latin1');
    file.write(modinfo, 0x240, 'latin1');
  }, 0x240 + modinfo.length);
  const info = readGoBuildInfo(elf);
  assert.ok(info);
  assert.deepEqual(
    goBuildInfoToPackages(info, '/x').map((p) => `${p.name}@${p.version}`),
    ['stdlib@1.16.15', 'example.com/old@1.4.0', 'github.com/pkg/errors@0.9.1'],
  );

  // A pointer aimed outside the mapped file is an error, not a crash or a wild read.
  const wild = Buffer.from(elf);
  wild.writeBigUInt64LE(0x7fff0000n, 0x140);
  assert.throws(() => readGoBuildInfo(wild), /outside every loadable segment/);
});

test('hostile inline build info: a length running past the end throws a clear error', () => {
  const elf = syntheticElf((file) => {
    file.write('\xff Go buildinf:', 0x100, 'latin1');
    file[0x10e] = 8;
    file[0x10f] = 2; // inline strings
    file.set([0xff, 0xff, 0xff, 0x7f], 0x120); // varint length ≈ 268 MB
  }, 0x200);
  assert.throws(() => readGoBuildInfo(elf), /runs past the end/);
  assert.equal(readGoBuildInfo(Buffer.from('#!/bin/sh\n')), undefined);
  assert.throws(() => readGoBuildInfo(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1])), /not an ELF|truncated/);
});

test('parseGoModInfo applies => to the line before; goToolchainVersion spelling', () => {
  const info = parseGoModInfo(
    'path\tcmd/x\nmod\tcmd/x\tv1.0.0\t\ndep\ta.io/b\tv1.0.0\th1:x\n=>\tfork.io/b\tv1.0.1\th1:y\ndep\tc.io/d\tv0.0.0-20240101000000-abcdef123456\t\nbuild\tGOOS=linux',
  );
  assert.equal(info.path, 'cmd/x');
  assert.deepEqual(info.deps[0], {
    path: 'a.io/b',
    version: 'v1.0.0',
    sum: 'h1:x',
    replace: { path: 'fork.io/b', version: 'v1.0.1', sum: 'h1:y' },
  });
  assert.equal(info.deps[1]?.replace, undefined);
  assert.deepEqual(
    goBuildInfoToPackages({ goVersion: 'go1.21rc2', ...info }, '/b').map((p) => `${p.name}@${p.version}`),
    ['stdlib@1.21.0-rc.2', 'cmd/x@1.0.0', 'fork.io/b@1.0.1', 'c.io/d@0.0.0-20240101000000-abcdef123456'],
  );
  assert.equal(goToolchainVersion('go1.22.3'), '1.22.3');
  assert.equal(goToolchainVersion('go1.20'), '1.20.0');
  assert.equal(goToolchainVersion('go1.22.3 X:boringcrypto'), '1.22.3');
  assert.equal(goToolchainVersion('devel go1.23-abcdef'), undefined);
});

test('mayCarryGoBuildInfo: a non-Go ELF is ruled out from its section names, without a full read', async () => {
  const ls = readFileSync('/bin/ls');
  const reads: Array<[number, number]> = [];
  const read = async (offset: number, length: number): Promise<Buffer> => {
    reads.push([offset, length]);
    return ls.subarray(offset, offset + length);
  };
  assert.equal(await mayCarryGoBuildInfo(read), false);
  assert.equal(reads.length, 3, 'ELF header, shstrtab section header, section names');
  assert.ok(reads.reduce((n, [, l]) => n + l, 0) < ls.length / 4);
  assert.equal(await mayCarryGoBuildInfo(async () => Buffer.from('#!/bin/sh\n')), false);
});
