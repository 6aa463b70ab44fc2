/**
 * The scan benchmark (`npm run bench:scan`): a real Debian 12 root of ~500 packages against
 * 100,000 OSV records (`BENCH_RECORDS`). Prints import time, cold and warm scan time, rescans with
 * a ScanCache, peak memory and the RSS curve over the warm scans next to the targets, and the same
 * scans by osv-scanner (offline, same records) on both inputs: the root's dpkg status, and the
 * root as a docker-archive image, with the ratios.
 * Figures, not a test: nothing here fails on a missed target. See bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, homedir, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { ScanResult } from '../src/scan/scan-result.js';
import type { WarmMeasurement } from './bench-child.js';
import { ourFindingKeys, osvScannerFindingKeys } from './finding-keys.js';
import type { FindingKey } from './finding-keys.js';
import { BENCH_CACHE, prepareImageArchive, prepareRecords, prepareRoot } from './prepare-data.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const WARM_ITERATIONS = Number(process.env.BENCH_WARM_ITERATIONS ?? 20);
const TARGET = { warmMs: 200, importMs: 30_000, peakMb: 400, coldPeakMb: 300 };
/**
 * Node flags of the import and warm children, e.g. `--max-semi-space-size=16`, which the
 * long-lived commands (agent, server, db import) run with (bin/containment.js).
 */
const CHILD_FLAGS = (process.env.BENCH_CHILD_FLAGS ?? '').split(' ').filter((f) => f !== '');
/** The newest osv-scanner that builds with the Go here (v2.6.0 needs Go 1.27). */
const OSV_SCANNER_VERSION = 'v2.5.0';
const OSV_SCANNER =
  process.env.OSV_SCANNER ?? join(homedir(), '.cache', 'containment-tools', 'bin', 'osv-scanner');

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(benchDir, '..');
const childScript = join(benchDir, 'bench-child.ts');
const cli = join(repoRoot, 'bin', 'containment.js');
const TIME = '/usr/bin/time';

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

interface Stats {
  median: number;
  min: number;
  max: number;
}

function stats(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** Runs bench-child.ts in a fresh Node process and returns its JSON line. */
function child<T>(args: string[]): T {
  const r = spawnSync(process.execPath, [...CHILD_FLAGS, '--import', 'tsx', childScript, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const last = r.stdout?.trim().split('\n').pop();
  if (r.status !== 0 || !last) throw new Error(`bench-child ${args[0]} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(last) as T;
}

interface ProcessRun {
  ms: number;
  /** Peak RSS from /usr/bin/time -v; undefined when it is not installed. */
  maxRssMb: number | undefined;
  /** User + system CPU time from /usr/bin/time -v; undefined when it is not installed. */
  cpuMs: number | undefined;
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Wall time of a whole process (start-up included), and its peak RSS. */
function timedProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ProcessRun {
  const useTime = existsSync(TIME);
  const start = performance.now();
  const r = useTime
    ? spawnSync(TIME, ['-v', cmd, ...args], {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...process.env, ...env },
      })
    : spawnSync(cmd, args, { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, ...env } });
  const ms = performance.now() - start;
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
  const user = /User time \(seconds\): ([\d.]+)/.exec(r.stderr ?? '');
  const system = /System time \(seconds\): ([\d.]+)/.exec(r.stderr ?? '');
  return {
    ms,
    maxRssMb: rss?.[1] ? Math.round(Number(rss[1]) / 1024) : undefined,
    cpuMs: user?.[1] && system?.[1] ? (Number(user[1]) + Number(system[1])) * 1000 : undefined,
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
  };
}

interface CliImport extends ProcessRun {
  added: number;
  invalid: number;
  firstInvalid?: string;
}

/** `containment db import <records> --db <db> --format json`, timed as a whole process. */
function cliImport(records: string, db: string): CliImport {
  const run = timedProcess(process.execPath, [cli, 'db', 'import', records, '--db', db, '--format', 'json']);
  if (run.status !== 0) throw new Error(`containment db import failed (${run.status}): ${run.stderr}`);
  const report = JSON.parse(run.stdout) as {
    added: number;
    invalid: number;
    invalidRecords: { origin: string; reason: string }[];
  };
  const bad = report.invalidRecords[0];
  return {
    ...run,
    added: report.added,
    invalid: report.invalid,
    ...(bad ? { firstInvalid: `${bad.origin}: ${bad.reason}` } : {}),
  };
}

function osvScannerBinary(): { path?: string; why?: string } {
  if (existsSync(OSV_SCANNER)) {
    const version = spawnSync(OSV_SCANNER, ['--version'], { encoding: 'utf8' }).stdout ?? '';
    if (version.includes(OSV_SCANNER_VERSION.slice(1)) || process.env.OSV_SCANNER)
      return { path: OSV_SCANNER };
    log(`${OSV_SCANNER} is not ${OSV_SCANNER_VERSION}; rebuilding`);
  }
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.status !== 0)
    return { why: `osv-scanner is not at ${OSV_SCANNER} and Go is not installed to build it` };
  log(
    `building osv-scanner ${OSV_SCANNER_VERSION} from the Go module proxy into ${dirname(OSV_SCANNER)} ...`,
  );
  mkdirSync(dirname(OSV_SCANNER), { recursive: true });
  const r = spawnSync(
    'go',
    ['install', `github.com/google/osv-scanner/v2/cmd/osv-scanner@${OSV_SCANNER_VERSION}`],
    {
      encoding: 'utf8',
      env: { ...process.env, GOBIN: dirname(OSV_SCANNER), GOFLAGS: '-mod=mod' },
    },
  );
  if (r.status !== 0 || !existsSync(OSV_SCANNER))
    return { why: `go install failed: ${r.stderr.trim().slice(-500)}` };
  return { path: OSV_SCANNER };
}

const fmtMs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
const fmtMb = (mb: number | undefined) => (mb === undefined ? 'n/a' : `${mb} MB`);
const verdict = (value: number | undefined, target: number) =>
  value === undefined ? 'n/a' : value < target ? 'PASS' : 'MISS';

function row(cells: string[]): string {
  const widths = [38, 10, 10, 10, 10, 6];
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' ');
}

function compare(ours: readonly FindingKey[], theirs: readonly FindingKey[]): string[] {
  const a = new Set(ours);
  const b = new Set(theirs);
  const onlyOurs = ours.filter((k) => !b.has(k));
  const onlyTheirs = theirs.filter((k) => !a.has(k));
  const lines = [
    `findings (Debian package × record): ours ${a.size}, osv-scanner ${b.size}, both ${a.size - onlyOurs.length}, ` +
      `only ours ${onlyOurs.length}, only osv-scanner ${onlyTheirs.length}` +
      (onlyOurs.length + onlyTheirs.length === 0 ? '  → SAME FINDINGS' : '  → FINDINGS DIFFER'),
  ];
  if (onlyOurs.length > 0) lines.push(`  e.g. only ours: ${onlyOurs.slice(0, 5).join(', ')}`);
  if (onlyTheirs.length > 0) lines.push(`  e.g. only osv-scanner: ${onlyTheirs.slice(0, 5).join(', ')}`);
  return lines;
}

async function main(): Promise<void> {
  const wall = performance.now();
  const startLoad = loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  const root = prepareRoot(log);
  const records = prepareRecords(root, log);
  mkdirSync(BENCH_CACHE, { recursive: true });
  const work = mkdtempSync(join(BENCH_CACHE, 'run-'));
  try {
    // --- import: each run into a fresh database by the user's command, `containment db import`,
    // in its own process: its peak RSS and CPU include the CLI's restart with a small young
    // generation (bin/containment.js), as a user's import does.
    const imports: CliImport[] = [];
    const db = (i: number) => join(work, `advisories-${i}.sqlite`);
    for (let i = 0; i < RUNS; i++) {
      log(`import ${i + 1}/${RUNS} ...`);
      imports.push(cliImport(records.allZip, db(i)));
      if (i > 0) rmSync(db(i - 1), { force: true });
    }
    const dbPath = db(RUNS - 1);
    const last = imports[imports.length - 1]!;

    // --- cold: a new CLI process per scan, wall time including start-up; the root, then the image.
    const ourCold = (target: string, what: string): { runs: ProcessRun[]; result?: ScanResult } => {
      const runs: ProcessRun[] = [];
      let result: ScanResult | undefined;
      for (let i = 0; i < RUNS; i++) {
        log(`cold scan of the ${what} ${i + 1}/${RUNS} ...`);
        const out = join(work, 'cold.json');
        const run = timedProcess(process.execPath, [
          cli,
          'scan',
          target,
          '--db',
          dbPath,
          '--format',
          'json',
          '--output',
          out,
        ]);
        if (!existsSync(out))
          throw new Error(`containment scan wrote no report (${run.status}): ${run.stderr}`);
        result = JSON.parse(readFileSync(out, 'utf8')) as ScanResult;
        rmSync(out);
        runs.push(run);
      }
      return { runs, ...(result ? { result } : {}) };
    };
    const image = prepareImageArchive(root, log);
    const coldDir = ourCold(root.path, 'root');
    const coldImage = ourCold(image, 'image archive');
    const cold = coldDir.runs;
    const coldResult = coldDir.result;

    // --- warm: one process, store open, scan() repeated after a first one, then rescans with a cache.
    log(`warm scans (1 + ${WARM_ITERATIONS}) and cached rescans ...`);
    const warm = child<WarmMeasurement>(['warm', root.path, dbPath, String(WARM_ITERATIONS)]);

    // --- osv-scanner, offline, same records: the root's dpkg status, then the same image archive.
    const osv = osvScannerBinary();
    const osvRun = (
      args: string[],
      what: string,
    ): { runs: ProcessRun[]; keys?: { debian: FindingKey[]; other: number }; why?: string } => {
      const runs: ProcessRun[] = [];
      let keys: { debian: FindingKey[]; other: number } | undefined;
      if (!osv.path) return { runs, why: osv.why ?? 'not built' };
      for (let i = 0; i < RUNS; i++) {
        log(`osv-scanner on the ${what} ${i + 1}/${RUNS} ...`);
        const out = join(work, 'osv.json');
        const run = timedProcess(osv.path, [...args, '--format', 'json', '--output-file', out], {
          OSV_SCALIBR_LOCAL_DB_CACHE_DIRECTORY: records.osvScannerDbDir,
        });
        // Exit status 1 means "vulnerabilities found"; anything else is a failure.
        if ((run.status !== 0 && run.status !== 1) || !existsSync(out)) {
          const why = `osv-scanner failed (exit ${run.status}): ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`;
          return { runs, why };
        }
        keys = osvScannerFindingKeys(JSON.parse(readFileSync(out, 'utf8')) as object);
        rmSync(out);
        runs.push(run);
      }
      return { runs, ...(keys ? { keys } : {}) };
    };
    const osvDpkg = osvRun(
      [
        'scan',
        'source',
        '--offline',
        '--offline-vulnerabilities',
        '-L',
        `dpkg-status:${join(root.path, 'var/lib/dpkg/status')}`,
      ],
      'dpkg status',
    );
    // `--offline` is needed here too: without it the scan environment counts as online and
    // osv-scalibr's capability filter drops the offline matcher, silently (no findings, exit 0).
    const osvImage = osvRun(
      ['scan', 'image', '--offline', '--offline-vulnerabilities', '--archive', image],
      'image archive',
    );
    const osvRuns = osvDpkg.runs;
    const osvKeys = osvDpkg.keys;
    const osvWhy = osvDpkg.why;

    // --- report
    const importMs = stats(imports.map((m) => m.ms));
    const importRss = imports.some((m) => m.maxRssMb === undefined)
      ? undefined
      : Math.max(...imports.map((m) => m.maxRssMb!));
    const importCpu = imports.some((m) => m.cpuMs === undefined)
      ? undefined
      : stats(imports.map((m) => m.cpuMs!));
    const coldMs = stats(cold.map((r) => r.ms));
    const coldRss = cold.some((r) => r.maxRssMb === undefined)
      ? undefined
      : Math.max(...cold.map((r) => r.maxRssMb!));
    const warmMs = stats(warm.timesMs);
    const ourColdKeys = coldResult ? ourFindingKeys(coldResult) : undefined;
    const coldImageMs = stats(coldImage.runs.map((r) => r.ms));
    const coldImageRss = Math.max(...coldImage.runs.map((r) => r.maxRssMb ?? 0)) || undefined;
    const rescanMs = stats(warm.rescanMs);
    const osvImageMs = osvImage.runs.length > 0 ? stats(osvImage.runs.map((r) => r.ms)) : undefined;
    const compiled = existsSync(join(repoRoot, 'dist', 'cli', 'main.js'));
    // CPU time is the steadier figure on a shared machine, where wall time is mostly waiting.
    const cpuOf = (runs: readonly ProcessRun[]) =>
      runs.length > 0 && runs.every((r) => r.cpuMs !== undefined)
        ? stats(runs.map((r) => r.cpuMs!))
        : undefined;
    const coldCpu = cpuOf(cold);
    const coldImageCpu = cpuOf(coldImage.runs);
    const osvCpu = cpuOf(osvRuns);
    const osvImageCpu = cpuOf(osvImage.runs);

    const out: string[] = [];
    out.push('', `Containment scan benchmark — ${new Date().toISOString()}`);
    out.push(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}; ${RUNS} runs each (warm: ${WARM_ITERATIONS} scans); load average at start ${startLoad}`,
    );
    out.push(`node flags of the import and warm processes: ${CHILD_FLAGS.join(' ') || 'none'}`);
    out.push(`root: ${root.path} — ${root.packages} installed dpkg packages (${root.how})`);
    out.push(`      inventory found ${warm.packages} packages`);
    out.push(
      `advisories: ${records.total} OSV records — ${records.debian12} retargeted to Debian:12 source packages installed in the root, ` +
        `the rest replicas of the ${records.realRecords} real records in testdata/osv under new ids (<id>-R<n>)`,
    );
    if (last.invalid > 0)
      out.push(`  note: ${last.invalid} records rejected on import, e.g. ${last.firstInvalid ?? ''}`);
    out.push(
      `CLI entry: ${compiled ? 'dist/ (compiled)' : 'TypeScript sources through tsx (no dist/ build): start-up includes transpiling'}`,
    );
    const range = (st: Stats, fmt: (v: number) => string) => [fmt(st.median), fmt(st.min), fmt(st.max)];
    const osvMs = osvRuns.length > 0 ? stats(osvRuns.map((r) => r.ms)) : undefined;
    const osvRss = osvRuns.some((r) => r.maxRssMb === undefined)
      ? undefined
      : Math.max(...osvRuns.map((r) => r.maxRssMb!));
    const cpuRow = (st: Stats | undefined): string[][] =>
      st ? [['  CPU time (user + system)', ...range(st, fmtMs), '', '']] : [];
    // prettier-ignore
    const table: string[][] = [
      ['measure', 'median', 'min', 'max', 'target', ''],
      [`import ${records.total / 1000}k records (CLI db import, new db)`, ...range(importMs, fmtMs), '< 30 s', verdict(importMs.median, TARGET.importMs)],
      ...cpuRow(importCpu),
      ['  import peak RSS (max of runs)', fmtMb(importRss), '', '', '< 400 MB', verdict(importRss, TARGET.peakMb)],
      ['cold scan (new CLI process, wall)', ...range(coldMs, fmtMs), '', ''],
      ...cpuRow(coldCpu),
      ['  first scan() in the warm process', fmtMs(warm.firstMs), '', '', '', ''],
      ['warm scan (scan(), store open)', ...range(warmMs, fmtMs), '', ''],
      ...cpuRow(stats(warm.timesCpuMs)),
      ['warm rescan, unchanged (ScanCache)', ...range(rescanMs, fmtMs), '< 200 ms', verdict(rescanMs.median, TARGET.warmMs)],
      ...cpuRow(stats(warm.rescanCpuMs)),
      ['cold scan of the image archive (CLI)', ...range(coldImageMs, fmtMs), '', ''],
      ...cpuRow(coldImageCpu),
      ['  peak RSS, image archive scan', fmtMb(coldImageRss), '', '', '< 300 MB', verdict(coldImageRss, TARGET.coldPeakMb)],
      ['peak RSS, cold CLI scan (max of runs)', fmtMb(coldRss), '', '', '< 300 MB', verdict(coldRss, TARGET.coldPeakMb)],
      ['peak RSS, warm scan process', fmtMb(warm.maxRssMb), '', '', '< 400 MB', verdict(warm.maxRssMb, TARGET.peakMb)],
      ...(osvMs ? [
        [`osv-scanner ${OSV_SCANNER_VERSION} offline (new process)`, ...range(osvMs, fmtMs), '', ''],
        ...cpuRow(osvCpu),
        ['  osv-scanner peak RSS (max of runs)', fmtMb(osvRss), '', '', '', ''],
      ] : []),
      ...(osvImageMs ? [
        [`osv-scanner ${OSV_SCANNER_VERSION} image archive`, ...range(osvImageMs, fmtMs), '', ''],
        ...cpuRow(osvImageCpu),
        ['  its peak RSS (max of runs)', fmtMb(Math.max(...osvImage.runs.map((r) => r.maxRssMb ?? 0)) || undefined), '', '', '', ''],
      ] : []),
    ];
    out.push('', ...table.map(row));
    if (osvMs) {
      out.push('');
      out.push(
        `ratio osv-scanner / ours (> 1 means ours is faster): cold ${(osvMs.median / coldMs.median).toFixed(2)}×` +
          (osvCpu && coldCpu ? ` (CPU time ${(osvCpu.median / coldCpu.median).toFixed(2)}×)` : '') +
          `, warm ${(osvMs.median / warmMs.median).toFixed(1)}×`,
      );
      out.push(...compare(ourColdKeys?.debian ?? warm.findings, osvKeys?.debian ?? []));
      out.push(
        `  (ours also reported ${ourColdKeys?.other ?? warm.otherFindings} non-Debian findings; osv-scanner read only the dpkg status)`,
      );
      if (osvImageMs) {
        out.push(
          `image archive: ours / osv-scanner = ${(coldImageMs.median / osvImageMs.median).toFixed(2)}` +
            (coldImageCpu && osvImageCpu
              ? `, CPU time ${(coldImageCpu.median / osvImageCpu.median).toFixed(2)}`
              : '') +
            ' (target ≤ 0.5; < 1 means ours is faster)',
        );
        const ourImageKeys = coldImage.result ? ourFindingKeys(coldImage.result) : undefined;
        out.push(...compare(ourImageKeys?.debian ?? [], osvImage.keys?.debian ?? []));
        out.push(
          `  non-Debian findings in the image: ours ${ourImageKeys?.other ?? 0}, osv-scanner ${osvImage.keys?.other ?? 0}`,
        );
      } else out.push(`*** osv-scanner on the image archive SKIPPED: ${osvImage.why ?? 'not run'} ***`);
    } else {
      out.push('');
      out.push(`*** osv-scanner SKIPPED: ${osvWhy ?? 'not run'} ***`);
      out.push(`findings: ours ${warm.findings.length} (Debian package × record)`);
    }
    if (ourColdKeys && ourColdKeys.debian.join('\n') !== warm.findings.join('\n')) {
      out.push('  WARNING: the cold CLI scan and the library scan found different Debian findings');
    }
    const curve = warm.rssCurveMb.filter(
      (_, i) =>
        i % Math.max(1, Math.floor(warm.rssCurveMb.length / 10)) === 0 || i === warm.rssCurveMb.length - 1,
    );
    out.push(
      `RSS after warm scans 1..${warm.rssCurveMb.length} (MB, sampled): ${curve.join(' ')} (target < 400 MB after 100)`,
    );
    out.push(
      `load average at the end: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    out.push(`bench wall time ${fmtMs(performance.now() - wall)}`);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
