/** The workload columns both SQL stores share, and the identity they make. */
import type { WorkloadIdentity } from '../../events/cloud-event.js';

export interface WorkloadRow {
  cluster: string;
  namespace: string;
  pod: string;
  /** `''` when the workload names no container (a NOT NULL column keeps the unique key simple). */
  container: string;
  node: string;
  image: string;
  image_digest: string | null;
}

export function identityOf(row: WorkloadRow): WorkloadIdentity {
  return {
    cluster: row.cluster,
    namespace: row.namespace,
    pod: row.pod,
    ...(row.container === '' ? {} : { container: row.container }),
    node: row.node,
    image: row.image,
    ...(row.image_digest === null ? {} : { imageDigest: row.image_digest }),
  };
}
