/** The scan behind `containment scan` (declared in scan-command.ts), loaded only when a scan runs. */
import { randomUUID } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { resolveThresholds } from '../config/config.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { WorkloadIdentity } from '../events/cloud-event.js';
import type { Severity } from '../inventory/types.js';
import { renderReport } from '../report/index.js';
import { loadIgnoreFile } from '../report/ignore-file.js';
import type { ScanPhase } from '../scan/scan.js';
import type { ScanResult } from '../scan/scan-result.js';
import { buildAgentReport } from '../scanner/agent-report.js';
import { nameSchema } from '../scanner/schemas.js';
import { ScannerClient } from '../clients/scanner-client.js';
import { configOf, dbPathOf, VERSION } from './common.js';
import type { GateSeverity, ScanFlags } from './scan-command.js';

/** UNKNOWN ranks below LOW: a gate at any level does not fire on unrated findings. */
const RANK: Record<Severity, number> = { UNKNOWN: 0, LOW: 1, MEDIUM: 2, HIGH: 3, CRITICAL: 4 };

type WorkloadName = Pick<WorkloadIdentity, 'cluster' | 'namespace' | 'pod' | 'container'>;

/** `<cluster>/<namespace>/<pod>[/<container>]`, each part a valid name. */
function parseWorkload(value: string): WorkloadName {
  const parts = value.split('/');
  if (parts.length < 3 || parts.length > 4 || parts.some((p) => !nameSchema.safeParse(p).success)) {
    throw new ContainmentError(
      ErrorCodes.USAGE,
      '--workload: expected <cluster>/<namespace>/<pod>[/<container>] (names without "*")',
    );
  }
  const [cluster, namespace, pod, container] = parts as [string, string, string, string | undefined];
  return { cluster, namespace, pod, ...(container === undefined ? {} : { container }) };
}

/** The scan as an agent report, sent to a scanner server so CI image scans are recorded too. */
async function sendReport(result: ScanResult, client: ScannerClient, workload: WorkloadName): Promise<void> {
  const report = buildAgentReport({
    reportId: randomUUID(),
    workload: {
      ...workload,
      node: hostname(),
      // A directory has no image name: its path is the best identity the report can carry.
      image: result.target.image ?? result.target.ref,
    },
    scanTime: result.scanTime,
    inventory: {
      ...(result.os ? { os: result.os } : {}),
      packages: result.packages,
      insecureConfigurations: result.insecureConfigurations,
    },
  });
  const sent = await client.sendReport(report);
  process.stderr.write(
    `reported scan ${sent.scanId} (${sent.kind}) for ${workload.cluster}/${workload.namespace}/${workload.pod}\n`,
  );
}

/** Drops findings below `severity` from what is shown; the summary still covers everything. */
function filterBySeverity(result: ScanResult, severity: GateSeverity | undefined): ScanResult {
  if (!severity) return result;
  const keep = (s: Severity): boolean => RANK[s] >= RANK[severity];
  const vulnerabilities = result.vulnerabilities.filter((v) => keep(v.severity));
  const insecureConfigurations = result.insecureConfigurations.filter((c) => keep(c.severity));
  const hidden =
    result.vulnerabilities.length -
    vulnerabilities.length +
    (result.insecureConfigurations.length - insecureConfigurations.length);
  const notes =
    hidden > 0 ? [...result.notes, `${hidden} finding(s) below ${severity} not shown`] : result.notes;
  return { ...result, vulnerabilities, insecureConfigurations, notes };
}

/**
 * The gate: with `--severity`, any shown finding fails it; without, any vulnerability or
 * insecure configuration does. A failed compliance verdict always fails it.
 */
export function gateFails(result: ScanResult, shown: ScanResult): boolean {
  return (
    shown.vulnerabilities.length + shown.insecureConfigurations.length > 0 ||
    !result.summary.compliance.passed
  );
}

/** Writes next to the destination, then renames: a reader never sees half a report. */
function writeAtomically(path: string, text: string): void {
  const tmp = join(dirname(path), `.${process.pid}.containment-report.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function progressReporter(enabled: boolean): {
  onPhase?: (phase: ScanPhase, detail?: string) => void;
  stop(): void;
} {
  if (!enabled || !process.stderr.isTTY) return { stop: () => {} };
  const steps: ScanPhase[] = ['open', 'walk', 'extract', 'configuration', 'match'];
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: 'scanning [{bar}] {phase}', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(steps.length, 0, { phase: 'opening' });
  return {
    onPhase: (phase, detail) =>
      bar.update(steps.indexOf(phase) + 1, { phase: detail ? `${phase} ${detail}` : phase }),
    stop: () => bar.stop(),
  };
}

export async function runScan(target: string, flags: ScanFlags, command: Command): Promise<void> {
  const file = await configOf(command);
  const env = process.env;
  // Checked before scanning: a misconfigured pipeline should fail fast, not after the scan.
  const { reportTo, workload, token } = flags;
  if ((reportTo === undefined) !== (workload === undefined)) {
    throw new ContainmentError(ErrorCodes.USAGE, '--report-to and --workload go together');
  }
  if (reportTo !== undefined && !token) {
    throw new ContainmentError(ErrorCodes.USAGE, '--report-to needs --token or CONTAINMENT_TOKEN');
  }
  const reporting =
    reportTo === undefined || workload === undefined || !token
      ? undefined
      : { client: new ScannerClient({ server: reportTo, token }), workload: parseWorkload(workload) };
  const ignorePath = flags.ignoreFile ?? file.ignoreFile;
  const progress = progressReporter(flags.progress);
  // Loaded on use, so that the other commands start without the inventory and matching code.
  const { scan } = await import('../scan/scan.js');
  let result: ScanResult;
  try {
    result = await scan(target, {
      dbPath: dbPathOf(flags, file, env),
      thresholds: resolveThresholds(flags.threshold, env, file),
      ignore: ignorePath ? loadIgnoreFile(ignorePath) : [],
      engineSocket: flags.engineSocket ?? file.engineSocket,
      onPhase: progress.onPhase,
      includeDeclared: flags.includeDeclared === true,
    });
  } finally {
    progress.stop();
  }
  const shown = filterBySeverity(result, flags.severity);
  const text = renderReport(shown, flags.format, {
    color: !flags.output && process.stdout.isTTY,
    toolVersion: VERSION,
  });
  if (flags.output) writeAtomically(flags.output, text.endsWith('\n') ? text : `${text}\n`);
  else process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  if (reporting) await sendReport(result, reporting.client, reporting.workload);
  if (flags.exitCode !== undefined && gateFails(result, shown)) process.exitCode = flags.exitCode;
}
