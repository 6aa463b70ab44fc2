/** zod schemas for everything the scanner API accepts: validation happens here, at the boundary. */
import { z } from 'zod';
import { ROLES } from '../auth/principal.js';
import { GAP_CODES, SEVERITIES } from '../inventory/types.js';
import { BaselineSchema, RuntimeDetectionSchema, RuntimeWorkloadSchema } from '../runtime/contracts.js';
import { workloadNameSchema } from '../workload-names.js';

/**
 * Cluster, namespace, pod and container names: the one workload-name rule (`workload-names.ts`),
 * never `*` (which means "all"), never a path.
 */
export const nameSchema = workloadNameSchema;

const text = (max: number): z.ZodString => z.string().min(1).max(max);
const severity = z.enum(SEVERITIES as [string, ...string[]]) as z.ZodType<(typeof SEVERITIES)[number]>;

export const workloadSchema = z.object({
  cluster: nameSchema,
  namespace: nameSchema,
  pod: nameSchema,
  container: nameSchema.optional(),
  node: text(253),
  image: text(1024),
  imageDigest: text(256).optional(),
});

const packageSchema = z.object({
  name: text(512),
  version: text(256),
  ecosystem: text(128),
  source: z.object({ name: text(512), version: text(256) }).optional(),
  purl: text(2048).optional(),
  location: z.string().max(4096).default(''),
  extractor: z.string().max(64).default('report'),
  provenance: z.literal('declared').optional(),
});

const insecureConfigurationSchema = z.object({
  id: text(128),
  severity,
  title: text(1024),
  evidence: z.array(z.string().max(4096)).max(1000),
  details: z.string().max(8192).optional(),
});

const osSchema = z.object({
  id: text(64),
  versionId: z.string().max(64).optional(),
  versionCodename: z.string().max(64).optional(),
  prettyName: z.string().max(256).optional(),
  ecosystem: z.string().max(128).optional(),
});

/** Why an inventory is incomplete (see `inventory/types.ts`); absent means complete. */
const gapSchema = z.object({
  code: z.enum(GAP_CODES),
  extractor: text(64),
  path: z.string().max(4096),
  message: z.string().max(4096),
});

export const reportSchema = z.object({
  reportId: text(200),
  workload: workloadSchema,
  scanTime: z.iso.datetime({ offset: true }),
  /**
   * Left out when the agent knows the server accepted this hash last time: the report is then a
   * check-in, or 409 INVENTORY_REQUIRED when the hash is not the workload's last one.
   */
  inventory: z
    .object({
      os: osSchema.optional(),
      packages: z.array(packageSchema).max(100_000),
      insecureConfigurations: z.array(insecureConfigurationSchema).max(10_000),
      completeness: z.enum(['complete', 'incomplete']).optional(),
      gaps: z.array(gapSchema).max(1000).optional(),
    })
    .optional(),
  inventoryHash: text(256),
});

export const clusterBodySchema = z.object({ name: nameSchema });

export const namespacesSchema = z.union([z.literal('*'), z.array(nameSchema).min(1).max(1000)]);

export const triggerBodySchema = z
  .object({
    cluster: nameSchema,
    namespaces: namespacesSchema.default('*'),
    url: text(2048),
    kind: z.enum(['cloudevents', 'openwhisk']).default('cloudevents'),
    secret: text(1024),
    /** OpenWhisk API key `uuid:key`. */
    auth: text(1024).optional(),
    options: z.object({ everyScan: z.boolean().default(false) }).default({ everyScan: false }),
  })
  .refine((t) => t.kind !== 'openwhisk' || t.auth !== undefined, {
    message: 'an openwhisk trigger needs auth (the API key)',
    path: ['auth'],
  });

export const tokenBodySchema = z.object({
  name: text(200),
  role: z.enum(ROLES),
  cluster: z.union([z.literal('*'), nameSchema]),
  namespaces: namespacesSchema,
  expiresAt: z.iso.datetime({ offset: true }).optional(),
});

export const pageSchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

export const workloadQuerySchema = pageSchema.extend({
  cluster: nameSchema.optional(),
  namespace: nameSchema.optional(),
  pod: nameSchema.optional(),
  container: nameSchema.optional(),
});

export const findingsQuerySchema = z.object({
  cluster: nameSchema,
  namespace: nameSchema,
  pod: nameSchema,
  container: nameSchema.optional(),
  at: z.iso.datetime({ offset: true }).optional(),
});

export const imagesQuerySchema = z.object({
  image: text(1024),
  digest: text(256).optional(),
  cluster: nameSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const summaryQuerySchema = z.object({
  cluster: nameSchema.optional(),
  namespace: nameSchema.optional(),
});

export const scanIdSchema = z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });

export const deadLetterQuerySchema = z.object({
  eventId: text(200).optional(),
  triggerId: text(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const replayBodySchema = z.object({ eventId: text(200).optional(), triggerId: text(200).optional() });

/** `POST /v1/detections`: the agent's detections, all stored or none. */
export const detectionsBodySchema = z.object({
  detections: z
    .array(
      RuntimeDetectionSchema.extend({
        workload: RuntimeWorkloadSchema.extend({
          cluster: nameSchema,
          namespace: nameSchema,
          pod: nameSchema,
          container: nameSchema.optional(),
        }),
      }),
    )
    .min(1)
    .max(1000),
});

export const detectionQuerySchema = pageSchema.extend({
  cluster: nameSchema.optional(),
  namespace: nameSchema.optional(),
  pod: nameSchema.optional(),
  since: z.iso.datetime({ offset: true }).optional(),
});

/** An image key as the detector uses it: the image digest, else its reference. */
const imageKey = text(1024);
const baselineItems = z.array(text(1024)).max(10_000);

/** `POST /v1/baselines/sync`: an agent's baselines (changed ones; none to only fetch). */
export const baselineSyncBodySchema = z.object({
  cluster: nameSchema,
  baselines: z
    .array(
      z.object({
        baseline: BaselineSchema.extend({
          image: imageKey,
          learningStartedAt: z.number().int().min(0),
          executables: baselineItems,
          listeners: baselineItems,
          outbound: baselineItems,
        }),
        /** The generation the agent's baseline is based on (0 before any lock or reset). */
        generation: z.number().int().min(0),
        imageRef: imageKey.optional(),
      }),
    )
    .max(1000),
});

/** `GET /v1/baselines`: the cluster defaults to the caller's own. */
export const baselineQuerySchema = z.object({
  cluster: nameSchema.optional(),
  image: imageKey.optional(),
});

/** `POST /v1/baselines/lock`: learning ends; the baseline is enforced (protect) or only watched. */
export const baselineLockBodySchema = z.object({
  cluster: nameSchema.optional(),
  image: imageKey,
  state: z.enum(['protect', 'monitor']).default('protect'),
});

/** `POST /v1/baselines/reset`: the baseline is emptied and learns again. */
export const baselineResetBodySchema = z.object({
  cluster: nameSchema.optional(),
  image: imageKey,
});
