/**
 * The `containment` command. Every failure a user can cause ends as one line
 * `error[CODE]: message` on stderr and exit status 2; the scan gate uses the status the user
 * chose with `--exit-code`.
 */
import { Command, CommanderError, Option } from 'commander';
import { isContainmentError } from '../errors.js';
import { ApiRequestError } from './api-client.js';
import { registerAdmissionCommand } from './admission-command.js';
import { registerAgentCommand } from './agent-command.js';
import { registerClusterCommands } from './cluster-command.js';
import { registerDbCommands } from './db-command.js';
import { registerFunctionsCommand } from './functions-command.js';
import { registerPolicyCommands } from './policy-command.js';
import { registerHardenCommand } from './harden-command.js';
import { registerPostureCommand } from './posture-command.js';
import { registerProfileCommand } from './profile-command.js';
import { registerScanCommand } from './scan-command.js';
import { registerServerCommand } from './server-command.js';
import { registerTokenCommands } from './token-command.js';
import { registerTriggerCommands } from './trigger-command.js';
import { registerUpCommand } from './up-command.js';
import { registerOperatorCommand } from './operator-command.js';
import { EXIT_ERROR, VERSION } from './common.js';
import { applyHelpStyle } from './help.js';

export function buildProgram(): Command {
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
  registerScanCommand(program);
  registerDbCommands(program);
  registerServerCommand(program);
  registerClusterCommands(program);
  registerTokenCommands(program);
  registerTriggerCommands(program);
  registerAgentCommand(program);
  registerFunctionsCommand(program);
  registerPolicyCommands(program);
  registerUpCommand(program);
  registerOperatorCommand(program);
  registerAdmissionCommand(program);
  registerHardenCommand(program);
  registerPostureCommand(program);
  registerProfileCommand(program);
  applyHelpStyle(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version also end here, with exit code 0.
      return e.exitCode === 0 ? 0 : EXIT_ERROR;
    }
    if (isContainmentError(e) || e instanceof ApiRequestError) {
      process.stderr.write(`error[${e.code}]: ${e.message}\n`);
      return EXIT_ERROR;
    }
    // A bug, not a user mistake: keep the stack so it can be reported.
    process.stderr.write(`error[INTERNAL]: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT_ERROR;
  }
}
