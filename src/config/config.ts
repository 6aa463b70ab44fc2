/**
 * Layered configuration for the CLI: flags > environment > config file > defaults. The file is
 * JSON (`--config <file>` or `CONTAINMENT_CONFIG`), validated once here; everything downstream
 * gets typed values.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { ComplianceThresholds } from '../matching/types.js';
import { DEFAULT_THRESHOLDS } from '../matching/types.js';

const ThresholdsSchema = z
  .object({
    CRITICAL: z.number().int().min(0),
    HIGH: z.number().int().min(0),
    MEDIUM: z.number().int().min(0),
    LOW: z.number().int().min(0),
  })
  .partial()
  .strict();

export const ConfigFileSchema = z
  .object({
    dataDir: z.string().optional(),
    db: z.string().optional(),
    engineSocket: z.string().optional(),
    thresholds: ThresholdsSchema.optional(),
    ignoreFile: z.string().optional(),
    osvBaseUrl: z.string().url().optional(),
    ecosystems: z.array(z.string().min(1)).optional(),
    /** `containment up` carries actions out instead of monitoring (flag and env win). */
    enforce: z.boolean().optional(),
    /** OIDC for `server` and `up` (the `--oidc-*` flags and `CONTAINMENT_OIDC_*` win). */
    oidc: z
      .object({
        issuer: z.string().url().optional(),
        audience: z.string().min(1).optional(),
        rolesClaim: z.string().min(1).optional(),
        namespacesClaim: z.string().min(1).optional(),
        clusterClaim: z.string().min(1).optional(),
        /** The dashboard's OIDC client. */
        clientId: z.string().min(1).optional(),
        clientSecret: z.string().min(1).optional(),
        redirectUri: z.string().url().optional(),
      })
      .strict()
      .optional(),
    /** `containment server`: how long runtime detections are kept (`30d`, `12h`, `0` = forever). */
    detectionRetention: z.string().optional(),
  })
  .strict();

export type ConfigFile = z.infer<typeof ConfigFileSchema>;

export function loadConfigFile(path: string | undefined): ConfigFile {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `config file ${path} is not JSON: ${(e as Error).message}`,
    );
  }
  const parsed = ConfigFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `config file ${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** `CRITICAL=0,HIGH=3` (env) or repeated `--threshold HIGH=3` (flags). */
export function parseThresholdList(items: readonly string[], origin: string): Partial<ComplianceThresholds> {
  const out: Partial<ComplianceThresholds> = {};
  for (const item of items.flatMap((i) => i.split(',')).filter((i) => i.trim() !== '')) {
    const m = /^\s*(CRITICAL|HIGH|MEDIUM|LOW)\s*=\s*(\d+)\s*$/i.exec(item);
    if (!m) {
      throw new ContainmentError(
        ErrorCodes.USAGE,
        `${origin}: "${item}" is not SEVERITY=N (severities CRITICAL, HIGH, MEDIUM, LOW)`,
      );
    }
    out[(m[1] as string).toUpperCase() as keyof ComplianceThresholds] = Number(m[2]);
  }
  return out;
}

export function resolveThresholds(
  flags: readonly string[] | undefined,
  env: NodeJS.ProcessEnv,
  file: ConfigFile,
): ComplianceThresholds {
  return {
    ...DEFAULT_THRESHOLDS,
    ...file.thresholds,
    ...(env.CONTAINMENT_THRESHOLDS
      ? parseThresholdList([env.CONTAINMENT_THRESHOLDS], 'CONTAINMENT_THRESHOLDS')
      : {}),
    ...(flags?.length ? parseThresholdList(flags, '--threshold') : {}),
  };
}
