/**
 * One measurement in a fresh process, so each gets its own peak RSS. Prints one JSON line.
 *   import <records> <db>            import into a new database through the library
 *   warm <root> <db> <iterations>    open the store once, scan once, then time <iterations> scans
 *                                    (RSS after each), then <iterations> rescans with a ScanCache
 */
import { performance } from 'node:perf_hooks';
import { scan } from '../src/scan/scan.js';
import { ScanCache } from '../src/scan/scan-cache.js';
import { importFromPath } from '../src/vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../src/vulndb/sqlite-store.js';
import { ourFindingKeys } from './finding-keys.js';
import type { FindingKey } from './finding-keys.js';

export interface ImportMeasurement {
  ms: number;
  maxRssMb: number;
  added: number;
  invalid: number;
  firstInvalid?: string;
}

export interface WarmMeasurement {
  firstMs: number;
  timesMs: number[];
  /** CPU time (user + system) of each of the `timesMs` scans. */
  timesCpuMs: number[];
  /** Process RSS after each of the `timesMs` scans. */
  rssCurveMb: number[];
  /** Rescans of the unchanged target with a ScanCache (after one priming scan). */
  rescanMs: number[];
  rescanCpuMs: number[];
  maxRssMb: number;
  packages: number;
  findings: FindingKey[];
  /** Findings outside the Debian ecosystem (not comparable with osv-scanner's dpkg scan). */
  otherFindings: number;
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1000;
};
const maxRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

async function main(argv: string[]): Promise<unknown> {
  const [mode, ...args] = argv;
  if (mode === 'import') {
    const [records, db] = args as [string, string];
    const store = openSqliteAdvisoryStore(db, { create: true });
    const start = performance.now();
    const report = await importFromPath(store, records);
    const ms = performance.now() - start;
    store.close();
    const result: ImportMeasurement = {
      ms,
      maxRssMb: maxRssMb(),
      added: report.added,
      invalid: report.invalid,
      firstInvalid:
        report.invalidRecords[0] && `${report.invalidRecords[0].origin}: ${report.invalidRecords[0].reason}`,
    };
    return result;
  }
  if (mode === 'warm') {
    const [root, db, iterations] = args as [string, string, string];
    const store = openSqliteAdvisoryStore(db, { readonly: true });
    let start = performance.now();
    const first = await scan(root, { store });
    const firstMs = performance.now() - start;
    const timesMs: number[] = [];
    const timesCpuMs: number[] = [];
    const rssCurveMb: number[] = [];
    for (let i = 0; i < Number(iterations); i++) {
      start = performance.now();
      const cpu = process.cpuUsage();
      await scan(root, { store });
      timesMs.push(performance.now() - start);
      timesCpuMs.push(cpuMs(cpu));
      rssCurveMb.push(Math.round(process.memoryUsage.rss() / 1024 / 1024));
    }
    const cache = new ScanCache();
    await scan(root, { store, cache });
    const rescanMs: number[] = [];
    const rescanCpuMs: number[] = [];
    for (let i = 0; i < Number(iterations); i++) {
      start = performance.now();
      const cpu = process.cpuUsage();
      await scan(root, { store, cache });
      rescanMs.push(performance.now() - start);
      rescanCpuMs.push(cpuMs(cpu));
    }
    store.close();
    const keys = ourFindingKeys(first);
    const result: WarmMeasurement = {
      firstMs,
      timesMs,
      timesCpuMs,
      rssCurveMb,
      rescanMs,
      rescanCpuMs,
      maxRssMb: maxRssMb(),
      packages: first.packages.length,
      findings: keys.debian,
      otherFindings: keys.other,
    };
    return result;
  }
  throw new Error(`unknown mode ${String(mode)}`);
}

process.stdout.write(`${JSON.stringify(await main(process.argv.slice(2)))}\n`);
