/** The parameter-schema subset: what it accepts as a schema, and what it lets through. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkParameters, parseParameterSchema } from './parameter-schema.js';
import type { ParameterSchema } from './parameter-schema.js';

const schema = (value: unknown): ParameterSchema => {
  const parsed = parseParameterSchema(value);
  assert.ok(!('error' in parsed), JSON.stringify(parsed));
  return parsed as ParameterSchema;
};

describe('parameter-schema', () => {
  it('refuses keywords it does not check, so a schema never checks less than it says', () => {
    for (const bad of [
      { type: 'object', oneOf: [] },
      { type: 'thing' },
      { properties: { a: { format: 'email' } } },
      { pattern: '(' },
      { minLength: -1 },
      'not a schema',
    ]) {
      const parsed = parseParameterSchema(bad);
      assert.ok('error' in parsed, JSON.stringify(bad));
    }
    assert.match(
      (parseParameterSchema({ properties: { a: { format: 'email' } } }) as { error: string }).error,
      /at properties\.a/,
    );
  });

  it('checks types, nesting, bounds, enums and unknown keys', () => {
    const s = schema({
      type: 'object',
      required: ['pod', 'labels'],
      additionalProperties: false,
      properties: {
        pod: { type: 'string', pattern: '^[a-z0-9-]+$', maxLength: 63 },
        mode: { enum: ['quarantine', 'terminate'] },
        grace: { type: 'integer', minimum: 0, maximum: 3600 },
        labels: { type: 'array', maxItems: 2, items: { type: 'string', minLength: 1 } },
        ratio: { type: ['number', 'null'] },
      },
    });
    assert.equal(checkParameters(s, { pod: 'web-1', labels: ['a'], grace: 30, ratio: 0.5 }), undefined);
    assert.equal(checkParameters(s, { pod: 'web-1', labels: [], ratio: null, mode: 'terminate' }), undefined);
    const cases: [unknown, string][] = [
      [[], 'params: expected object, got array'],
      [{ labels: [] }, 'params.pod: required'],
      [{ pod: 'Web', labels: [] }, 'params.pod: does not match ^[a-z0-9-]+$'],
      [{ pod: 'a'.repeat(64), labels: [] }, 'params.pod: longer than 63 characters'],
      [{ pod: 'a', labels: [], mode: 'delete' }, 'params.mode: must be one of "quarantine", "terminate"'],
      [{ pod: 'a', labels: [], grace: -1 }, 'params.grace: below 0'],
      [{ pod: 'a', labels: [], grace: 2.5 }, 'params.grace: expected integer, got number'],
      [{ pod: 'a', labels: ['x', 'y', 'z'] }, 'params.labels: more than 2 items'],
      [{ pod: 'a', labels: [''] }, 'params.labels[0]: shorter than 1 characters'],
      [{ pod: 'a', labels: [], ratio: 'half' }, 'params.ratio: expected number or null, got string'],
      [{ pod: 'a', labels: [], extra: true }, 'params.extra: not allowed'],
    ];
    for (const [value, why] of cases) assert.equal(checkParameters(s, value), why, JSON.stringify(value));
  });

  it('counts characters, not UTF-16 units, and treats __proto__ as an ordinary key', () => {
    const s = schema({ type: 'object', properties: { n: { maxLength: 2 } }, additionalProperties: false });
    assert.equal(checkParameters(s, { n: '😀😀' }), undefined);
    assert.equal(
      checkParameters(s, JSON.parse('{"__proto__": {"admin": true}}')),
      'params.__proto__: not allowed',
    );
  });
});
