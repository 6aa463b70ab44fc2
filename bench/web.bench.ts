/**
 * `npm run bench:web`: the dashboard's budgets. (1) Initial JavaScript (the entry script and what it
 * preloads, gzip -9) against 250 KB. (2) Time to interactive of the overview — navigation start to
 * the counts rendered — in Debian's chromium against a real scanner on loopback with 10,000
 * workloads and ~110,000 findings stored (median of 7 loads, signed in). (3) Frames per second while
 * the 10,000-row workload list scrolls (120 frames of 120 px), with chromium's CPU time per frame.
 * Needs `npm run build` first. Exits 1 when a budget is exceeded.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../src/scanner/routes/browser.test-helper.js';
import {
  CLUSTER,
  reportRealWorkloads,
  seedBulkWorkloads,
} from '../src/scanner/routes/dashboard-seed.test-helper.js';
import { DEFAULT_WEB_DIR } from '../src/scanner/routes/web-assets.js';
import { startHarness } from '../src/scanner/scanner-harness.test-helper.js';
import { sharedDataDir } from '../src/testing/shared-data.js';

const JS_BUDGET_KB = 250;
const TTI_BUDGET_MS = 1000;
const WORKLOADS = 10_000;
const LOADS = 7;
const SCROLL_FRAMES = 120;

const log = (msg: string): void => console.log(`[bench:web] ${msg}`);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function initialJsKb(): number {
  const html = readFileSync(join(DEFAULT_WEB_DIR, 'index.html'), 'utf8');
  const files = [...html.matchAll(/(?:src|href)="\/ui\/(assets\/[^"]+\.js)"/g)].map((m) => m[1] as string);
  if (files.length === 0) throw new Error('no script in dist/web/index.html');
  const bytes = files.reduce(
    (n, f) => n + gzipSync(readFileSync(join(DEFAULT_WEB_DIR, f)), { level: 9 }).length,
    0,
  );
  return bytes / 1024;
}

/** CPU time (user + system, ms) of the chromium started with this profile and its descendants. */
function chromiumCpuMs(profile: string): number {
  const procs = new Map<number, { ppid: number; ticks: number; root: boolean }>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d)))
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // After "pid (comm) ": state, ppid, …, utime (12th), stime (13th).
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const root = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(profile);
      procs.set(Number(pid), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), root });
    } catch {
      // Gone meanwhile.
    }
  const inTree = (pid: number): boolean => {
    for (let p = procs.get(pid); p; p = procs.get(p.ppid)) if (p.root) return true;
    return false;
  };
  let ticks = 0;
  for (const [pid, p] of procs) if (inTree(pid)) ticks += p.ticks;
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

async function main(): Promise<void> {
  if (!existsSync(join(DEFAULT_WEB_DIR, 'index.html'))) throw new Error('run `npm run build` first');
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM}`);
  const js = initialJsKb();
  log(`initial JS: ${js.toFixed(1)} KB gzip (budget ${JS_BUDGET_KB} KB)`);

  const h = await startHarness(join(sharedDataDir, 'osv', 'npm'));
  const profile = mkdtempSync(join(tmpdir(), 'containment-bench-chromium-'));
  try {
    await h.store.createCluster(CLUSTER);
    await reportRealWorkloads(h.app, h.adminToken);
    let t = performance.now();
    await seedBulkWorkloads(h.store, h.advisories, WORKLOADS, { findings: true });
    log(
      `stored ${WORKLOADS} workloads (11 findings each) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    const base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 860 },
    });
    const page = await context.newPage();
    const signIn = await page.request.post(`${base}/ui/session`, {
      headers: { 'x-containment-csrf': '1' },
      data: { token: h.adminToken },
    });
    if (!signIn.ok()) throw new Error(`sign-in failed: ${signIn.status()}`);

    // The server's share: the overview's request (and the workload list's first page), timed without
    // the browser; CPU time too, since wall time stretches with the machine's load (the server runs in
    // this process; the client's share of the CPU time is a fetch on loopback).
    const api: Record<string, { wall: number[]; cpu: number[] }> = {};
    for (const path of [
      '/v1/summary',
      '/v1/workload-search?limit=1',
      '/v1/workload-search?limit=200&offset=4000',
    ])
      api[path] = { wall: [], cpu: [] };
    for (let i = 0; i < LOADS; i++)
      for (const [path, samples] of Object.entries(api)) {
        const cpu = process.cpuUsage();
        t = performance.now();
        const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${h.adminToken}` } });
        await res.arrayBuffer();
        samples.wall.push(performance.now() - t);
        const used = process.cpuUsage(cpu);
        samples.cpu.push((used.user + used.system) / 1000);
      }
    for (const [path, samples] of Object.entries(api))
      log(
        `GET ${path}: median ${median(samples.wall).toFixed(0)} ms wall, ${median(samples.cpu).toFixed(0)} ms CPU`,
      );

    // The API requests an overview load makes (a waterfall shows as more than one round).
    const requests: string[] = [];
    page.on('request', (r) => {
      const path = new URL(r.url()).pathname;
      if (path.startsWith('/v1/') && !path.endsWith('/events/stream')) requests.push(path);
    });
    const times: number[] = [];
    const cpus: { chromium: number; server: number }[] = [];
    for (let i = 0; i < LOADS; i++) {
      requests.length = 0;
      const chromiumBefore = chromiumCpuMs(profile);
      const serverBefore = process.cpuUsage();
      t = performance.now();
      await page.goto(`${base}/ui/`);
      await page.getByTestId('stat-compliant').filter({ hasText: /\d/ }).waitFor();
      times.push(performance.now() - t);
      const server = process.cpuUsage(serverBefore);
      cpus.push({
        chromium: chromiumCpuMs(profile) - chromiumBefore,
        server: (server.user + server.system) / 1000,
      });
    }
    const tti = median(times);
    log(`overview interactive: median ${tti.toFixed(0)} ms of ${LOADS} loads (budget ${TTI_BUDGET_MS} ms)`);
    log(
      `  CPU per load (median): chromium ${median(cpus.map((c) => c.chromium)).toFixed(0)} ms, ` +
        `this process (server and playwright) ${median(cpus.map((c) => c.server)).toFixed(0)} ms`,
    );
    log(`overview API requests per load: ${requests.join(', ')}`);
    const loadNow = (): string =>
      loadavg()
        .map((l) => l.toFixed(1))
        .join(' ');
    log(`load before scrolling: ${loadNow()}`);

    await page.goto(`${base}/ui/workloads`);
    await page
      .getByTestId('workload-total')
      .filter({ hasText: `${WORKLOADS + 3} workloads` })
      .waitFor();
    // A fixed scroll (SCROLL_FRAMES frames of 120 px: 360 rows, two pages fetched) so that its cost
    // can be compared: besides frames per second, which mostly measure the machine's load, the CPU
    // time chromium's processes used for it (from /proc, which the load does not stretch) and the
    // renderer's main-thread time (Chrome's metrics; wall time, so stretched by the load).
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    const metrics = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
    const before = await metrics();
    const cpuBefore = chromiumCpuMs(profile);
    // A string: this file is type-checked without the DOM library.
    const { fps } = (await page.evaluate(`new Promise((resolve) => {
      const el = document.querySelector('[data-testid=workload-list]');
      let frames = 0;
      const start = performance.now();
      const step = () => {
        frames++;
        el.scrollTop += 120;
        if (frames < ${SCROLL_FRAMES}) requestAnimationFrame(step);
        else resolve({ fps: (frames * 1000) / (performance.now() - start) });
      };
      requestAnimationFrame(step);
    })`)) as { fps: number };
    const cpu = chromiumCpuMs(profile) - cpuBefore;
    const after = await metrics();
    const perFrame = (name: string): string =>
      ((((after[name] ?? 0) - (before[name] ?? 0)) * 1000) / SCROLL_FRAMES).toFixed(1);
    log(`workload list scrolling: ${fps.toFixed(0)} frames/s (headless chromium, 120 px a frame)`);
    log(
      `  per frame: ${(cpu / SCROLL_FRAMES).toFixed(1)} ms chromium CPU; renderer main thread ` +
        `${perFrame('TaskDuration')} ms of tasks, ${perFrame('ScriptDuration')} ms script, ` +
        `${perFrame('LayoutDuration')} ms layout, ${perFrame('RecalcStyleDuration')} ms style`,
    );
    await context.close();
    log(`load: ${loadNow()} (1/5/15 min)`);
    if (js > JS_BUDGET_KB || tti > TTI_BUDGET_MS) {
      log('BUDGET EXCEEDED');
      process.exitCode = 1;
    }
  } finally {
    await h.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

await main();
