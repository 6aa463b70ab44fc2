/**
 * Posture report output: `table` (terminal), `json` (the PostureReport as is) and `sarif`
 * (SARIF 2.1.0: one rule per control, one result per finding, located at the manifest file when
 * the object came from one). Pure.
 */
import { createHash } from 'node:crypto';
import type { Severity } from '../inventory/types.js';
import { SARIF_SCHEMA, TOOL_INFORMATION_URI, TOOL_NAME } from '../report/sarif.js';
import { renderTable } from '../report/text-cells.js';
import { CONTROLS } from './controls.js';
import type { PostureFinding, PostureReport } from './types.js';

export type PostureFormat = 'table' | 'json' | 'sarif';
export const POSTURE_FORMATS: readonly PostureFormat[] = ['table', 'json', 'sarif'];

export function renderPostureReport(
  report: PostureReport,
  format: PostureFormat,
  toolVersion = '0.0.0',
): string {
  return [...renderPostureChunks(report, format, toolVersion)].join('');
}

/**
 * The same output in pieces, so a cluster's tens of thousands of findings are written without
 * ever holding the whole document as one string.
 */
export function* renderPostureChunks(
  report: PostureReport,
  format: PostureFormat,
  toolVersion = '0.0.0',
): Generator<string> {
  if (format === 'table') {
    yield postureTable(report);
    return;
  }
  if (format === 'json') {
    yield* streamJson({ ...report, findings: PLACEHOLDER }, report.findings);
    return;
  }
  const sarif = postureSarif(report, toolVersion) as { runs: { results: unknown[] }[] };
  const results = sarif.runs[0]!.results;
  sarif.runs[0]!.results = PLACEHOLDER as unknown as unknown[];
  yield* streamJson(sarif, results);
}

const PLACEHOLDER = '\u0000stream-items\u0000' as unknown as never[];
const PLACEHOLDER_JSON = JSON.stringify(PLACEHOLDER);

/** `JSON.stringify(value, null, 2)` with the placeholder array spelled out item by item. */
function* streamJson(value: unknown, items: readonly unknown[], batch = 500): Generator<string> {
  const text = JSON.stringify(value, null, 2);
  const at = text.indexOf(PLACEHOLDER_JSON);
  const before = text.slice(0, at);
  const indent = /\n( *)[^\n]*$/.exec(before)?.[1] ?? '';
  if (items.length === 0) {
    yield `${before}[]${text.slice(at + PLACEHOLDER_JSON.length)}\n`;
    return;
  }
  yield `${before}[\n`;
  const inner = `${indent}  `;
  for (let i = 0; i < items.length; i += batch) {
    yield items
      .slice(i, i + batch)
      .map(
        (item, j) =>
          `${inner}${JSON.stringify(item, null, 2).replace(/\n/g, `\n${inner}`)}${i + j < items.length - 1 ? ',' : ''}\n`,
      )
      .join('');
  }
  yield `${indent}]${text.slice(at + PLACEHOLDER_JSON.length)}\n`;
}

function objectName(f: PostureFinding): string {
  return `${f.object.namespace ? `${f.object.namespace}/` : ''}${f.object.kind}/${f.object.name}`;
}

function postureTable(report: PostureReport): string {
  const lines: string[] = [];
  lines.push(
    `Posture score: ${report.score}/100 (level ${report.level}, ${report.evaluated} objects, ${report.findings.length} findings)`,
  );
  const c = report.counts;
  lines.push(`CRITICAL ${c.CRITICAL}  HIGH ${c.HIGH}  MEDIUM ${c.MEDIUM}  LOW ${c.LOW}`);
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  if (report.namespaces.length > 0) {
    lines.push('');
    lines.push(
      ...renderTable(
        [{ header: 'NAMESPACE', max: 63 }, { header: 'SCORE' }, { header: 'FINDINGS' }],
        report.namespaces.map((n) => [n.namespace, String(n.score), String(n.findings)]),
      ),
    );
  }
  if (report.findings.length > 0) {
    lines.push('');
    lines.push(
      ...renderTable(
        [
          { header: 'SEVERITY' },
          { header: 'CONTROL' },
          { header: 'OBJECT', max: 60 },
          { header: 'PATH', max: 70 },
          { header: 'MESSAGE', max: 120 },
        ],
        report.findings.map((f) => [f.severity, f.control, objectName(f), f.path, f.message]),
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

const LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = {
  CRITICAL: 'error',
  HIGH: 'error',
  MEDIUM: 'warning',
  LOW: 'note',
  UNKNOWN: 'note',
};
const SECURITY_SEVERITY: Record<Severity, string | undefined> = {
  CRITICAL: '9.5',
  HIGH: '8.0',
  MEDIUM: '5.5',
  LOW: '2.0',
  UNKNOWN: undefined,
};

function postureSarif(report: PostureReport, toolVersion: string): unknown {
  const ruleIds = [...new Set(report.findings.map((f) => f.control))];
  const rules = ruleIds.map((id) => {
    const c = CONTROLS[id]!;
    const sev = SECURITY_SEVERITY[c.severity];
    return {
      id,
      shortDescription: { text: c.title },
      help: { text: c.remediation },
      defaultConfiguration: { level: LEVEL[c.severity] },
      properties: { tags: ['security', 'posture', c.category], ...(sev ? { 'security-severity': sev } : {}) },
    };
  });
  const index = new Map(ruleIds.map((id, i) => [id, i]));
  const results = report.findings.map((f) => {
    // `file.yaml#2 (chart/templates/x.yaml)` → the file; cluster objects have no file to point at.
    const file =
      f.source && f.source !== 'cluster' && f.source !== 'engine'
        ? f.source.replace(/#\d+.*$/, '')
        : undefined;
    const logical = { fullyQualifiedName: `${objectName(f)}${f.path ? `:${f.path}` : ''}`, kind: 'object' };
    return {
      ruleId: f.control,
      ruleIndex: index.get(f.control),
      level: LEVEL[f.severity],
      message: { text: `${f.message}. ${f.remediation}` },
      locations: [
        {
          ...(file
            ? {
                physicalLocation: {
                  artifactLocation: { uri: file.split('/').map(encodeURIComponent).join('/') },
                },
              }
            : {}),
          logicalLocations: [logical],
        },
      ],
      partialFingerprints: {
        'containmentPosture/v1': createHash('sha256')
          .update(`${f.control}\u0000${objectName(f)}\u0000${f.path}`)
          .digest('hex'),
      },
    };
  });
  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: { name: TOOL_NAME, version: toolVersion, informationUri: TOOL_INFORMATION_URI, rules },
        },
        results,
        properties: { score: report.score, level: report.level, namespaces: report.namespaces },
      },
    ],
  };
}
