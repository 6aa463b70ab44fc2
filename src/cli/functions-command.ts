/** `containment functions`: the OpenWhisk-compatible policy runtime, until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { configOf, dataDirOf, stopSignal } from './common.js';

interface FunctionsFlags {
  host: string;
  port: number;
  dataDir?: string;
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535)
    throw new InvalidArgumentError('expected an integer from 0 to 65535');
  return n;
}

export function registerFunctionsCommand(program: Command): void {
  program
    .command('functions')
    .description('run the OpenWhisk-compatible policy runtime (actions, triggers, rules, activations)')
    .addOption(new Option('--host <address>', 'address to listen on').default('127.0.0.1'))
    .addOption(
      new Option('--port <n>', 'port to listen on (0 = any free port)').argParser(port).default(3233),
    )
    .addOption(
      new Option(
        '--data-dir <dir>',
        'data directory (default: $CONTAINMENT_DATA_DIR, else $XDG_DATA_HOME/containment or ~/.local/share/containment)',
      ),
    )
    .action(async (flags: FunctionsFlags, command: Command) => {
      // Logs go to stderr so stdout carries only the generated guest key.
      const logger = pino({ level: process.env.CONTAINMENT_LOG_LEVEL ?? 'info' }, pino.destination(2));
      // Loaded here, not at startup: other commands would pay for Fastify, esbuild and QuickJS.
      const { runFunctions } = await import('../functions/run-functions.js');
      const guestAuth = process.env.CONTAINMENT_FUNCTIONS_AUTH;
      const running = await runFunctions({
        host: flags.host,
        port: flags.port,
        dataDir: dataDirOf(flags, configOf(command)),
        logger,
        ...(guestAuth === undefined || guestAuth === '' ? {} : { guestAuth }),
      });
      if (running.generatedGuestAuth !== undefined) {
        process.stderr.write('generated the key of namespace guest (shown only once):\n');
        process.stdout.write(`${running.generatedGuestAuth}\n`);
      }
      logger.info({ apihost: running.url }, 'function runtime listening');
      logger.info({ signal: await stopSignal() }, 'stopping');
      await running.close();
    });
}
