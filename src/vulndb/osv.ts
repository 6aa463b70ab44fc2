/**
 * The OSV record shape (https://ossf.github.io/osv-schema/) as far as Containment uses it.
 * Validation is lenient about fields we do not read (they are kept by `.passthrough()` so a
 * stored record round-trips) and strict about the ones matching depends on.
 */
import { z } from 'zod';

export const OsvEventSchema = z
  .object({
    introduced: z.string().optional(),
    fixed: z.string().optional(),
    last_affected: z.string().optional(),
    limit: z.string().optional(),
  })
  .passthrough();

export const OsvRangeSchema = z
  .object({
    type: z.enum(['ECOSYSTEM', 'SEMVER', 'GIT']),
    repo: z.string().optional(),
    events: z.array(OsvEventSchema),
    database_specific: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

export const OsvSeveritySchema = z.object({ type: z.string(), score: z.string() }).passthrough();

export const OsvAffectedSchema = z
  .object({
    package: z
      .object({ ecosystem: z.string(), name: z.string(), purl: z.string().optional() })
      .passthrough()
      .optional(),
    ranges: z.array(OsvRangeSchema).optional(),
    versions: z.array(z.string()).optional(),
    severity: z.array(OsvSeveritySchema).optional(),
    ecosystem_specific: z.record(z.string(), z.unknown()).optional(),
    database_specific: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

export const OsvRecordSchema = z
  .object({
    schema_version: z.string().optional(),
    id: z.string().min(1),
    modified: z.string(),
    published: z.string().optional(),
    withdrawn: z.string().optional(),
    aliases: z.array(z.string()).optional(),
    upstream: z.array(z.string()).optional(),
    related: z.array(z.string()).optional(),
    summary: z.string().optional(),
    details: z.string().optional(),
    severity: z.array(OsvSeveritySchema).optional(),
    affected: z.array(OsvAffectedSchema).optional(),
    references: z.array(z.object({ type: z.string(), url: z.string() }).passthrough()).optional(),
    database_specific: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

export type OsvEvent = z.infer<typeof OsvEventSchema>;
export type OsvRange = z.infer<typeof OsvRangeSchema>;
export type OsvAffected = z.infer<typeof OsvAffectedSchema>;
export type OsvSeverity = z.infer<typeof OsvSeveritySchema>;
export type OsvRecord = z.infer<typeof OsvRecordSchema>;
