/**
 * The enforcer's own decisions, without I/O: which steps each action takes in which order over
 * the drivers, what a failing step does, and that the target guard runs before anything (a dry
 * run included). The real drivers are exercised by the local enforcer (Podman) and operator
 * (kube-apiserver) tests; the drivers here only record what they are asked to do.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { CarryOutInput, EnforcementDriver, Mode, StepResult } from './enforcer.js';
import { carryOut, condition, stepsFor } from './enforcer.js';
import type { ActionSpec } from './security-action.js';
import { actionSpecSchema } from './security-action.js';

const now = (): Date => new Date('2026-01-01T00:00:00Z');
const spec = (action: ActionSpec['action'], extra: Partial<ActionSpec> = {}): ActionSpec =>
  actionSpecSchema.parse({ target: { namespace: 'ns', pod: 'p' }, action, ...extra });

/** A driver of one layer that records the steps run, as `<layer>.<operation>`. */
function recording(layer: string, log: string[], ops: (keyof EnforcementDriver)[]): EnforcementDriver {
  const step = (name: string) => ({
    type: `${layer}.${name}`,
    run: (): Promise<StepResult> => {
      log.push(`${layer}.${name}`);
      return Promise.resolve({
        condition: condition(`${layer}.${name}`, 'True', 'Done', name, now()),
        changed: true,
      });
    },
  });
  const d: EnforcementDriver = {};
  if (ops.includes('label')) d.label = (m: Mode) => step(`label-${m}`);
  if (ops.includes('isolate')) d.isolate = (m: Mode) => step(`isolate-${m}`);
  if (ops.includes('snapshot')) d.snapshot = () => step('snapshot');
  if (ops.includes('terminate')) d.terminate = (how) => step(`terminate-${how}`);
  return d;
}

const input = (
  s: ActionSpec,
  drivers: EnforcementDriver[],
  extra: Partial<CarryOutInput> = {},
): CarryOutInput => ({
  spec: s,
  target: { kind: 'pod', namespace: 'ns', name: 'p', uid: 'u', node: 'n' },
  drivers,
  plan: () => 'do things',
  onError: () => 'record',
  now,
  ...extra,
});

describe('enforcer', () => {
  const all: (keyof EnforcementDriver)[] = ['label', 'isolate', 'snapshot', 'terminate'];

  it('closes from the outside in and terminates from the inside out', async () => {
    const order = async (action: ActionSpec['action']): Promise<string[]> => {
      const log: string[] = [];
      await carryOut(input(spec(action), [recording('cluster', log, all), recording('node', log, all)]));
      return log;
    };
    assert.deepEqual(await order('Quarantine'), [
      'cluster.label-set',
      'node.label-set',
      'cluster.isolate-set',
      'node.isolate-set',
    ]);
    assert.deepEqual(await order('Release'), [
      'cluster.label-clear',
      'node.label-clear',
      'cluster.isolate-clear',
      'node.isolate-clear',
    ]);
    assert.deepEqual(await order('Snapshot'), ['cluster.snapshot', 'node.snapshot']);
    assert.deepEqual(await order('TerminateGraceful'), [
      'cluster.snapshot',
      'node.snapshot',
      'node.terminate-graceful',
      'cluster.terminate-graceful',
    ]);
    assert.deepEqual(await order('Terminate'), ['node.terminate-abrupt', 'cluster.terminate-abrupt']);
  });

  it('skips what a layer does not have', () => {
    const engine = recording('engine', [], ['snapshot', 'terminate']);
    const linux = recording('linux', [], ['isolate']);
    assert.deepEqual(
      stepsFor(spec('Quarantine'), [engine, linux]).map((s) => s.type),
      ['linux.isolate-set'],
    );
    assert.deepEqual(
      stepsFor(spec('TerminateGraceful'), [engine, linux]).map((s) => s.type),
      ['engine.snapshot', 'engine.terminate-graceful'],
    );
  });

  it('a failing step ends the action there, keeping what was done and recording why', async () => {
    const log: string[] = [];
    const broken: EnforcementDriver = {
      isolate: () => ({ type: 'Broken', run: () => Promise.reject(new Error('nft said no')) }),
    };
    const done = await carryOut(
      input(spec('Quarantine'), [recording('cluster', log, all), broken, recording('node', log, all)]),
    );
    assert.equal(done.phase, 'Failed');
    assert.equal(done.failedAt, 'Broken: nft said no');
    assert.deepEqual(
      log,
      ['cluster.label-set', 'node.label-set', 'cluster.isolate-set'],
      'node isolation never ran',
    );
    assert.deepEqual(
      done.conditions.map((c) => `${c.type}=${c.status}`),
      ['cluster.label-set=True', 'node.label-set=True', 'cluster.isolate-set=True', 'Broken=False'],
    );
  });

  it('hands a failure the front end wants to see (e.g. transient) back to it', async () => {
    const broken: EnforcementDriver = {
      snapshot: () => ({ type: 'S', run: () => Promise.reject(new Error('ECONNRESET')) }),
    };
    await assert.rejects(
      carryOut(input(spec('Snapshot'), [broken], { onError: () => 'rethrow' })),
      /ECONNRESET/,
    );
  });

  it('a step that reports Failed stops the action like a thrown error', async () => {
    const log: string[] = [];
    const failing: EnforcementDriver = {
      terminate: () => ({
        type: 'NodeKill',
        run: () => Promise.resolve({ condition: condition('NodeKill', 'False', 'Failed', 'EPERM', now()) }),
      }),
    };
    const done = await carryOut(input(spec('Terminate'), [recording('cluster', log, all), failing]));
    assert.equal(done.failedAt, 'NodeKill: EPERM');
    assert.deepEqual(log, [], 'the pod is not deleted after the kill failed');
  });

  it('the target guard refuses before anything is done, a dry run included', async () => {
    for (const dryRun of [false, true]) {
      const log: string[] = [];
      const done = await carryOut(
        input(spec('Terminate', { dryRun }), [recording('cluster', log, all)], {
          guard: (target) => {
            throw new ContainmentError(
              ErrorCodes.FORBIDDEN,
              `${target.namespace}/${target.name} is not managed`,
            );
          },
        }),
      );
      assert.equal(done.phase, 'Failed');
      assert.equal(done.failedAt, 'TargetAllowed: ns/p is not managed');
      assert.deepEqual(log, []);
    }
  });

  it('a dry run only plans', async () => {
    const log: string[] = [];
    const done = await carryOut(
      input(spec('Quarantine', { dryRun: true }), [recording('cluster', log, all)]),
    );
    assert.equal(done.plan, 'do things');
    assert.deepEqual(log, []);
    assert.deepEqual(
      done.conditions.map((c) => c.type),
      ['DryRun'],
    );
  });
});
