/** What a bundled policy's SDK host is configured with (pure: the deployment writes it, the entry reads it). */
import { z } from 'zod';

/** The parameter (OpenWhisk) that carries the configuration; removed before the policy sees its params. */
export const CONFIG_PARAM = '__containment';

export const bundledConfigSchema = z.strictObject({
  /** The scanner's base URL (findings API). */
  scannerUrl: z.url(),
  scannerToken: z.string().min(1),
  /** The enforcement API's base URL (`POST /v1/actions`). */
  actionsUrl: z.url(),
  enforcerToken: z.string().min(1),
  cluster: z.string().min(1).default('local'),
  /** Pod namespaces the policy may name; the tokens' own scope is what the APIs enforce. */
  namespaces: z.array(z.string().min(1)).min(1),
  /** Enforcement calls create SecurityActions with `dryRun: true`: nothing is changed. */
  dryRun: z.boolean().default(false),
});
export type BundledConfig = z.output<typeof bundledConfigSchema>;
