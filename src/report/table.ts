/**
 * `--format table`: the human report. Layout: header line; vulnerabilities (worst first);
 * insecure configurations; summary with the compliance verdict; ignored count; notes.
 * ANSI colour only when asked for: a report written to a file or a pipe stays plain text.
 */
import { SEVERITIES } from '../inventory/types.js';
import type { Severity } from '../inventory/types.js';
import type { ComplianceThresholds, VulnerabilityFinding } from '../matching/types.js';
import type { ScanResult } from '../scan/scan-result.js';
import { sortConfigurations, sortFindings } from './ordering.js';
import { renderTable, sanitizeCell } from './text-cells.js';
import type { Column } from './text-cells.js';

const RESET = '\u001b[0m';
const SEVERITY_COLOR: Record<Severity, string> = {
  CRITICAL: '\u001b[1;31m',
  HIGH: '\u001b[31m',
  MEDIUM: '\u001b[33m',
  LOW: '\u001b[34m',
  UNKNOWN: '\u001b[90m',
};
const PASSED_COLOR = '\u001b[1;32m';
const FAILED_COLOR = '\u001b[1;31m';

/** Aliases shown in the table; the rest are counted (`+3`). All of them are in the JSON output. */
const ALIASES_SHOWN = 2;

function shortAliases(aliases: readonly string[]): string {
  const shown = aliases.slice(0, ALIASES_SHOWN).join(', ');
  const rest = aliases.length - ALIASES_SHOWN;
  return rest > 0 ? `${shown} +${rest}` : shown;
}

/** The source package's name when it differs from the binary package's (`libssl3` ← `openssl`). */
function sourceName(finding: VulnerabilityFinding): string {
  const source = finding.package.source;
  return source && source.name !== finding.package.name ? source.name : '';
}

function headerLine(result: ScanResult): string {
  const { target } = result;
  const about = [target.kind, target.image && `image ${target.image}`].filter(Boolean).join(', ');
  const parts = [`Target: ${target.ref} (${about})`];
  const os = result.os?.prettyName ?? [result.os?.id, result.os?.versionId].filter(Boolean).join(' ');
  const ecosystem = result.ecosystem ?? result.os?.ecosystem;
  if (os || ecosystem) parts.push(`OS: ${[os, ecosystem && `[${ecosystem}]`].filter(Boolean).join(' ')}`);
  parts.push(`Packages: ${result.packages.length}`);
  return sanitizeCell(parts.join('  '));
}

function countsLine(label: string, counts: Record<Severity, number>): string {
  const total = SEVERITIES.reduce((sum, s) => sum + counts[s], 0);
  return `${label}: ${total} (${SEVERITIES.map((s) => `${s} ${counts[s]}`).join(', ')})`;
}

/** `Infinity` means no limit; a result read back from JSON has `null` there (JSON has no Infinity). */
function thresholdsText(thresholds: ComplianceThresholds): string {
  return (['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'] as const)
    .map((s) => {
      const limit: number | null = thresholds[s];
      return typeof limit === 'number' && Number.isFinite(limit) ? `${s} ≤ ${limit}` : `${s} unlimited`;
    })
    .join(', ');
}

export function renderTableReport(result: ScanResult, options: { color?: boolean } = {}): string {
  const color = options.color === true;
  const paint = (code: string, text: string): string => (color ? `${code}${text}${RESET}` : text);
  const severityStyle = (padded: string, raw: string): string =>
    paint(SEVERITY_COLOR[raw as Severity] ?? '', padded);

  const out: string[] = [headerLine(result), ''];

  const findings = sortFindings(result.vulnerabilities);
  out.push(`Vulnerabilities (${findings.length})`);
  if (findings.length === 0) {
    out.push('No vulnerabilities found.');
  } else {
    const showSource = findings.some((f) => sourceName(f) !== '');
    const columns: (Column & { cell: (f: VulnerabilityFinding) => string })[] = [
      { header: 'SEVERITY', style: severityStyle, cell: (f) => f.severity },
      { header: 'ID', cell: (f) => f.id },
      { header: 'PACKAGE', max: 32, cell: (f) => f.package.name },
      { header: 'INSTALLED', max: 28, cell: (f) => f.package.version },
      { header: 'FIXED', max: 28, cell: (f) => f.fixedVersion ?? '-' },
      ...(showSource ? [{ header: 'SOURCE', max: 24, cell: sourceName }] : []),
      { header: 'ALIASES', max: 48, cell: (f) => shortAliases(f.aliases) },
    ];
    out.push(
      ...renderTable(
        columns,
        findings.map((f) => columns.map((c) => c.cell(f))),
      ),
    );
  }
  out.push('');

  const configs = sortConfigurations(result.insecureConfigurations);
  out.push(`Insecure configurations (${configs.length})`);
  if (configs.length === 0) {
    out.push('No insecure configurations found.');
  } else {
    out.push(
      ...renderTable(
        [
          { header: 'SEVERITY', style: severityStyle },
          { header: 'ID' },
          { header: 'TITLE', max: 48 },
          { header: 'EVIDENCE', max: 64 },
        ],
        configs.map((c) => [c.severity, c.id, c.title, c.evidence.join(', ')]),
      ),
    );
  }
  out.push('');

  const { summary } = result;
  const { compliance } = summary;
  out.push(
    'Summary',
    `  ${countsLine('Vulnerabilities', summary.counts)}`,
    `  ${countsLine('Insecure configurations', summary.configurationCounts)}`,
    `  Risk score: ${summary.riskScore}/100`,
    `  Compliance: ${
      compliance.passed
        ? paint(PASSED_COLOR, 'PASSED')
        : compliance.verdict === 'unknown'
          ? paint(FAILED_COLOR, 'UNKNOWN (incomplete scan: a package database could not be read)')
          : paint(FAILED_COLOR, 'FAILED')
    } (thresholds ${thresholdsText(compliance.thresholds)})`,
    ...compliance.violations.map((v) => `    - ${v}`),
  );
  if (result.ignored.length > 0) {
    out.push(`  Ignored: ${result.ignored.length} finding(s) by the ignore file (reasons in --format json)`);
  }
  if (result.notes.length > 0) {
    out.push('', 'Notes', ...result.notes.map((n) => `  - ${sanitizeCell(n)}`));
  }
  return `${out.join('\n')}\n`;
}
