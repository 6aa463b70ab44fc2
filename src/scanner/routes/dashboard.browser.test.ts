/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core against a real
 * scanner (SQLite, real OSV records) listening on loopback, with 10,000 workloads stored. Token
 * sign-in into the HttpOnly cookie, namespace isolation by URL and by search, the virtualised
 * list, an expired session returning to sign-in on the same page, no CSP violation, axe-core with
 * no serious or critical violation; screenshots go to docs/images/ with CONTAINMENT_UPDATE_SCREENSHOTS=1.
 * Skips loudly without chromium or a built UI; fails under CI=true.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import AxeBuilder from '@axe-core/playwright';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { isCI, repoRoot, sharedDataDir } from '../../testing/shared-data.js';
import { npmReport, startHarness } from '../scanner-harness.test-helper.js';
import type { Harness } from '../scanner-harness.test-helper.js';
import { CLUSTER, reportRealWorkloads, seedBulkWorkloads } from './dashboard-seed.test-helper.js';
import { CHROMIUM, CHROMIUM_ARGS } from './browser.test-helper.js';
import { DEFAULT_WEB_DIR } from './web-assets.js';
import { screenshotDir } from '../../testing/screenshots.js';

const BULK = 10_000;
const osvNpm = join(sharedDataDir, 'osv', 'npm');
const images = screenshotDir(repoRoot);

const missing = [
  existsSync(CHROMIUM) ? undefined : `chromium at ${CHROMIUM}`,
  existsSync(join(DEFAULT_WEB_DIR, 'index.html'))
    ? undefined
    : `the built dashboard (npm run build) at ${DEFAULT_WEB_DIR}`,
  existsSync(osvNpm) ? undefined : `shared OSV data at ${osvNpm}`,
].filter((m) => m !== undefined);
if (missing.length > 0) {
  const msg = `dashboard browser tests need ${missing.join(', ')}`;
  if (isCI()) throw new Error(msg);
  console.warn(`\n*** SKIPPED: ${msg} ***\n`);
}

describe('dashboard in chromium', { skip: missing.length > 0, timeout: 600_000 }, () => {
  let h: Harness;
  let base: string;
  let profile: string;
  let context: BrowserContext;
  let viewerToken: string;
  const cspViolations: string[] = [];

  before(async () => {
    h = await startHarness(osvNpm);
    await h.store.createCluster(CLUSTER);
    await reportRealWorkloads(h.app, h.adminToken);
    await seedBulkWorkloads(h.store, h.advisories, BULK);
    viewerToken = (
      await h.tokens.issue({
        name: 'web-viewer',
        role: 'viewer',
        scope: { cluster: CLUSTER, namespaces: ['web'] },
      })
    ).token;
    base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    profile = mkdtempSync(join(tmpdir(), 'containment-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 860 },
    });
    mkdirSync(images, { recursive: true });
  });
  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await h?.close();
  });

  async function newPage(): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return page;
  }

  async function signIn(page: Page, token: string, path = '/ui/'): Promise<void> {
    await context.clearCookies();
    await page.goto(`${base}${path}`);
    await page.waitForURL(/\/ui\/signin\?next=/);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === path);
  }

  async function axe(page: Page, what: string): Promise<void> {
    const result = await new AxeBuilder({ page }).analyze();
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(
      bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
      [],
      `axe on ${what}`,
    );
  }

  test('token sign-in: back to the page asked for, the token only in an HttpOnly cookie', async () => {
    const page = await newPage();
    await page.goto(`${base}/ui/workloads`);
    await page.waitForURL(/\/ui\/signin\?next=%2Fui%2Fworkloads/);
    await axe(page, 'sign-in');
    await page
      .getByLabel('API token')
      .fill('ctm_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('api-error').waitFor();
    assert.match(await page.getByTestId('api-error').innerText(), /UNAUTHENTICATED/);
    await page.screenshot({ path: join(images, 'dashboard-signin.png') });

    await page.getByLabel('API token').fill(h.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === '/ui/workloads');
    const [cookie] = await context.cookies(base);
    assert.equal(cookie?.name, 'ctm_session');
    assert.equal(cookie?.httpOnly, true);
    assert.equal(cookie?.sameSite, 'Strict');
    const stored = await page.evaluate(
      () => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }),
    );
    assert.doesNotMatch(stored, /ctm_/, 'no token in web storage');
    assert.equal(await page.evaluate<string>('document.cookie'), '', 'the cookie is not readable by script');
    await page.close();
  });

  test('overview: counts of every namespace for the admin', async () => {
    const page = await newPage();
    await signIn(page, h.adminToken, '/ui/');
    await page.getByTestId('overview-ready').waitFor();
    assert.equal(await page.getByTestId('stat-workloads').innerText(), String(BULK + 3));
    await page.getByTestId('stat-compliant').filter({ hasText: /\d/ }).waitFor();
    // The verdicts come with the summary; they agree with the workload list's.
    const search = await h.app.inject({
      url: '/v1/workload-search?limit=1',
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    const verdicts = (search.json() as { compliance: { passed: number; failed: number } }).compliance;
    assert.equal(await page.getByTestId('stat-compliant').innerText(), String(verdicts.passed));
    assert.equal(await page.getByTestId('stat-noncompliant').innerText(), String(verdicts.failed));
    await axe(page, 'overview');
    await page.screenshot({ path: join(images, 'dashboard-overview.png') });
    await page.close();
  });

  test('10,000 workloads: server-side paging, only visible rows in the DOM, search by name', async () => {
    const page = await newPage();
    await signIn(page, h.adminToken, '/ui/workloads');
    await page
      .getByTestId('workload-total')
      .filter({ hasText: `${BULK + 3} workloads` })
      .waitFor();
    const list = page.getByTestId('workload-list');
    assert.ok((await list.locator('[role=row]').count()) < 100, 'virtualised');
    await axe(page, 'workloads');
    await page.screenshot({ path: join(images, 'dashboard-workloads.png') });
    await list.evaluate((el) => (el.scrollTop = el.scrollHeight));
    // The last rows come from the last server page (sorted by namespace, pod).
    await list.getByText('team-9', { exact: true }).last().waitFor();
    assert.ok((await list.locator('[role=row]').count()) < 100);
    await page.getByLabel('Search').fill('bulk-9999');
    await page
      .getByTestId('workload-total')
      .filter({ hasText: /^1 workloads$/ })
      .waitFor();
    await list.getByRole('link', { name: 'bulk-9999' }).waitFor();
    await page.close();
  });

  test('workload page: vulnerabilities with fixed versions and aliases, packages, history', async () => {
    const page = await newPage();
    await signIn(page, h.adminToken, `/ui/workload/${CLUSTER}/web/storefront`);
    const vulns = page.getByTestId('vulnerabilities');
    await vulns.waitFor();
    const row = vulns.getByRole('row').filter({ hasText: 'GHSA-jf85-cpcp-j695' });
    assert.match(
      await row.innerText(),
      /^CVE-2019-10744\s+CRITICAL\s+lodash\s+4\.17\.11\s+4\.17\.12\s+GHSA-jf85-cpcp-j695$/,
    );
    await axe(page, 'workload');
    await page.screenshot({ path: join(images, 'dashboard-workload.png') });
    await page.getByRole('tab', { name: /Packages/ }).click();
    await page.getByRole('cell', { name: '/app/node_modules/express/package.json' }).waitFor();
    await page.getByRole('tab', { name: /Scan history/ }).click();
    await page.getByRole('img', { name: /Risk score over 1 scans/ }).waitFor();
    await page.close();
  });

  test('a viewer of web sees only web: counts, list, search and a URL of another namespace', async () => {
    const page = await newPage();
    await signIn(page, viewerToken, '/ui/');
    await page.getByTestId('overview-ready').waitFor();
    assert.equal(await page.getByTestId('stat-workloads').innerText(), '2');
    assert.equal(await page.getByTestId('stat-namespaces').innerText(), '1');
    const verdicts = await Promise.all(
      ['stat-compliant', 'stat-noncompliant'].map(async (id) =>
        Number(await page.getByTestId(id).innerText()),
      ),
    );
    assert.equal(verdicts[0]! + verdicts[1]!, 2, 'verdicts of web only');
    assert.match(await page.getByTestId('principal-scope').innerText(), /prod · web/);
    await page.screenshot({ path: join(images, 'dashboard-viewer-overview.png') });

    // Live: a new scan in web arrives without reload; one in payments never shows.
    for (const [namespace, pod] of [
      ['payments', 'ledger-live'],
      ['web', 'search-live'],
    ] as const) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/reports',
        headers: { authorization: `Bearer ${h.adminToken}` },
        payload: npmReport(CLUSTER, namespace, pod, [['minimist', '1.2.0']]),
      });
      assert.equal(res.statusCode, 201, res.body);
    }
    await page.getByTestId('stat-workloads').filter({ hasText: /^3$/ }).waitFor();
    assert.equal(await page.getByTestId('live-count').innerText(), '1 new scan');

    await page.goto(`${base}/ui/workloads?q=ledger`);
    await page
      .getByTestId('workload-total')
      .filter({ hasText: /^0 workloads$/ })
      .waitFor();
    await page.goto(`${base}/ui/workloads?q=ledger-live`);
    await page
      .getByTestId('workload-total')
      .filter({ hasText: /^0 workloads$/ })
      .waitFor();
    await page.goto(`${base}/ui/workloads?q=lodash`);
    await page
      .getByTestId('workload-total')
      .filter({ hasText: /^1 workloads$/ })
      .waitFor();
    assert.equal(await page.getByTestId('workload-list').getByRole('link').innerText(), 'storefront');
    await page.goto(`${base}/ui/workloads?q=bulk-1`);
    await page
      .getByTestId('workload-total')
      .filter({ hasText: /^0 workloads$/ })
      .waitFor();

    await page.goto(`${base}/ui/workload/${CLUSTER}/payments/ledger`);
    await page.getByTestId('api-error').waitFor();
    assert.match(await page.getByTestId('api-error').innerText(), /FORBIDDEN|NOT_FOUND/);
    assert.equal(await page.getByTestId('vulnerabilities').count(), 0);
    await page.close();
  });

  test('an expired session returns to sign-in and back to the same page', async () => {
    const issued = await h.tokens.issue({
      name: 'brief',
      role: 'viewer',
      scope: { cluster: '*', namespaces: '*' },
    });
    const page = await newPage();
    await signIn(page, issued.token, '/ui/');
    await page.getByTestId('overview-ready').waitFor();
    await h.tokens.revoke(issued.info.id);
    await page.goto(`${base}/ui/workloads?q=storefront`);
    await page.waitForURL(/\/ui\/signin\?next=%2Fui%2Fworkloads%3Fq%3Dstorefront/);
    await page.getByLabel('API token').fill(h.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === '/ui/workloads' && url.search === '?q=storefront');
    await page
      .getByTestId('workload-total')
      .filter({ hasText: /^1 workloads$/ })
      .waitFor();
    await page.close();
  });

  test('no Content-Security-Policy violation on any page visited', () => {
    assert.deepEqual(cspViolations, []);
  });
});
