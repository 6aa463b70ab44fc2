/** Baselines: learn → monitor → protect per image, by duration or event count; export/import. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BaselineBook, mergeBaselines, sameBaseline } from './baseline.js';

const exe = (value: string) => ({ type: 'executable' as const, value });

describe('BaselineBook', () => {
  test('learns during the window, then flags what is new (monitor), without growing', () => {
    const book = new BaselineBook({ durationMs: 1000 });
    assert.equal(book.state('img'), 'none');
    assert.equal(book.observe('img', exe('/usr/sbin/nginx'), 0), undefined);
    assert.equal(book.observe('img', { type: 'listener', value: 'tcp:80' }, 500), undefined);
    assert.equal(book.state('img'), 'learning');
    assert.equal(book.observe('img', exe('/usr/sbin/nginx'), 1500), undefined);
    assert.equal(book.state('img'), 'monitor');
    assert.deepEqual(book.observe('img', exe('/bin/sh'), 1600), {
      ruleId: 'anomaly_executable',
      image: 'img',
      item: exe('/bin/sh'),
      state: 'monitor',
    });
    assert.ok(book.observe('img', exe('/bin/sh'), 1700), 'still not in the baseline');
    assert.equal(
      book.observe('img', { type: 'outbound', value: '10.0.0.1:5432' }, 1800)?.ruleId,
      'anomaly_outbound',
    );
    assert.deepEqual(book.get('img')?.executables, ['/usr/sbin/nginx']);
  });
  test('an event count ends learning; images are apart; lock, allow and reset', () => {
    const book = new BaselineBook({ events: 2 });
    book.observe('a', exe('/a'), 0);
    book.observe('a', exe('/b'), 0);
    book.observe('b', exe('/x'), 0);
    assert.equal(book.observe('a', exe('/c'), 0)?.state, 'monitor');
    assert.equal(book.state('b'), 'learning');
    book.lock('a');
    assert.equal(book.observe('a', exe('/c'), 0)?.state, 'protect');
    book.allow('a', exe('/c'));
    assert.equal(book.observe('a', exe('/c'), 0), undefined);
    book.reset('a');
    assert.equal(book.state('a'), 'none');
  });
  test('a quiet first container has learned by the time it first acts (window from its start)', () => {
    const book = new BaselineBook({ durationMs: 1000 });
    assert.equal(book.observe('img', exe('/bin/sh'), 5000, 0)?.ruleId, 'anomaly_executable');
  });
  test('protect after learning when asked; export and import round-trip; bad imports refused', () => {
    const book = new BaselineBook({ events: 1, protectAfterLearning: true });
    book.observe('img', exe('/a'), 0);
    assert.equal(book.observe('img', exe('/b'), 0)?.state, 'protect');
    const copy = new BaselineBook({ events: 1 });
    copy.import(JSON.parse(JSON.stringify(book.export())) as unknown[]);
    assert.equal(copy.observe('img', exe('/a'), 0), undefined);
    assert.equal(copy.observe('img', exe('/b'), 0)?.state, 'protect');
    assert.throws(() => copy.import([{ image: 'x', state: 'sleeping' }]));
    assert.throws(() => new BaselineBook({}), /durationMs or events/);
  });
});

describe('mergeBaselines', () => {
  const base = {
    image: 'img',
    state: 'learning' as const,
    learningStartedAt: 100,
    eventsLearned: 2,
    executables: ['/a'],
    listeners: ['tcp:80'],
    outbound: [],
  };

  test('while learning, items join and the earlier start and larger count win', () => {
    const merged = mergeBaselines(base, {
      ...base,
      learningStartedAt: 50,
      eventsLearned: 7,
      executables: ['/b', '/a'],
      outbound: ['10.0.0.1:443'],
    });
    assert.deepEqual(merged, {
      ...base,
      learningStartedAt: 50,
      eventsLearned: 7,
      executables: ['/a', '/b'],
      outbound: ['10.0.0.1:443'],
    });
    assert.ok(sameBaseline(merged, { ...merged, executables: ['/b', '/a'] }), 'order aside');
    assert.ok(!sameBaseline(merged, base));
  });

  test('the state only moves forward, and a baseline past learning does not grow', () => {
    const locked = { ...base, state: 'protect' as const };
    const merged = mergeBaselines(locked, { ...base, state: 'monitor', executables: ['/a', '/evil'] });
    assert.equal(merged.state, 'protect');
    assert.deepEqual(merged.executables, ['/a']);
    assert.equal(mergeBaselines(base, { ...base, state: 'monitor' }).state, 'monitor');
  });
});
