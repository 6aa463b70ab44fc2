/**
 * Cheap drift detection: a signature of a container's writable layer (the overlay upper dir on
 * this host). The upper dir holds only what the container changed since it started, so walking it
 * costs in proportion to the changes, not to the image, and an idle container's signature is
 * computed in well under a millisecond. A new, changed or deleted file changes some entry's size
 * or mtime, or its parent directory's mtime, and so the signature: the agent rescans then,
 * instead of waiting for the periodic rescan. The walk goes through the safe reader, so a link
 * the container planted in its layer is never followed out of it.
 */
import { createHash } from 'node:crypto';
import { DirectoryRootFs } from '../inventory/fs/directory-root-fs.js';

/** A layer with more entries than this is signed by its first entries and the count so far. */
const MAX_ENTRIES = 20_000;

/** The signature, or undefined when the directory cannot be read (the container went away). */
export async function layerSignature(upperDir: string): Promise<string | undefined> {
  let fs: DirectoryRootFs;
  try {
    fs = await DirectoryRootFs.open(upperDir);
  } catch {
    return undefined;
  }
  const hash = createHash('sha256');
  let entries = 0;
  try {
    // The walk yields what is below the root; a top-level entry removed shows in the root's mtime.
    hash.update(`/\0${(await fs.lstat('/'))?.mtimeMs ?? 0}\n`);
    for await (const { path, stat } of fs.walk('/')) {
      hash.update(`${path}\0${stat.type}\0${stat.size}\0${stat.mtimeMs}\n`);
      if (++entries >= MAX_ENTRIES) break;
    }
  } finally {
    fs.close();
  }
  return `${entries}:${hash.digest('hex')}`;
}
