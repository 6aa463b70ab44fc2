/**
 * Building an agent report (`POST /v1/reports`) from an inventory, pure: the canonical inventory
 * (packages and configuration facts in a fixed order, object keys sorted) and its SHA-256, which the
 * server compares with the workload's last one to skip re-matching unchanged containers. Whoever
 * reports — the node agent or `containment scan --report-to` — must hash the same way.
 */
import { createHash } from 'node:crypto';
import type { WorkloadIdentity } from '../events/cloud-event.js';
import type { InsecureConfiguration, Package } from '../inventory/types.js';
import type { AgentReport } from './ingest.js';
import type { StoredInventory } from './scanner-store.js';

/** JSON with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

const packageKey = (p: Package): string =>
  [p.ecosystem, p.name, p.version, p.location, p.extractor].join('\u0000');
const configKey = (c: InsecureConfiguration): string => `${c.id}\u0000${c.evidence.join('\u0000')}`;
const byKey =
  <T>(key: (t: T) => string) =>
  (a: T, b: T): number => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };

/**
 * The inventory as reported, in a fixed order (notes, if any, stay out: they describe the scan).
 * An incomplete inventory carries its completeness and gaps (a complete one leaves both out, so its
 * hash is what it always was).
 */
export function reportInventory(inventory: StoredInventory): StoredInventory {
  return {
    ...(inventory.os ? { os: inventory.os } : {}),
    packages: [...inventory.packages].sort(byKey(packageKey)),
    insecureConfigurations: [...inventory.insecureConfigurations].sort(byKey(configKey)),
    ...(inventory.completeness === 'incomplete'
      ? { completeness: 'incomplete' as const, gaps: inventory.gaps ?? [] }
      : {}),
  };
}

/** Hex SHA-256 of the canonical JSON of a report inventory. */
export function inventoryHash(inventory: StoredInventory): string {
  return createHash('sha256').update(canonicalJson(inventory)).digest('hex');
}

/** The inventory part of a report: the inventory as reported and its hash. */
export function reportParts(inventory: StoredInventory): Pick<AgentReport, 'inventory' | 'inventoryHash'> {
  const reported = reportInventory(inventory);
  return { inventory: reported, inventoryHash: inventoryHash(reported) };
}

export function buildAgentReport(input: {
  reportId: string;
  workload: WorkloadIdentity;
  scanTime: string;
  inventory: StoredInventory;
}): AgentReport {
  return {
    reportId: input.reportId,
    workload: input.workload,
    scanTime: input.scanTime,
    ...reportParts(input.inventory),
  };
}
