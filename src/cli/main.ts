/**
 * The `containment` command. Every failure a user can cause ends as one line
 * `error[CODE]: message` on stderr and exit status 2; the scan gate uses the status the user
 * chose with `--exit-code`.
 */
import { Command, CommanderError, Option } from 'commander';
import { isContainmentError } from '../errors.js';
import { ApiError } from '../clients/http.js';
import { EXIT_ERROR, VERSION } from './common.js';
import { applyHelpStyle } from './help.js';

type Register = (program: Command) => void;

/**
 * Every top-level command, in help order, and the module that defines it. Modules load lazily:
 * `containment scan …` loads only the scan command (and what it imports), so a command starts
 * without paying for the server, the operator and the Kubernetes client.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  scan: async () => (await import('./scan-command.js')).registerScanCommand,
  db: async () => (await import('./db-command.js')).registerDbCommands,
  server: async () => (await import('./server-command.js')).registerServerCommand,
  cluster: async () => (await import('./cluster-command.js')).registerClusterCommands,
  token: async () => (await import('./token-command.js')).registerTokenCommands,
  trigger: async () => (await import('./trigger-command.js')).registerTriggerCommands,
  agent: async () => (await import('./agent-command.js')).registerAgentCommand,
  functions: async () => (await import('./functions-command.js')).registerFunctionsCommand,
  policy: async () => (await import('./policy-command.js')).registerPolicyCommands,
  up: async () => (await import('./up-command.js')).registerUpCommand,
  operator: async () => (await import('./operator-command.js')).registerOperatorCommand,
  admission: async () => (await import('./admission-command.js')).registerAdmissionCommand,
  harden: async () => (await import('./harden-command.js')).registerHardenCommand,
  posture: async () => (await import('./posture-command.js')).registerPostureCommand,
  runtime: async () => (await import('./runtime-command.js')).registerRuntimeCommand,
  baseline: async () => (await import('./baseline-command.js')).registerBaselineCommands,
  profile: async () => (await import('./profile-command.js')).registerProfileCommand,
};

/**
 * The program with every command, or only with the one `argv` names (its first word, when that
 * is a command); the top-level help, `help <command>` and global options before the command
 * load them all.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const program = new Command('containment')
    .description('Find what is really running and vulnerable in your containers, and contain it.')
    .version(VERSION)
    .addOption(
      new Option('--config <file>', 'JSON config file (flags > environment > file)').env(
        'CONTAINMENT_CONFIG',
      ),
    )
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      // Commander's own usage messages become our one-line error format.
      outputError: (str, write) => write(`error[USAGE]: ${str.replace(/^error: /, '').trim()}\n`),
    });
  const first = argv?.[0];
  const names = first !== undefined && Object.hasOwn(COMMANDS, first) ? [first] : Object.keys(COMMANDS);
  const registers = await Promise.all(names.map((name) => (COMMANDS[name] as () => Promise<Register>)()));
  for (const register of registers) register(program);
  applyHelpStyle(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv as string[], { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version also end here, with exit code 0.
      return e.exitCode === 0 ? 0 : EXIT_ERROR;
    }
    if (isContainmentError(e) || e instanceof ApiError) {
      process.stderr.write(`error[${e.code}]: ${e.message}\n`);
      return EXIT_ERROR;
    }
    // A bug, not a user mistake: keep the stack so it can be reported.
    process.stderr.write(`error[INTERNAL]: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT_ERROR;
  }
}
