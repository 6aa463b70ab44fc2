/**
 * The ignore file (`--ignore-file <path>`): findings a team has accepted, each with a reason and
 * an expiry date, so that nothing is ignored silently or forever. Format (JSON):
 *
 * ```json
 * {
 *   "ignore": [
 *     { "id": "CVE-2023-4911", "reason": "no setuid binaries in this image", "expires": "2027-01-31" },
 *     { "id": "GHSA-c2qf-rxjj-qqgw", "package": "semver", "reason": "dev dependency only", "expires": "2026-12-31" },
 *     { "id": "remote_shell_installed", "reason": "sshd is removed at build time", "expires": "2026-09-30" }
 *   ]
 * }
 * ```
 *
 * - `id` (required): a vulnerability id or any of its aliases (CVE, GHSA, DSA, USN …), or an
 *   insecure-configuration id. Compared case-insensitively.
 * - `reason` (required): why it is acceptable; shown in every report.
 * - `expires` (required, `YYYY-MM-DD`): the entry applies through the END of that day, UTC; from
 *   the next day on it is ignored and the report says so in a note.
 * - `package` (optional): only this package (its name or its source package's name) is exempt;
 *   such an entry never matches an insecure configuration.
 *
 * Unknown keys are rejected so that a typo (`"expiry"`) cannot make an entry mean something else.
 * A record's `upstream` ids are not matched: ignoring one CVE must not hide a DSA fixing several.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { InsecureConfiguration } from '../inventory/types.js';
import type { VulnerabilityFinding } from '../matching/types.js';
import type { IgnoredFinding } from '../scan/scan-result.js';

export interface IgnoreEntry {
  id: string;
  reason: string;
  /** `YYYY-MM-DD`: valid through the end of that day, UTC. */
  expires: string;
  package?: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Midnight UTC at the start of `date`, or undefined when it is not a real calendar day. */
function startOfDayUtc(date: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(year, month - 1, day);
  const back = new Date(t);
  // Date.UTC rolls 2026-02-30 over to March: a real date survives the round trip.
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day) {
    return undefined;
  }
  return t;
}

const nonEmpty = z
  .string({ error: 'must be a non-empty string' })
  .trim()
  .min(1, { error: 'must be a non-empty string' })
  // Control characters would end up in terminal output and reports.
  .refine((s) => !/\p{Cc}/u.test(s), { error: 'must not contain control characters' });

const ignoreFileSchema = z.strictObject({
  ignore: z.array(
    z.strictObject({
      id: nonEmpty,
      reason: nonEmpty,
      expires: z
        .string({ error: 'must be a date YYYY-MM-DD' })
        .refine((s) => startOfDayUtc(s) !== undefined, { error: 'must be a date YYYY-MM-DD' }),
      package: nonEmpty.optional(),
    }),
  ),
});

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const key of path) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
  return value;
}

/** One line naming the entry index and field, e.g. `entry 2, field "expires": must be a date YYYY-MM-DD`. */
function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  const [first, index, field] = issue.path;
  const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => `"${k}"`).join(', ') : '';
  if (first === 'ignore' && typeof index === 'number') {
    if (field === undefined) {
      return `entry ${index}: ${unknownKeys ? `unknown key(s) ${unknownKeys}` : 'must be an object'}`;
    }
    const missing = valueAt(data, issue.path) === undefined;
    return `entry ${index}, field "${String(field)}": ${missing ? 'is required' : issue.message}`;
  }
  if (unknownKeys) return `unknown top-level key(s) ${unknownKeys} (expected only "ignore")`;
  return 'expected an object {"ignore": [ {"id", "reason", "expires", "package"?} … ]}';
}

/** Parses and validates ignore-file text; `source` names the file in error messages. Pure. */
export function parseIgnoreFile(text: string, source = 'ignore file'): IgnoreEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `${source}: not valid JSON (${(e as Error).message})`,
    );
  }
  const parsed = ignoreFileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const detail = issue ? describeIssue(issue, data) : 'invalid';
    throw new ContainmentError(ErrorCodes.CONFIG_INVALID, `${source}: ${detail}`);
  }
  return parsed.data.ignore;
}

/** Reads and validates the ignore file at `path`. */
export function loadIgnoreFile(path: string): IgnoreEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ContainmentError(ErrorCodes.CONFIG_INVALID, `cannot read ignore file ${path}: ${code}`);
  }
  return parseIgnoreFile(text, path);
}

export interface IgnorableFindings {
  vulnerabilities: VulnerabilityFinding[];
  insecureConfigurations: InsecureConfiguration[];
}

export interface IgnoreOutcome extends IgnorableFindings {
  ignored: IgnoredFinding[];
  notes: string[];
}

/** Whether `entry` is still in force at `now`: through the end of its `expires` day, UTC. */
export function ignoreEntryApplies(entry: IgnoreEntry, now: Date): boolean {
  const start = startOfDayUtc(entry.expires);
  // An entry that bypassed validation with a bad date protects nothing.
  return start !== undefined && now.getTime() < start + DAY_MS;
}

/**
 * Splits findings into those kept and those ignored by entries still in force at `now`; each
 * expired entry yields a note. Pure: same inputs, same output, input arrays untouched.
 */
export function applyIgnores(
  findings: IgnorableFindings,
  entries: readonly IgnoreEntry[],
  now: Date,
): IgnoreOutcome {
  const notes: string[] = [];
  const active: IgnoreEntry[] = [];
  for (const entry of entries) {
    if (ignoreEntryApplies(entry, now)) active.push(entry);
    else notes.push(`ignore entry ${entry.id} expired on ${entry.expires}; it applies no more`);
  }

  const ignored: IgnoredFinding[] = [];
  const vulnerabilities = findings.vulnerabilities.filter((finding) => {
    const ids = new Set([finding.id, ...finding.aliases].map((id) => id.toUpperCase()));
    const names = new Set([finding.package.name, finding.package.source?.name].filter(Boolean));
    const entry = active.find(
      (e) => ids.has(e.id.toUpperCase()) && (e.package === undefined || names.has(e.package)),
    );
    if (!entry) return true;
    ignored.push({
      id: finding.id,
      reason: entry.reason,
      expires: entry.expires,
      kind: 'vulnerability',
      package: { name: finding.package.name, version: finding.package.version },
    });
    return false;
  });
  const insecureConfigurations = findings.insecureConfigurations.filter((config) => {
    const entry = active.find(
      (e) => e.package === undefined && e.id.toUpperCase() === config.id.toUpperCase(),
    );
    if (!entry) return true;
    ignored.push({ id: config.id, reason: entry.reason, expires: entry.expires, kind: 'configuration' });
    return false;
  });
  return { vulnerabilities, insecureConfigurations, ignored, notes };
}
