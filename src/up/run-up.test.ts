/**
 * `runUp` without a container engine (an `--engine-socket` nobody listens on): it still starts the
 * scanner and the function runtime, says that live scanning and enforcement are off, creates an
 * empty advisory database when none was imported, and wires the scanner's trigger to the
 * security-notices endpoint, with the scan policy and the runtime policy on triggers of their own
 * event types (a restart drops rules an older start left, and runtime detection off removes the
 * runtime policy). Enforcement calls end at once in ENGINE_UNAVAILABLE (the action API
 * answers 503, the policy's activation carries the error) while a directory scanned with
 * `containment scan --report-to` still goes through the loop. Every start revokes the agent and
 * policy tokens of the previous one and keeps the admin token and the functions key.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { ScannerClient } from '../clients/scanner-client.js';
import { WhiskClient } from '../clients/whisk-client.js';
import { listPolicies } from '../functions/adapters/openwhisk/policy-deploy.js';
import { eventTypesOf, securityNoticesUrl } from '../functions/security-notices.js';
import { repoRoot } from '../testing/shared-data.js';
import { ADVISORY_DB_FILE, POLICY_ACTION, RUNTIME_POLICY_ACTION, runUp, UP_NAMESPACE } from './run-up.js';
import type { RunningUp, RunUpOptions } from './run-up.js';
import type { Decision } from './decision-log.js';
import { freePortRun } from '../testing/ports.js';
import { waitForValue } from '../testing/wait.js';

/** The HTTP status the scanner gives `token` on an authenticated read (401: the token is dead). */
async function scannerStatus(up: RunningUp, token: string): Promise<number> {
  const res = await fetch(`${up.scannerUrl}/v1/scans`, { headers: { authorization: `Bearer ${token}` } });
  return res.status;
}

/** [action, rule, trigger, status] of every deployed policy rule in namespace `local`. */
async function deployedPolicies(up: RunningUp): Promise<string[][]> {
  const api = new WhiskClient({ apihost: up.functionsUrl, auth: up.functionsAuth, namespace: UP_NAMESPACE });
  return (await listPolicies(api)).flatMap((p) =>
    p.rules.map((r) => [p.action, r.name, r.trigger, r.status]),
  );
}

async function triggerTypes(up: RunningUp, trigger: string): Promise<string[]> {
  const api = new WhiskClient({ apihost: up.functionsUrl, auth: up.functionsAuth, namespace: UP_NAMESPACE });
  return eventTypesOf(
    (await api.get('triggers', trigger)) as { annotations: { key: string; value: unknown }[] },
  );
}

describe('runUp without a container engine', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'containment-up-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  const decisions: Decision[] = [];
  const start = async (notices: string[], runtimeDetection: 'on' | 'off' = 'on') =>
    runUp({
      runtimeDetection,
      dataDir,
      port: await freePortRun(),
      engineSocket: join(dataDir, 'no-engine.sock'),
      rescanIntervalMs: 10_000,
      rematchIntervalMs: 1_000,
      gracePeriodSeconds: 30,
      // Enforcing: a valid action must reach the (missing) engine and be refused there.
      enforce: true,
      onDecision: (d) => decisions.push(d),
      logger: pino({ level: 'silent' }),
      notice: (line) => notices.push(line),
      env: {},
    } satisfies RunUpOptions);

  it('starts scanner and functions, refuses enforcement clearly, scans directories, restarts on the same dir', async () => {
    const notices: string[] = [];
    const up = await start(notices);
    let first: RunningUp['issuedTokens'];
    let adminToken: string;
    let functionsAuth: string;
    try {
      assert.ok(existsSync(join(dataDir, ADVISORY_DB_FILE)));
      assert.ok(notices.some((n) => /no advisory database/.test(n)));
      assert.ok(notices.some((n) => /no-engine\.sock.*live scanning and enforcement are OFF/.test(n)));
      assert.equal(up.enforcement, false);
      assert.equal(up.engineSocket, undefined);
      ({ adminToken, functionsAuth } = up);
      first = up.issuedTokens;

      const admin = new ScannerClient({ server: up.scannerUrl, token: up.adminToken });
      const triggers = await admin.listTriggers();
      assert.deepEqual(
        triggers.map((t) => [t.url, t.kind]),
        [[securityNoticesUrl(up.functionsUrl, UP_NAMESPACE), 'cloudevents']],
      );
      const auth = `Basic ${Buffer.from(up.functionsAuth).toString('base64')}`;
      // Each reference policy on its own trigger, fired with its own event types only.
      assert.deepEqual(await deployedPolicies(up), [
        [POLICY_ACTION, 'scan-events-quarantine-or-terminate', 'scan-events', 'active'],
        [RUNTIME_POLICY_ACTION, 'runtime-detections-runtime-response', 'runtime-detections', 'active'],
      ]);
      assert.deepEqual(await triggerTypes(up, 'scan-events'), [
        'dev.containment.scan.completed',
        'dev.containment.findings.changed',
      ]);
      assert.deepEqual(await triggerTypes(up, 'runtime-detections'), ['dev.containment.runtime.detected']);
      // The endpoint is live and refuses an unsigned event.
      const forged = await fetch(securityNoticesUrl(up.functionsUrl, UP_NAMESPACE), {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: '{}',
      });
      assert.equal(forged.status, 401);

      // The action API answers: bad input is still ACTION_INVALID, a valid action ENGINE_UNAVAILABLE.
      const post = (body: unknown) =>
        fetch(`${up.actionApiUrl}/v1/actions?wait=true`, {
          method: 'POST',
          headers: { authorization: `Bearer ${up.adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
      const refused = await post({
        metadata: { name: 'manual-1' },
        spec: { target: { namespace: 'local', pod: 'web' }, action: 'Quarantine' },
      });
      assert.equal(refused.status, 503);
      const { error } = (await refused.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'ENGINE_UNAVAILABLE');
      assert.match(error.message, /cannot Quarantine local\/web: enforcement is off \(.*no-engine\.sock/);
      // The refusal is a decision line too (what the terminal shows), naming who asked: the API
      // records the caller when the request names nobody.
      assert.deepEqual(
        decisions.map((d) => [d.workload, d.action, d.requestedBy, d.outcome]),
        [['local/web', 'Quarantine', 'configured:admin', 'refused']],
      );
      assert.equal(up.mode, 'enforce');
      const invalid = await post({ metadata: { name: 'manual-2' }, spec: { action: 'Quarantine' } });
      assert.equal(invalid.status, 400);
      assert.equal(((await invalid.json()) as { error: { code: string } }).error.code, 'ACTION_INVALID');

      // A directory scan reported by the CLI goes through the loop; the policy's quarantine call
      // ends in ENGINE_UNAVAILABLE, and nothing was accepted and dropped.
      const root = join(dataDir, 'app-root');
      mkdirSync(join(root, 'usr', 'sbin'), { recursive: true });
      writeFileSync(join(root, 'usr', 'sbin', 'sshd'), '#!/bin/sh\n', { mode: 0o755 });
      mkdirSync(join(root, 'app', 'node_modules', 'late-dep'), { recursive: true });
      writeFileSync(
        join(root, 'app', 'node_modules', 'late-dep', 'package.json'),
        JSON.stringify({ name: 'late-dep', version: '1.0.0' }),
      );
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          join(repoRoot, 'bin', 'containment.js'),
          ...['scan', root, '--format', 'json', '--data-dir', dataDir],
          ...['--report-to', up.scannerUrl, '--workload', 'local/local/dir-app', '--token', up.adminToken],
        ],
        { encoding: 'utf8' },
      );
      const report = JSON.parse(stdout) as { insecureConfigurations: { id: string }[] };
      assert.ok(report.insecureConfigurations.some((c) => c.id === 'remote_shell_installed'));
      const result = await waitForValue(async () => {
        const res = await fetch(
          `${up.functionsUrl}/api/v1/namespaces/${UP_NAMESPACE}/activations?name=${POLICY_ACTION}&docs=true`,
          { headers: { authorization: auth } },
        );
        const list = (await res.json()) as { response: { result: unknown } }[];
        return list[0]?.response.result;
      }, 'the policy activation');
      assert.match(JSON.stringify(result), /ENGINE_UNAVAILABLE.*enforcement is off/);
      const audit = await fetch(`${up.actionApiUrl}/v1/audit?namespace=local&pod=dir-app`, {
        headers: { authorization: `Bearer ${up.adminToken}` },
      });
      assert.equal(audit.status, 200);
      assert.deepEqual(((await audit.json()) as { trail: unknown[] }).trail, []);

      // The first import ever into the database `up` created is re-matched too (it is not taken
      // as the baseline), and is noticed from another process.
      const osv = join(dataDir, 'osv-late');
      mkdirSync(osv);
      writeFileSync(
        join(osv, 'CTM-LATE-1.json'),
        JSON.stringify({
          schema_version: '1.6.0',
          id: 'CTM-LATE-1',
          modified: '2026-11-01T00:00:00Z',
          affected: [
            {
              package: { ecosystem: 'npm', name: 'late-dep' },
              ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '2.0.0' }] }],
            },
          ],
        }),
      );
      await promisify(execFile)(process.execPath, [
        join(repoRoot, 'bin', 'containment.js'),
        ...['db', 'import', osv, '--data-dir', dataDir],
      ]);
      const rematch = await waitForValue(async () => {
        const query = new URLSearchParams({ cluster: 'local', namespace: 'local', pod: 'dir-app' });
        const res = await fetch(`${up.scannerUrl}/v1/scans?${query}`, {
          headers: { authorization: `Bearer ${up.adminToken}` },
        });
        const { scans } = (await res.json()) as {
          scans: { kind: string; summary: { counts: { UNKNOWN: number } } }[];
        };
        return scans.find((s) => s.kind === 'rematch');
      }, 'a re-match of dir-app after the first import');
      assert.ok(Object.values(rematch.summary.counts).reduce((a, b) => a + b, 0) >= 1);
      // What a start before routing by event type left: the scan policy on security-notices.
      const stale = await fetch(
        `${up.functionsUrl}/api/v1/namespaces/_/rules/security-notices-${POLICY_ACTION}`,
        {
          method: 'PUT',
          headers: { authorization: auth, 'content-type': 'application/json' },
          body: JSON.stringify({ trigger: '/_/security-notices', action: `/_/${POLICY_ACTION}` }),
        },
      );
      assert.equal(stale.status, 200);
    } finally {
      await up.close();
    }

    let second: RunningUp['issuedTokens'];
    const again: string[] = [];
    const up2 = await start(again, 'off');
    try {
      // The stale rule is gone (the scan policy runs once per event), and so is the runtime policy.
      assert.deepEqual(await deployedPolicies(up2), [
        [POLICY_ACTION, 'scan-events-quarantine-or-terminate', 'scan-events', 'active'],
      ]);
      assert.equal(up2.adminToken, adminToken);
      assert.equal(up2.functionsAuth, functionsAuth);
      assert.ok(!again.some((n) => /no advisory database/.test(n)));
      // The earlier run's trigger was replaced, not duplicated.
      const admin = new ScannerClient({ server: up2.scannerUrl, token: up2.adminToken });
      assert.equal((await admin.listTriggers()).length, 1);
      second = up2.issuedTokens;
      assert.notEqual(second.agent, first.agent);
      assert.equal(await scannerStatus(up2, first.agent), 401, "the first start's agent token works");
      assert.equal(await scannerStatus(up2, first.policy), 401, "the first start's policy token works");
      assert.equal(await scannerStatus(up2, second.policy), 200);
      assert.notEqual(await scannerStatus(up2, second.agent), 401);
    } finally {
      await up2.close();
    }

    const up3 = await start([]);
    try {
      for (const old of [first, second]) {
        assert.equal(await scannerStatus(up3, old.agent), 401);
        assert.equal(await scannerStatus(up3, old.policy), 401);
      }
      assert.equal(await scannerStatus(up3, up3.issuedTokens.policy), 200);
      const admin = new ScannerClient({ server: up3.scannerUrl, token: up3.adminToken });
      const live = (await admin.listTokens())
        .filter((t) => t.revokedAt === undefined && t.name.startsWith('up '))
        .map((t) => t.name);
      assert.deepEqual(live.sort(), ['up agent', 'up policies of local'], 'one live token of each kind');
    } finally {
      await up3.close();
    }
  });
});
