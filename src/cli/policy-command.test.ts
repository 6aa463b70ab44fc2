/**
 * `containment policy deploy|list|remove` as real processes against a real function runtime: the
 * reference policy becomes action + security-notices package + rule, and a signed CloudEvent at the
 * web endpoint reaches it; broken policies change nothing and fail on one line with file:line;
 * `--target knative --output` writes the manifests.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createEvent, structuredBody } from '../events/cloud-event.js';
import type { ScanCompletedData } from '../events/cloud-event.js';
import { signDelivery } from '../events/signature.js';
import { GUEST_AUTH, eventually, startHarness } from '../functions/functions-harness.test-helper.js';
import type { AnyJson, Harness } from '../functions/functions-harness.test-helper.js';
import { securityNoticesUrl } from '../functions/security-notices.js';
import { repoRoot } from '../testing/shared-data.js';

const REFERENCE = join(repoRoot, 'policies', 'examples', 'quarantine-or-terminate.ts');

function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'containment.js'), 'policy', ...args], {
      cwd: repoRoot,
      env: { ...process.env, CONTAINMENT_FUNCTIONS_URL: '', CONTAINMENT_FUNCTIONS_AUTH: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Several command lines in one child process (see cli-batch.test-helper.ts). */
function cliBatch(
  runs: { args: string[]; env?: Record<string, string> }[],
): Promise<{ code: number; stdout: string; stderr: string }[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'cli-batch.test-helper.ts')],
      {
        cwd: repoRoot,
        env: { ...process.env, CONTAINMENT_FUNCTIONS_URL: '', CONTAINMENT_FUNCTIONS_AUTH: '' },
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? ''));
      } catch {
        reject(new Error(`batch exited ${code}: ${out}`));
      }
    });
    child.stdin.end(JSON.stringify(runs.map((r) => ({ ...r, args: ['policy', ...r.args] }))));
  });
}

describe('containment policy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'policy-cli-'));
  let h: Harness;
  let conn: string[];

  before(async () => {
    h = await startHarness({ rateLimit: false });
    conn = ['--namespace', 'guest', '--apihost', h.url, '--auth', GUEST_AUTH];
  });
  after(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('deploys the reference policy with the security-notices endpoint, and an event reaches it', async () => {
    const run = await cli(['deploy', REFERENCE, ...conn, '--param', 'gracePeriodSeconds=5', '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /^deployed quarantine-or-terminate \(\d+ bytes, dry run\) to runtime namespace guest$/m,
    );
    assert.match(
      run.stdout,
      /rule security-notices-quarantine-or-terminate: security-notices -> quarantine-or-terminate, active/,
    );
    const secret = /its secret \(shown only once\): (\S+)/.exec(run.stdout)?.[1];
    assert.ok(secret, run.stdout);

    const action = await h.call('GET', '/api/v1/namespaces/_/actions/quarantine-or-terminate');
    assert.equal(action.body.exec.kind, 'typescript');
    assert.deepEqual(action.body.parameters, [{ key: 'gracePeriodSeconds', value: 5 }]);
    assert.ok(
      action.body.annotations.some((a: AnyJson) => a.key === 'containment-dry-run' && a.value === true),
    );
    const rule = await h.call('GET', '/api/v1/namespaces/_/rules/security-notices-quarantine-or-terminate');
    assert.equal(rule.body.status, 'active');

    // The scanner's signed event at the installed endpoint fires the rule and runs the policy.
    const data = {
      workload: { cluster: 'local', namespace: 'guest', pod: 'web-1', node: 'n', image: 'i' },
      scanTime: '2026-01-01T00:00:00.000Z',
      summary: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
      newFindings: [],
      insecureConfigurations: [],
    } as unknown as ScanCompletedData;
    const event = createEvent('dev.containment.scan.completed', 'local', data);
    const body = structuredBody(event);
    const res = await fetch(securityNoticesUrl(h.url, 'guest'), {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json', ...signDelivery(body, secret, event.id) },
      body,
    });
    assert.equal(res.status, 202);
    const ran = await eventually(async () => {
      const acts = await h.call(
        'GET',
        '/api/v1/namespaces/_/activations?name=quarantine-or-terminate&docs=true',
      );
      return (acts.body as AnyJson[])[0];
    }, 'the policy activation');
    // No SDK host in this runtime: the policy ran and its first SDK call was refused.
    assert.match(JSON.stringify(ran.response.result), /no policy SDK host configured: vs\.getFindings/);
  });

  it('redeploys in place; fails on one line with a stable code, deploying nothing, for bad input; writes Knative manifests', async () => {
    await h.call('POST', '/api/v1/namespaces/_/rules/security-notices-quarantine-or-terminate', {
      status: 'inactive',
    });
    const broken = join(dir, 'broken.ts');
    writeFileSync(broken, 'export function main() {\n  return { ;\n}\n');
    const sneaky = join(dir, 'sneaky.ts');
    writeFileSync(
      sneaky,
      "import { readFileSync } from 'node:fs';\nexport const main = () => ({ k: readFileSync('/etc/shadow', 'utf8') });\n",
    );
    const out = join(dir, 'manifests');
    const wrongKey = `${GUEST_AUTH.split(':')[0]}:wrong-key-0123456789`;
    const bad: [string[], RegExp][] = [
      [
        ['deploy', broken, ...conn],
        new RegExp(`^error\\[POLICY_COMPILE_FAILED\\]: ${broken}:2:\\d+: .+\\n$`),
      ],
      [
        ['deploy', sneaky, ...conn],
        /^error\[POLICY_COMPILE_FAILED\]: .*sneaky\.ts:1:\d+: import of "node:fs" is not allowed.*\n$/,
      ],
      [['deploy', join(dir, 'missing.ts'), ...conn], /^error\[TARGET_NOT_FOUND\]: .*missing\.ts: ENOENT\n$/],
      [
        ['deploy', REFERENCE, '--namespace', 'guest', '--apihost', h.url],
        /^error\[USAGE\]: --target runtime needs --auth/,
      ],
      [
        ['deploy', REFERENCE, '--namespace', 'guest', '--apihost', h.url, '--auth', wrongKey],
        /^error\[UNAUTHENTICATED\]: PUT actions\/quarantine-or-terminate: The supplied authentication is invalid\n$/,
      ],
      [
        ['deploy', REFERENCE, ...conn, '--target', 'knative'],
        /^error\[USAGE\]: --target knative needs --image\n$/,
      ],
      [['deploy', REFERENCE, ...conn, '--param', 'novalue'], /^error\[USAGE\]: .*expected key=value/],
    ];
    const knative = [
      'deploy',
      REFERENCE,
      '--target',
      'knative',
      '--namespace',
      'security',
      '--image',
      'node:20-slim',
      '--scanner-url',
      'http://scanner:8080',
      '--actions-url',
      'http://actions:8082',
      '--output',
      out,
    ];
    const [redeploy, ...rest] = await cliBatch([
      { args: ['deploy', REFERENCE, ...conn] },
      ...bad.map(([args]) => ({ args })),
      { args: knative },
    ]);
    assert.equal(redeploy?.code, 0, redeploy?.stderr);
    assert.doesNotMatch(redeploy?.stdout ?? '', /secret/);
    assert.equal(
      (await h.call('GET', '/api/v1/namespaces/_/actions/quarantine-or-terminate')).body.version,
      '0.0.2',
    );
    const rule = await h.call('GET', '/api/v1/namespaces/_/rules/security-notices-quarantine-or-terminate');
    assert.equal(rule.body.status, 'active');

    bad.forEach(([args, expected], i) => {
      const run = rest[i];
      assert.equal(run?.code, 2, `${args.join(' ')}: ${run?.stdout}`);
      assert.match(run?.stderr ?? '', expected);
    });
    const actions = await h.call('GET', '/api/v1/namespaces/_/actions');
    assert.deepEqual(
      (actions.body as AnyJson[]).map((a) => a.name),
      ['quarantine-or-terminate'],
    );

    const written = rest.at(-1);
    assert.equal(written?.code, 0, written?.stderr);
    assert.deepEqual(readdirSync(out).sort(), [
      'configmap-quarantine-or-terminate-policy.yaml',
      'service-quarantine-or-terminate.yaml',
      'trigger-quarantine-or-terminate-findings-changed.yaml',
      'trigger-quarantine-or-terminate-scan-completed.yaml',
    ]);
  });

  it('sets the enforcement scope (event by default), web-action JWT auth and input checks', async () => {
    const annotationsOf = async (name: string): Promise<Record<string, unknown>> => {
      const action = await h.call('GET', `/api/v1/namespaces/_/actions/${name}`);
      return Object.fromEntries((action.body.annotations as AnyJson[]).map((a) => [a.key, a.value]));
    };
    const [plain, wide, web, orphanRole, knative, typed, untyped] = await cliBatch([
      { args: ['deploy', REFERENCE, ...conn, '--name', 'scope-default', '--trigger', 't-scope'] },
      {
        args: ['deploy', REFERENCE, ...conn, '--name', 'scope-wide', '--trigger', 't-scope'].concat([
          '--enforcement-scope',
          'namespace',
        ]),
      },
      {
        args: [
          'deploy',
          REFERENCE,
          ...conn,
          ...['--name', 'scope-web', '--trigger', 't-scope', '--web-auth', 'jwt'],
          ...['--required-role', 'orders:write', '--required-role', 'ops', '--input-threats', 'block'],
        ],
      },
      { args: ['deploy', REFERENCE, ...conn, '--name', 'x', '--required-role', 'ops'] },
      {
        args: ['deploy', REFERENCE, '--namespace', 'n', '--target', 'knative', '--input-threats', 'report'],
      },
      {
        args: ['deploy', REFERENCE, ...conn, '--name', 'scope-typed', '--trigger', 't-typed'].concat([
          '--event-type',
          'dev.containment.scan.completed',
        ]),
      },
      {
        args: ['deploy', REFERENCE, ...conn, '--name', 'y', '--event-type', 'dev.containment.scan.completed'],
      },
    ]);
    // --event-type on the runtime: the trigger is annotated; not on security-notices (it gets all).
    assert.equal(typed?.code, 0, typed?.stderr);
    const trigger = await h.call('GET', '/api/v1/namespaces/_/triggers/t-typed');
    assert.deepEqual((trigger.body.annotations as AnyJson[]).find((a) => a.key === 'event-types')?.value, [
      'dev.containment.scan.completed',
    ]);
    assert.match(untyped?.stderr ?? '', /^error\[USAGE\]: event types need a trigger of their own/);
    assert.equal((await h.call('GET', '/api/v1/namespaces/_/actions/y')).status, 404, 'nothing deployed');
    for (const run of [plain, wide, web]) assert.equal(run?.code, 0, run?.stderr);
    assert.equal((await annotationsOf('scope-default'))['containment.dev/enforcement-scope'], 'event');
    assert.equal((await annotationsOf('scope-wide'))['containment.dev/enforcement-scope'], 'namespace');
    const webAnnotations = await annotationsOf('scope-web');
    assert.equal(webAnnotations['web-export'], true);
    assert.equal(webAnnotations['containment.dev/auth'], 'jwt');
    assert.deepEqual(webAnnotations['containment.dev/required-roles'], ['orders:write', 'ops']);
    assert.equal(webAnnotations['containment.dev/input-threats'], 'block');
    assert.match(orphanRole?.stderr ?? '', /^error\[USAGE\]: --required-role needs --web-auth jwt\n$/);
    assert.match(knative?.stderr ?? '', /^error\[USAGE\]: .*runtime only/);
    assert.equal((await h.call('GET', '/api/v1/namespaces/_/actions/x')).status, 404, 'nothing deployed');
    // The next test lists every policy: leave none of these behind.
    const removed = await cliBatch(
      ['scope-default', 'scope-wide', 'scope-web', 'scope-typed'].map((name) => ({
        args: ['remove', name, ...conn],
      })),
    );
    for (const run of removed) assert.equal(run.code, 0, run.stderr);
  });

  it("sets, shows and removes the namespace's web-auth issuer; refuses an HMAC algorithm", async () => {
    const issuer = ['--issuer', 'https://id.example', '--audience', 'https://orders.example'];
    const [set, shown, hmac, partial, removed] = await cliBatch([
      { args: ['web-auth', ...conn, ...issuer, '--jwks-url', 'https://id.example/jwks'] },
      { args: ['web-auth', ...conn] },
      {
        args: [
          'web-auth',
          ...conn,
          ...issuer,
          '--jwks-url',
          'https://id.example/jwks',
          '--algorithm',
          'HS256',
        ],
      },
      { args: ['web-auth', ...conn, '--issuer', 'https://id.example'] },
      { args: ['web-auth', ...conn, '--remove'] },
    ]);
    assert.equal(set?.code, 0, set?.stderr);
    assert.equal(JSON.parse(shown?.stdout ?? '').jwksUrl, 'https://id.example/jwks');
    assert.match(hmac?.stderr ?? '', /^error\[DEPLOY_REFUSED\]: PUT settings\/web-auth: .*asymmetric.*\n$/);
    assert.match(
      partial?.stderr ?? '',
      /^error\[USAGE\]: --issuer, --audience and --jwks-url go together\n$/,
    );
    assert.equal(removed?.code, 0, removed?.stderr);
    assert.equal((await h.call('GET', '/api/v1/namespaces/_/settings/web-auth')).status, 404);
  });

  it('lists and removes deployed policies (the trigger stays); env vars stand in for flags', async () => {
    const env = { CONTAINMENT_FUNCTIONS_URL: h.url, CONTAINMENT_FUNCTIONS_AUTH: GUEST_AUTH };
    const [list, removed, again] = await cliBatch([
      { args: ['list', '--namespace', '_', '--format', 'json'], env },
      { args: ['remove', 'quarantine-or-terminate', '--namespace', '_'], env },
      { args: ['remove', 'quarantine-or-terminate', '--namespace', '_'], env },
    ]);
    assert.equal(list?.code, 0, list?.stderr);
    assert.deepEqual(JSON.parse(list?.stdout ?? ''), [
      {
        action: 'quarantine-or-terminate',
        version: '0.0.2',
        dryRun: false,
        rules: [
          { name: 'security-notices-quarantine-or-terminate', trigger: 'security-notices', status: 'active' },
        ],
      },
    ]);
    assert.equal(removed?.code, 0, removed?.stderr);
    assert.match(
      removed?.stdout ?? '',
      /removed quarantine-or-terminate and rules security-notices-quarantine-or-terminate/,
    );
    assert.equal((await h.call('GET', '/api/v1/namespaces/_/actions/quarantine-or-terminate')).status, 404);
    assert.equal((await h.call('GET', '/api/v1/namespaces/_/triggers/security-notices')).status, 200);
    assert.equal(again?.code, 2);
    assert.match(
      again?.stderr ?? '',
      /^error\[TARGET_NOT_FOUND\]: no deployed policy named "quarantine-or-terminate"\n$/,
    );
  });
});
