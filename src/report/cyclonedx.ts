/**
 * `--format cyclonedx`: a CycloneDX 1.5 JSON BOM with its vulnerabilities (SBOM + VEX in one).
 *
 * - `components`: the operating system (type `operating-system`) and one `library` per package,
 *   with purl, the database path as `evidence.occurrences`, and ecosystem/extractor/source package
 *   as `containment:*` properties. bom-refs are the purl (or `ecosystem/name@version`), made unique
 *   with the location when one package is installed in several places.
 * - `vulnerabilities`: one per advisory id, `affects` listing every affected component, the worst
 *   rating seen (method `CVSSv4`, `CVSSv3` — the finding does not say 3.0 or 3.1 — or `other` for a
 *   distribution's named rating), fix versions as the `recommendation`.
 * - Ignored vulnerabilities are listed too, with `analysis.detail` giving the reason and expiry and
 *   no `analysis.state`: a reason in an ignore file is not a claim that the package is unaffected.
 * - Insecure configurations have no place in CycloneDX's vulnerability model and are left out;
 *   they are in the json, table and sarif formats.
 * - `serialNumber` is a name-based (v5) UUID of the result: the same scan gives the same BOM.
 */
import { createHash } from 'node:crypto';
import type { Severity } from '../inventory/types.js';
import { compareAssessments } from '../matching/severity.js';
import type { VulnerabilityFinding } from '../matching/types.js';
import type { ScanResult, TargetKind } from '../scan/scan-result.js';
import { sortFindings } from './ordering.js';
import { TOOL_NAME } from './sarif.js';

/** RFC 4122 URL namespace; the name hashed is the JSON of the whole result. */
const UUID_NAMESPACE = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

export function uuidV5(name: string, namespace = UUID_NAMESPACE): string {
  const bytes = createHash('sha1')
    .update(Buffer.from(namespace.replace(/-/g, ''), 'hex'))
    .update(name, 'utf8')
    .digest()
    .subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const TARGET_TYPE: Record<TargetKind, string> = {
  directory: 'application',
  'image-archive': 'container',
  container: 'container',
  process: 'container',
};

const TARGET_REF = 'containment:target';
const OS_REF = 'containment:os';

function osvUrl(id: string): string {
  return `https://osv.dev/vulnerability/${encodeURIComponent(id)}`;
}

function ratingMethod(severitySource: string | undefined): string {
  if (severitySource === 'CVSS_V4') return 'CVSSv4';
  if (severitySource === 'CVSS_V3') return 'CVSSv3';
  return 'other';
}

function rating(finding: VulnerabilityFinding): Record<string, unknown> {
  const severity: Severity = finding.severity;
  return {
    source: { name: 'OSV' },
    ...(finding.score !== undefined ? { score: finding.score } : {}),
    severity: severity.toLowerCase(),
    method: finding.score !== undefined ? ratingMethod(finding.severitySource) : 'other',
    ...(finding.score === undefined && finding.severitySource
      ? { justification: `rating from ${finding.severitySource}` }
      : {}),
  };
}

type PackageLike = Pick<
  VulnerabilityFinding['package'],
  'name' | 'version' | 'ecosystem' | 'location' | 'purl'
>;

const identity = (p: PackageLike): string => [p.ecosystem, p.name, p.version, p.location].join('\u0000');

// Over 120 lines: it builds one CycloneDX document top to bottom, in the order the format lists it.
export function renderCycloneDx(result: ScanResult, options: { toolVersion?: string } = {}): string {
  const components: Record<string, unknown>[] = [];
  const usedRefs = new Set<string>([TARGET_REF, OS_REF]);
  const refByIdentity = new Map<string, string>();
  const uniqueRef = (base: string, location: string): string => {
    let ref = usedRefs.has(base) ? `${base}#${location}` : base;
    for (let n = 2; usedRefs.has(ref); n += 1) ref = `${base}#${location}#${n}`;
    usedRefs.add(ref);
    return ref;
  };
  const addPackage = (
    pkg: PackageLike & { extractor?: string; source?: { name: string; version: string } },
  ): string => {
    const known = refByIdentity.get(identity(pkg));
    if (known) return known;
    const ref = uniqueRef(pkg.purl ?? `${pkg.ecosystem}/${pkg.name}@${pkg.version}`, pkg.location);
    refByIdentity.set(identity(pkg), ref);
    const properties = [
      { name: 'containment:ecosystem', value: pkg.ecosystem },
      ...(pkg.extractor ? [{ name: 'containment:extractor', value: pkg.extractor }] : []),
      ...(pkg.source
        ? [{ name: 'containment:source', value: `${pkg.source.name}@${pkg.source.version}` }]
        : []),
    ];
    components.push({
      type: 'library',
      'bom-ref': ref,
      name: pkg.name,
      version: pkg.version,
      ...(pkg.purl ? { purl: pkg.purl } : {}),
      evidence: { occurrences: [{ location: pkg.location }] },
      properties,
    });
    return ref;
  };

  if (result.os) {
    components.push({
      type: 'operating-system',
      'bom-ref': OS_REF,
      name: result.os.id,
      ...(result.os.versionId ? { version: result.os.versionId } : {}),
      ...(result.os.prettyName ? { description: result.os.prettyName } : {}),
    });
  }
  for (const pkg of result.packages) addPackage(pkg);

  // One entry per advisory id, in report order; a finding whose package is missing from
  // `packages` still gets a component, so that every `affects` ref resolves.
  const byId = new Map<string, VulnerabilityFinding[]>();
  for (const finding of sortFindings(result.vulnerabilities)) {
    const group = byId.get(finding.id);
    if (group) group.push(finding);
    else byId.set(finding.id, [finding]);
  }
  const vulnerabilities: Record<string, unknown>[] = [...byId.values()].map((group) => {
    const [first] = group as [VulnerabilityFinding, ...VulnerabilityFinding[]];
    const worst = group.reduce((a, b) => (compareAssessments(b, a) > 0 ? b : a));
    const aliases = [...new Set(group.flatMap((f) => f.aliases))].sort();
    const references = [...new Set(group.flatMap((f) => f.references ?? []))];
    const fixes = group
      .filter((f) => f.fixedVersion)
      .map((f) => `upgrade ${f.package.name} to ${f.fixedVersion}`);
    const upstream = [...new Set(group.flatMap((f) => f.upstream ?? []))].sort();
    return {
      id: first.id,
      source: { name: 'OSV', url: osvUrl(first.id) },
      ...(aliases.length > 0
        ? { references: aliases.map((a) => ({ id: a, source: { name: 'OSV', url: osvUrl(a) } })) }
        : {}),
      ratings: [rating(worst)],
      ...(first.summary ? { description: first.summary } : {}),
      ...(fixes.length > 0 ? { recommendation: `${[...new Set(fixes)].join('; ')}.` } : {}),
      ...(references.length > 0 ? { advisories: references.map((url) => ({ url })) } : {}),
      affects: group.map((f) => ({
        ref: addPackage(f.package),
        versions: [{ version: f.package.version, status: 'affected' }],
      })),
      ...(upstream.length > 0
        ? { properties: [{ name: 'containment:upstream', value: upstream.join(',') }] }
        : {}),
    };
  });

  for (const ignored of result.ignored) {
    if (ignored.kind !== 'vulnerability' || !ignored.package) continue;
    const { name, version } = ignored.package;
    const refs = result.packages
      .filter((p) => p.name === name && p.version === version)
      .map((p) => addPackage(p));
    if (refs.length === 0) continue;
    vulnerabilities.push({
      id: ignored.id,
      source: { name: 'OSV', url: osvUrl(ignored.id) },
      analysis: {
        detail: `ignored${ignored.expires ? ` until ${ignored.expires}` : ''}: ${ignored.reason}`,
      },
      affects: refs.map((ref) => ({ ref, versions: [{ version, status: 'affected' }] })),
    });
  }

  const { target } = result;
  const bom = {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${uuidV5(JSON.stringify(result))}`,
    version: 1,
    metadata: {
      timestamp: result.scanTime,
      tools: {
        components: [
          {
            type: 'application',
            name: TOOL_NAME,
            ...(options.toolVersion ? { version: options.toolVersion } : {}),
          },
        ],
      },
      component: {
        type: TARGET_TYPE[target.kind],
        'bom-ref': TARGET_REF,
        name: target.image ?? target.container?.name ?? target.ref,
        properties: [
          { name: 'containment:target:kind', value: target.kind },
          { name: 'containment:target:ref', value: target.ref },
        ],
      },
      properties: [
        { name: 'containment:riskScore', value: String(result.summary.riskScore) },
        {
          name: 'containment:compliance',
          value: result.summary.compliance.passed
            ? 'PASSED'
            : result.summary.compliance.verdict === 'unknown'
              ? 'UNKNOWN'
              : 'FAILED',
        },
      ],
    },
    components,
    vulnerabilities,
  };
  return `${JSON.stringify(bom, null, 2)}\n`;
}
