// The build stamp that tells bin/containment.js whether dist/ was built from the sources in this
// tree. It holds a hash of the content of every file tsc compiles into dist/ (tsconfig.json's
// include minus its excludes) and, to keep the check cheap on every start, their sizes and mtimes:
// when those are unchanged the content is not read again; when any differs (an edit, a checkout,
// a copy) the content decides, so dist/ never runs silently stale.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

export const STAMP_FILE = join('dist', '.source-stamp.json');

/** Files tsc emits into dist/ (see tsconfig.json's exclude), the compiler settings, and the native sensor's sources. */
function compiled(root) {
  const files = readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .filter((f) => !/\.test(-helper)?\.ts$/.test(f) && !f.startsWith(`src${sep}testing${sep}`));
  // The runtime sensor's native engine, which the build compiles into dist/native/ (when there).
  const nativeDir = join(root, 'native', 'sensor');
  const native = (
    existsSync(nativeDir) ? readdirSync(nativeDir, { recursive: true, withFileTypes: true }) : []
  )
    .filter((e) => e.isFile() && /\.(go|c|sh|mod|sum)$/.test(e.name) && !e.name.endsWith('_test.go'))
    .map((e) => relative(root, join(e.parentPath, e.name)));
  return ['tsconfig.json', ...files.sort(), ...native.sort()];
}

function fingerprint(root, files) {
  return files
    .map((f) => {
      const s = statSync(join(root, f), { bigint: true });
      return `${f}:${s.size}:${s.mtimeNs}`;
    })
    .join('\n');
}

function contentHash(root, files) {
  const hash = createHash('sha256');
  for (const file of files)
    hash
      .update(`${file}\0`)
      .update(readFileSync(join(root, file)))
      .update('\0');
  return hash.digest('hex');
}

/** The stamp of the sources as they are now (run before tsc, written after it). */
export function sourceStamp(root) {
  const files = compiled(root);
  return { hash: contentHash(root, files), fingerprint: fingerprint(root, files) };
}

export function writeStamp(root, stamp) {
  writeFileSync(join(root, STAMP_FILE), JSON.stringify(stamp));
}

/** True when dist/ was built from exactly the sources in this tree. */
export function distIsCurrent(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, STAMP_FILE), 'utf8'));
  } catch {
    return false; // never built, or a build is under way (the stamp is written last)
  }
  const files = compiled(root);
  const now = fingerprint(root, files);
  if (now === stamp.fingerprint) return true;
  if (contentHash(root, files) !== stamp.hash) return false;
  try {
    writeStamp(root, { hash: stamp.hash, fingerprint: now }); // same content, new mtimes: remember
  } catch {
    // a read-only checkout still works, just re-hashes next time
  }
  return true;
}
