/** `containment up`: scanner, policy runtime, enforcer and agent on this machine, until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { ConfigFile } from '../config/config.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { baselineLearningOption, labelOption, parseDuration, runtimeDetectionOption } from './options.js';
import { commandLogger, configOf, dataDirOf, stopSignal } from './common.js';
import { dataDirOption, portDefaultNote } from './help.js';
import { addOidcOptions, oidcSettings } from './oidc-options.js';
import type { OidcFlags } from './oidc-options.js';

interface UpFlags extends OidcFlags {
  dataDir?: string;
  port: number;
  engineSocket?: string;
  rescanInterval: number;
  rematchInterval: number;
  gracePeriod: number;
  label: Record<string, string>;
  runtimeDetection: 'on' | 'off';
  baselineLearning?: number;
  enforce?: boolean;
  monitor?: boolean;
  quiet?: boolean;
  json?: boolean;
}

const DEFAULT_PORT = 8080;

function intIn(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`expected ${min} to ${max}`);
    return n;
  };
}

const TRUE = /^(1|true|yes|on)$/i;
const FALSE = /^(0|false|no|off)$/i;

/** Flags > CONTAINMENT_ENFORCE > the config file's `enforce` > monitor. */
export function enforceSetting(
  flags: Pick<UpFlags, 'enforce' | 'monitor'>,
  env: NodeJS.ProcessEnv,
  file: ConfigFile,
): boolean {
  if (flags.enforce === true) return true;
  if (flags.monitor === true) return false;
  const value = env.CONTAINMENT_ENFORCE;
  if (value !== undefined && value !== '') {
    if (TRUE.test(value)) return true;
    if (FALSE.test(value)) return false;
    throw new ContainmentError(
      ErrorCodes.USAGE,
      `CONTAINMENT_ENFORCE=${JSON.stringify(value)}: expected true or false (1/0, yes/no, on/off)`,
    );
  }
  return file.enforce ?? false;
}

export function registerUpCommand(program: Command): void {
  const upCommand = program
    .command('up')
    .description(
      'run the whole loop on this machine: scanner (port), functions (port+1), action API (port+2), agent; monitors (dry runs only) unless --enforce',
    )
    .addOption(dataDirOption())
    .addOption(
      new Option('--port <port>', `scanner API port; ${portDefaultNote(DEFAULT_PORT)}`)
        .argParser(intIn(1, 65533))
        .env('CONTAINMENT_PORT')
        .default(DEFAULT_PORT),
    )
    .addOption(
      new Option(
        '--enforce',
        'carry actions out (quarantine, terminate …); default: monitor — every action is a dry run (also CONTAINMENT_ENFORCE=true or "enforce": true in the config file)',
      ).conflicts('monitor'),
    )
    .addOption(
      new Option(
        '--monitor',
        'only record what would be done, even if the environment or config file says enforce',
      ),
    )
    .addOption(
      new Option('--quiet', 'print only warnings and errors (no banner, no successful decisions)').conflicts(
        'json',
      ),
    )
    .addOption(new Option('--json', 'print the banner and each decision as one JSON object per line'))
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
    .addOption(runtimeDetectionOption())
    .addOption(baselineLearningOption())
    .action(async (flags: UpFlags, cmd: Command) => {
      const { runUp } = await import('../up/run-up.js');
      const { banner, decisionOutput, readyObject, removeUpEnv, writeUpEnv } =
        await import('../up/up-console.js');
      const file = await configOf(cmd);
      const dataDir = dataDirOf(flags, file);
      const enforce = enforceSetting(flags, process.env, file);
      const oidc = oidcSettings(flags, file);
      const output = flags.json === true ? 'json' : flags.quiet === true ? 'quiet' : 'text';
      const logger = await commandLogger('warn');
      // Listening before starting: a signal during start-up also ends in a clean stop.
      const signalled = stopSignal();
      // A file left by an earlier run that crashed must not look like this run being ready.
      removeUpEnv(dataDir);
      const up = await runUp({
        dataDir,
        port: flags.port,
        ...(flags.engineSocket === undefined ? {} : { engineSocket: flags.engineSocket }),
        rescanIntervalMs: flags.rescanInterval,
        rematchIntervalMs: flags.rematchInterval,
        gracePeriodSeconds: flags.gracePeriod,
        labels: flags.label,
        runtimeDetection: flags.runtimeDetection,
        ...(flags.baselineLearning === undefined ? {} : { baselineLearningMs: flags.baselineLearning }),
        enforce,
        ...oidc,
        onDecision: (d) => {
          const out = decisionOutput(output, d);
          if (out) process[out.stream].write(`${out.line}\n`);
        },
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
      const envFile = writeUpEnv(dataDir, up);
      if (output === 'json') process.stdout.write(`${JSON.stringify(readyObject(up, dataDir, envFile))}\n`);
      else if (output === 'text') process.stdout.write(banner(up, dataDir, envFile));
      const signal = await signalled;
      process.stderr.write(`containment up: ${signal}, stopping\n`);
      removeUpEnv(dataDir);
      await up.close();
      process.stderr.write('containment up: stopped\n');
    });
  addOidcOptions(upCommand);
}
