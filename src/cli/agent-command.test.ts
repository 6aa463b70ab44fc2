/** `containment agent`: its flags, and the real process starting on the engine and stopping on a signal. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { findEngineSocket } from '../engine/socket.js';
import { repoRoot, requireOrSkip } from '../testing/shared-data.js';
import { containment } from '../testing/tools.js';
import { parseDuration } from './options.js';

describe('agent durations', () => {
  test('units, fractions and bare seconds', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('2'), 2000);
    assert.equal(parseDuration('0', { allowZero: true }), 0);
  });

  test('nonsense, too short and too long are refused', () => {
    for (const bad of ['', 'abc', '10x', '-1s', '50ms', '0', '25h']) {
      assert.throws(() => parseDuration(bad), /expected a duration/, bad);
    }
  });
});

describe('containment agent', () => {
  test('without a server or with a bad interval: a usage error, no stack', () => {
    const env = { CONTAINMENT_SERVER: '', CONTAINMENT_TOKEN: '' };
    const none = containment(['agent'], env);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^error\[USAGE\]: no server/);
    const bad = containment(
      ['agent', '--server', 'http://127.0.0.1:9', '--token', 't', '--rescan-interval', 'soon'],
      env,
    );
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^error\[USAGE\]: .*rescan-interval/);
  });

  test('starts on the engine and stops cleanly on SIGTERM and SIGINT', async (t) => {
    if (
      !requireOrSkip(t, findEngineSocket(undefined, process.env) !== undefined, 'a container engine socket')
    )
      return;
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      // A label no container carries: nothing is scanned, and no server is needed.
      const child = spawn(
        process.execPath,
        [
          join(repoRoot, 'bin', 'containment.js'),
          ...['agent', '--server', 'http://127.0.0.1:9', '--token', 't'],
          ...['--label', 'containment-agent-cli-test=none', '--rescan-interval', '1s'],
        ],
        {
          env: { ...process.env, CONTAINMENT_LOG_LEVEL: 'info' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      child.stdout.resume();
      let stderr = '';
      const started = new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (stderr.includes('"agent started"')) resolve();
        });
        child.on('exit', () => reject(new Error(`exited before starting: ${stderr}`)));
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await started;
      child.kill(signal);
      assert.equal(await exited, 0, stderr);
      assert.match(stderr, /"agent stopped"/);
    }
  });
});

describe('containment agent --kubernetes', () => {
  const api = ['--server', 'http://127.0.0.1:9', '--token', 't'];
  const env = { NODE_NAME: '', KUBECONFIG: '/nonexistent', KUBERNETES_SERVICE_HOST: '' };

  test('needs a node name, and refuses flags of the engine mode', () => {
    const noNode = containment(['agent', '--kubernetes', ...api], env);
    assert.equal(noNode.status, 2);
    assert.match(noNode.stderr, /^error\[USAGE\]: --kubernetes needs the node name/);
    const label = containment(['agent', '--kubernetes', '--node', 'n', '--label', 'a=b', ...api], env);
    assert.equal(label.status, 2);
    assert.match(label.stderr, /^error\[USAGE\]: --label selects engine containers/);
    const kubeconfigAlone = containment(['agent', '--kubeconfig', '/x', ...api], env);
    assert.equal(kubeconfigAlone.status, 2);
    assert.match(kubeconfigAlone.stderr, /^error\[USAGE\]: --kubeconfig is only used with --kubernetes/);
  });

  test('unreadable credentials are one line with a stable code', () => {
    const r = containment(['agent', '--kubernetes', '--kubeconfig', '/nonexistent/kubeconfig', ...api], {
      ...env,
      NODE_NAME: 'node-a',
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(
      r.stderr,
      /^error\[CONFIG_INVALID\]: cannot load Kubernetes credentials from \/nonexistent\/kubeconfig/,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
