/**
 * Fetches upstream's Pod Security Admission module (`k8s.io/pod-security-admission`, newest v0.36.x
 * the Go module proxy serves) into the Go module cache and reports where its per-check fixtures
 * (`test/testdata/<level>/<version>/{pass,fail}/*.yaml`) are. Nothing is copied into the repo.
 * Usage: node --import tsx scripts/k8s/psa-testdata.ts   (prints the module directory on stdout)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const PSA_MODULE = 'k8s.io/pod-security-admission';
export const PSA_VERSION_QUERY = 'v0.36';

export interface PsaTestdata {
  /** Module version, e.g. `v0.36.6`. */
  version: string;
  /** The module's directory in the Go module cache. */
  dir: string;
  /** Latest version directory of each level, e.g. `.../test/testdata/restricted/v1.35`. */
  latest: { baseline: string; restricted: string };
}

function goAvailable(): boolean {
  return spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0;
}

/** `v1.35` > `v1.9`: compares the minor numbers. */
function latestVersionDir(levelDir: string): string {
  const versions = readdirSync(levelDir)
    .map((name) => ({ name, m: /^v1\.(\d+)$/.exec(name) }))
    .filter((v): v is { name: string; m: RegExpExecArray } => v.m !== null)
    .sort((a, b) => Number(b.m[1]) - Number(a.m[1]));
  if (versions.length === 0) throw new Error(`no version directories in ${levelDir}`);
  return join(levelDir, versions[0]!.name);
}

function describe(version: string, dir: string): PsaTestdata {
  const data = join(dir, 'test', 'testdata');
  return {
    version,
    dir,
    latest: {
      baseline: latestVersionDir(join(data, 'baseline')),
      restricted: latestVersionDir(join(data, 'restricted')),
    },
  };
}

/** The newest v0.36.x already in the module cache (no network), or undefined. */
export function findPsaTestdata(): PsaTestdata | undefined {
  if (!goAvailable()) return undefined;
  const cache = spawnSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).stdout.trim();
  const parent = join(cache, 'k8s.io');
  if (!cache || !existsSync(parent)) return undefined;
  const found = readdirSync(parent)
    .map((name) => ({ name, m: /^pod-security-admission@v0\.36\.(\d+)$/.exec(name) }))
    .filter((v): v is { name: string; m: RegExpExecArray } => v.m !== null)
    .sort((a, b) => Number(b.m[1]) - Number(a.m[1]));
  for (const f of found) {
    const dir = join(parent, f.name);
    if (existsSync(join(dir, 'test', 'testdata'))) return describe(f.name.split('@')[1]!, dir);
  }
  return undefined;
}

/** Downloads the newest v0.36.x with `go mod download -json` (a no-op when cached). Throws if that fails. */
export function fetchPsaTestdata(): PsaTestdata {
  if (!goAvailable()) throw new Error('go is not installed');
  // Outside any module, so the repo never gets a go.mod and GOFLAGS=-mod settings do not matter.
  const r = spawnSync('go', ['mod', 'download', '-json', `${PSA_MODULE}@${PSA_VERSION_QUERY}`], {
    cwd: tmpdir(),
    encoding: 'utf8',
    env: { ...process.env, GO111MODULE: 'on' },
    timeout: 300_000,
  });
  let info: { Version?: string; Dir?: string; Error?: string } = {};
  try {
    info = JSON.parse(r.stdout) as typeof info;
  } catch {
    // fall through to the error below
  }
  if (r.status !== 0 || !info.Dir || !info.Version) {
    throw new Error(
      `go mod download ${PSA_MODULE}@${PSA_VERSION_QUERY} failed: ${info.Error ?? r.stderr.trim().split('\n').pop() ?? ''}`,
    );
  }
  return describe(info.Version, info.Dir);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const data = fetchPsaTestdata();
    console.error(
      `${PSA_MODULE}@${data.version}: fixtures ${data.latest.baseline}, ${data.latest.restricted}`,
    );
    console.log(data.dir);
  } catch (err) {
    console.error(`psa testdata: ${(err as Error).message}`);
    process.exit(1);
  }
}
