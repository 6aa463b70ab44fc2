/**
 * One SecurityAction schema: the chart's CRD (deploy/helm/containment/crds/, the file itself)
 * and the zod contract (src/enforcement/security-action.ts, from which the TypeScript types are
 * inferred) must describe the same fields, types, enums, bounds, patterns, defaults and required
 * lists. Checked here without an API server, from zod's own JSON Schema output; crd.test.ts then
 * checks that a real kube-apiserver and zod accept and refuse the same samples.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { actionSpecSchema, actionStatusSchema } from '../enforcement/security-action.js';
import { loadCrdManifest } from './crd.test-helper.js';

type Schema = Record<string, unknown>;

/** zod's JSON Schema minus what a CRD expresses otherwise or not at all. */
function normalize(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(normalize);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Schema = {};
  for (const [name, value] of Object.entries(schema)) {
    // client-node's model names for JSON Schema keywords that are reserved words in TypeScript.
    const key = name === '_enum' ? 'enum' : name === '_default' ? 'default' : name;
    // `$schema`: JSON Schema's dialect; `additionalProperties: false`: a CRD prunes unknown fields
    // (and crd.test.ts shows the API server refuses them); `description`: prose only.
    if (key === '$schema' || key === 'additionalProperties' || key === 'description') continue;
    // z.number().int() states the safe-integer bound; a CRD integer is int64.
    if (key === 'maximum' && value === Number.MAX_SAFE_INTEGER) continue;
    if (key === 'minimum' && value === Number.MIN_SAFE_INTEGER) continue;
    out[key] = normalize(value);
  }
  return out;
}

const zodSchema = (schema: z.ZodType): unknown => normalize(z.toJSONSchema(schema, { io: 'input' }));

describe('SecurityAction CRD and zod contract', () => {
  const crd = loadCrdManifest() as unknown as {
    spec: { versions: { name: string; schema: { openAPIV3Schema: { properties: Schema } } }[] };
  };
  const version = crd.spec.versions.find((v) => v.name === 'v1alpha1');
  const root = version?.schema.openAPIV3Schema.properties ?? {};

  it('spec: the same fields, types, enums, bounds, defaults and required fields', () => {
    assert.deepEqual(normalize(root.spec), zodSchema(actionSpecSchema));
  });

  it('status: the same, but for the empty-list defaults of the reader', () => {
    const expected = zodSchema(actionStatusSchema) as { properties: Record<string, Schema> };
    // The one intended difference: zod reads a status without `evidence`/`conditions` as empty
    // lists (statuses written by hand or by older operators); the API server does not invent them.
    for (const list of ['evidence', 'conditions']) {
      assert.deepEqual(expected.properties[list]?.default, []);
      delete expected.properties[list]?.default;
    }
    assert.deepEqual(normalize(root.status), expected);
  });

  it('notices a difference (the comparison is not vacuous)', () => {
    const altered = actionSpecSchema.extend({ action: z.enum(['Quarantine', 'Release']) });
    assert.notDeepEqual(normalize(root.spec), zodSchema(altered));
  });
});
