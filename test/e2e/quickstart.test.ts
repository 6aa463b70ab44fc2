/**
 * docs/quickstart.md, pasted as it is: its fenced `sh` blocks run in order in two "terminals" —
 * the block marked `<!-- quickstart-test: terminal 1 -->` (with the blocks before it, which both
 * terminals run) as a long-running process, every other block in one bash with `set -euo pipefail`
 * — on real Podman and nftables. The test sets only what a reader would have: `containment` on
 * PATH, a fresh data directory and a free port (through the variables the walkthrough honours),
 * and the repository as the working directory. It asserts the walkthrough reached the quarantine
 * (a Succeeded, enforced Quarantine of demo-sshd requested by the reference policy, printed as a
 * decision line in terminal 1, while the container did not answer) and the release (it answered
 * again).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SecurityAction } from '../../src/enforcement/security-action.js';
import { findEngineSocket } from '../../src/engine/socket.js';
import { repoRoot, requireOrSkip } from '../../src/testing/shared-data.js';
import { hasCommand, podmanAvailable } from '../../src/testing/tools.js';
import { freePortRun } from '../../src/testing/ports.js';

const DOC = join(repoRoot, 'docs', 'quickstart.md');
const TERMINAL_1 = '<!-- quickstart-test: terminal 1 -->';
/** What the walkthrough creates under fixed names (removed before and after the test). */
const CONTAINER = 'demo-sshd';
const IMAGE = 'localhost/containment-demo:sshd';

interface Block {
  code: string;
  terminal1: boolean;
}

/** The fenced ```sh blocks of a Markdown text, in order, each marked when the line before its fence is the marker. */
export function shellBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  let previous = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (/^```(sh|bash|shell)\s*$/.test(line)) {
      const body: string[] = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i] as string); i++) body.push(lines[i] as string);
      blocks.push({ code: body.join('\n'), terminal1: previous.trim() === TERMINAL_1 });
    }
    if (line.trim() !== '') previous = line;
  }
  return blocks;
}

function whyUnavailable(): string | undefined {
  const missing = [
    ...['podman', 'nft', 'nsenter', 'tar', 'curl', 'busybox', 'timeout', 'bash'].filter(
      (t) => !hasCommand(t),
    ),
    ...(findEngineSocket(undefined, process.env) === undefined ? ['a podman API socket'] : []),
    ...(existsSync(join(repoRoot, 'testdata', 'osv', 'npm')) ? [] : ['testdata/osv/npm in the repository']),
  ];
  if (missing.length > 0) return `${missing.join(', ')} (needed for the quickstart walkthrough)`;
  return podmanAvailable() ? undefined : 'a working podman';
}

function removeDemo(): void {
  execFileSync('podman', ['rm', '--force', '--ignore', '--time', '0', CONTAINER], { stdio: 'ignore' });
  execFileSync('podman', ['rmi', '--force', '--ignore', IMAGE], { stdio: 'ignore' });
}

describe('docs/quickstart.md, run as written', () => {
  const unavailable = whyUnavailable();
  const blocks = shellBlocks(readFileSync(DOC, 'utf8'));
  let tmp = '';
  let env: NodeJS.ProcessEnv = {};
  let terminal1: ChildProcess | undefined;
  let out1 = '';

  it('has a terminal-1 block and the steps after it', () => {
    const first = blocks.findIndex((b) => b.terminal1);
    assert.ok(first > 0, 'no block marked for terminal 1 after the setup');
    assert.match(blocks[first]?.code ?? '', /^containment up --enforce/);
    assert.ok(blocks.length - first >= 6, `${blocks.length - first - 1} blocks for terminal 2`);
    assert.equal(blocks.filter((b) => b.terminal1).length, 1);
  });

  before(async () => {
    if (unavailable !== undefined) return;
    tmp = mkdtempSync(join(tmpdir(), 'containment-quickstart-'));
    // `containment` as `npm link` would provide it, run by this Node.
    const bin = join(tmp, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'containment'),
      `#!/bin/sh\nexec '${process.execPath}' '${join(repoRoot, 'bin', 'containment.js')}' "$@"\n`,
    );
    chmodSync(join(bin, 'containment'), 0o755);
    env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      CONTAINMENT_DATA_DIR: join(tmp, 'data'),
      CONTAINMENT_PORT: String(await freePortRun()),
      CONTAINMENT_LOG_LEVEL: 'warn',
    };
    delete env.CONTAINMENT_ENFORCE;
    removeDemo();
  });

  after(async () => {
    if (unavailable !== undefined) return;
    if (terminal1?.pid !== undefined && terminal1.exitCode === null) {
      const exited = new Promise((resolve) => terminal1?.on('exit', resolve));
      process.kill(-terminal1.pid, 'SIGTERM');
      await exited;
    }
    removeDemo();
    if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  });

  it('reaches the quarantine and the release', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    const first = blocks.findIndex((b) => b.terminal1);
    const setup = blocks.slice(0, first).map((b) => b.code);
    // Terminal 1: the setup, then `up` in the foreground; its own process group, stopped as Ctrl-C would.
    terminal1 = spawn('bash', ['-euo', 'pipefail', '-c', [...setup, blocks[first]?.code].join('\n')], {
      cwd: repoRoot,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    terminal1.stdout?.on('data', (d: Buffer) => (out1 += d.toString()));
    terminal1.stderr?.on('data', (d: Buffer) => (out1 += d.toString()));

    // Terminal 2: every other block, in order, as one shell session.
    const script = blocks
      .filter((b) => !b.terminal1)
      .map((b, i) => `echo '### quickstart block ${i + 1}'\n${b.code}`)
      .join('\n');
    const out2 = await new Promise<string>((resolve, reject) => {
      let out = '';
      const terminal2 = spawn('bash', ['-euo', 'pipefail', '-c', script], {
        cwd: repoRoot,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const timer = setTimeout(() => terminal2.kill('SIGKILL'), 420_000);
      terminal2.stdout.on('data', (d: Buffer) => (out += d.toString()));
      terminal2.stderr.on('data', (d: Buffer) => (out += d.toString()));
      terminal2.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`terminal 2 exited with ${code}:\n${out}\n--- terminal 1:\n${out1}`));
      });
    });

    // The walkthrough's own checks printed what a reader would see.
    assert.match(out2, /demo-sshd does not answer: quarantined/, out2);
    const released = out2.slice(out2.lastIndexOf('"action":"Release"'));
    assert.match(released, /hello from demo-sshd/, 'the released container does not answer');

    // The quarantine really happened, enforced, by the reference policy; then the release.
    const upEnv = readFileSync(join(env.CONTAINMENT_DATA_DIR as string, 'up.env'), 'utf8');
    const value = (k: string) => new RegExp(`^export ${k}='([^']*)'$`, 'm').exec(upEnv)?.[1] ?? '';
    const res = await fetch(`${value('CONTAINMENT_ACTIONS_URL')}/v1/actions?namespace=local`, {
      headers: { authorization: `Bearer ${value('CONTAINMENT_TOKEN')}` },
    });
    const { actions } = (await res.json()) as { actions: SecurityAction[] };
    const mine = actions.filter((a) => a.spec.target.pod === CONTAINER).reverse();
    assert.deepEqual(
      mine.map((a) => [a.spec.action, a.status?.phase, a.spec.dryRun]),
      [
        ['Quarantine', 'Succeeded', false],
        ['Release', 'Succeeded', false],
      ],
      JSON.stringify(mine),
    );
    assert.match(mine[0]?.spec.requestedBy ?? '', /^policy\/quarantine-or-terminate@/);
    // Terminal 1 said so as it happened.
    assert.match(out1, /mode: +ENFORCE/);
    assert.match(out1, /\d\d:\d\d:\d\d local\/demo-sshd {2}remote shell: .*Quarantine {2}done/);
    assert.match(
      out1,
      /\d\d:\d\d:\d\d local\/demo-sshd {2}checked by hand: .* {2}configured:admin {2}Release {2}done/,
    );
  });
});
