/**
 * The eBPF sensor: Debian's bpftrace running the shipped program, supervised. bpftrace is started
 * through spawnBpftrace (bpftrace-process.ts: its own process group under `setpriv --pdeathsig
 * KILL`, the group killed on the agent's exit and on SIGINT/SIGTERM/SIGHUP, which detaches every
 * probe). If bpftrace dies it is restarted with exponential backoff, counted, and logged.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { SensorEvent } from '../contracts.js';
import { BPFTRACE_NOISE, spawnBpftrace } from './bpftrace-process.js';
import type { BpftraceProcess } from './bpftrace-process.js';
import { BpftraceDecoder, lineSplitter } from './decode.js';
import { loadProgram } from './program.js';
import type { Sensor, SensorLogger, SensorStatus } from './sensor.js';
import { silentLogger } from './sensor.js';

export interface BpftraceSensorOptions {
  bpftrace?: string;
  /** Run this native sensor binary (native/sensor) instead of bpftrace and probes.bt. */
  native?: string;
  /** The host's pid-namespace level: tasks deeper than it are container tasks. */
  hostPidLevel?: number;
  logger?: SensorLogger;
  /** Give up waiting for the first attach after this long (compiling takes seconds under load). */
  attachTimeoutMs?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

/**
 * While bpftrace's output is busy (more than BUSY_LINES_PER_S lines in the current second), the
 * sensor leaves it in the pipe for READ_PAUSE_MS after each read. bpftrace writes each line at
 * once (`-B line`), an exec is four lines or more, and a wake-up of the event loop costs more
 * than parsing the lines it brings: batched, a burst is parsed in one go (figures in
 * docs/runtime-detection.md, Performance). Below that rate every line is read at once: an exec's
 * facts (/proc/<pid>/exe) are read while the process most likely still lives, and nothing waits.
 * A 64 KiB pipe holds ~100 ms of output at 1,700 execs/s.
 */
export const READ_PAUSE_MS = 10;
export const BUSY_LINES_PER_S = 1000;

export const EBPF_BLIND_SPOTS = [
  'opens through relative paths or outside the sensitive prefixes are not seen',
  'argv beyond 6 arguments and 160 bytes per argument is cut',
];

export class BpftraceSensor implements Sensor {
  private proc: BpftraceProcess | undefined;
  private stopping = false;
  private restarts = 0;
  private failuresInRow = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly decoder = new BpftraceDecoder();
  private lastError: string | undefined;
  private dir: string | undefined;
  private missing: string[] = [];
  private onEvent: (event: SensorEvent) => void = () => {};
  private readonly log: SensorLogger;

  constructor(private readonly options: BpftraceSensorOptions = {}) {
    this.log = options.logger ?? silentLogger;
  }

  async start(onEvent: (event: SensorEvent) => void): Promise<void> {
    this.onEvent = onEvent;
    this.stopping = false;
    const program = loadProgram();
    this.missing = program.missing;
    if (program.missing.length > 0)
      this.log.warn({ missing: program.missing }, 'runtime sensor: probes this kernel lacks are left out');
    this.dir = mkdtempSync(join(tmpdir(), 'containment-sensor-'));
    writeFileSync(join(this.dir, 'probes.bt'), program.text, { mode: 0o600 });
    await this.spawnOnce();
  }

  /** Spawns bpftrace; resolves when its probes are attached, rejects if it exits first. */
  private spawnOnce(): Promise<void> {
    const level = String(this.options.hostPidLevel ?? 0);
    const native = this.options.native;
    const args =
      native !== undefined
        ? [level]
        : ['-B', 'line', '-f', 'json', join(this.dir as string, 'probes.bt'), level];
    const bin = native ?? this.options.bpftrace;
    const proc = spawnBpftrace(args, {
      ...(bin === undefined ? {} : { bpftrace: bin }),
      env: { BPFTRACE_STRLEN: '160' },
      // The agent is going down: no restart.
      onSignal: () => (this.stopping = true),
    });
    const { child } = proc;
    this.proc = proc;
    let stderrTail = '';
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      if (BPFTRACE_NOISE.test(line)) return;
      stderrTail = `${stderrTail}\n${line}`.slice(-2000);
    });
    return new Promise<void>((resolve, reject) => {
      let attached = false;
      const timer = setTimeout(() => {
        if (!attached) reject(new Error(`bpftrace did not attach within ${this.attachTimeoutMs} ms`));
      }, this.attachTimeoutMs);
      const lines = lineSplitter((line) => {
        const event = this.decoder.decode(line);
        if (!attached && this.decoder.attachedProbes !== undefined) {
          attached = true;
          clearTimeout(timer);
          this.failuresInRow = 0;
          this.log.info({ probes: this.decoder.attachedProbes }, 'runtime sensor: eBPF probes attached');
          resolve();
        }
        if (event) this.onEvent(event);
      });
      const stdout = child.stdout as NodeJS.ReadableStream;
      let second = 0;
      let linesThisSecond = 0;
      stdout.on('data', (chunk: Buffer) => {
        const now = Date.now();
        if (now - second >= 1000) {
          second = now;
          linesThisSecond = 0;
        }
        linesThisSecond += lines.push(chunk);
        if (linesThisSecond <= BUSY_LINES_PER_S) return;
        // Busy: the next read takes every line written meanwhile (the pipe holds them).
        stdout.pause();
        setTimeout(() => stdout.resume(), READ_PAUSE_MS).unref();
      });
      stdout.on('end', () => lines.end());
      child.on('error', (e) => {
        this.lastError = e.message;
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        proc.release();
        if (this.proc === proc) this.proc = undefined;
        this.decoder.attachedProbes = undefined;
        const why = `bpftrace exited (${signal ?? `code ${code}`})${stderrTail ? `: ${stderrTail.trim()}` : ''}`;
        this.lastError = why;
        if (!attached) reject(new Error(why));
        if (this.stopping || !attached) return;
        this.scheduleRestart(why);
      });
    });
  }

  private scheduleRestart(why: string): void {
    const min = this.options.backoffMinMs ?? 500;
    const delay = Math.min(this.options.backoffMaxMs ?? 30_000, min * 2 ** this.failuresInRow);
    this.failuresInRow++;
    this.restarts++;
    this.log.error(
      { restarts: this.restarts, delayMs: delay, error: why },
      'runtime sensor: bpftrace died; restarting',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawnOnce().catch((e: Error) => {
        if (!this.stopping) this.scheduleRestart(e.message);
      });
    }, delay);
    this.restartTimer.unref();
  }

  private get attachTimeoutMs(): number {
    return this.options.attachTimeoutMs ?? 120_000;
  }

  /** The pid of the process group leader (for tests: kill it to see a restart). */
  get pid(): number | undefined {
    return this.proc?.child.pid;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const proc = this.proc;
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
      const exited = new Promise<void>((r) => proc.child.once('exit', () => r()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    proc?.release();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  status(): SensorStatus {
    const c = this.decoder.counters;
    return {
      mode: 'ebpf',
      reasons: [],
      blindSpots: [...EBPF_BLIND_SPOTS, ...this.missing.map((p) => `no ${p} on this kernel`)],
      running: this.proc !== undefined && this.decoder.attachedProbes !== undefined,
      restarts: this.restarts,
      lostEvents: c.lostEvents,
      parseFailures: c.parseFailures,
      events: c.events,
      ...(this.decoder.attachedProbes === undefined ? {} : { attachedProbes: this.decoder.attachedProbes }),
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      ...(this.pid === undefined ? {} : { pid: this.pid }),
    };
  }
}
