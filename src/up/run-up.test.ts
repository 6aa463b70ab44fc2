/**
 * `runUp` without a container engine: it still starts the scanner and the function runtime, says
 * that live scanning and enforcement are off, creates an empty advisory database when none was
 * imported, wires the scanner's trigger to the security-notices endpoint, and a second start on
 * the same data directory reuses what the first one set up.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { ApiClient } from '../cli/api-client.js';
import { securityNoticesUrl } from '../functions/security-notices.js';
import { ADVISORY_DB_FILE, POLICY_ACTION, runUp, UP_NAMESPACE } from './run-up.js';
import type { RunUpOptions } from './run-up.js';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port > 65_000 ? 40_000 + (port % 20_000) : port));
    });
  });
}

describe('runUp without a container engine', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'containment-up-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  const start = async (notices: string[]) =>
    runUp({
      dataDir,
      port: await freePort(),
      engineSocket: join(dataDir, 'no-engine.sock'),
      rescanIntervalMs: 10_000,
      rematchIntervalMs: 1_000,
      gracePeriodSeconds: 30,
      logger: pino({ level: 'silent' }),
      notice: (line) => notices.push(line),
      env: {},
    } satisfies RunUpOptions);

  it('starts scanner and functions, says enforcement is off, and restarts on the same dir', async () => {
    const notices: string[] = [];
    const up = await start(notices);
    let adminToken: string;
    try {
      assert.ok(existsSync(join(dataDir, ADVISORY_DB_FILE)));
      assert.ok(notices.some((n) => /no advisory database/.test(n)));
      assert.ok(notices.some((n) => /live scanning and enforcement are OFF/.test(n)));
      assert.equal(up.actionApiUrl, undefined);
      assert.equal(up.engineSocket, undefined);
      adminToken = up.adminToken;

      const admin = new ApiClient({ server: up.scannerUrl, token: up.adminToken });
      const triggers = await admin.listTriggers();
      assert.deepEqual(
        triggers.map((t) => [t.url, t.kind]),
        [[securityNoticesUrl(up.functionsUrl, UP_NAMESPACE), 'cloudevents']],
      );
      const auth = `Basic ${Buffer.from(up.functionsAuth).toString('base64')}`;
      const rule = await fetch(
        `${up.functionsUrl}/api/v1/namespaces/_/rules/security-notices-${POLICY_ACTION}`,
        { headers: { authorization: auth } },
      );
      assert.equal(rule.status, 200);
      assert.equal(((await rule.json()) as { status: string }).status, 'active');
      // The endpoint is live and refuses an unsigned event.
      const forged = await fetch(securityNoticesUrl(up.functionsUrl, UP_NAMESPACE), {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: '{}',
      });
      assert.equal(forged.status, 401);
    } finally {
      await up.close();
    }

    const again: string[] = [];
    const second = await start(again);
    try {
      assert.equal(second.adminToken, adminToken);
      assert.ok(!again.some((n) => /no advisory database/.test(n)));
      // The earlier run's trigger was replaced, not duplicated.
      const admin = new ApiClient({ server: second.scannerUrl, token: second.adminToken });
      assert.equal((await admin.listTriggers()).length, 1);
    } finally {
      await second.close();
    }
  });
});
