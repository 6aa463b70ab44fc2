/**
 * The dashboard's Actions page and Act buttons in a real browser (Debian's chromium through
 * playwright-core) against a real scanner with the action API mounted, over a real LocalEnforcer
 * acting on real Podman containers: real evidence bundles, a real nftables quarantine. A viewer of
 * `web` sees only web's actions and cannot act (the server refuses a direct POST too); an evidence
 * file is verified in the browser and its download checked here; the act flow goes through the
 * confirmation with the server's dry-run preview, by keyboard. axe-core on every new page;
 * screenshots go to docs/images/ with CONTAINMENT_UPDATE_SCREENSHOTS=1. Skips loudly without chromium, the built UI, OSV data or
 * Podman; fails under CI=true.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import AxeBuilder from '@axe-core/playwright';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { LocalEnforcer } from '../../enforcement/local-enforcer.js';
import { PodmanFixture } from '../../enforcement/podman-fixture.test-helper.js';
import type { TestContainer } from '../../enforcement/podman-fixture.test-helper.js';
import type { SecurityAction } from '../../enforcement/security-action.js';
import { isQuarantined } from '../../linux/netns-quarantine.js';
import { isCI, repoRoot, sharedDataDir } from '../../testing/shared-data.js';
import { npmReport, startHarness } from '../scanner-harness.test-helper.js';
import type { Harness } from '../scanner-harness.test-helper.js';
import { CHROMIUM, CHROMIUM_ARGS } from './browser.test-helper.js';
import { CLUSTER } from './dashboard-seed.test-helper.js';
import { DEFAULT_WEB_DIR } from './web-assets.js';
import { screenshotDir } from '../../testing/screenshots.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const images = screenshotDir(repoRoot);

const fixture = await PodmanFixture.create();
const missing = [
  existsSync(CHROMIUM) ? undefined : `chromium at ${CHROMIUM}`,
  existsSync(join(DEFAULT_WEB_DIR, 'index.html'))
    ? undefined
    : `the built dashboard (npm run build) at ${DEFAULT_WEB_DIR}`,
  existsSync(osvNpm) ? undefined : `shared OSV data at ${osvNpm}`,
  typeof fixture === 'string' ? fixture : undefined,
].filter((m) => m !== undefined);
if (missing.length > 0) {
  const msg = `dashboard actions browser tests need ${missing.join(', ')}`;
  if (isCI()) throw new Error(msg);
  console.warn(`\n*** SKIPPED: ${msg} ***\n`);
}

describe('dashboard actions in chromium', { skip: missing.length > 0, timeout: 600_000 }, () => {
  const fx = fixture as PodmanFixture;
  const work = mkdtempSync(join(tmpdir(), 'containment-dash-actions-'));
  const evidenceDir = join(work, 'evidence');
  let enforcer: LocalEnforcer;
  let h: Harness;
  let base: string;
  let profile: string;
  let context: BrowserContext;
  let viewerToken: string;
  let web: TestContainer;
  let payments: TestContainer;
  let snapshot: SecurityAction;
  let paymentsAction: SecurityAction;
  const cspViolations: string[] = [];

  before(async () => {
    enforcer = new LocalEnforcer({
      engine: fx.engine,
      dataDir: join(work, 'enforcer'),
      evidenceDir,
      node: 'node-a',
      cluster: CLUSTER,
      exportFilesystem: false,
    });
    h = await startHarness(osvNpm, { actions: { enforcer, cluster: CLUSTER, evidenceDir } });
    await h.store.createCluster(CLUSTER);
    web = fx.run('exec httpd -f -p 8080 -h /www');
    payments = fx.run('exec sleep 3600');
    for (const [namespace, c] of [
      ['web', web],
      ['payments', payments],
    ] as const) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/reports',
        headers: { authorization: `Bearer ${h.adminToken}` },
        payload: npmReport(CLUSTER, namespace, c.name, [['lodash', '4.17.11']]),
      });
      assert.equal(res.statusCode, 201, res.body);
    }
    // Real actions, as a policy would ask for them: a snapshot in web, a quarantine in payments.
    snapshot = await enforcer.submit({
      metadata: { name: 'snap-web-1' },
      spec: {
        target: { namespace: 'web', pod: web.name },
        action: 'Snapshot',
        reason: 'GHSA-jf85-cpcp-j695 in lodash 4.17.11',
        requestedBy: 'policy/quarantine-or-terminate',
      },
    });
    assert.equal(snapshot.status?.phase, 'Succeeded', snapshot.status?.message);
    paymentsAction = await enforcer.submit({
      metadata: { name: 'quarantine-payments-1' },
      spec: {
        target: { namespace: 'payments', pod: payments.name },
        action: 'Quarantine',
        reason: 'GHSA-jf85-cpcp-j695 in lodash 4.17.11',
        requestedBy: 'policy/quarantine-or-terminate',
      },
    });
    assert.equal(paymentsAction.status?.phase, 'Succeeded', paymentsAction.status?.message);
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
      acceptDownloads: true,
      viewport: { width: 1280, height: 860 },
    });
    mkdirSync(images, { recursive: true });
  });
  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await h?.close();
    enforcer?.close();
    fx.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  async function newPage(): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return page;
  }

  async function signIn(page: Page, token: string, path: string): Promise<void> {
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
      bad.map(
        (v) => `${v.id}: ${v.nodes.map((n) => `${n.target.join(' ')} ${n.failureSummary ?? ''}`).join(', ')}`,
      ),
      [],
      `axe on ${what}`,
    );
  }

  /** A state-changing call from the page itself: the session cookie plus the CSRF header. */
  async function postFromPage(
    page: Page,
    path: string,
    body: unknown,
  ): Promise<{ status: number; code?: string }> {
    return page.evaluate(
      async ({ path, body }) => {
        const res = await fetch(path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-containment-csrf': '1' },
          body: JSON.stringify(body),
        });
        const json = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
        return { status: res.status, code: json.error?.code };
      },
      { path, body },
    );
  }

  test('a viewer of web sees only web’s actions, cannot act, and the server refuses a direct POST', async () => {
    const page = await newPage();
    await signIn(page, viewerToken, '/ui/actions');
    await page.getByTestId('actions').waitFor();
    const targets = await page.getByTestId('action-target').allInnerTexts();
    assert.deepEqual(targets, [`web/${web.name}`]);
    await axe(page, 'actions (viewer)');

    // Another namespace's action by URL: indistinguishable from a missing one.
    await page.goto(`${base}/ui/actions/${paymentsAction.metadata.name}`);
    await page.getByTestId('api-error').waitFor();
    assert.match(await page.getByTestId('api-error').innerText(), /NOT_FOUND/);
    // Nor its evidence, nor a namespace filter naming it.
    await page.goto(`${base}/ui/actions?namespace=payments`);
    await page.getByTestId('actions-empty').waitFor();

    // The workload page shows the action timeline but no Act buttons for a viewer.
    await page.goto(`${base}/ui/workload/${CLUSTER}/web/${web.name}`);
    await page.getByTestId('workload-title').waitFor();
    assert.equal(await page.getByTestId('act-panel').count(), 0, 'no Act buttons for a viewer');

    // Attack: the viewer's session posts straight to the API, with a valid CSRF header.
    const before = enforcer.list({ namespaces: '*', limit: 100 }).length;
    const action = {
      metadata: { name: 'viewer-attack-1' },
      spec: { target: { namespace: 'web', pod: web.name }, action: 'Terminate' },
    };
    assert.deepEqual(await postFromPage(page, '/v1/actions', action), { status: 403, code: 'FORBIDDEN' });
    assert.deepEqual(await postFromPage(page, '/v1/actions/preview', action), {
      status: 403,
      code: 'FORBIDDEN',
    });
    assert.equal(enforcer.list({ namespaces: '*', limit: 100 }).length, before, 'nothing stored');
    assert.ok(fx.exists(web.name), 'the container still runs');
    await page.close();
  });

  test('evidence: each file verified with WebCrypto before it is offered; the saved bytes match the bundle', async () => {
    const page = await newPage();
    await signIn(page, h.adminToken, '/ui/actions');
    await page.getByTestId('actions').waitFor();
    assert.equal(await page.getByTestId('action-row').count(), 2, 'the admin sees both namespaces');
    await page.screenshot({ path: join(images, 'dashboard-actions.png') });

    await page.getByRole('link', { name: snapshot.metadata.name }).click();
    await page.getByTestId('evidence').waitFor();
    assert.equal(await page.getByTestId('action-requester').innerText(), 'policy/quarantine-or-terminate');
    const evidence = snapshot.status?.evidence ?? [];
    assert.ok(evidence.length >= 3, 'manifest, inspect, changes at least');
    assert.deepEqual(
      await page.getByTestId('evidence-sha256').allInnerTexts(),
      evidence.map((e) => e.sha256),
    );
    await axe(page, 'action detail');

    await page.getByRole('button', { name: 'Verify and download inspect.json' }).click();
    await page.getByTestId('evidence-verified').waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('evidence-save').click(),
    ]);
    const saved = readFileSync(await download.path());
    const onDisk = join(evidenceDir, snapshot.metadata.name, 'inspect.json');
    const recorded = evidence.find((e) => e.uri.endsWith('/inspect.json'))?.sha256;
    assert.equal(
      createHash('sha256').update(saved).digest('hex'),
      recorded,
      'the saved file has the recorded SHA-256',
    );
    assert.deepEqual(saved, readFileSync(onDisk));
    const manifest = JSON.parse(
      readFileSync(join(evidenceDir, snapshot.metadata.name, 'manifest.json'), 'utf8'),
    ) as {
      files: { path: string; sha256: string }[];
    };
    assert.equal(
      manifest.files.find((f) => f.path === 'inspect.json')?.sha256,
      recorded,
      'and the manifest’s',
    );
    await page.screenshot({ path: join(images, 'dashboard-action.png'), fullPage: true });

    // A file in a directory of the bundle.
    await page.getByRole('button', { name: 'Verify and download logs/stdout.log' }).click();
    await page
      .getByTestId('evidence-row')
      .filter({ hasText: 'logs/stdout.log' })
      .getByTestId('evidence-verified')
      .waitFor();

    // Attack: the file changes on disk after capture → the browser refuses to offer it.
    appendFileSync(join(evidenceDir, snapshot.metadata.name, 'changes.json'), 'tampered\n');
    await page.getByRole('button', { name: 'Verify and download changes.json' }).click();
    const row = page.getByTestId('evidence-row').filter({ hasText: 'changes.json' });
    await row.getByTestId('api-error').waitFor();
    assert.match(await row.getByTestId('api-error').innerText(), /CHECKSUM_MISMATCH/);
    assert.equal(await row.getByTestId('evidence-save').count(), 0, 'no save link for a mismatching file');
    await page.close();
  });

  test('act by keyboard: confirmation names the workload, the dry-run preview changes nothing, confirm quarantines', async () => {
    const page = await newPage();
    await signIn(page, h.adminToken, `/ui/workload/${CLUSTER}/web/${web.name}`);
    await page.getByTestId('act-panel').waitFor();
    // Tab from the top of the page to the Quarantine button, then Enter.
    await page.locator('body').focus();
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate<string>("document.activeElement?.textContent ?? ''")) === 'Quarantine') break;
    }
    assert.equal(
      await page.evaluate<string | undefined>('document.activeElement?.textContent'),
      'Quarantine',
      'reachable by Tab',
    );
    const stored = enforcer.list({ namespaces: '*', limit: 100 }).length;
    await page.keyboard.press('Enter');
    await page.getByTestId('act-dialog').waitFor();
    assert.equal(await page.getByTestId('act-workload').innerText(), `${CLUSTER}/web/${web.name}`);
    await page.getByTestId('act-preview').waitFor();
    const plan = await page.getByTestId('act-preview').innerText();
    assert.match(plan, /drop all traffic/);
    assert.match(plan, new RegExp(web.name));
    assert.equal(enforcer.list({ namespaces: '*', limit: 100 }).length, stored, 'the preview stored nothing');
    assert.equal(await isQuarantined({ pid: web.pid }), false, 'and changed nothing');
    await axe(page, 'act dialog');
    await page.screenshot({ path: join(images, 'dashboard-act.png') });

    await page.getByLabel('Reason').fill('suspicious outbound traffic');
    for (let i = 0; i < 10; i++) {
      if (
        (await page.evaluate<string | null | undefined>(
          "document.activeElement?.getAttribute('data-testid')",
        )) === 'act-confirm'
      )
        break;
      await page.keyboard.press('Tab');
    }
    await page.keyboard.press('Enter');
    await page.getByTestId('act-done').waitFor();
    const id = (await page.getByTestId('act-done').getByRole('link').innerText()).trim();
    let action = enforcer.get(id);
    for (
      let i = 0;
      i < 100 && action?.status?.phase !== 'Succeeded' && action?.status?.phase !== 'Failed';
      i++
    ) {
      await new Promise((r) => setTimeout(r, 100));
      action = enforcer.get(id);
    }
    assert.equal(action?.status?.phase, 'Succeeded', action?.status?.message);
    assert.equal(action.spec.reason, 'suspicious outbound traffic');
    const admin = (await h.tokens.list()).find((t) => t.name === 'admin');
    assert.equal(action.spec.requestedBy, `token:${admin?.id}`, 'the server records who asked');
    assert.equal(await isQuarantined({ pid: web.pid }), true, 'really quarantined');

    // The timeline on the workload page shows it.
    await page.keyboard.press('Escape');
    await page.getByRole('tab', { name: /Actions/ }).click();
    await page.getByTestId('workload-actions').getByRole('link', { name: id }).waitFor();
    assert.deepEqual(cspViolations, []);
    await page.close();
  });

  test('live: a new action and a new detection appear without reload; payments’ never do', async () => {
    const page = await newPage();
    await signIn(page, viewerToken, '/ui/actions');
    await page.getByTestId('actions').waitFor();
    // Real actions while the page is open: one in web, one in payments (invisible to this viewer).
    for (const [name, namespace, c] of [
      ['live-payments-1', 'payments', payments],
      ['live-web-1', 'web', web],
    ] as const) {
      const done = await enforcer.submit({
        metadata: { name },
        spec: { target: { namespace, pod: c.name }, action: 'Snapshot', reason: 'live test' },
      });
      assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
    }
    // The page's own poll is 30 s: within 15 s it is the stream that brought it.
    await page.getByRole('link', { name: 'live-web-1' }).waitFor({ timeout: 15_000 });
    assert.match(await page.getByTestId('live-count').innerText(), /^\d+ new actions?$/);
    assert.deepEqual(await page.getByTestId('action-target').allInnerTexts(), [
      `web/${web.name}`,
      `web/${web.name}`,
      `web/${web.name}`,
    ]);

    // The workload page's runtime detections, live too.
    await page.goto(`${base}/ui/workload/${CLUSTER}/web/${web.name}`);
    await page.getByRole('tab', { name: /Runtime detections/ }).click();
    await page.getByTestId('workload-detections-empty').waitFor();
    const at = new Date().toISOString();
    for (const [namespace, pod, ruleId] of [
      ['payments', payments.name, 'payments_rule'],
      ['web', web.name, 'reverse_shell'],
    ] as const) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/detections',
        headers: { authorization: `Bearer ${h.adminToken}` },
        payload: {
          detections: [
            {
              workload: {
                cluster: CLUSTER,
                namespace,
                pod,
                container: 'app',
                node: 'node-a',
                image: 'registry.local/app:1',
                containerId: 'a'.repeat(64),
              },
              ruleId,
              kind: 'process',
              severity: 'CRITICAL',
              title: 'A shell whose stdin/stdout is a socket',
              detectedAt: at,
              process: { pid: 42, uid: 0, name: 'sh', exe: '/bin/sh', argv: ['sh', '-i'] },
              evidence: { stdinSocket: true },
              baseline: { state: 'none' },
              count: 1,
              firstSeen: at,
              lastSeen: at,
              fingerprint: `fp-${namespace}`,
              source: 'ebpf',
            },
          ],
        },
      });
      assert.equal(res.statusCode, 201, res.body);
    }
    await page.getByTestId('workload-detections').getByText('reverse_shell').waitFor({ timeout: 15_000 });
    assert.equal(await page.getByTestId('live-count').innerText(), '1 new detection');
    await axe(page, 'workload runtime detections');
    await page.close();
  });
});
