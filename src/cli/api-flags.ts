/**
 * The `--server` / `--token` flags of every CLI command that calls the scanner API, and the
 * client they make (src/clients/scanner-client.ts); `--format` and JSON output for what they print.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { ScannerClient } from '../clients/scanner-client.js';
import { ContainmentError, ErrorCodes } from '../errors.js';

export interface ApiFlags {
  server?: string;
  token?: string;
}

/** `--server` and `--token`, with CONTAINMENT_SERVER / CONTAINMENT_TOKEN as fallbacks. */
export function addApiOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <url>', 'scanner API base URL').env('CONTAINMENT_SERVER'))
    .addOption(new Option('--token <token>', 'bearer token for the API').env('CONTAINMENT_TOKEN'));
}

export function clientFrom(flags: ApiFlags): ScannerClient {
  if (!flags.server) {
    throw new ContainmentError(ErrorCodes.USAGE, 'no server: pass --server or set CONTAINMENT_SERVER');
  }
  if (!flags.token) {
    throw new ContainmentError(ErrorCodes.USAGE, 'no token: pass --token or set CONTAINMENT_TOKEN');
  }
  return new ScannerClient({ server: flags.server, token: flags.token });
}

/** `--format table|json` for commands that print records. */
export function addFormatOption(cmd: Command): Command {
  return cmd.addOption(
    new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'),
  );
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
