/** Built-in rules against their fixtures, the registry, user rules as data, masking, aggregation. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ContainmentError } from '../../errors.js';
import type { RuntimeDetection } from '../contracts.js';
import { RuntimeDetectionSchema } from '../contracts.js';
import { Aggregator } from './aggregate.js';
import { BUILTIN_RULES } from './builtin.js';
import { FIXTURES, ctx } from './builtin-fixtures.test-helper.js';
import { MASK, maskArgv, maskText } from './mask.js';
import { RuleRegistry } from './registry.js';
import { parseRuleFile } from './user-rules.js';

describe('built-in rules', () => {
  test('every rule has fixtures, a positive one at least, and a unique id', () => {
    const ids = BUILTIN_RULES.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids)
      assert.ok(
        FIXTURES[id]?.some(([, , fire]) => fire),
        `${id} has a positive fixture`,
      );
  });
  for (const rule of BUILTIN_RULES) {
    for (const [name, c, fire] of FIXTURES[rule.id] ?? []) {
      test(`${rule.id}: ${name} → ${fire ? 'fires' : 'quiet'}`, () => {
        const hit = rule.events.includes(c.event.kind) ? rule.match(c) : undefined;
        assert.equal(hit !== undefined, fire);
        if (hit) assert.ok(Object.keys(hit.evidence).length > 0);
      });
    }
  }
});

describe('rule registry', () => {
  const shell = FIXTURES.reverse_shell?.[0]?.[1];
  test('a reverse shell supersedes shell_in_container on the same event', () => {
    const ids = new RuleRegistry().evaluate(shell!).map((h) => h.rule.id);
    assert.deepEqual(ids, ['reverse_shell']);
  });
  test('disabled rules stay quiet; unknown ids and duplicate ids are refused', () => {
    const r = new RuleRegistry();
    assert.deepEqual(
      r.evaluate(shell!).map((h) => h.rule.id),
      ['reverse_shell'],
    );
    // Disabling after rules were already evaluated (and grouped per event kind) still counts.
    r.disable('reverse_shell');
    assert.deepEqual(
      r.evaluate(shell!).map((h) => h.rule.id),
      ['shell_in_container'],
    );
    assert.throws(() => r.disable('nope'), ContainmentError);
    assert.throws(() => r.add(BUILTIN_RULES[0]!), /already defined/);
  });
});

describe('user rules as data', () => {
  const yaml = `
disable: [package_manager_at_runtime]
rules:
  - id: curl_to_metadata
    title: Cloud metadata endpoint contacted
    severity: HIGH
    kind: socket
    event: connect
    condition:
      fd.rip: 169.254.169.254
      fd.rport: { in: [80] }
  - id: downloader
    title: A downloader ran
    severity: LOW
    event: exec
    any:
      - proc.name: { in: [curl, wget] }
      - proc.cmdline: { contains: "http://" }
`;
  test('parses, matches by Falco field names, and reports the fields as evidence', () => {
    const file = parseRuleFile(yaml, 'rules.yaml');
    assert.deepEqual(file.disable, ['package_manager_at_runtime']);
    const [meta, dl] = file.rules;
    const hit = meta!.match(
      ctx(
        {
          kind: 'connect',
          pid: 1,
          uid: 0,
          cgroupId: 1,
          comm: 'curl',
          address: '169.254.169.254',
          port: 80,
          time: 0,
          source: 'ebpf',
        },
        { pid: 1, uid: 0, name: 'curl', argv: ['curl'] },
      ),
    );
    assert.deepEqual(hit?.evidence, { name: 'curl', 'fd.rip': '169.254.169.254', 'fd.rport': 80 });
    const exec = (name: string, argv: string[]) =>
      ctx(
        { kind: 'exec', pid: 1, uid: 0, cgroupId: 1, comm: name, time: 0, source: 'ebpf' },
        { pid: 1, uid: 0, name, argv },
      );
    assert.ok(dl!.match(exec('wget', ['wget'])));
    assert.ok(dl!.match(exec('python', ['python', 'get.py', 'http://x'])));
    assert.equal(dl!.match(exec('ls', ['ls'])), undefined);
    const reg = new RuleRegistry();
    for (const r of file.rules) reg.add(r);
    for (const id of file.disable) reg.disable(id);
    assert.equal(reg.list().find((x) => x.rule.id === 'package_manager_at_runtime')?.enabled, false);
  });
  const bad: [string, RegExp][] = [
    [
      'rules: [{ id: X, title: t, severity: HIGH, event: exec, condition: { proc.name: sh } }]',
      /rules\.0\.id/,
    ],
    [
      'rules: [{ id: x1, title: t, severity: SEVERE, event: exec, condition: { proc.name: sh } }]',
      /severity/,
    ],
    [
      'rules: [{ id: x1, title: t, severity: HIGH, event: exec, condition: { proc.colour: red } }]',
      /proc\.colour|condition/,
    ],
    [
      'rules: [{ id: x1, title: t, severity: HIGH, event: exec, condition: { proc.name: { regex: x } } }]',
      /condition/,
    ],
    ['rules: [{ id: x1, title: t, severity: HIGH, event: exec }]', /neither condition nor any/],
    ['rules: [{ id: x1, title: t, severity: HIGH, event: fork, condition: { proc.name: sh } }]', /event/],
    ['rules: {', /not YAML/],
    ['- just a list', /\(top\)|expected object/],
  ];
  for (const [text, message] of bad)
    test(`refuses ${text.slice(0, 60)} with one CONFIG_INVALID line`, () => {
      assert.throws(
        () => parseRuleFile(text, 'r.yaml'),
        (e: unknown) =>
          e instanceof ContainmentError &&
          e.code === 'CONFIG_INVALID' &&
          message.test(e.message) &&
          !e.message.includes('\n'),
      );
    });
});

describe('masking', () => {
  test('credential-looking values never reach evidence', () => {
    assert.deepEqual(maskArgv(['mysql', '--password', 'hunter2', '-h', 'db']), [
      'mysql',
      '--password',
      MASK,
      '-h',
      'db',
    ]);
    assert.deepEqual(maskArgv(['app', '--token=abc123', 'API_KEY=zzz', 'mode=fast']), [
      'app',
      `--token=${MASK}`,
      `API_KEY=${MASK}`,
      'mode=fast',
    ]);
    assert.equal(maskText('curl https://bob:s3cret@example.com/x'), `curl https://bob:${MASK}@example.com/x`);
    assert.equal(maskText('Authorization: Bearer eyJhbGciOi.abc'), `Authorization: Bearer ${MASK}`);
    assert.equal(maskText('key AKIAIOSFODNN7EXAMPLE here'), `key ${MASK} here`);
    assert.equal(maskText('ghp_0123456789abcdefghijABCDEFGHIJ'), MASK);
  });
  test('argv is cut in count and length', () => {
    const out = maskArgv(Array.from({ length: 40 }, (_, i) => `a${i}`.padEnd(1000, 'x')));
    assert.equal(out.length, 17);
    assert.ok(out.every((a) => a.length <= 257));
    assert.match(out[16]!, /\+24 args/);
  });
});

describe('aggregation', () => {
  const d = (at: string): RuntimeDetection =>
    RuntimeDetectionSchema.parse({
      workload: { cluster: 'local', namespace: 'local', pod: 'p', node: 'n', image: 'i', containerId: 'c' },
      ruleId: 'sensitive_file_read',
      kind: 'file',
      severity: 'HIGH',
      title: 't',
      detectedAt: at,
      process: { pid: 1, uid: 0, name: 'cat', argv: ['cat'] },
      evidence: { file: '/etc/shadow' },
      baseline: { state: 'none' },
      count: 1,
      firstSeen: at,
      lastSeen: at,
      fingerprint: 'f',
      source: 'ebpf',
    });
  test('first emitted, repeats counted, one aggregate after the window with count and first/last seen', () => {
    const agg = new Aggregator(1000);
    assert.equal(agg.observe(d('2026-01-01T00:00:00.000Z'), 0)?.count, 1);
    assert.equal(agg.observe(d('2026-01-01T00:00:00.100Z'), 100), undefined);
    assert.equal(agg.observe(d('2026-01-01T00:00:00.200Z'), 200), undefined);
    assert.deepEqual(agg.flush(500), []);
    const [out] = agg.flush(1000);
    assert.equal(out?.count, 3);
    assert.equal(out?.firstSeen, '2026-01-01T00:00:00.000Z');
    assert.equal(out?.lastSeen, '2026-01-01T00:00:00.200Z');
    assert.deepEqual(agg.flush(5000), [], 'nothing new, nothing emitted');
  });
});
