/**
 * npm packages: installed ones (`node_modules/<name>/package.json`, `node_modules/@scope/<name>/package.json`,
 * nested and global trees alike) and the ones a `package-lock.json` / `npm-shrinkwrap.json` records
 * (lockfileVersion 1, 2 and 3).
 *
 * Lockfile and installed tree are both reported, but a lockfile entry whose (name, version) is
 * already installed under the same project directory is dropped: the installed copy is the better
 * evidence (its location points at the real package). Lockfile entries marked `dev: true` are
 * skipped, since production images usually omit dev dependencies; when they are installed the
 * node_modules rule reports them.
 */
import semver from 'semver';
import type { InventoryContext, PackageExtractor } from '../context.js';
import type { Package } from '../types.js';
import { dedupePackages, errorMessage, readFileOrNote, reportNotAFile } from './extractor-support.js';

const ID = 'npm';
const MAX_PACKAGE_JSON_BYTES = 1024 * 1024;
const MAX_LOCKFILE_BYTES = 64 * 1024 * 1024;

/** `…/node_modules/<name>/package.json` or `…/node_modules/@scope/<name>/package.json`. */
const INSTALLED_RE = /\/node_modules\/(?:@[^/]+\/)?[^/.@][^/]*\/package\.json$/;
const LOCKFILE_RE = /\/(?:package-lock|npm-shrinkwrap)\.json$/;

export interface NpmPackageRef {
  name: string;
  version: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Name and version of a package.json; undefined when either is missing. Throws on invalid JSON. */
export function parsePackageJson(text: string): NpmPackageRef | undefined {
  const doc: unknown = JSON.parse(text);
  if (!isObject(doc)) return undefined;
  const { name, version } = doc;
  if (typeof name !== 'string' || typeof version !== 'string' || name === '' || version === '')
    return undefined;
  return { name, version };
}

/**
 * Every registry package a lockfile records. v2/v3: the `packages` map (keys `node_modules/…`; the
 * root `""`, workspace folders and `link: true` entries are skipped). v1: the nested `dependencies`
 * tree. Versions that are not SemVer (git URLs, `file:` specs, aliases in v1) are skipped: they do
 * not name a registry release. Throws on invalid JSON.
 */
export function parseNpmLockfile(text: string): NpmPackageRef[] {
  const doc: unknown = JSON.parse(text);
  if (!isObject(doc)) throw new Error('lockfile is not a JSON object');
  const out: NpmPackageRef[] = [];
  const add = (name: unknown, version: unknown) => {
    if (typeof name === 'string' && name !== '' && typeof version === 'string' && semver.valid(version)) {
      out.push({ name, version });
    }
  };
  if (isObject(doc.packages)) {
    for (const [key, entry] of Object.entries(doc.packages)) {
      const at = key.lastIndexOf('node_modules/');
      if (at === -1 || !isObject(entry) || entry.link === true || entry.dev === true) continue;
      add(entry.name ?? key.slice(at + 'node_modules/'.length), entry.version);
    }
    return out;
  }
  const walk = (deps: unknown) => {
    if (!isObject(deps)) return;
    for (const [name, entry] of Object.entries(deps)) {
      if (!isObject(entry)) continue;
      if (entry.dev !== true) add(name, entry.version);
      walk(entry.dependencies);
    }
  };
  walk(doc.dependencies);
  return out;
}

/** `pkg:npm/%40scope/name@version` */
export function npmPurl(name: string, version: string): string {
  const parts = name.split('/').map(encodeURIComponent);
  return `pkg:npm/${parts.join('/')}@${encodeURIComponent(version)}`;
}

function toPackage(ref: NpmPackageRef, location: string): Package {
  return {
    name: ref.name,
    version: ref.version,
    ecosystem: 'npm',
    purl: npmPurl(ref.name, ref.version),
    location,
    extractor: ID,
  };
}

async function readJson<T>(
  ctx: InventoryContext,
  path: string,
  maxBytes: number,
  parse: (text: string) => T,
): Promise<T | undefined> {
  const buffer = await readFileOrNote(ctx, ID, path, maxBytes);
  if (!buffer) return undefined;
  try {
    return parse(buffer.toString('utf8'));
  } catch (e) {
    ctx.gap('PACKAGE_DB_CORRUPT', ID, path, errorMessage(e));
    return undefined;
  }
}

function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export const npmExtractor: PackageExtractor = {
  id: ID,
  // Directories count only as the `node_modules` beside a lockfile.
  relevant: ({ path, stat }) =>
    INSTALLED_RE.test(path) ||
    LOCKFILE_RE.test(path) ||
    (stat.type === 'directory' && path.endsWith('/node_modules')),
  async extract(ctx: InventoryContext): Promise<Package[]> {
    const installed: Package[] = [];
    /** `projectDir\0name\0version` of every installed package. */
    const installedKeys = new Set<string>();
    const lockfiles: string[] = [];
    for (const { path, stat } of ctx.files) {
      if (stat.type !== 'file') {
        if (INSTALLED_RE.test(path) || LOCKFILE_RE.test(path)) reportNotAFile(ctx, ID, path, stat);
        continue;
      }
      if (INSTALLED_RE.test(path)) {
        const ref = await readJson(ctx, path, MAX_PACKAGE_JSON_BYTES, parsePackageJson);
        if (!ref) continue;
        installed.push(toPackage(ref, path));
        // The project is the directory holding the outermost node_modules (where its lockfile lives).
        const project = path.slice(0, path.indexOf('/node_modules/')) || '/';
        installedKeys.add(`${project}\0${ref.name}\0${ref.version}`);
      } else if (LOCKFILE_RE.test(path)) {
        lockfiles.push(path);
      }
    }
    const directories = new Set(ctx.files.filter((f) => f.stat.type === 'directory').map((f) => f.path));
    const locked: Package[] = [];
    for (const path of lockfiles) {
      const refs = await readJson(ctx, path, MAX_LOCKFILE_BYTES, parseNpmLockfile);
      const project = dirname(path);
      // No installed tree beside the lockfile: it only declares what an install would fetch.
      const declared = !directories.has(`${project === '/' ? '' : project}/node_modules`);
      for (const ref of refs ?? []) {
        if (installedKeys.has(`${project}\0${ref.name}\0${ref.version}`)) continue;
        const pkg = toPackage(ref, path);
        if (declared) pkg.provenance = 'declared';
        locked.push(pkg);
      }
    }
    return dedupePackages([...installed, ...locked]);
  },
};
