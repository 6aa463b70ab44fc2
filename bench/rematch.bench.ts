/**
 * The re-match benchmark (`npm run bench:rematch`): 10,000 stored workloads, each 200 packages
 * drawn from the bench's real Debian 12 root, against the bench's 100,000 OSV records; then an
 * import that changes 1% of the records (every 100th: half withdrawn, half made to affect every
 * version) and the server's re-match of what changed, timed. Figures, not a test. Inputs are
 * the ones `bench:scan` builds (bench/README.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { scan, evaluateInventory } from '../src/scan/scan.js';
import { findingSet, splitRuns } from '../src/scanner/finding-sets.js';
import type { FindingSet } from '../src/scanner/finding-sets.js';
import { planScanEvents } from '../src/scanner/ingest.js';
import { contentOf } from '../src/scanner/package-matcher.js';
import { Rematcher } from '../src/scanner/rematch.js';
import { SqliteScannerStore } from '../src/storage/scanner/sqlite-scanner-store.js';
import type { OsvRecord } from '../src/vulndb/osv.js';
import { importFromPath } from '../src/vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../src/vulndb/sqlite-store.js';
import { prepareRecords, prepareRoot } from './prepare-data.js';

const WORKLOADS = Number(process.env.BENCH_WORKLOADS ?? 10_000);
const PACKAGES_PER_WORKLOAD = 200;
const CHANGED_SHARE = 0.01;
const TARGET_MS = 10_000;
const CHECKED_WORKLOADS = 25;

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/** Deterministic PRNG (mulberry32), so every run stores the same workloads. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function main(): Promise<void> {
  const root = prepareRoot(log);
  const records = prepareRecords(root, log);
  const dir = mkdtempSync(join(tmpdir(), 'containment-bench-rematch-'));
  try {
    const vulndbPath = join(dir, 'vulndb.sqlite');
    const advisories = openSqliteAdvisoryStore(vulndbPath, { create: true });
    let t = performance.now();
    await importFromPath(advisories, records.allZip);
    log(`imported ${records.total} records in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    // One real scan of the root; a workload's findings are those of its packages (per package).
    const rootScan = await scan(root.path, { store: advisories });
    const packages = rootScan.packages;
    log(`root: ${packages.length} packages, ${rootScan.vulnerabilities.length} findings`);
    // Each package's findings as the server stores them (one set per package, built once).
    const runs = splitRuns(packages, rootScan.vulnerabilities);
    if (!runs) throw new Error("the root scan's findings are not in package order");
    const setOf = new Map<(typeof packages)[number], FindingSet | undefined>(
      packages.map((pkg, i) => {
        const run = runs[i];
        return [pkg, run ? findingSet(run) : undefined];
      }),
    );

    const store = await SqliteScannerStore.open(join(dir, 'scanner.sqlite'));
    await store.createCluster('bench');
    await store.createTrigger({
      cluster: 'bench',
      namespaces: '*',
      url: 'http://127.0.0.1:9/',
      kind: 'cloudevents',
      secret: 'bench',
      everyScan: false,
    });
    const rand = random(42);
    t = performance.now();
    let cpu = process.cpuUsage();
    for (let w = 0; w < WORKLOADS; w++) {
      const chosen = new Set(
        packages
          .map((pkg) => ({ pkg, r: rand() }))
          .sort((a, b) => a.r - b.r)
          .slice(0, PACKAGES_PER_WORKLOAD)
          .map((c) => c.pkg),
      );
      const ordered = packages.filter((p) => chosen.has(p));
      const insecureConfigurations = rootScan.insecureConfigurations;
      const workload = {
        cluster: 'bench',
        namespace: `ns-${w % 50}`,
        pod: `pod-${w}`,
        node: `node-${w % 20}`,
        image: 'registry.local/app:1',
      };
      const scanTime = new Date(Date.UTC(2025, 0, 1));
      await store.recordScan({
        reportId: `r-${w}`,
        workload,
        scanTime,
        inventoryHash: `h-${w}`,
        content: contentOf(
          { packages: ordered, insecureConfigurations },
          ordered.map((p) => setOf.get(p)),
        ),
        events: (context) => planScanEvents(workload, scanTime, context),
      });
    }
    const storeMs = performance.now() - t;
    const storeCpu = process.cpuUsage(cpu);
    log(`stored ${WORKLOADS} workloads in ${(storeMs / 1000).toFixed(1)} s`);

    const rematcher = new Rematcher({ store, advisories, onEvents: () => {}, pollIntervalMs: 0 });
    await rematcher.check(); // baseline

    // The feed change: every 100th record, half withdrawn, half now affecting every version.
    const raw = new Database(vulndbPath, { readonly: true });
    const step = Math.round(1 / CHANGED_SHARE);
    const picked = (raw.prepare('SELECT json FROM records ORDER BY rid').pluck().all() as string[])
      .filter((_, i) => i % step === 0)
      .map((json) => JSON.parse(json) as OsvRecord);
    raw.close();
    const modified = '2030-01-01T00:00:00Z';
    const changedRecords = picked.map((record, i) =>
      i % 2 === 0
        ? { ...record, modified, withdrawn: modified }
        : {
            ...record,
            modified,
            affected: (record.affected ?? []).map((a) => ({
              ...a,
              ranges: (a.ranges ?? []).map((r) => ({ ...r, events: [{ introduced: '0' }] })),
              versions: undefined,
            })),
          },
    );
    const update = await advisories.importRecords(
      changedRecords.map((record, i) => ({ record, origin: `change[${i}]` })),
    );
    log(
      `feed change: ${update.changed} changed, ${update.withdrawn} withdrawn of ${changedRecords.length} records`,
    );

    t = performance.now();
    cpu = process.cpuUsage();
    const check = await rematcher.check();
    const ms = performance.now() - t;
    const checkCpu = process.cpuUsage(cpu);

    // Correctness sample: re-matched findings must equal a full evaluation of the inventory now.
    const sample = store.db
      .prepare(
        `SELECT w.pod FROM scanner_workloads w JOIN scanner_scans s ON s.id = w.last_scan_id
         WHERE s.kind = 'rematch' ORDER BY w.id LIMIT ?`,
      )
      .pluck()
      .all(CHECKED_WORKLOADS) as string[];
    let mismatches = 0;
    for (const pod of sample) {
      const [latest] = await store.latestScans(
        'bench',
        { cluster: '*', namespaces: '*' },
        { pod },
        new Date(8.64e15),
      );
      if (!latest) continue;
      const full = await evaluateInventory(
        { kind: 'container', ref: pod },
        { completeness: 'complete', gaps: [], ...latest.inventory, notes: [] },
        advisories,
        { scanTime: latest.scanTime },
      );
      if (JSON.stringify(full.vulnerabilities) !== JSON.stringify(latest.vulnerabilities)) mismatches++;
    }

    console.log(`re-match after a feed change of ${changedRecords.length} records (${CHANGED_SHARE * 100}%)`);
    console.log(`  stored workloads:     ${WORKLOADS} (${PACKAGES_PER_WORKLOAD} packages each)`);
    console.log(`  candidates read:      ${check.candidates}`);
    console.log(`  findings changed:     ${check.rematched} (events: ${check.events})`);
    console.log(
      `  time:                 ${(ms / 1000).toFixed(2)} s  (target < ${TARGET_MS / 1000} s: ${ms < TARGET_MS ? 'met' : 'MISSED'})`,
    );
    // CPU time of this process (user + system): under load, wall time is mostly waiting for a core.
    const cpuS = (u: NodeJS.CpuUsage): string => ((u.user + u.system) / 1e6).toFixed(2);
    console.log(`  re-match CPU time:    ${cpuS(checkCpu)} s (load ${loadavg()[0]?.toFixed(2)})`);
    console.log(
      `  storing the ${WORKLOADS} workloads: ${(storeMs / 1000).toFixed(2)} s, CPU ${cpuS(storeCpu)} s`,
    );
    console.log(`  checked against full evaluation: ${sample.length} workloads, ${mismatches} mismatches`);
    await store.close();
    advisories.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
