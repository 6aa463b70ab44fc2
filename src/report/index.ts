/** Report formats for a ScanResult. Pure: each returns the text to print or write. */
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { ScanResult } from '../scan/scan-result.js';
import { renderCycloneDx } from './cyclonedx.js';
import { renderJson } from './json.js';
import { renderSarif } from './sarif.js';
import { renderTableReport } from './table.js';

export type ReportFormat = 'table' | 'json' | 'sarif' | 'cyclonedx';
export const REPORT_FORMATS: readonly ReportFormat[] = ['table', 'json', 'sarif', 'cyclonedx'];

export interface RenderOptions {
  /** ANSI colours in the table format (a terminal); ignored by the others. */
  color?: boolean;
  /** The tool's version, recorded in SARIF and CycloneDX. */
  toolVersion?: string;
}

export function renderReport(result: ScanResult, format: ReportFormat, options: RenderOptions = {}): string {
  switch (format) {
    case 'table':
      return renderTableReport(result, options);
    case 'json':
      return renderJson(result);
    case 'sarif':
      return renderSarif(result, options);
    case 'cyclonedx':
      return renderCycloneDx(result, options);
  }
  // Reachable from plain JavaScript callers only.
  throw new ContainmentError(
    ErrorCodes.USAGE,
    `unknown report format ${JSON.stringify(format)}; expected one of ${REPORT_FORMATS.join(', ')}`,
  );
}

export { applyIgnores, loadIgnoreFile, parseIgnoreFile } from './ignore-file.js';
export type { IgnoreEntry, IgnoreOutcome } from './ignore-file.js';
