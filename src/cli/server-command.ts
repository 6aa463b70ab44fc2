/** `containment server`: the vulnerability scanner service (SQLite), until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { runScannerServer } from '../scanner/run-server.js';
import { addDbOptions, configOf, dataDirOf, dbPathOf } from './common.js';
import type { DbFlags } from './common.js';

interface ServerFlags extends DbFlags {
  host: string;
  port: number;
  triggerAllow: string[];
  bodyLimit?: number;
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

export function registerServerCommand(program: Command): void {
  addDbOptions(
    program
      .command('server')
      .description('run the vulnerability scanner service (reports, findings API, event triggers)')
      .addOption(new Option('--host <address>', 'address to listen on').default('127.0.0.1'))
      .addOption(
        new Option('--port <n>', 'port to listen on (0 = any free port)')
          .argParser(integer(0, 65535))
          .default(8080),
      )
      .addOption(
        new Option('--trigger-allow <cidr>', 'private/loopback range trigger URLs may use (repeatable)')
          .argParser((value: string, previous: string[] = []) => [...previous, value])
          .default([]),
      )
      .addOption(
        new Option('--body-limit <bytes>', 'largest request body accepted').argParser(integer(1024, 1 << 30)),
      ),
  ).action(async (flags: ServerFlags, command: Command) => {
    const file = configOf(command);
    // Logs go to stderr so stdout carries only the generated admin token.
    const logger = pino({ level: process.env.CONTAINMENT_LOG_LEVEL ?? 'info' }, pino.destination(2));
    const server = await runScannerServer({
      host: flags.host,
      port: flags.port,
      dataDir: dataDirOf(flags, file),
      advisoryDbPath: dbPathOf(flags, file),
      triggerAllow: flags.triggerAllow,
      ...(process.env.CONTAINMENT_ADMIN_TOKEN === undefined
        ? {}
        : { adminToken: process.env.CONTAINMENT_ADMIN_TOKEN }),
      ...(flags.bodyLimit === undefined ? {} : { bodyLimit: flags.bodyLimit }),
      logger,
    });
    if (server.generatedAdminToken !== undefined) {
      process.stderr.write('generated the first admin token (shown only once):\n');
      process.stdout.write(`${server.generatedAdminToken}\n`);
    }
    logger.info({ url: server.url }, 'scanner listening');
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals): void => {
        logger.info({ signal }, 'stopping');
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
  });
}
