/**
 * The native sensor's JSON lines (native/sensor/record.go) to sensor events, pure. Each event is
 * one line holding one tuple, (kind, pid, uid, cgroup id, comm, ...kind-specific fields) — the shapes of
 * the bpftrace engine this replaced — an exec with all of its facts in one tuple.
 * Control lines keep bpftrace's shape: `{"type":"attached_probes"}`, `{"type":"lost_events"}`.
 * Lines that are not understood are counted, never thrown.
 */
import type { SensorEvent } from '../contracts.js';

export interface DecoderCounters {
  /** Events the kernel side could not hand over (its ring buffer was full). */
  lostEvents: number;
  /** Lines that were not JSON or not a known tuple. */
  parseFailures: number;
  events: number;
}

/** Argument slots the kernel side reads (ARGV_SLOTS in sensor.bpf.c). */
const ARGV_SLOTS = 6;
/**
 * exec: pid, old pid, ppid, uid, cgroup, comm, euid, fd 0 and fd 1 modes, CLOCK_MONOTONIC ns, path
 * as asked, [argv], argv cut, executable ("" when its path was cut), on the upper layer, unlinked.
 */
const EXEC_FIELDS = 17;

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;

export class SensorDecoder {
  readonly counters: DecoderCounters = { lostEvents: 0, parseFailures: 0, events: 0 };
  /** Set once the engine reports its probes attached. */
  attachedProbes: number | undefined;
  /** Probes the kernel lacks (`tracepoint:cat:name`), as the engine reported them. */
  missingProbes: string[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** One line of output to an event, or undefined (a control message, garbage). */
  decode(line: string): SensorEvent | undefined {
    if (line.trim() === '') return undefined;
    let msg: { type?: unknown; data?: unknown } | unknown[];
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      this.counters.parseFailures++;
      return undefined;
    }
    if (Array.isArray(msg)) {
      const event = this.tuple(msg);
      if (event === undefined) this.counters.parseFailures++;
      else this.counters.events++;
      return event;
    }
    const data = msg.data as { events?: unknown; probes?: unknown; missing?: unknown } | undefined;
    if (msg.type === 'lost_events') {
      this.counters.lostEvents += typeof data?.events === 'number' ? data.events : 1;
    } else if (msg.type === 'attached_probes') {
      this.attachedProbes = typeof data?.probes === 'number' ? data.probes : 0;
      this.missingProbes = Array.isArray(data?.missing)
        ? data.missing.filter((p): p is string => typeof p === 'string')
        : [];
    } else {
      this.counters.parseFailures++;
    }
    return undefined;
  }

  /** undefined: not understood. */
  private tuple(t: unknown[]): SensorEvent | undefined {
    const num = (i: number): number => {
      const v = t[i];
      if (typeof v !== 'number') throw new TypeError(`field ${i} is not a number`);
      return v;
    };
    const str = (i: number): string => {
      const v = t[i];
      if (typeof v !== 'string') throw new TypeError(`field ${i} is not a string`);
      return v;
    };
    try {
      const kind = t[0];
      switch (kind) {
        case 'exec':
          return this.exec(t, num, str);
        case 'exit':
          return this.base('exit', num(1), 0, num(2), str(3));
        case 'connect':
        case 'accept':
        case 'bind':
        case 'listen':
          return {
            ...this.base(kind, num(1), num(2), num(3), str(4)),
            address: str(5),
            port: num(6),
          };
        case 'open':
          return { ...this.base('open', num(1), num(2), num(3), str(4)), file: str(5), flags: num(6) };
        case 'setid':
        case 'module':
          return { ...this.base(kind, num(1), num(2), num(3), str(4)), syscall: str(5) };
        case 'ptrace':
          return {
            ...this.base('ptrace', num(1), num(2), num(3), str(4)),
            targetPid: num(5),
            request: num(6),
          };
        default:
          return undefined;
      }
    } catch {
      return undefined;
    }
  }

  private exec(t: unknown[], num: (i: number) => number, str: (i: number) => string): SensorEvent {
    if (t.length < EXEC_FIELDS) throw new TypeError('short exec');
    const argv = t[12];
    if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new TypeError('argv');
    const exe = str(14);
    const event: SensorEvent = {
      ...this.base('exec', num(1), num(4), num(5), str(6)),
      ppid: num(3),
      euid: num(7),
      stdinSocket: (num(8) & S_IFMT) === S_IFSOCK,
      stdoutSocket: (num(9) & S_IFMT) === S_IFSOCK,
      monotonicNs: num(10),
      path: str(11),
      argv: (argv as string[]).slice(0, ARGV_SLOTS),
      argvTruncated: num(13) !== 0,
    };
    // "": the kernel side could not give the executable whole; the detector reads /proc instead.
    if (exe === '') return event;
    event.exe = exe;
    event.upperLayer = num(15) !== 0;
    event.exeDeleted = num(16) !== 0;
    if (exe.startsWith('/memfd:')) event.exeName = exe.slice(1);
    return event;
  }

  private base(
    kind: SensorEvent['kind'],
    pid: number,
    uid: number,
    cgroupId: number,
    comm: string,
  ): SensorEvent {
    return { kind, pid, uid, cgroupId, comm, time: this.now(), source: 'ebpf' };
  }
}

/**
 * A byte stream to lines, for the sensor's stdout: one string decode per chunk (node:readline
 * decodes, scans and emits per line). A chunk may
 * end inside a line or a UTF-8 character; the rest waits for the next chunk. `end()` gives the
 * last line when the stream closed without a newline.
 */
export function lineSplitter(onLine: (line: string) => void): {
  /** The number of whole lines the chunk completed. */
  push(chunk: Buffer): number;
  end(): void;
} {
  let rest: Buffer | undefined;
  return {
    push(chunk) {
      const nl = chunk.lastIndexOf(10);
      if (nl < 0) {
        rest = rest ? Buffer.concat([rest, chunk]) : chunk;
        return 0;
      }
      const whole = rest ? Buffer.concat([rest, chunk.subarray(0, nl)]) : chunk.subarray(0, nl);
      rest = nl + 1 < chunk.length ? chunk.subarray(nl + 1) : undefined;
      // A newline byte never occurs inside a multi-byte UTF-8 character: whole lines decode alone.
      const lines = whole.toString('utf8').split('\n');
      for (const line of lines) onLine(line);
      return lines.length;
    },
    end() {
      if (rest) onLine(rest.toString('utf8'));
      rest = undefined;
    },
  };
}
