/**
 * Network quarantine of one container: an nftables table inside the container's network
 * namespace that drops every packet in, out and through it. The host's `nft` runs in that
 * namespace through `nsenter --net` (nothing is executed in the container). The container keeps
 * running; only its network is cut.
 *
 * Why priority -300 (the `raw` slot): it runs before connection tracking (-200), so quarantined
 * traffic never creates conntrack state, and before any filter chain the workload might have
 * installed. A drop is final in nftables whatever the order, so a workload's own `accept` rules
 * cannot reopen the path. Loopback stays open: it never leaves the namespace, and processes that
 * talk to themselves over 127.0.0.1 keep working for the forensic look that usually follows.
 */
import { spawn } from 'node:child_process';
import { open, readFile, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { assertPidInContainer, processGone } from './proc-inspect.js';

export const QUARANTINE_TABLE = 'containment_quarantine';
const FAMILY = 'inet';
const TABLE = `${FAMILY} ${QUARANTINE_TABLE}`;
const LIST_TABLE = ['-j', 'list', 'table', FAMILY, QUARANTINE_TABLE];
const PRIORITY = -300;

/** The chains we install and how many rules each carries (the loopback exceptions). */
const EXPECTED_CHAINS: Record<string, number> = { input: 1, output: 1, forward: 0 };

/**
 * The whole quarantine as one `nft -f` script, so the kernel applies it in a single transaction.
 * Declaring the table first makes the `delete` valid whether or not it existed, so applying twice
 * (or over a tampered copy) leaves exactly this table. (What `quarantine` sends is the same batch
 * in nft's JSON form, `quarantineBatch`; this text is what `nft list` shows and what people read.)
 */
export function quarantineRuleset(): string {
  return [
    `table ${TABLE}`,
    `delete table ${TABLE}`,
    `table ${TABLE} {`,
    `  chain input { type filter hook input priority ${PRIORITY}; policy drop; iifname "lo" accept; }`,
    `  chain output { type filter hook output priority ${PRIORITY}; policy drop; oifname "lo" accept; }`,
    `  chain forward { type filter hook forward priority ${PRIORITY}; policy drop; }`,
    '}',
    '',
  ].join('\n');
}

const LOOPBACK_ACCEPT: Record<string, 'iifname' | 'oifname'> = { input: 'iifname', output: 'oifname' };

/**
 * `quarantineRuleset` as an nft JSON batch. Sent with `--echo`, nft prints back every object as
 * the kernel committed it (with the handles the kernel gave it), so one process both applies the
 * quarantine and shows it took effect: a second `nft list` would cost another fork of this
 * process, which is what bounds how fast many containers can be quarantined at once.
 */
export function quarantineBatch(): string {
  const table = { family: FAMILY, name: QUARANTINE_TABLE };
  const chains = Object.keys(EXPECTED_CHAINS).map((name) => ({
    add: {
      chain: {
        ...table,
        table: QUARANTINE_TABLE,
        name,
        type: 'filter',
        hook: name,
        prio: PRIORITY,
        policy: 'drop',
      },
    },
  }));
  const rules = Object.entries(LOOPBACK_ACCEPT).map(([chain, key]) => ({
    add: {
      rule: {
        family: FAMILY,
        table: QUARANTINE_TABLE,
        chain,
        expr: [{ match: { op: '==', left: { meta: { key } }, right: 'lo' } }, { accept: null }],
      },
    },
  }));
  return JSON.stringify({
    nftables: [{ add: { table } }, { delete: { table } }, { add: { table } }, ...chains, ...rules],
  });
}

/** Removes the table whether or not it exists (idempotent release). */
export function releaseRuleset(): string {
  return `table ${TABLE}\ndelete table ${TABLE}\n`;
}

export interface NetnsTarget {
  /** A process of the container on this host (the engine's main pid). */
  pid: number;
  /**
   * The container id. When given, the pid must still be in a cgroup naming it, which guards
   * against acting on another process that reused the pid after the container died.
   */
  containerId?: string;
}

export interface NetnsToolPaths {
  nft?: string;
  nsenter?: string;
}

/** `active`: our table as we wrote it; `altered`: the table exists but was changed; `none`. */
export type QuarantineState = 'active' | 'altered' | 'none';

export interface QuarantineResult {
  /** Things the caller should know, e.g. that the workload could lift the quarantine itself. */
  warnings: string[];
}

const CAP_NET_ADMIN = 12n;

export async function quarantine(target: NetnsTarget, tools: NetnsToolPaths = {}): Promise<QuarantineResult> {
  const warnings: string[] = [];
  // Read while nft runs (it never throws): the answer only adds a warning.
  const netAdmin = hasNetAdmin(target.pid);
  await inNetns(target, tools, async (run) => {
    // As an argument, not on stdin: nft's JSON reader opens /dev/stdin, which fails on the socket
    // Node gives a child as its stdin.
    const state = stateOfEcho(await run(['-j', '--echo', quarantineBatch()]));
    if (state !== 'active') {
      throw new ContainmentError(
        ErrorCodes.ENFORCEMENT_FAILED,
        `quarantine of pid ${target.pid} did not take effect (table is ${state})`,
      );
    }
  });
  if (await netAdmin) {
    warnings.push(`pid ${target.pid} holds CAP_NET_ADMIN and could remove the quarantine table itself`);
  }
  return { warnings };
}

export async function release(target: NetnsTarget, tools: NetnsToolPaths = {}): Promise<void> {
  await inNetns(target, tools, async (run) => {
    await run(['-f', '-'], releaseRuleset());
  });
}

export async function quarantineState(
  target: NetnsTarget,
  tools: NetnsToolPaths = {},
): Promise<QuarantineState> {
  return inNetns(target, tools, async (run) => {
    const tables = await run(['list', 'tables', FAMILY]);
    if (!tables.split('\n').some((l) => l.trim() === `table ${TABLE}`)) return 'none';
    return stateOf(await run(LIST_TABLE));
  });
}

export async function isQuarantined(target: NetnsTarget, tools: NetnsToolPaths = {}): Promise<boolean> {
  return (await quarantineState(target, tools)) === 'active';
}

interface NftChain {
  name?: string;
  hook?: string;
  prio?: number;
  policy?: string;
}

function nftItems(json: string): Record<string, unknown>[] | undefined {
  try {
    return (JSON.parse(json) as { nftables?: Record<string, unknown>[] }).nftables ?? [];
  } catch {
    return undefined;
  }
}

/** Compares the listed table with what `quarantineRuleset` installs: chains, hooks, policy, rule count. */
function stateOf(json: string): QuarantineState {
  const items = nftItems(json);
  return items === undefined ? 'altered' : stateOfItems(items);
}

/**
 * The same comparison on what `nft --echo` printed for our batch: the objects added after the
 * table was deleted, each of which must carry the handle the kernel gave it (committed, not
 * merely parsed).
 */
function stateOfEcho(json: string): QuarantineState {
  const items = nftItems(json);
  if (items === undefined) return 'altered';
  const lastDelete = items.findLastIndex((i) => i.delete !== undefined);
  const added = items.slice(lastDelete + 1).flatMap((i) => (i.add ? [i.add as Record<string, unknown>] : []));
  const committed = added.every((a) =>
    Object.values(a).every((o) => typeof (o as { handle?: unknown }).handle === 'number'),
  );
  return committed && added.length > 0 ? stateOfItems(added) : 'altered';
}

function stateOfItems(items: Record<string, unknown>[]): QuarantineState {
  const chains = items.flatMap((i) => (i.chain ? [i.chain as NftChain] : []));
  const rules = items.flatMap((i) => (i.rule ? [i.rule as { chain?: string }] : []));
  const expected = Object.entries(EXPECTED_CHAINS);
  const intact =
    chains.length === expected.length &&
    rules.length === expected.reduce((n, [, count]) => n + count, 0) &&
    expected.every(([name, count]) => {
      const chain = chains.find((c) => c.name === name);
      return (
        chain?.hook === name &&
        chain.prio === PRIORITY &&
        chain.policy === 'drop' &&
        rules.filter((r) => r.chain === name).length === count
      );
    });
  return intact ? 'active' : 'altered';
}

type NftRunner = (args: string[], input?: string) => Promise<string>;

/**
 * Pins the target's network namespace by opening `/proc/<pid>/ns/net`, checks that it is not the
 * host's (quarantining that would cut off the whole node) and that the pid still belongs to the
 * container, then runs nft commands inside it through the held descriptor.
 */
async function inNetns<T>(
  target: NetnsTarget,
  tools: NetnsToolPaths,
  fn: (run: NftRunner) => Promise<T>,
): Promise<T> {
  const { pid } = target;
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    throw new ContainmentError(ErrorCodes.ENFORCEMENT_FAILED, `invalid container pid ${pid}`);
  }
  let handle: FileHandle;
  try {
    handle = await open(`/proc/${pid}/ns/net`, 'r');
  } catch (e) {
    throw processGone(pid, e);
  }
  try {
    // Our own namespace, and init's when we may see it (not always, e.g. inside a sandbox); the
    // pid is checked after the namespace is pinned, so the pinned one is the container's.
    const [ns, self, init] = await Promise.all([
      handle.stat(),
      stat('/proc/self/ns/net'),
      stat('/proc/1/ns/net').catch(() => undefined),
      target.containerId !== undefined ? assertPidInContainer(pid, target.containerId) : undefined,
    ]);
    for (const host of [self, init]) {
      if (host?.ino === ns.ino && host.dev === ns.dev) {
        throw new ContainmentError(
          ErrorCodes.ENFORCEMENT_FAILED,
          `pid ${pid} shares the host's network namespace (host networking); refusing to quarantine it with nftables`,
        );
      }
    }
    const run: NftRunner = (args, input) => runNft(handle.fd, tools, args, input);
    return await fn(run);
  } finally {
    await handle.close();
  }
}

async function hasNetAdmin(pid: number): Promise<boolean> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return hex !== undefined && ((BigInt(`0x${hex}`) >> CAP_NET_ADMIN) & 1n) === 1n;
  } catch {
    return false; // the process exited; the quarantine itself already succeeded
  }
}

const NFT_TIMEOUT_MS = 10_000;

/** Runs `nsenter --net=/proc/self/fd/3 nft …` with the pinned namespace handed over as fd 3. */
function runNft(nsFd: number, tools: NetnsToolPaths, args: string[], input?: string): Promise<string> {
  const nsenter = tools.nsenter ?? 'nsenter';
  const nft = tools.nft ?? 'nft';
  return new Promise((resolve, reject) => {
    const child = spawn(nsenter, ['--net=/proc/self/fd/3', nft, ...args], {
      stdio: ['pipe', 'pipe', 'pipe', nsFd],
      timeout: NFT_TIMEOUT_MS,
    });
    const { stdin, stdout, stderr } = child;
    if (!stdin || !stdout || !stderr) throw new Error('nsenter was spawned without pipes');
    let out = '';
    let err = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) =>
      reject(
        new ContainmentError(ErrorCodes.ENFORCEMENT_FAILED, `cannot run ${nsenter}: ${e.message}`, {
          cause: e,
        }),
      ),
    );
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(out);
      const why = err.trim().split('\n')[0] ?? '';
      reject(
        new ContainmentError(
          ErrorCodes.ENFORCEMENT_FAILED,
          `nft ${args.join(' ')} failed (${signal ?? `exit ${code}`})${why ? `: ${why}` : ''}`,
        ),
      );
    });
    // nft reads stdin only for `-f -`; a command that exits without reading gives EPIPE here,
    // which is harmless: its exit status is what counts.
    stdin.on('error', () => undefined);
    stdin.end(input);
  });
}
