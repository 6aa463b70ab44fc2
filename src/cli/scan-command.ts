/**
 * `containment scan <target>`: the scanner and the CI gate. This file only declares the command;
 * the scan runs from `scan-run.ts`, loaded on use, so that `scan --help` starts with commander alone.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { addDbOptions } from './common.js';
import type { DbFlags } from './common.js';
import type { ReportFormat } from '../report/index.js';

const GATE_SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type GateSeverity = (typeof GATE_SEVERITIES)[number];

export interface ScanFlags extends DbFlags {
  format: ReportFormat;
  output?: string;
  severity?: GateSeverity;
  exitCode?: number;
  ignoreFile?: string;
  threshold: string[];
  engineSocket?: string;
  progress: boolean;
  reportTo?: string;
  workload?: string;
  token?: string;
  includeDeclared?: boolean;
}

function parseExitCode(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new InvalidArgumentError('expected an integer 0-255');
  return n;
}

function parseSeverity(value: string): GateSeverity {
  const upper = value.toUpperCase();
  if (!(GATE_SEVERITIES as readonly string[]).includes(upper)) {
    throw new InvalidArgumentError(`expected one of ${GATE_SEVERITIES.join(', ')}`);
  }
  return upper as GateSeverity;
}

export function registerScanCommand(program: Command): void {
  const cmd = program
    .command('scan')
    .description('scan a root filesystem for vulnerable packages and insecure configuration')
    .argument(
      '<target>',
      'a directory, an image archive (docker/podman save, OCI), container:<name-or-id>, pid:<pid>',
    )
    .addOption(
      new Option('-f, --format <format>', 'output format')
        .choices(['table', 'json', 'sarif', 'cyclonedx'])
        .default('table'),
    )
    .option('-o, --output <file>', 'write the report to a file instead of standard output')
    .option(
      '--severity <level>',
      'show and gate on findings at or above LOW|MEDIUM|HIGH|CRITICAL',
      parseSeverity,
    )
    .option(
      '--exit-code <n>',
      'exit with <n> when the gate fails (findings, or compliance verdict FAILED)',
      parseExitCode,
    )
    .option('--ignore-file <file>', 'JSON file of ids to ignore, each with a reason and an expiry date')
    .option(
      '--threshold <SEVERITY=N>',
      'compliance threshold, repeatable (default CRITICAL=0 HIGH=5 MEDIUM=20 LOW=50)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--engine-socket <path>', 'container engine API socket for container: targets')
    .option('--no-progress', 'no progress bar on a terminal')
    .option(
      '--include-declared',
      'count packages only a lockfile declares (no installed tree beside it) toward findings',
    )
    .option('--report-to <server>', 'also send the scan as an agent report to this scanner server')
    .option(
      '--workload <cluster/namespace/pod>',
      'workload the report is for (with --report-to; a 4th part names the container)',
    )
    .addOption(
      new Option('--token <token>', 'bearer token for --report-to (agent or admin)').env('CONTAINMENT_TOKEN'),
    );
  addDbOptions(cmd).action(async (target: string, flags: ScanFlags, command: Command) =>
    // The scan itself loads on use: `scan --help` pays only for commander and this file.
    (await import('./scan-run.js')).runScan(target, flags, command),
  );
}
