/**
 * The real parts a policy talks to, for the SDK host tests: the scanner service (`startTestScanner`,
 * SQLite in a temp dir, real OSV records imported) and the enforcer's local action API over a
 * LocalEnforcer on real Podman (local mode: namespace `local`, pod = container name). Tokens are
 * scoped to the namespace `local` on both, as `containment up` would hand them to the runtime.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startActionApi } from '../../enforcement/action-api.js';
import type { RunningActionApi } from '../../enforcement/action-api.js';
import { LocalEnforcer } from '../../enforcement/local-enforcer.js';
import type { PodmanFixture } from '../../enforcement/podman-fixture.test-helper.js';
import { DockerEngine } from '../../engine/docker/docker-engine.js';
import type { ScanCompletedData } from '../../events/cloud-event.js';
import type { InsecureConfiguration } from '../../inventory/types.js';
import type { RunningServer } from '../../scanner/run-server.js';
import { startTestScanner } from '../../testing/scanner.js';
import type { NamespaceCredentials } from './policy-sdk-host.js';

export const REMOTE_SHELL: InsecureConfiguration = {
  id: 'remote_shell_installed',
  severity: 'HIGH',
  title: 'A remote shell server is installed',
  evidence: ['/usr/sbin/sshd'],
};

export interface PolicyLoop {
  dir: string;
  scanner: RunningServer;
  actions: RunningActionApi;
  enforcer: LocalEnforcer;
  /** A global admin token of the scanner. */
  adminToken: string;
  /** Policy tokens for namespace `local` on the scanner and on the action API. */
  local: NamespaceCredentials;
  evidenceDir: string;
  /**
   * Posts a scan of pod `local/<pod>` and returns the `dev.containment.scan.completed` data the
   * scanner's event carries for it.
   */
  report(
    pod: string,
    inventory: { npm?: [string, string][]; insecureConfigurations?: InsecureConfiguration[] },
  ): Promise<ScanCompletedData>;
  close(): Promise<void>;
}

async function call(
  url: string,
  token: string,
  method: 'GET' | 'POST',
  body?: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

export async function startPolicyLoop(
  osvDir: string,
  fixture: PodmanFixture | undefined,
): Promise<PolicyLoop> {
  const dir = mkdtempSync(join(tmpdir(), 'containment-policy-loop-'));
  const {
    server: scanner,
    adminToken,
    admin,
  } = await startTestScanner({
    dataDir: join(dir, 'scanner'),
    records: osvDir,
  });
  const issued = await admin.createToken({
    name: 'policies of local',
    role: 'policy',
    cluster: 'local',
    namespaces: ['local'],
  });
  const enforcerToken = `enforcer-local-${randomBytes(16).toString('hex')}`;
  const enforcer = new LocalEnforcer({
    // Without podman the tests that never reach the engine still run.
    engine: fixture?.engine ?? new DockerEngine(join(dir, 'no-engine.sock')),
    dataDir: join(dir, 'enforcer'),
    node: 'node-test',
    exportFilesystem: false,
  });
  const actions = await startActionApi({
    host: '127.0.0.1',
    port: 0,
    enforcer,
    tokens: [{ token: enforcerToken, name: 'policies of local', role: 'policy', namespaces: ['local'] }],
  });
  let reports = 0;
  return {
    dir,
    scanner,
    actions,
    enforcer,
    adminToken,
    local: { cluster: 'local', scannerToken: issued.token, enforcerToken },
    evidenceDir: join(dir, 'enforcer', 'evidence'),
    async report(pod, inventory) {
      reports += 1;
      const scanTime = new Date(Date.UTC(2026, 0, 1, 0, 0, reports)).toISOString();
      const workload = {
        cluster: 'local',
        namespace: 'local',
        pod,
        node: 'node-test',
        image: 'localhost/test:1',
      };
      await call(`${scanner.url}/v1/reports`, adminToken, 'POST', {
        reportId: `${pod}-${reports}`,
        workload,
        scanTime,
        inventory: {
          packages: (inventory.npm ?? []).map(([name, version]) => ({
            name,
            version,
            ecosystem: 'npm',
            location: `/app/node_modules/${name}/package.json`,
          })),
          insecureConfigurations: inventory.insecureConfigurations ?? [],
        },
        inventoryHash: `hash-${pod}-${reports}`,
      });
      const query = new URLSearchParams({ cluster: 'local', namespace: 'local', pod, at: scanTime });
      const findings = await call(`${scanner.url}/v1/findings?${query}`, adminToken, 'GET');
      const vulnerabilities = findings.vulnerablePackages as { id: string }[];
      return {
        workload,
        scanTime,
        summary: (findings.summary as { counts: ScanCompletedData['summary'] }).counts,
        newFindings: vulnerabilities.map((v) => v.id),
        insecureConfigurations: (findings.insecureConfigurations as { id: string }[]).map((c) => c.id),
      };
    },
    async close() {
      await actions.close();
      enforcer.close();
      await scanner.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
