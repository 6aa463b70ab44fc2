/**
 * Telling "the same process is still running" from "the container is gone": a pid alone can be
 * reused, so a process is identified by its pid and its start time (`/proc/<pid>/stat` field 22,
 * clock ticks since boot).
 */
import { readFileSync } from 'node:fs';

/**
 * The process's start time, or undefined when there is no such process any more — a zombie
 * included: it keeps its `/proc/<pid>/stat` but its root is gone, and would read as empty.
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces or ')': split after the last.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}
