/**
 * The policy SDK's credentials for a standalone `containment functions` (`--sdk-config <file>`,
 * YAML or JSON, typically a mounted Secret): the scanner's URL, and for each function namespace
 * the cluster its policies act in, its scanner token, the pod namespaces it may use and — with
 * `--enforcement http` — its action API token. With `--enforcement kubernetes` actions go to the
 * cluster's API server with the runtime's own credentials: `kubeconfigs.<cluster>` when given,
 * else `--kubeconfig`, else the in-cluster ServiceAccount.
 *
 *   scanner: http://containment-scanner:8080
 *   actionApi: http://127.0.0.1:8082        # --enforcement http only
 *   kubeconfigs: { west: /etc/containment/west.kubeconfig }
 *   namespaces:
 *     shop-policies: { cluster: east, scannerToken: "…", namespaces: [shop] }
 */
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { z } from 'zod';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { nameSchema } from '../../scanner/schemas.js';
import type { NamespaceCredentials } from './policy-sdk-host.js';

const url = z.url({ protocol: /^https?$/ });
const token = z.string().min(1).max(4096);

const sdkConfigSchema = z.strictObject({
  scanner: url,
  actionApi: url.optional(),
  kubeconfigs: z.record(nameSchema, z.string().min(1)).default({}),
  namespaces: z.record(
    z.string().min(1).max(256),
    z.strictObject({
      cluster: nameSchema,
      scannerToken: token,
      enforcerToken: token.optional(),
      namespaces: z.array(nameSchema).max(1000).default([]),
    }),
  ),
});

export type SdkConfig = z.output<typeof sdkConfigSchema>;
export type EnforcementMode = 'http' | 'kubernetes';

/** Parses and checks the file for `mode`; CONFIG_INVALID names the file and the first bad field. */
export function parseSdkConfig(text: string, source: string, mode: EnforcementMode): SdkConfig {
  let raw: unknown;
  try {
    raw = yaml.load(text);
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `${source}: not YAML: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  const parsed = sdkConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `${source}: ${where}${issue?.message ?? 'malformed'}`,
    );
  }
  const config = parsed.data;
  if (mode === 'http') {
    if (config.actionApi === undefined)
      throw new ContainmentError(
        ErrorCodes.CONFIG_INVALID,
        `${source}: actionApi is required with --enforcement http`,
      );
    const missing = Object.entries(config.namespaces).find(([, c]) => c.enforcerToken === undefined);
    if (missing)
      throw new ContainmentError(
        ErrorCodes.CONFIG_INVALID,
        `${source}: namespaces.${missing[0]}.enforcerToken is required with --enforcement http`,
      );
  }
  return config;
}

export function loadSdkConfig(file: string, mode: EnforcementMode): SdkConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ContainmentError(ErrorCodes.CONFIG_INVALID, `cannot read ${file}: ${(e as Error).message}`);
  }
  return parseSdkConfig(text, file, mode);
}

/** The host's `credentials` option. */
export function credentialsOf(config: SdkConfig): (namespace: string) => NamespaceCredentials | undefined {
  return (namespace) => {
    const entry = Object.hasOwn(config.namespaces, namespace) ? config.namespaces[namespace] : undefined;
    if (!entry) return undefined;
    return {
      cluster: entry.cluster,
      scannerToken: entry.scannerToken,
      enforcerToken: entry.enforcerToken ?? '',
      namespaces: entry.namespaces,
    };
  };
}
