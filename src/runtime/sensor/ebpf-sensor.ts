/**
 * The eBPF sensor: the native engine (native/sensor: a BPF program loaded with cilium/ebpf, built
 * on the node by `npm run build:sensor`), supervised. It is started through spawnBpftrace
 * (bpftrace-process.ts, the one place a probe engine is started: its own process group under
 * `setpriv --pdeathsig KILL`, the group killed on the agent's exit and on SIGINT/SIGTERM/SIGHUP,
 * which detaches every probe). If it dies it is restarted with exponential backoff, counted, and
 * logged. The engine writes batches (one write per ≥ 10 ms while events flow), so every chunk is
 * read at once: the agent wakes up at most ~100 times a second however busy the containers are.
 */
import { createInterface } from 'node:readline';
import type { SensorEvent } from '../contracts.js';
import { BPFTRACE_NOISE, spawnBpftrace } from './bpftrace-process.js';
import type { BpftraceProcess } from './bpftrace-process.js';
import { SensorDecoder, lineSplitter } from './decode.js';
import { NATIVE_SENSOR_BIN } from './native.js';
import type { Sensor, SensorLogger, SensorStatus } from './sensor.js';
import { silentLogger } from './sensor.js';

export interface EbpfSensorOptions {
  /** The native sensor binary (default NATIVE_SENSOR_BIN). */
  binary?: string;
  /** The host's pid-namespace level: tasks deeper than it are container tasks. */
  hostPidLevel?: number;
  logger?: SensorLogger;
  /** Give up waiting for the first attach after this long (the verifier takes seconds under load). */
  attachTimeoutMs?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export const EBPF_BLIND_SPOTS = [
  'opens through relative paths or outside the sensitive prefixes are not seen',
  'argv beyond 6 arguments and 160 bytes per argument is cut',
];

export class EbpfSensor implements Sensor {
  private proc: BpftraceProcess | undefined;
  private stopping = false;
  private restarts = 0;
  private failuresInRow = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly decoder = new SensorDecoder();
  private lastError: string | undefined;
  private onEvent: (event: SensorEvent) => void = () => {};
  private readonly log: SensorLogger;

  constructor(private readonly options: EbpfSensorOptions = {}) {
    this.log = options.logger ?? silentLogger;
  }

  async start(onEvent: (event: SensorEvent) => void): Promise<void> {
    this.onEvent = onEvent;
    this.stopping = false;
    await this.spawnOnce();
  }

  /** Spawns the engine; resolves when its probes are attached, rejects if it exits first. */
  private spawnOnce(): Promise<void> {
    const proc = spawnBpftrace([String(this.options.hostPidLevel ?? 0)], {
      bpftrace: this.binary,
      // The agent is going down: no restart.
      onSignal: () => (this.stopping = true),
    });
    const { child } = proc;
    this.proc = proc;
    // The first line says what failed (a verifier refusal is followed by its whole log).
    let stderrHead: string | undefined;
    let stderrTail = '';
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      if (BPFTRACE_NOISE.test(line)) return;
      stderrHead ??= line;
      stderrTail = `${stderrTail}\n${line}`.slice(-2000);
    });
    return new Promise<void>((resolve, reject) => {
      let attached = false;
      const timer = setTimeout(() => {
        if (!attached) reject(new Error(`the sensor did not attach within ${this.attachTimeoutMs} ms`));
      }, this.attachTimeoutMs);
      const lines = lineSplitter((line) => {
        const event = this.decoder.decode(line);
        if (!attached && this.decoder.attachedProbes !== undefined) {
          attached = true;
          clearTimeout(timer);
          this.failuresInRow = 0;
          const missing = this.decoder.missingProbes;
          if (missing.length > 0)
            this.log.warn({ missing }, 'runtime sensor: probes this kernel lacks are left out');
          this.log.info({ probes: this.decoder.attachedProbes }, 'runtime sensor: eBPF probes attached');
          resolve();
        }
        if (event) this.onEvent(event);
      });
      const stdout = child.stdout as NodeJS.ReadableStream;
      stdout.on('data', (chunk: Buffer) => lines.push(chunk));
      stdout.on('end', () => lines.end());
      child.on('error', (e) => {
        this.lastError = e.message;
      });
      // 'close', not 'exit': stderr has been read to its end, so the reason is complete.
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        proc.release();
        if (this.proc === proc) this.proc = undefined;
        this.decoder.attachedProbes = undefined;
        const tail = stderrTail.trim();
        const said =
          stderrHead === undefined ? '' : `: ${stderrHead}${tail === stderrHead ? '' : `\n${tail}`}`;
        const why = `the sensor exited (${signal ?? `code ${code}`})${said}`;
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
      'runtime sensor: the eBPF engine died; restarting',
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
      const exited = new Promise<void>((r) => proc.child.once('close', () => r()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    proc?.release();
    this.proc = undefined;
    this.decoder.attachedProbes = undefined;
  }

  private get binary(): string {
    return this.options.binary ?? NATIVE_SENSOR_BIN;
  }

  status(): SensorStatus {
    const c = this.decoder.counters;
    return {
      mode: 'ebpf',
      reasons: [],
      blindSpots: [...EBPF_BLIND_SPOTS, ...this.decoder.missingProbes.map((p) => `no ${p} on this kernel`)],
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
