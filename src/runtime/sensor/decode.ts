/**
 * bpftrace's `-f json` lines (from probes.bt) to sensor events, pure. An exec arrives as several
 * tuples (`arg`… and, when there were no arguments or more than were read, `argv` at execve
 * entry; then `execpath`, for a memfd `exefile`, and `exec` after it succeeded), joined here by
 * pid. Lines that are not understood are counted, never thrown.
 */
import type { SensorEvent } from '../contracts.js';

export interface DecoderCounters {
  /** Events bpftrace reported lost (its perf ring buffer was full). */
  lostEvents: number;
  /** Lines that were not JSON or not a known tuple. */
  parseFailures: number;
  events: number;
}

interface PendingExec {
  argv: string[];
  argvTruncated: boolean;
  path?: string;
  exeName?: string;
}

/** Argument slots the program reads (unroll(6) in probes.bt). */
const ARGV_SLOTS = 6;
/** Bound on exec fragments kept waiting (an execve that fails never sends `exec`). */
const MAX_PENDING = 4096;

/**
 * The native sensor's exec: bpftrace's eleven `exec` fields, then path, [argv], argv cut,
 * executable, on the upper layer, unlinked (native/sensor/record.go).
 */
const NATIVE_EXEC_FIELDS = 17;

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;

export class BpftraceDecoder {
  readonly counters: DecoderCounters = { lostEvents: 0, parseFailures: 0, events: 0 };
  /** Set once bpftrace reports its probes attached. */
  attachedProbes: number | undefined;
  private readonly pending = new Map<number, PendingExec>();

  constructor(private readonly now: () => number = Date.now) {}

  /** One line of output to an event, or undefined (a fragment, a control message, garbage). */
  decode(line: string): SensorEvent | undefined {
    if (line.trim() === '') return undefined;
    let msg: { type?: unknown; data?: unknown } | unknown[];
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      this.counters.parseFailures++;
      return undefined;
    }
    // The native sensor writes the tuple alone (no `{"type":"value"}` wrapper).
    if (Array.isArray(msg)) msg = { type: 'value', data: msg };
    if (msg.type === 'lost_events') {
      const n = (msg.data as { events?: unknown } | undefined)?.events;
      this.counters.lostEvents += typeof n === 'number' ? n : 1;
      return undefined;
    }
    if (msg.type === 'attached_probes') {
      const n = (msg.data as { probes?: unknown } | undefined)?.probes;
      this.attachedProbes = typeof n === 'number' ? n : 0;
      return undefined;
    }
    // Maps printed at exit (`@peer`) and other bpftrace chatter are not events.
    if (msg.type !== 'value' || !Array.isArray(msg.data)) return undefined;
    const event = this.tuple(msg.data as unknown[]);
    if (event === null) this.counters.parseFailures++;
    else if (event !== undefined) this.counters.events++;
    return event ?? undefined;
  }

  /** undefined: a fragment; null: not understood. */
  private tuple(t: unknown[]): SensorEvent | undefined | null {
    const kind = t[0];
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
      switch (kind) {
        case 'arg': {
          const p = this.fragment(num(1), num(2) === 0);
          p.argv[num(2)] = str(3);
          return undefined;
        }
        case 'argv': {
          const p = this.fragment(num(1), num(2) === 0);
          p.argv.length = Math.min(num(2), ARGV_SLOTS);
          p.argvTruncated = num(3) !== 0;
          return undefined;
        }
        case 'execpath':
          this.fragment(num(1), false).path = str(2);
          return undefined;
        case 'exefile':
          this.fragment(num(1), false).exeName = str(2);
          return undefined;
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
          return { ...this.base('setid', num(1), num(2), num(3), str(4)), syscall: syscallName(str(5)) };
        case 'ptrace':
          return {
            ...this.base('ptrace', num(1), num(2), num(3), str(4)),
            targetPid: num(5),
            request: num(6),
          };
        case 'module':
          return { ...this.base('module', num(1), num(2), num(3), str(4)), syscall: syscallName(str(5)) };
        default:
          return null;
      }
    } catch {
      return null;
    }
  }

  private exec(t: unknown[], num: (i: number) => number, str: (i: number) => string): SensorEvent {
    const pid = num(1);
    const oldPid = num(2);
    const native = t.length >= NATIVE_EXEC_FIELDS;
    // A non-leader thread's exec takes over the leader's pid: its argv was sent under the old tid.
    const p = native ? undefined : (this.pending.get(pid) ?? this.pending.get(oldPid));
    if (!native) {
      this.pending.delete(pid);
      this.pending.delete(oldPid);
    }
    const event: SensorEvent = {
      ...this.base('exec', pid, num(4), num(5), str(6)),
      ppid: num(3),
      euid: num(7),
      stdinSocket: (num(8) & S_IFMT) === S_IFSOCK,
      stdoutSocket: (num(9) & S_IFMT) === S_IFSOCK,
      argv: p?.argv.map((a) => a ?? '') ?? [],
      argvTruncated: p?.argvTruncated ?? false,
    };
    if (typeof t[10] === 'number') event.monotonicNs = t[10];
    if (native) {
      // The native sensor's one record: path, argv and the executable's facts in the tuple.
      const argv = t[12];
      if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new TypeError('argv');
      event.path = str(11);
      event.argv = argv.slice(0, ARGV_SLOTS) as string[];
      event.argvTruncated = num(13) !== 0;
      event.exe = str(14);
      event.upperLayer = num(15) !== 0;
      event.exeDeleted = num(16) !== 0;
      if (event.exe.startsWith('/memfd:')) event.exeName = event.exe.slice(1);
      return event;
    }
    if (p?.path !== undefined) event.path = p.path;
    if (p?.exeName !== undefined) event.exeName = p.exeName;
    return event;
  }

  /** The exec being assembled for `pid`; `fresh` starts over (a new execve attempt). */
  private fragment(pid: number, fresh: boolean): PendingExec {
    let p = fresh ? undefined : this.pending.get(pid);
    if (!p) {
      p = { argv: [], argvTruncated: false };
      this.pending.delete(pid);
      if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value as number);
      this.pending.set(pid, p);
    }
    return p;
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
 * A byte stream to lines, for bpftrace's stdout: one string decode per chunk (node:readline
 * decodes, scans and emits per line, a cost paid for every one of an exec's lines). A chunk may
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

/** `tracepoint:syscalls:sys_enter_setuid` to `setuid`. */
function syscallName(probe: string): string {
  const m = /sys_enter_([a-z0-9_]+)$/.exec(probe);
  return m ? (m[1] as string) : probe;
}
