/**
 * Notices `containment db import --data-dir <dir>` run by another process at once instead of at the
 * scanner's next poll: inotify (`fs.watch`) on the data directory sees the advisory database or
 * its WAL change and asks for a re-match check. A check finds nothing new until the import has
 * committed, so the few extra checks an import causes are harmless; the scanner's poll stays as
 * the fallback where file events are not delivered (network file systems).
 *
 * `-shm` is ignored on purpose: readers write it, so watching it would make every check (which
 * reads the database) trigger the next one.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';

export interface ImportWatch {
  close(): void;
}

/** Coalesces a burst of file events (one import writes many pages) into one check. */
const SETTLE_MS = 20;

export function watchAdvisoryImports(
  dir: string,
  dbFile: string,
  check: () => Promise<unknown>,
  onError: (e: unknown) => void,
): ImportWatch {
  const ours = new Set([dbFile, `${dbFile}-wal`, `${dbFile}-journal`]);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let again = false;
  let closed = false;

  const run = (): void => {
    timer = undefined;
    if (running) {
      // One more check after the current one sees whatever changed meanwhile.
      again = true;
      return;
    }
    running = check()
      .catch(onError)
      .finally(() => {
        running = undefined;
        if (again && !closed) {
          again = false;
          run();
        }
      });
  };

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (closed || name === null || !ours.has(name.toString()) || timer !== undefined) return;
      timer = setTimeout(run, SETTLE_MS);
    });
    watcher.on('error', onError);
  } catch (e) {
    onError(e);
  }
  return {
    close(): void {
      closed = true;
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
