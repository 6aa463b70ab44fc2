/**
 * `containment runtime watch`: the runtime sensor on this machine, detections as JSON lines on
 * stdout, status on stderr. `containment runtime rules`: the rules, with user rules and
 * disabled ones. Until the agent publishes detections through the outbox, this is how to see them.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { BaselineBook } from '../runtime/baseline/baseline.js';
import { RuntimeDetector } from '../runtime/detector.js';
import { registryFromFile } from '../runtime/rules/registry.js';
import { stopSignal } from './common.js';

interface WatchFlags {
  rules?: string;
  sensor: 'auto' | 'ebpf' | 'procfs';
  learn?: string;
}

/** `90s`, `10m`, `1h` → ms. */
function durationMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!m)
    throw new ContainmentError(ErrorCodes.USAGE, `--learn ${text}: expected a duration like 90s, 10m or 1h`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

export function registerRuntimeCommand(program: Command): void {
  const runtime = program.command('runtime').description('runtime detection on this node (eBPF sensor)');
  runtime
    .command('watch')
    .description('run the sensor and print detections as JSON lines until interrupted')
    .option('--rules <file>', 'a rule file (YAML/JSON): extra rules and `disable: [ids]`')
    .addOption(
      new Option('--sensor <mode>', 'eBPF, /proc polling, or eBPF when possible')
        .choices(['auto', 'ebpf', 'procfs'])
        .default('auto'),
    )
    .option('--learn <duration>', 'learn a baseline per image for this long, then report anomalies')
    .action(async (flags: WatchFlags) => {
      const rules = registryFromFile(flags.rules, (p) => readFileSync(p, 'utf8'));
      const stop = stopSignal();
      const log = (level: string) => (obj: object, msg: string) =>
        process.stderr.write(`${JSON.stringify({ level, msg, ...obj })}\n`);
      const detector = new RuntimeDetector({
        rules,
        logger: { info: log('info'), warn: log('warn'), error: log('error') },
        ...(flags.sensor === 'auto' ? {} : { mode: flags.sensor }),
        ...(flags.learn ? { baselines: new BaselineBook({ durationMs: durationMs(flags.learn) }) } : {}),
      });
      detector.onDetection((d) => process.stdout.write(`${JSON.stringify(d)}\n`));
      await detector.start();
      await stop;
      await detector.stop();
      process.stderr.write(
        `${JSON.stringify({ level: 'info', msg: 'runtime sensor stopped', status: detector.status() })}\n`,
      );
    });
  runtime
    .command('rules')
    .description('list the runtime rules (built-in and from --rules), enabled or not')
    .option('--rules <file>', 'a rule file (YAML/JSON)')
    .action((flags: { rules?: string }) => {
      const rules = registryFromFile(flags.rules, (p) => readFileSync(p, 'utf8'));
      for (const { rule, enabled } of rules.list())
        process.stdout.write(
          `${rule.id.padEnd(28)} ${rule.severity.padEnd(8)} ${enabled ? 'enabled ' : 'disabled'} ${rule.origin.padEnd(10)} ${rule.title}\n`,
        );
    });
}
