/**
 * What both SQL stores share about the compact result form (`finding-sets.ts`): the encoding of a
 * scan's content into an inventory blob, finding-set blobs and (package index, set id) pairs,
 * the decoding back, and bounded in-process caches of those blobs. Blobs are immutable and
 * never deleted, so a cached id or body stays right even with several replicas writing.
 */
import type { Package } from '../../inventory/types.js';
import type { VulnerabilityFinding } from '../../matching/types.js';
import { contentDigest, findingKeys, findingSet, joinRuns, splitRuns } from '../../scanner/finding-sets.js';
import type { BareFinding, FindingSet } from '../../scanner/finding-sets.js';
import { advisoryKey, inventoryPackageKey } from '../../scanner/rematch-index.js';
import type { WorkloadIdentity } from '../../events/cloud-event.js';
import type { InsecureConfiguration } from '../../inventory/types.js';
import { Lru } from '../../scanner/lru.js';
import type {
  RematchTarget,
  ScanContent,
  ScanEventContext,
  StoredInventory,
} from '../../scanner/scanner-store.js';

/** One content to store: its blobs (the store inserts those it lacks) and how to reference them. */
export interface EncodedContent {
  /**
   * `knownId`: the inventory object was read from this store (a re-match): nothing to hash or
   * store. Otherwise its digest and JSON; `packageKeys()` only for one not stored yet.
   */
  inventory: { knownId?: string; digest: string; json: string; packageKeys: () => string[] };
  /** Distinct finding sets of the content. */
  sets: FindingSet[];
  /** Per package with findings: its index and its set's digest. */
  runs: [index: number, digest: string][];
  /** (advisory key, package key): every id a set cites, with the package it was found on. */
  advisoryPackages: [string, string][];
}

/** Ids are kept as strings: SQLite's numbers and PostgreSQL's bigints alike. */
export class ResultCodec {
  private readonly inventoryIds = new Lru<string, string>(20_000);
  private readonly inventories = new Lru<string, StoredInventory>(2_000);
  private readonly setIds = new Lru<string, string>(200_000);
  private readonly sets = new Lru<string, FindingSet>(50_000);
  /** (set digest, package key) pairs whose advisory keys are stored. */
  private readonly advisoryPairs = new Lru<string, true>(200_000);
  /** Inventory objects this codec decoded, with their ids. */
  private readonly inventoryObjects = new WeakMap<StoredInventory, string>();
  /** Per encoding (keyed by its `runs` array): the pairs to mark stored once it commits. */
  private readonly pendingPairs = new WeakMap<object, string[]>();

  encode(content: Pick<ScanContent, 'inventory' | 'vulnerabilities' | 'sets'>): EncodedContent {
    const { packages } = content.inventory;
    const knownId = this.inventoryObjects.get(content.inventory);
    const json = knownId === undefined ? JSON.stringify(content.inventory) : '';
    let perPackage = content.sets;
    if (!perPackage) {
      const runs = splitRuns(packages, content.vulnerabilities);
      // Every producer (matcher, re-match) writes findings in inventory order, one run per package.
      if (!runs) throw new Error('findings are not in inventory order: cannot store them');
      perPackage = runs.map((run) => (run ? findingSet(run) : undefined));
    }
    const sets = new Map<string, FindingSet>();
    const runs: [number, string][] = [];
    const advisoryPackages = new Map<string, [string, string]>();
    const pairsDone: string[] = [];
    for (const [i, set] of perPackage.entries()) {
      if (!set || set.findings.length === 0) continue;
      sets.set(set.digest, set);
      runs.push([i, set.digest]);
      const packageKey = inventoryPackageKey(packages[i] as Package);
      const done = `${set.digest}\u0000${packageKey}`;
      if (this.advisoryPairs.has(done)) continue;
      pairsDone.push(done);
      for (const f of set.findings) {
        for (const id of [f.id, ...f.aliases]) {
          const pair: [string, string] = [advisoryKey(id), packageKey];
          advisoryPackages.set(`${pair[0]}\u0000${pair[1]}`, pair);
        }
      }
    }
    this.pendingPairs.set(runs, pairsDone);
    return {
      inventory: {
        ...(knownId === undefined ? {} : { knownId }),
        digest: knownId === undefined ? contentDigest(json) : '',
        json,
        packageKeys: () => [...new Set(packages.map(inventoryPackageKey))],
      },
      sets: [...sets.values()],
      runs,
      advisoryPackages: [...advisoryPackages.values()],
    };
  }

  /** Cached id of a stored inventory or finding set, by digest. */
  inventoryId(digest: string): string | undefined {
    return this.inventoryIds.get(digest);
  }
  setId(digest: string): string | undefined {
    return this.setIds.get(digest);
  }

  /** After the blobs are committed: remember their ids (never before, or a rollback would lie). */
  rememberStored(encoded: EncodedContent, inventoryId: string, setIds: ReadonlyMap<string, string>): void {
    if (encoded.inventory.knownId === undefined) this.inventoryIds.set(encoded.inventory.digest, inventoryId);
    for (const [digest, id] of setIds) this.setIds.set(digest, id);
    for (const done of this.pendingPairs.get(encoded.runs) ?? []) this.advisoryPairs.set(done, true);
  }

  /** The stored `runs` column: `[[index, setId], ...]`. */
  runsJson(encoded: EncodedContent, setIds: ReadonlyMap<string, string>): string {
    return JSON.stringify(encoded.runs.map(([i, digest]) => [i, Number(setIds.get(digest))]));
  }

  /** Ids of the sets a stored `runs` column references. */
  setIdsOf(runsJson: string): string[] {
    return [...new Set((JSON.parse(runsJson) as [number, number][]).map(([, id]) => String(id)))];
  }

  /**
   * The sets with these ids the cache holds, and the ids the store must read (then hand the rows
   * to `addSets`). The codec never reads the database itself: data flows store → codec only.
   */
  cachedSets(ids: readonly string[]): { found: Map<string, FindingSet>; missing: string[] } {
    const found = new Map<string, FindingSet>();
    const missing: string[] = [];
    for (const id of ids) {
      const set = this.sets.get(id);
      if (set) found.set(id, set);
      else missing.push(id);
    }
    return { found, missing };
  }

  /** Decodes set rows read by the store into `found`, and caches them. */
  addSets(
    found: Map<string, FindingSet>,
    rows: readonly { id: string | number; digest: string; findings: string }[],
  ): Map<string, FindingSet> {
    for (const row of rows) found.set(String(row.id), this.rememberSet(row));
    return found;
  }

  private rememberSet(row: { id: string | number; digest: string; findings: string }): FindingSet {
    const set: FindingSet = {
      digest: row.digest,
      body: row.findings,
      findings: JSON.parse(row.findings) as BareFinding[],
    };
    this.sets.set(String(row.id), set);
    this.setIds.set(row.digest, String(row.id));
    return set;
  }

  cachedInventory(id: string): StoredInventory | undefined {
    return this.inventories.get(id);
  }

  rememberInventory(id: string, json: string): StoredInventory {
    const inventory = JSON.parse(json) as StoredInventory;
    this.inventories.set(id, inventory);
    this.inventoryObjects.set(inventory, id);
    return inventory;
  }

  /** The sets of a stored result, index-aligned with its packages. */
  runs(
    packages: readonly Package[],
    runsJson: string,
    sets: ReadonlyMap<string, FindingSet>,
  ): (FindingSet | undefined)[] {
    const runs: (FindingSet | undefined)[] = new Array<undefined>(packages.length);
    for (const [i, id] of JSON.parse(runsJson) as [number, number][]) {
      const set = sets.get(String(id));
      if (!set) throw new Error(`finding set ${id} is missing`);
      runs[i] = set;
    }
    return runs;
  }

  vulnerabilities(
    inventory: StoredInventory,
    runsJson: string,
    sets: ReadonlyMap<string, FindingSet>,
  ): VulnerabilityFinding[] {
    return joinRuns(
      inventory.packages,
      this.runs(inventory.packages, runsJson, sets).map((s) => s?.findings),
    );
  }
}

/** A `ScanEventContext` whose previous keys and content are computed on first access, once. */
export function lazyEventContext(parts: {
  scanId: number;
  checkIn: boolean;
  triggers: ScanEventContext['triggers'];
  previousKeys: () => readonly string[] | undefined;
  content: () => ScanEventContext['content'];
}): ScanEventContext {
  let previousKeys: { value: readonly string[] | undefined } | undefined;
  let content: ScanEventContext['content'] | undefined;
  return {
    scanId: parts.scanId,
    checkIn: parts.checkIn,
    triggers: parts.triggers,
    get previousKeys() {
      previousKeys ??= { value: parts.previousKeys() };
      return previousKeys.value;
    },
    get content() {
      content ??= parts.content();
      return content;
    },
  };
}

/** A stored result's row fields the stores decode. */
export interface ResultRow {
  inventory_id: number;
  runs: string;
  insecure_configurations: string;
  summary: string;
}

/** The blobs a content references, once stored: inventory id, and set id by digest. */
export interface StoredBlobs {
  inventoryId: string;
  setIds: Map<string, string>;
}

/** A `RematchTarget` over decoded sets; keys and the finding list are built only when asked for. */
export function rematchTarget(parts: {
  workloadId: number;
  workload: WorkloadIdentity;
  scanId: number;
  scanTime: string;
  inventoryHash: string;
  inventory: StoredInventory;
  runs: readonly (FindingSet | undefined)[];
  insecureConfigurations: readonly InsecureConfiguration[];
}): RematchTarget {
  const { inventory, runs, insecureConfigurations } = parts;
  let keys: string[] | undefined;
  const loadVulnerabilities = (): VulnerabilityFinding[] =>
    joinRuns(
      inventory.packages,
      runs.map((s) => s?.findings),
    );
  return {
    workloadId: parts.workloadId,
    workload: parts.workload,
    scanId: parts.scanId,
    scanTime: parts.scanTime,
    inventoryHash: parts.inventoryHash,
    inventory,
    get findingKeys() {
      keys ??= findingKeys(loadVulnerabilities(), insecureConfigurations);
      return keys;
    },
    loadVulnerabilities,
    sets: () => runs,
  };
}
