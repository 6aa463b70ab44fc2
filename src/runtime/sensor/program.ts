/**
 * The shipped bpftrace program (probes.bt) as run on this kernel: a block whose `// @requires`
 * tracepoints the kernel lacks (module loading on a kernel built without modules) is left out —
 * bpftrace 0.17 refuses a whole program when one probe is missing — and reported as a blind spot.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROBES_FILE = join(dirname(fileURLToPath(import.meta.url)), 'probes.bt');
export const TRACEFS = '/sys/kernel/tracing';

export interface SensorProgram {
  text: string;
  /** Probes left out, as `tracepoint:cat:name`. */
  missing: string[];
}

/** Blocks are separated by blank lines; pure given `hasTracepoint`. */
export function selectProbes(source: string, hasTracepoint: (probe: string) => boolean): SensorProgram {
  const missing: string[] = [];
  const kept = source.split(/\n\s*\n/).filter((block) => {
    const req = /^\/\/ @requires (.+)$/m.exec(block);
    if (!req) return true;
    const absent = (req[1] as string)
      .trim()
      .split(/\s+/)
      .filter((p) => !hasTracepoint(p));
    missing.push(...absent);
    return absent.length === 0;
  });
  return { text: kept.join('\n\n'), missing };
}

/** `tracepoint:syscalls:sys_enter_x` exists when tracefs lists it. */
export function tracepointExists(probe: string, tracefs = TRACEFS): boolean {
  const m = /^tracepoint:([^:]+):([^:]+)$/.exec(probe);
  return m !== null && existsSync(join(tracefs, 'events', m[1] as string, m[2] as string));
}

export function loadProgram(tracefs = TRACEFS): SensorProgram {
  return selectProbes(readFileSync(PROBES_FILE, 'utf8'), (p) => tracepointExists(p, tracefs));
}
