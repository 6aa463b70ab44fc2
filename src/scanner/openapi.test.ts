/** The served OpenAPI document against the routes the server really registers and the validator it really uses. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { UnavailableEnforcer } from '../enforcement/unavailable-enforcer.js';
import { isCI, sharedDataDir } from '../testing/shared-data.js';
import { openApiPath } from './openapi.js';
import { reportSchema } from './schemas.js';
import { npmReport, startHarness } from './scanner-harness.test-helper.js';
import type { Harness } from './scanner-harness.test-helper.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(osvNpm);
if (!haveData && isCI()) throw new Error(`shared OSV data not found at ${osvNpm}`);

type Json = Record<string, unknown>;
interface Operation {
  security: unknown[];
  parameters?: { name: string; in: string; required: boolean }[];
  requestBody?: { content: { 'application/json': { schema: Json } } };
}
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>> };

let h: Harness;
let url: string;
let doc: Doc;

/**
 * Every `METHOD path` Fastify registered, read from `printRoutes()` (a tree whose lines are
 * `│   └── /segment (GET, HEAD)`; a child's path continues its parent's). HEAD is Fastify's automatic twin of GET.
 */
function registeredRoutes(tree: string): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? '').length / 4;
    stack.length = depth;
    // The tree prints `/ui/*` as `/ui` with a child `*`.
    const segment = m[2] === '*' ? '/*' : (m[2] ?? '');
    const path = `${stack.join('')}${segment}`;
    stack.push(segment);
    for (const method of (m[3] ?? '').split(', ').filter((x) => x !== '' && x !== 'HEAD')) {
      routes.push(`${method} ${path}`);
    }
  }
  return routes.sort();
}

describe('OpenAPI document', { skip: !haveData }, () => {
  before(async () => {
    h = await startHarness(osvNpm);
    url = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const res = await fetch(`${url}/v1/openapi.json`);
    assert.equal(res.status, 200, 'served without a token');
    doc = (await res.json()) as Doc;
  });
  after(async () => h?.close());

  function assertDocumentsExactly(app: Harness['app'], served: Doc): void {
    const registered = registeredRoutes(app.printRoutes({ commonPrefix: false }));
    assert.ok(registered.length >= 20, registered.join('\n'));
    const documented = Object.entries(served.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    assert.deepEqual(
      documented,
      registered.map((r) => {
        const [method, path] = r.split(' ') as [string, string];
        return `${method} ${openApiPath(path)}`;
      }),
      'add new routes to ROUTES in openapi.ts',
    );
  }

  test('with the action API mounted (containment up), its routes are documented too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'containment-openapi-'));
    const withActions = await startHarness(osvNpm, {
      actions: {
        enforcer: new UnavailableEnforcer('no engine in this test'),
        evidenceDir: dir,
        audit: () => Promise.resolve([]),
      },
    });
    try {
      const served = (await withActions.app.inject({ url: '/v1/openapi.json' })).json<Doc>();
      assertDocumentsExactly(withActions.app, served);
      assert.ok(served.paths['/v1/actions/preview']?.post, 'the dry-run preview is documented');
      assert.equal(
        (served.paths['/v1/actions/{id}/evidence/{entry}/{file}']?.get as unknown as Json)[
          'x-containment-permission'
        ],
        'actions:read',
      );
    } finally {
      await withActions.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('lists exactly the routes the server registers, with their auth', () => {
    assert.equal(doc.openapi, '3.1.0');
    assertDocumentsExactly(h.app, doc);
    assert.deepEqual(doc.paths['/healthz']?.get?.security, []);
    assert.deepEqual(doc.paths['/v1/reports']?.post?.security, [{ bearer: [] }]);
    assert.deepEqual(
      doc.paths['/v1/scans/{id}']?.get?.parameters?.map((p) => [p.name, p.in, p.required]),
      [['id', 'path', true]],
    );
    const findings = doc.paths['/v1/findings']?.get?.parameters ?? [];
    assert.deepEqual(
      findings.filter((p) => p.required).map((p) => p.name),
      ['cluster', 'namespace', 'pod'],
    );
  });

  test('the report request schema validates a sample report the server accepts, and refuses broken ones', async () => {
    const schema = doc.paths['/v1/reports']?.post?.requestBody?.content['application/json'].schema;
    assert.ok(schema);
    // Fastify's own validator (Ajv 8) with coercion and defaults off: the schema alone decides.
    const validator = Fastify({
      ajv: { customOptions: { coerceTypes: false, useDefaults: false, removeAdditional: false } },
    });
    validator.post('/', { schema: { body: schema } }, async () => ({ ok: true }));
    const validate = async (body: unknown): Promise<number> =>
      (await validator.inject({ method: 'POST', url: '/', payload: body as object })).statusCode;
    try {
      const agent = (
        await h.app.inject({
          method: 'POST',
          url: '/v1/clusters',
          headers: { authorization: `Bearer ${h.adminToken}` },
          payload: { name: 'doc' },
        })
      ).json<{ agentToken: string }>().agentToken;
      const sample = npmReport('doc', 'ns', 'pod', [['minimist', '1.2.5']]);
      assert.equal(reportSchema.safeParse(sample).success, true);
      assert.equal(await validate(sample), 200);
      const stored = await h.app.inject({
        method: 'POST',
        url: '/v1/reports',
        headers: { authorization: `Bearer ${agent}` },
        payload: sample,
      });
      assert.equal(stored.statusCode, 201, 'the server takes what the document allows');

      const workload = sample.workload as Json;
      const broken: Record<string, unknown> = {
        'namespace *': { ...sample, workload: { ...workload, namespace: '*' } },
        'no inventoryHash': { ...sample, inventoryHash: undefined },
        'scanTime not a date': { ...sample, scanTime: 'yesterday' },
        'package without version': {
          ...sample,
          inventory: { packages: [{ name: 'x', ecosystem: 'npm' }], insecureConfigurations: [] },
        },
        'bad severity': {
          ...sample,
          inventory: {
            packages: [],
            insecureConfigurations: [{ id: 'x', severity: 'SEVERE', title: 't', evidence: [] }],
          },
        },
      };
      for (const [name, body] of Object.entries(broken)) {
        assert.equal(await validate(body), 400, name);
        assert.equal(reportSchema.safeParse(body).success, false, `${name}: zod agrees`);
      }
    } finally {
      await validator.close();
    }
  });
});
