/**
 * The dashboard served by the real `containment up --enforce` on Podman, in Debian's chromium: a
 * container with sshd installed is quarantined by the reference policy, and its audit trail page
 * draws the whole chain (scan → event → trigger → activation with its logs → action) with no gap;
 * the policies page shows the deployed policy with its source, its rule and the activations; the
 * rule can be switched off and on by keyboard alone. Attacks: a viewer of another namespace gets
 * FORBIDDEN for the trail by URL and NOT_FOUND for the action by id, and a viewer of `local`
 * cannot switch the rule (disabled in the page, 403 from the API, the rule unchanged). axe-core
 * finds no serious or critical violation; screenshots go to docs/images/ with CONTAINMENT_UPDATE_SCREENSHOTS=1.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import AxeBuilder from '@axe-core/playwright';
import { chromium } from 'playwright-core';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../../src/scanner/routes/browser.test-helper.js';
import { DEFAULT_WEB_DIR } from '../../src/scanner/routes/web-assets.js';
import { repoRoot, requireOrSkip } from '../../src/testing/shared-data.js';
import { freePortRun } from '../../src/testing/ports.js';
import {
  buildBusyboxImage,
  runBusyboxContainer,
  startUp,
  whyUpUnavailable,
} from './up-fixture.test-helper.js';
import type { UpProcess } from './up-fixture.test-helper.js';
import { waitForValue } from '../../src/testing/wait.js';
import { screenshotDir } from '../../src/testing/screenshots.js';

const CONTAIN_WITHIN_MS = 30_000;
const screenshots = screenshotDir(repoRoot);

function whyUnavailable(): string | undefined {
  const missing = [
    existsSync(CHROMIUM) ? undefined : `chromium at ${CHROMIUM}`,
    existsSync(join(DEFAULT_WEB_DIR, 'index.html')) ? undefined : `the built dashboard at ${DEFAULT_WEB_DIR}`,
  ].filter((m) => m !== undefined);
  return missing.length > 0 ? missing.join(', ') : whyUpUnavailable();
}

interface Rule {
  name: string;
  status: string;
}

describe('dashboard on containment up: audit trail and policies in chromium', () => {
  const unavailable = whyUnavailable();
  const run = Math.random().toString(16).slice(2, 10);
  const label = `containment-dash-test=${run}`;
  const image = `localhost/containment-dash-test:sshd-${run}`;
  const sshd = `containment-dash-sshd-${run}`;
  let tmp = '';
  let up: UpProcess | undefined;
  let profile = '';
  let context: BrowserContext | undefined;
  let base = '';
  const tokens = { otherViewer: '', localViewer: '' };
  let actionId = '';
  const cspViolations: string[] = [];

  const apiAs = async (token: string, path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${base}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
    });

  async function issue(namespace: string): Promise<string> {
    const res = await apiAs(up?.adminToken ?? '', '/v1/tokens', {
      method: 'POST',
      body: JSON.stringify({
        name: `viewer of ${namespace}`,
        role: 'viewer',
        cluster: 'local',
        namespaces: [namespace],
      }),
    });
    const body = await res.text();
    assert.equal(res.status, 201, body);
    return (JSON.parse(body) as { token: string }).token;
  }

  async function rule(): Promise<Rule> {
    const res = await apiAs(up?.adminToken ?? '', '/v1/policies?namespace=local&activations=0');
    assert.equal(res.status, 200);
    const { namespaces } = (await res.json()) as { namespaces: { rules: Rule[] }[] };
    const found = namespaces[0]?.rules.find((r) => r.name.includes('quarantine-or-terminate'));
    assert.ok(found, 'the reference policy has a rule');
    return found;
  }

  async function newPage(): Promise<Page> {
    const page = await (context as BrowserContext).newPage();
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return page;
  }

  async function signIn(page: Page, token: string, path: string): Promise<void> {
    await context?.clearCookies();
    await page.goto(`${base}${path}`);
    await page.waitForURL(/\/ui\/signin\?next=/);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === path.split('?')[0]);
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

  /** Tabs from the top of the page until `target` has the focus: reachable by keyboard alone. */
  async function tabTo(page: Page, target: Locator, what: string): Promise<void> {
    await page.locator('body').focus();
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press('Tab');
      if (await target.evaluate((el) => el === el.ownerDocument.activeElement)) return;
    }
    assert.fail(`${what} is not reachable with Tab`);
  }

  before(async () => {
    if (unavailable !== undefined) return;
    tmp = mkdtempSync(join(tmpdir(), 'containment-dash-up-'));
    // A copy of a binary at sshd's install path: the reference policy's remote-shell rule.
    buildBusyboxImage(tmp, image, { 'usr/sbin/sshd': 'busybox' });
    let port = await freePortRun();
    if (port > 65_000) port = 40_000 + (port % 20_000);
    up = await startUp([
      '--enforce',
      '--data-dir',
      join(tmp, 'data'),
      '--port',
      String(port),
      '--rescan-interval',
      '10m',
      '--grace-period',
      '1',
      '--label',
      label,
    ]);
    base = up.scannerApi;
    tokens.otherViewer = await issue('other');
    tokens.localViewer = await issue('local');
    profile = mkdtempSync(join(tmpdir(), 'containment-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 900 },
    });
    mkdirSync(screenshots, { recursive: true });
  });

  after(async () => {
    if (unavailable !== undefined) return;
    await context?.close();
    if (profile !== '') rmSync(profile, { recursive: true, force: true });
    const code = await up?.stop();
    execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', sshd], { stdio: 'ignore' });
    execFileSync('podman', ['rmi', '--force', '--ignore', image], { stdio: 'ignore' });
    if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
    assert.equal(code, 0, `up stopped with ${code}: ${up?.stderr() ?? ''}`);
  });

  it('draws the audit trail of a real quarantine with no gap, from the workload page', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    runBusyboxContainer(sshd, label, image);
    // The chain is complete once the policy's activation is stored (when the policy returns).
    const trail = await waitForValue(
      async () => {
        const res = await apiAs(up?.adminToken ?? '', `/v1/audit?namespace=local&pod=${sshd}`);
        assert.equal(res.status, 200);
        const body = (await res.json()) as {
          trail: { complete: boolean; action: { id: string; action: string } }[];
        };
        return body.trail.length > 0 && body.trail.every((l) => l.complete) ? body.trail : undefined;
      },
      `a complete audit trail of ${sshd}`,
      CONTAIN_WITHIN_MS,
    );
    assert.equal(trail[0]?.action.action, 'Quarantine');
    actionId = trail[0]?.action.id ?? '';

    const page = await newPage();
    await signIn(page, up?.adminToken ?? '', `/ui/workload/local/local/${sshd}`);
    const link = page.getByRole('link', { name: 'Audit trail' });
    await link.waitFor();
    await tabTo(page, link, 'the audit trail link');
    await page.keyboard.press('Enter');
    await page.waitForURL((url) => url.pathname === '/ui/audit' && url.searchParams.get('pod') === sshd);
    const chain = page.getByTestId('audit-chain');
    await chain.waitFor();
    assert.equal(await chain.count(), 1);
    assert.equal(
      await chain.getByTestId('audit-step').count(),
      5,
      'scan, event, trigger, activation, action',
    );
    assert.equal(await chain.getByTestId('audit-step-missing').count(), 0);
    assert.equal(await chain.getByTestId('audit-complete').textContent(), 'complete chain');
    const text = await chain.innerText();
    assert.match(text, /dev\.containment\.scan\.completed/);
    assert.match(text, /quarantine-or-terminate: success/);
    assert.match(text, /Quarantine — Succeeded: remote shell/);
    // The activation's logs open by keyboard (a native <details>).
    const summary = chain.getByText(/^Logs \(\d+ lines?\)$/);
    await tabTo(page, summary, 'the activation logs');
    await page.keyboard.press('Enter');
    await chain.getByTestId('activation-logs').waitFor({ state: 'visible' });
    await axe(page, 'audit trail');
    await page.screenshot({ path: join(screenshots, 'dashboard-audit.png'), fullPage: true });

    // By action id: the same chain.
    await page.goto(`${base}/ui/audit?action=${actionId}`);
    await page.getByTestId('audit-complete').filter({ hasText: 'complete chain' }).waitFor();
    await page.close();
  });

  it('a viewer of another namespace cannot see the trail by URL, nor the action by id', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    assert.notEqual(actionId, '', 'the quarantine test ran first');
    const page = await newPage();
    await signIn(page, tokens.otherViewer, '/ui/policies');
    await page.goto(`${base}/ui/audit?namespace=local&pod=${sshd}`);
    await page.getByTestId('api-error').waitFor();
    assert.match(await page.getByTestId('api-error').innerText(), /FORBIDDEN/);
    await page.goto(`${base}/ui/audit?action=${actionId}`);
    await page.getByTestId('api-error').filter({ hasText: 'NOT_FOUND' }).waitFor();
    assert.equal(await page.getByTestId('audit-chain').count(), 0);
    // The policies of namespace local are not listed either.
    await page.goto(`${base}/ui/policies`);
    await page.getByText('No policy namespace you may read.').waitFor();
    await page.close();
    const direct = await apiAs(tokens.otherViewer, `/v1/audit?namespace=local&pod=${sshd}`);
    assert.equal(direct.status, 403);
    assert.doesNotMatch(await direct.text(), /remote shell|scan\.completed/);
  });

  it('policies: source, rule, activations with logs; the rule switches off and on by keyboard', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    const { name } = await rule();
    const page = await newPage();
    await signIn(page, up?.adminToken ?? '', '/ui/policies');
    const ns = page.getByTestId('policies-local');
    await ns.getByTestId('policy').filter({ hasText: 'quarantine-or-terminate' }).waitFor();
    assert.match(await ns.getByTestId('policy').first().innerText(), /enforcing/i);
    await ns.getByText('Source').first().click();
    assert.match(await ns.getByTestId('policy-source').first().innerText(), /export/);
    const activations = ns.getByTestId('activations');
    await activations.getByRole('row').filter({ hasText: 'quarantine-or-terminate' }).first().waitFor();
    assert.match(await activations.innerText(), /success/i);
    await axe(page, 'policies');
    await page.screenshot({ path: join(screenshots, 'dashboard-policies.png') });

    const toggle = page.getByRole('switch', { name: `Rule ${name} enabled` });
    assert.equal(await toggle.isChecked(), true);
    await tabTo(page, toggle, 'the rule switch');
    await page.keyboard.press('Space');
    await waitForValue(
      async () => ((await rule()).status === 'inactive' ? true : undefined),
      'rule off',
      10_000,
    );
    await page.getByRole('switch', { name: `Rule ${name} enabled`, checked: false }).waitFor();
    assert.equal(await toggle.evaluate((el) => el === el.ownerDocument.activeElement), true, 'focus kept');
    await page.keyboard.press('Space');
    await waitForValue(
      async () => ((await rule()).status === 'active' ? true : undefined),
      'rule on',
      10_000,
    );
    await page.close();
  });

  it('a viewer of local sees the rule but cannot switch it: disabled, and 403 from the API', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    const { name } = await rule();
    const page = await newPage();
    await signIn(page, tokens.localViewer, '/ui/policies');
    const toggle = page.getByRole('switch', { name: `Rule ${name} enabled` });
    await toggle.waitFor();
    assert.equal(await toggle.isDisabled(), true);
    // The page's own session, as a script in it would send it: refused by role.
    const status = await page.evaluate(
      async (path) =>
        (
          await fetch(path, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-containment-csrf': '1' },
            body: JSON.stringify({ status: 'inactive' }),
          })
        ).status,
      `/v1/policies/local/rules/${encodeURIComponent(name)}`,
    );
    assert.equal(status, 403);
    const direct = await apiAs(tokens.localViewer, `/v1/policies/local/rules/${encodeURIComponent(name)}`, {
      method: 'POST',
      body: JSON.stringify({ status: 'inactive' }),
    });
    assert.equal(direct.status, 403);
    assert.equal(((await direct.json()) as { error: { code: string } }).error.code, 'FORBIDDEN');
    assert.equal((await rule()).status, 'active', 'the rule is unchanged');
    await page.close();
  });

  it('an admin session without the CSRF header cannot switch the rule', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    const { name } = await rule();
    const page = await newPage();
    await signIn(page, up?.adminToken ?? '', '/ui/policies');
    const answer = await page.evaluate(
      async (path) => {
        const res = await fetch(path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ status: 'inactive' }),
        });
        return { status: res.status, body: await res.text() };
      },
      `/v1/policies/local/rules/${encodeURIComponent(name)}`,
    );
    assert.equal(answer.status, 403);
    assert.match(answer.body, /CSRF_REJECTED/);
    assert.equal((await rule()).status, 'active');
    await page.close();
  });

  it('a manual release has no policy behind it: its missing links are drawn as gaps', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    const res = await fetch(`${up?.actionApi ?? ''}/v1/actions?wait=true`, {
      method: 'POST',
      headers: { authorization: `Bearer ${up?.adminToken ?? ''}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        metadata: { name: `release-${sshd}` },
        spec: { target: { namespace: 'local', pod: sshd }, action: 'Release', reason: 'checked by hand' },
      }),
    });
    assert.equal(res.status, 200, await res.text());
    const page = await newPage();
    await signIn(page, up?.adminToken ?? '', `/ui/audit?namespace=local&pod=${sshd}`);
    const chains = page.getByTestId('audit-chain');
    await chains.nth(1).waitFor();
    // Newest first: the release, then the quarantine.
    const release = chains.first();
    assert.match(await release.innerText(), /Release — Succeeded: checked by hand/);
    assert.equal(
      await release.getByTestId('audit-step-missing').count(),
      4,
      'scan, event, trigger, activation',
    );
    assert.equal(await release.getByTestId('audit-step').count(), 1, 'the action itself');
    assert.match(
      await release.getByTestId('audit-gaps').innerText(),
      // A hand-made action names its caller as requester (the admin token here), never a policy.
      /requestedBy "configured:admin" names no policy activation/,
    );
    assert.equal(await chains.nth(1).getByTestId('audit-complete').textContent(), 'complete chain');
    await axe(page, 'audit trail with gaps');
    await page.screenshot({ path: join(screenshots, 'dashboard-audit-gaps.png'), fullPage: true });
    await page.close();
  });

  it('no Content-Security-Policy violation on any page visited', (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    assert.deepEqual(cspViolations, []);
  });
});
