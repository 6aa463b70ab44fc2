/**
 * `--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF consumers.
 *
 * - One rule per distinct vulnerability id and per insecure-configuration id. The rule carries the
 *   worst rating seen for that id as `properties["security-severity"]` (GitHub maps > 9.0 to
 *   critical, 7.0–8.9 high, 4.0–6.9 medium, 0.1–3.9 low) and the `security` tag GitHub needs to
 *   treat it as a security alert. Unrated (UNKNOWN) rules have no security-severity.
 * - One result per finding: level `error` for CRITICAL/HIGH, `warning` for MEDIUM, `note` for
 *   LOW/UNKNOWN; location = the package's database path (or the configuration's evidence paths)
 *   relative to the scanned root; `partialFingerprints` so repeated uploads update one alert.
 */
import { createHash } from 'node:crypto';
import type { Severity } from '../inventory/types.js';
import { compareAssessments } from '../matching/severity.js';
import type { ScanResult } from '../scan/scan-result.js';
import { sortConfigurations, sortFindings } from './ordering.js';

export const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';
export const TOOL_NAME = 'containment';
export const TOOL_INFORMATION_URI = 'https://containment.dev';

type SarifLevel = 'error' | 'warning' | 'note';

const LEVEL: Record<Severity, SarifLevel> = {
  CRITICAL: 'error',
  HIGH: 'error',
  MEDIUM: 'warning',
  LOW: 'note',
  UNKNOWN: 'note',
};

/** Scores standing for a named rating (no CVSS score): the middle of GitHub's bands. */
const NAMED_RATING_SCORE: Record<Severity, number | undefined> = {
  CRITICAL: 9.5,
  HIGH: 8.0,
  MEDIUM: 5.5,
  LOW: 2.0,
  UNKNOWN: undefined,
};

interface Rating {
  severity: Severity;
  score?: number;
}

function securitySeverity(rating: Rating): string | undefined {
  const score =
    rating.score !== undefined && rating.score > 0 ? rating.score : NAMED_RATING_SCORE[rating.severity];
  return score?.toFixed(1);
}

/** A path inside the scanned root as a relative URI reference, each segment percent-encoded. */
export function pathToUri(path: string): string {
  return path
    .replace(/^\/+/, '')
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}

function fingerprint(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex');
}

interface SarifRule {
  id: string;
  shortDescription: { text: string };
  fullDescription?: { text: string };
  helpUri?: string;
  help?: { text: string };
  defaultConfiguration: { level: SarifLevel };
  properties: { 'security-severity'?: string; tags: string[] };
}

interface RuleDraft {
  rating: Rating;
  make: (rating: Rating) => SarifRule;
}

// Over 120 lines: it builds one SARIF document top to bottom (rules, then results, then the run).
export function renderSarif(result: ScanResult, options: { toolVersion?: string } = {}): string {
  const findings = sortFindings(result.vulnerabilities);
  const configs = sortConfigurations(result.insecureConfigurations);

  // Rules in first-seen order of the sorted findings, each with the worst rating of its id.
  const drafts = new Map<string, RuleDraft>();
  const draft = (id: string, rating: Rating, make: RuleDraft['make']): void => {
    const existing = drafts.get(id);
    if (!existing) drafts.set(id, { rating, make });
    else if (compareAssessments(rating, existing.rating) > 0) existing.rating = rating;
  };
  for (const f of findings) {
    draft(f.id, f, (rating) => {
      const related = [
        ...(f.aliases.length > 0 ? [`Aliases: ${f.aliases.join(', ')}`] : []),
        ...(f.upstream?.length ? [`Upstream: ${f.upstream.join(', ')}`] : []),
      ];
      const advisory = `https://osv.dev/vulnerability/${encodeURIComponent(f.id)}`;
      const references = f.references ?? [];
      return {
        id: f.id,
        shortDescription: { text: f.summary ?? f.id },
        fullDescription: { text: [f.summary ?? f.id, ...related].join('. ') },
        helpUri: advisory,
        help: {
          text: [
            f.summary ? `${f.id}: ${f.summary}` : f.id,
            ...related,
            `Advisory: ${advisory}`,
            ...(references.length > 0 ? ['References:', ...references] : []),
          ].join('\n'),
        },
        defaultConfiguration: { level: LEVEL[rating.severity] },
        properties: ruleProperties(rating, 'vulnerability'),
      };
    });
  }
  for (const c of configs) {
    draft(c.id, c, (rating) => ({
      id: c.id,
      shortDescription: { text: c.title },
      ...(c.details ? { fullDescription: { text: c.details } } : {}),
      defaultConfiguration: { level: LEVEL[rating.severity] },
      properties: ruleProperties(rating, 'configuration'),
    }));
  }
  const ruleIndex = new Map([...drafts.keys()].map((id, i) => [id, i]));
  const rules = [...drafts.values()].map((d) => d.make(d.rating));

  const vulnerabilityResults = findings.map((f) => {
    const pkg = f.package;
    const fix = f.fixedVersion ? `fixed in ${f.fixedVersion}` : 'no fixed version known';
    return {
      ruleId: f.id,
      ruleIndex: ruleIndex.get(f.id),
      level: LEVEL[f.severity],
      message: {
        text: `${pkg.name} ${pkg.version} (${pkg.ecosystem}) is affected by ${f.id} (${f.severity}); ${fix}.${
          f.summary ? ` ${f.summary}` : ''
        }`,
      },
      locations: [{ physicalLocation: { artifactLocation: { uri: pathToUri(pkg.location) } } }],
      partialFingerprints: {
        'containmentFinding/v1': fingerprint(f.id, pkg.ecosystem, pkg.name, pkg.location),
      },
      properties: {
        package: pkg.name,
        installedVersion: pkg.version,
        ecosystem: pkg.ecosystem,
        ...(f.fixedVersion ? { fixedVersion: f.fixedVersion } : {}),
        ...(pkg.purl ? { purl: pkg.purl } : {}),
        severity: f.severity,
        ...(f.score !== undefined ? { score: f.score } : {}),
      },
    };
  });
  const configurationResults = configs.map((c) => ({
    ruleId: c.id,
    ruleIndex: ruleIndex.get(c.id),
    level: LEVEL[c.severity],
    message: {
      text: `${c.title} (${c.severity})${c.evidence.length > 0 ? `: ${c.evidence.join(', ')}` : ''}`,
    },
    // SARIF allows a result without locations; GitHub wants one, and a configuration always has evidence.
    ...(c.evidence.length > 0
      ? {
          locations: c.evidence.map((e) => ({
            physicalLocation: { artifactLocation: { uri: pathToUri(e) } },
          })),
        }
      : {}),
    partialFingerprints: { 'containmentFinding/v1': fingerprint(c.id, ...c.evidence) },
    properties: { severity: c.severity },
  }));

  const log = {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: TOOL_NAME,
            informationUri: TOOL_INFORMATION_URI,
            ...(options.toolVersion ? { version: options.toolVersion } : {}),
            rules,
          },
        },
        results: [...vulnerabilityResults, ...configurationResults],
        properties: {
          target: result.target,
          scanTime: result.scanTime,
          riskScore: result.summary.riskScore,
          compliancePassed: result.summary.compliance.passed,
          ignored: result.ignored.length,
        },
      },
    ],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

function ruleProperties(rating: Rating, kind: 'vulnerability' | 'configuration'): SarifRule['properties'] {
  const score = securitySeverity(rating);
  return {
    ...(score ? { 'security-severity': score } : {}),
    tags: ['security', kind, rating.severity.toLowerCase()],
  };
}
