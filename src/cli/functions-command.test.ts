/** `containment functions` as a real process: the guest key printed once, the API serving it, a clean stop. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../testing/shared-data.js';
import { poll } from '../testing/wait.js';

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** Runs the command until `ready(stderr)` says it listens (then `use(apihost)`, then SIGTERM) or it exits. */
async function runFunctions(
  args: string[],
  env: NodeJS.ProcessEnv,
  use?: (apihost: string, stdout: () => string) => Promise<void>,
): Promise<Run> {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'containment.js'), 'functions', ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env, CONTAINMENT_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const listening = new Promise<string | undefined>((resolve) => {
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /"apihost":"(http:\/\/[^"]+)".*function runtime listening/.exec(stderr);
      if (m) resolve(m[1]);
    });
    void exited.then(() => resolve(undefined));
  });
  const apihost = await listening;
  if (apihost !== undefined && use) {
    try {
      await use(apihost, () => stdout);
    } finally {
      child.kill('SIGTERM');
    }
  } else if (apihost !== undefined) child.kill('SIGTERM');
  return { stdout, stderr, code: await exited };
}

describe('containment functions', () => {
  let dataDir: string;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'functions-cli-'));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('prints a generated guest key once, serves the API with it, and stops on SIGTERM', async () => {
    let key = '';
    const first = await runFunctions(
      ['--port', '0', '--data-dir', dataDir],
      { CONTAINMENT_FUNCTIONS_AUTH: '' },
      async (apihost, stdout) => {
        // stdout and stderr are separate pipes: the key may arrive after the "listening" line.
        await poll(stdout, (out) => out.includes('\n'), { ms: 10_000, every: 20 });
        key = stdout().trim();
        assert.match(key, /^[\w-]+:\S{16,}$/);
        const ok = await fetch(`${apihost}/api/v1/namespaces`, {
          headers: { authorization: `Basic ${Buffer.from(key).toString('base64')}` },
        });
        assert.equal(ok.status, 200);
        assert.deepEqual(await ok.json(), ['guest']);
        const no = await fetch(`${apihost}/api/v1/namespaces/guest/actions`);
        assert.equal(no.status, 401);
      },
    );
    assert.equal(first.code, 0, first.stderr);

    const second = await runFunctions(['--port', '0', '--data-dir', dataDir], {
      CONTAINMENT_FUNCTIONS_AUTH: '',
    });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, '', 'the key is printed only when it is generated');
  });

  it('refuses a malformed CONTAINMENT_FUNCTIONS_AUTH with a one-line error', async () => {
    const run = await runFunctions(['--port', '0', '--data-dir', join(dataDir, 'bad')], {
      CONTAINMENT_FUNCTIONS_AUTH: 'no-colon',
    });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error\[CONFIG_INVALID\]: function runtime auth must be/m);
  });

  it('refuses --enforcement without --sdk-config, and an unreadable one, before starting', async () => {
    const env = { CONTAINMENT_FUNCTIONS_AUTH: '' };
    const alone = await runFunctions(
      ['--port', '0', '--data-dir', join(dataDir, 'k'), '--enforcement', 'kubernetes'],
      env,
    );
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /^error\[USAGE\]: --enforcement and --kubeconfig need --sdk-config/m);
    const missing = await runFunctions(
      ['--port', '0', '--data-dir', join(dataDir, 'k'), '--sdk-config', '/nonexistent.yaml'],
      env,
    );
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error\[CONFIG_INVALID\]: cannot read \/nonexistent\.yaml/m);
  });
});
