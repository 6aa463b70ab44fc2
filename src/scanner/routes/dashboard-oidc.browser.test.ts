/**
 * Dashboard sign-in through a real OpenID provider (`oidc-provider`, authorization code + PKCE)
 * in Debian's chromium against a real scanner on loopback: the provider's login and consent pages,
 * back to the page asked for with an HttpOnly session cookie, the viewer's namespace claim
 * honoured; a forged callback (wrong state, no flow cookie) and an account without a role are
 * refused with their code. Skips loudly without chromium or a built UI; fails under CI=true.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { createOidcVerifier } from '../../auth/oidc.js';
import { startCodeFlowProvider } from '../../auth/oidc-code-provider.test-helper.js';
import type { CodeFlowProvider } from '../../auth/oidc-code-provider.test-helper.js';
import { isCI, sharedDataDir } from '../../testing/shared-data.js';
import { startHarness } from '../scanner-harness.test-helper.js';
import type { Harness } from '../scanner-harness.test-helper.js';
import { CHROMIUM, CHROMIUM_ARGS } from './browser.test-helper.js';
import { CLUSTER, reportRealWorkloads } from './dashboard-seed.test-helper.js';
import { DEFAULT_WEB_DIR } from './web-assets.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const CLIENT = 'containment-dashboard';
const missing = [
  existsSync(CHROMIUM) ? undefined : `chromium at ${CHROMIUM}`,
  existsSync(join(DEFAULT_WEB_DIR, 'index.html')) ? undefined : `the built dashboard at ${DEFAULT_WEB_DIR}`,
  existsSync(osvNpm) ? undefined : `shared OSV data at ${osvNpm}`,
].filter((m) => m !== undefined);
if (missing.length > 0) {
  const msg = `dashboard OIDC browser tests need ${missing.join(', ')}`;
  if (isCI()) throw new Error(msg);
  console.warn(`\n*** SKIPPED: ${msg} ***\n`);
}

describe('dashboard OIDC sign-in in chromium', { skip: missing.length > 0, timeout: 300_000 }, () => {
  let provider: CodeFlowProvider;
  let h: Harness;
  let base: string;
  let profile: string;
  let context: BrowserContext;

  before(async () => {
    provider = await startCodeFlowProvider();
    const oidc = createOidcVerifier({
      issuer: provider.issuer,
      audience: CLIENT,
      rolesClaim: 'roles',
      namespacesClaim: 'namespaces',
    });
    h = await startHarness(osvNpm, {
      oidc,
      webOidc: { issuer: provider.issuer, clientId: CLIENT, clientSecret: `${CLIENT}-secret` },
    });
    await h.store.createCluster(CLUSTER);
    await reportRealWorkloads(h.app, h.adminToken);
    base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    await provider.configure({
      clientId: CLIENT,
      clientSecret: `${CLIENT}-secret`,
      redirectUri: `${base}/ui/oidc/callback`,
      accounts: { alice: { roles: ['viewer'], namespaces: ['web'] }, mallory: {} },
    });
    profile = mkdtempSync(join(tmpdir(), 'containment-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 860 },
    });
  });
  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await h?.close();
    provider?.close();
  });

  async function providerLogin(page: Page, login: string): Promise<void> {
    await page.goto(`${base}/ui/workloads`);
    await page.waitForURL(/\/ui\/signin\?next=/);
    await page.getByRole('link', { name: /identity provider/ }).click();
    await page.waitForURL((url) => url.href.startsWith(provider.issuer));
    await page.locator('input[name=login]').fill(login);
    await page.locator('input[name=password]').fill('any');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
  }

  test('code + PKCE through the provider: back on the page asked for, as the viewer of web', async () => {
    await context.clearCookies();
    const page = await context.newPage();
    const authorize: URL[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${provider.issuer}/auth`)) authorize.push(new URL(r.url()));
    });
    await providerLogin(page, 'alice');
    await page.waitForURL((url) => url.href === `${base}/ui/workloads`);
    await page
      .getByTestId('workload-total')
      .filter({ hasText: /^2 workloads$/ })
      .waitFor();
    assert.match(await page.getByTestId('principal-scope').innerText(), /all clusters · web/);
    const params = authorize[0]?.searchParams;
    assert.equal(params?.get('code_challenge_method'), 'S256');
    assert.ok((params?.get('code_challenge') ?? '').length >= 43);
    assert.ok(params?.get('state') && params.get('nonce'));
    const session = (await context.cookies(base)).find((c) => c.name === 'ctm_session');
    assert.equal(session?.httpOnly, true);
    assert.equal(session?.sameSite, 'Strict');
    const who = await page.evaluate(async () => (await fetch('/ui/session')).json());
    assert.deepEqual(who, {
      subject: 'alice',
      role: 'viewer',
      scope: { cluster: '*', namespaces: ['web'] },
      via: 'oidc',
    });
    const other = await page.evaluate(
      async () => (await (await fetch('/v1/workload-search?namespace=payments')).json()) as { total: number },
    );
    assert.equal(other.total, 0);
    await page.close();
  });

  test('a forged callback (wrong state, or no sign-in in progress) is refused with its code', async () => {
    await context.clearCookies();
    const page = await context.newPage();
    await page.goto(`${base}/ui/oidc/callback?code=stolen&state=guess`);
    await page.waitForURL(/\/ui\/signin\?error=UNAUTHENTICATED/);
    await page.getByTestId('api-error').filter({ hasText: 'UNAUTHENTICATED' }).waitFor();
    // A started flow whose state does not match.
    await page.goto(`${base}/ui/oidc/login?next=/ui/`, { waitUntil: 'commit' }).catch(() => undefined);
    await page.goto(`${base}/ui/oidc/callback?code=stolen&state=guess`);
    await page.waitForURL(/\/ui\/signin\?error=UNAUTHENTICATED/);
    assert.equal(
      (await context.cookies(base)).find((c) => c.name === 'ctm_session'),
      undefined,
    );
    await page.close();
  });

  test('an account whose token carries no role gets no session', async () => {
    await context.clearCookies();
    const page = await context.newPage();
    await providerLogin(page, 'mallory');
    await page.waitForURL(/\/ui\/signin\?error=UNAUTHENTICATED/);
    await page.getByTestId('api-error').filter({ hasText: 'UNAUTHENTICATED' }).waitFor();
    assert.equal(
      (await context.cookies(base)).find((c) => c.name === 'ctm_session'),
      undefined,
    );
    await page.close();
  });
});
