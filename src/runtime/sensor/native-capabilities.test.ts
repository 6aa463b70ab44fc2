/**
 * The native engine runs with only the capabilities the Helm chart gives the agent for runtime
 * detection: started with nothing else in its bounding set, it attaches every probe it attaches
 * unrestricted; with none of them it attaches nothing. So the chart cannot lose a capability the
 * engine needs, and one it stops needing shows here. Needs root, setpriv and the built engine
 * (`npm run build:sensor`): fails under CI=true without them, skips loudly otherwise.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { requireOrSkip } from '../../testing/shared-data.js';
import { hasCommand } from '../../testing/tools.js';
import { NATIVE_SENSOR_BIN } from './native.js';
import { preflight } from './preflight.js';

const CHART_DAEMONSET = join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'deploy',
  'helm',
  'containment',
  'templates',
  'node-daemonset.yaml',
);

/** The capabilities the chart adds to the agent container when runtime detection is on. */
function chartCapabilities(): string[] {
  const template = readFileSync(CHART_DAEMONSET, 'utf8');
  const enabled = template.slice(template.indexOf('{{- if $rt.enabled }}'));
  const add = /add: (\[[^\]]*\])/.exec(enabled)?.[1];
  assert.ok(add, `no capabilities list under runtime detection in ${CHART_DAEMONSET}`);
  return JSON.parse(add) as string[];
}

interface Attached {
  probes: number;
  missing: string[];
}

/** Starts the engine (bounded by `bounding`, a setpriv list, when given) until it attaches or exits. */
function attach(bounding?: string): Promise<{ attached?: Attached; stderr: string }> {
  const command = bounding
    ? ['setpriv', '--bounding-set', bounding, '--', NATIVE_SENSOR_BIN, '0']
    : [NATIVE_SENSOR_BIN, '0'];
  const proc = spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the engine neither attached nor exited within 30 s; stderr: ${stderr}`));
    }, 30_000);
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    proc.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // Whole lines only: a chunk may end inside one.
      for (const line of stdout.split('\n').slice(0, -1)) {
        if (!line.includes('"attached_probes"')) continue;
        clearTimeout(timer);
        proc.kill('SIGKILL');
        resolve({ attached: (JSON.parse(line) as { data: Attached }).data, stderr });
        return;
      }
    });
    proc.on('exit', () => {
      clearTimeout(timer);
      resolve({ stderr });
    });
  });
}

test('the native engine attaches with only the chart’s capabilities, and not with none', async (t) => {
  const pf = preflight();
  const missing =
    pf.mode !== 'ebpf' ? `eBPF (${pf.reasons.join('; ')})` : hasCommand('setpriv') ? undefined : 'setpriv';
  if (!requireOrSkip(t, missing === undefined, missing ?? '')) return;

  const unrestricted = await attach();
  assert.ok(unrestricted.attached, `the engine did not attach as root: ${unrestricted.stderr}`);
  assert.ok(unrestricted.attached.probes > 0);

  const caps = chartCapabilities();
  assert.ok(caps.includes('BPF') && caps.includes('PERFMON'), `chart capabilities: ${caps.join(', ')}`);
  assert.ok(!caps.includes('SYS_ADMIN'), 'the chart gives SYS_ADMIN again');
  const bounded = await attach(['-all', ...caps.map((c) => `+${c.toLowerCase()}`)].join(','));
  assert.deepEqual(
    bounded.attached,
    unrestricted.attached,
    `bounded by ${caps.join(', ')}: ${bounded.stderr}`,
  );

  // The control: the same start with an empty bounding set loads nothing.
  const none = await attach('-all');
  assert.equal(none.attached, undefined);
  assert.match(none.stderr, /operation not permitted|permission denied/i);
});
