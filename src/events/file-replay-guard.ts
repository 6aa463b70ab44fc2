/**
 * A ReplayGuard for a process without a database (the Knative policy handler): in memory, plus an
 * append-only file (`CONTAINMENT_REPLAY_FILE` on a volume) read back at start, so a restart does
 * not reopen the replay window. One line per claim (`+<expiry ms> <id>`) or release (`- <id>`);
 * rewritten with only live ids when it has grown past a bound. One process per file.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { MemoryReplayGuard, replayRetentionMs } from './signature.js';
import type { ReplayGuard } from './signature.js';

const COMPACT_AFTER_LINES = 10_000;

export class FileReplayGuard implements ReplayGuard {
  private readonly live = new Map<string, number>();
  private lines = 0;

  constructor(
    private readonly file: string,
    private readonly retentionMs = replayRetentionMs(),
    private readonly memory = new MemoryReplayGuard(retentionMs),
  ) {
    if (!existsSync(file)) return;
    const now = Date.now();
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^([+-])(\d*) (.+)$/.exec(line);
      if (!m) continue;
      const [, op, expiry, id] = m as unknown as [string, string, string, string];
      if (op === '-') this.live.delete(id);
      else if (Number(expiry) > now) this.live.set(id, Number(expiry));
    }
    // Restore: a remembered id is claimed in memory for the rest of its retention.
    for (const [id, expiry] of this.live) this.memory.claim(id, new Date(expiry - this.retentionMs));
    this.compact(now);
  }

  claim(id: string, now: Date = new Date()): boolean {
    if (!this.memory.claim(id, now)) return false;
    const expiry = now.getTime() + this.retentionMs;
    this.live.set(id, expiry);
    this.append(`+${expiry} ${id}\n`, now.getTime());
    return true;
  }

  release(id: string): void {
    this.memory.release(id);
    this.live.delete(id);
    this.append(`- ${id}\n`, Date.now());
  }

  private append(line: string, now: number): void {
    // Ids are the sender's `webhook-id`; a newline in one would forge a record.
    if (/[\r\n]/.test(line.slice(0, -1))) return;
    appendFileSync(this.file, line, { mode: 0o600 });
    if (++this.lines > COMPACT_AFTER_LINES) this.compact(now);
  }

  private compact(now: number): void {
    for (const [id, expiry] of this.live) if (expiry <= now) this.live.delete(id);
    const text = [...this.live].map(([id, expiry]) => `+${expiry} ${id}\n`).join('');
    writeFileSync(`${this.file}.tmp`, text, { mode: 0o600 });
    renameSync(`${this.file}.tmp`, this.file);
    this.lines = this.live.size;
  }
}
