/** `containment up`: scanner, policy runtime, enforcer and agent on this machine, until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { resolveDataDir } from '../config/paths.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { labelOption, parseDuration } from './agent-command.js';
import { stopSignal } from './common.js';

interface UpFlags {
  dataDir?: string;
  port: number;
  engineSocket?: string;
  rescanInterval: number;
  rematchInterval: number;
  gracePeriod: number;
  label: Record<string, string>;
}

const DEFAULT_PORT = 8080;

function intIn(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`expected ${min} to ${max}`);
    return n;
  };
}

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description(
      'run the whole loop on this machine: scanner (port), functions (port+1), action API (port+2), agent',
    )
    .addOption(new Option('--data-dir <dir>', 'data directory (the one `containment db import` fills)'))
    .addOption(
      new Option('--port <port>', 'scanner API port; the runtime uses port+1, the action API port+2')
        .argParser(intIn(1, 65533))
        .default(DEFAULT_PORT),
    )
    .addOption(new Option('--engine-socket <path>', 'container engine API socket (found automatically)'))
    .addOption(
      new Option('--rescan-interval <duration>', 'rescan every running container this often')
        .argParser((v: string) => parseDuration(v))
        .default(10_000, '10s'),
    )
    .addOption(
      new Option('--rematch-interval <duration>', 'look for advisory imports this often')
        .argParser((v: string) => parseDuration(v))
        .default(1_000, '1s'),
    )
    .addOption(
      new Option('--grace-period <seconds>', 'grace period before a vulnerable container is killed')
        .argParser(intIn(0, 3600))
        .default(30),
    )
    .addOption(labelOption())
    .action(async (flags: UpFlags) => {
      const { runUp } = await import('../up/run-up.js');
      const dataDir = resolveDataDir({ dataDir: flags.dataDir, env: process.env });
      const logger = pino({ level: process.env.CONTAINMENT_LOG_LEVEL ?? 'warn' }, pino.destination(2));
      // Listening before starting: a signal during start-up also ends in a clean stop.
      const signalled = stopSignal();
      const up = await runUp({
        dataDir,
        port: flags.port,
        ...(flags.engineSocket === undefined ? {} : { engineSocket: flags.engineSocket }),
        rescanIntervalMs: flags.rescanInterval,
        rematchIntervalMs: flags.rematchInterval,
        gracePeriodSeconds: flags.gracePeriod,
        labels: flags.label,
        logger,
        notice: (line) => process.stderr.write(`containment up: ${line}\n`),
      }).catch((e: unknown) => {
        const { code, port } = e as { code?: string; port?: number };
        if (code !== 'EADDRINUSE') throw e;
        throw new ContainmentError(
          ErrorCodes.USAGE,
          `port ${port ?? '?'} is in use; up needs --port and the two ports after it free`,
        );
      });
      process.stdout.write(
        [
          `containment up (data dir ${dataDir})`,
          `  scanner API:      ${up.scannerUrl}`,
          `  functions API:    ${up.functionsUrl}  (namespace local, auth ${up.functionsAuth})`,
          `  action API:       ${up.actionApiUrl}${up.enforcement ? '' : '  (enforcement OFF: no container engine; actions are refused)'}`,
          `  audit:            ${up.actionApiUrl}/v1/audit?namespace=local&pod=<container name>`,
          `  container engine: ${up.engineSocket === undefined ? 'none' : `unix://${up.engineSocket}`}`,
          `  admin token:      ${up.adminToken}`,
          'ready; Ctrl-C to stop',
          '',
        ].join('\n'),
      );
      const signal = await signalled;
      process.stderr.write(`containment up: ${signal}, stopping\n`);
      await up.close();
      process.stderr.write('containment up: stopped\n');
    });
}
