/** Every `/v1` route module, in registration order. A new resource is one more line here. */
import { adminRoutes } from './admin.js';
import { baselineRoutes } from './baselines.js';
import { clusterRoutes } from './clusters.js';
import type { V1Routes } from './context.js';
import { detectionRoutes } from './detections.js';
import { findingRoutes } from './findings.js';
import { reportRoutes } from './reports.js';
import { tokenRoutes } from './tokens.js';
import { triggerRoutes } from './triggers.js';

export const V1_ROUTES: readonly V1Routes[] = [
  clusterRoutes,
  reportRoutes,
  findingRoutes,
  triggerRoutes,
  detectionRoutes,
  baselineRoutes,
  tokenRoutes,
  adminRoutes,
];
