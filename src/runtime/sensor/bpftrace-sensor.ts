/**
 * The eBPF sensor: Debian's bpftrace running the shipped program, supervised. bpftrace runs in
 * its own process group under `setpriv --pdeathsig KILL` (the kernel kills it if the agent dies
 * without cleaning up, even by SIGKILL); on stop, on the agent's exit and on SIGINT/SIGTERM/SIGHUP
 * the whole group is killed, which detaches every probe. If bpftrace dies it is restarted with
 * exponential backoff, counted, and logged.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { SensorEvent } from '../contracts.js';
import { BpftraceDecoder } from './decode.js';
import { loadProgram } from './program.js';
import type { Sensor, SensorLogger, SensorStatus } from './sensor.js';
import { silentLogger } from './sensor.js';

export interface BpftraceSensorOptions {
  bpftrace?: string;
  /** The host's pid-namespace level: tasks deeper than it are container tasks. */
  hostPidLevel?: number;
  logger?: SensorLogger;
  /** Give up waiting for the first attach after this long (compiling takes seconds under load). */
  attachTimeoutMs?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export const EBPF_BLIND_SPOTS = [
  'opens through relative paths or outside the sensitive prefixes are not seen',
  'argv beyond 6 arguments and 160 bytes per argument is cut',
];

// Harmless on kernels that charge BPF memory to the cgroup, printed on every start.
const NOISE = /RLIMIT_MEMLOCK|^WARNING:|Addrspace mismatch|^\s*$|^\s*[~^]+\s*$/;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

export class BpftraceSensor implements Sensor {
  private child: ChildProcess | undefined;
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
  private readonly killOnExit = (): void => this.killGroup('SIGKILL');
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.stopping = true; // the agent is going down: no restart
    this.killGroup('SIGKILL');
    // Only this handler: keep the default meaning of the signal (terminate).
    if (process.listenerCount(signal) <= 1) process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 0));
  };

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
    process.on('exit', this.killOnExit);
    for (const s of SIGNALS) process.on(s, this.onSignal);
    await this.spawnOnce();
  }

  /** Spawns bpftrace; resolves when its probes are attached, rejects if it exits first. */
  private spawnOnce(): Promise<void> {
    const bin = this.options.bpftrace ?? 'bpftrace';
    const args = [
      '-B',
      'line',
      '-f',
      'json',
      join(this.dir as string, 'probes.bt'),
      String(this.options.hostPidLevel ?? 0),
    ];
    const [file, argv] = hasSetpriv()
      ? ['setpriv', ['--pdeathsig', 'KILL', '--', bin, ...args]]
      : [bin, args];
    const child = spawn(file, argv, {
      detached: true, // its own process group: one kill reaches bpftrace and anything it forks
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BPFTRACE_STRLEN: '160' },
    });
    this.child = child;
    let stderrTail = '';
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      if (NOISE.test(line)) return;
      stderrTail = `${stderrTail}\n${line}`.slice(-2000);
    });
    return new Promise<void>((resolve, reject) => {
      let attached = false;
      const timer = setTimeout(() => {
        if (!attached) reject(new Error(`bpftrace did not attach within ${this.attachTimeoutMs} ms`));
      }, this.attachTimeoutMs);
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
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
      child.on('error', (e) => {
        this.lastError = e.message;
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (this.child === child) this.child = undefined;
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
    return this.child?.pid;
  }

  private killGroup(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      this.killGroup('SIGTERM');
      const timer = setTimeout(() => this.killGroup('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    process.off('exit', this.killOnExit);
    for (const s of SIGNALS) process.off(s, this.onSignal);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  status(): SensorStatus {
    const c = this.decoder.counters;
    return {
      mode: 'ebpf',
      reasons: [],
      blindSpots: [...EBPF_BLIND_SPOTS, ...this.missing.map((p) => `no ${p} on this kernel`)],
      running: this.child !== undefined && this.decoder.attachedProbes !== undefined,
      restarts: this.restarts,
      lostEvents: c.lostEvents,
      parseFailures: c.parseFailures,
      events: c.events,
      ...(this.decoder.attachedProbes === undefined ? {} : { attachedProbes: this.decoder.attachedProbes }),
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      ...(this.child?.pid === undefined ? {} : { pid: this.child.pid }),
    };
  }
}

let setprivKnown: boolean | undefined;
function hasSetpriv(): boolean {
  setprivKnown ??= spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;
  return setprivKnown;
}
