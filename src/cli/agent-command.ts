/** `containment agent`: scan this node's running containers and report to the scanner, until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import {
  Agent,
  DEFAULT_DRIFT_CHECK_INTERVAL_MS,
  DEFAULT_RESCAN_INTERVAL_MS,
  DEFAULT_SCAN_CONCURRENCY,
} from '../agent/agent.js';
import { DockerEngine } from '../engine/docker/docker-engine.js';
import { findEngineSocket } from '../engine/socket.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { nameSchema } from '../scanner/schemas.js';
import { addApiOptions, clientFrom } from './api-client.js';
import type { ApiFlags } from './api-client.js';
import { stopSignal } from './common.js';

interface AgentFlags extends ApiFlags {
  engineSocket?: string;
  cluster: string;
  node?: string;
  rescanInterval: number;
  driftInterval: number;
  concurrency: number;
  label: Record<string, string>;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `30s`, `5m`, `1h` (a bare number is seconds) to milliseconds. */
export function parseDuration(value: string, options: { allowZero?: boolean } = {}): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  const ms = m ? Math.round(Number(m[1]) * (UNITS[m[2] ?? 's'] ?? NaN)) : NaN;
  if (!Number.isFinite(ms) || ms > 86_400_000 || (ms === 0 ? !options.allowZero : ms < 100)) {
    throw new InvalidArgumentError(
      `expected a duration from 100ms to 24h such as 500ms, 30s or 5m${options.allowZero ? ', or 0' : ''}`,
    );
  }
  return ms;
}

function seconds(ms: number): string {
  return `${ms / 1000}s`;
}

/** `--label key=value`, repeatable: only containers carrying every label are watched. */
export function labelOption(): Option {
  return new Option('--label <key=value>', 'watch only containers with this label (repeatable)')
    .argParser((v: string, previous: Record<string, string> = {}) => {
      const at = v.indexOf('=');
      if (at < 1) throw new InvalidArgumentError('expected key=value');
      return { ...previous, [v.slice(0, at)]: v.slice(at + 1) };
    })
    .default({}, 'every container');
}

export function registerAgentCommand(program: Command): void {
  addApiOptions(
    program
      .command('agent')
      .description("scan this node's running containers (through /proc/<pid>/root) and report them")
      .addOption(
        new Option(
          '--engine-socket <path>',
          'container engine API socket (found automatically when omitted)',
        ),
      )
      .addOption(
        new Option('--cluster <name>', 'cluster the workloads belong to')
          .env('CONTAINMENT_CLUSTER')
          .default('local')
          .argParser((value: string) => {
            if (!nameSchema.safeParse(value).success) {
              throw new InvalidArgumentError('letters, digits, ".", "_" and "-" only');
            }
            return value;
          }),
      )
      .addOption(new Option('--node <name>', 'node name in workload identities (default: hostname)'))
      .addOption(
        new Option('--rescan-interval <duration>', 'rescan every running container this often')
          .argParser((v: string) => parseDuration(v))
          .default(DEFAULT_RESCAN_INTERVAL_MS, seconds(DEFAULT_RESCAN_INTERVAL_MS)),
      )
      .addOption(
        new Option('--drift-interval <duration>', 'check writable layers for changes this often (0 = never)')
          .argParser((v: string) => parseDuration(v, { allowZero: true }))
          .default(DEFAULT_DRIFT_CHECK_INTERVAL_MS, seconds(DEFAULT_DRIFT_CHECK_INTERVAL_MS)),
      )
      .addOption(
        new Option('--concurrency <n>', 'containers scanned at once')
          .argParser((v: string) => {
            const n = Number(v);
            if (!/^\d+$/.test(v) || n < 1 || n > 64) throw new InvalidArgumentError('expected 1 to 64');
            return n;
          })
          .default(DEFAULT_SCAN_CONCURRENCY),
      )
      .addOption(labelOption()),
  ).action(async (flags: AgentFlags) => {
    const client = clientFrom(flags);
    const socket = findEngineSocket(flags.engineSocket, process.env);
    if (!socket) {
      throw new ContainmentError(
        ErrorCodes.ENGINE_UNAVAILABLE,
        'no container engine socket found; pass --engine-socket or set CONTAINER_HOST',
      );
    }
    const logger = pino({ level: process.env.CONTAINMENT_LOG_LEVEL ?? 'info' }, pino.destination(2));
    const agent = new Agent({
      engine: new DockerEngine(socket),
      sink: client,
      logger,
      cluster: flags.cluster,
      ...(flags.node === undefined ? {} : { node: flags.node }),
      rescanIntervalMs: flags.rescanInterval,
      driftCheckIntervalMs: flags.driftInterval,
      concurrency: flags.concurrency,
      labels: flags.label,
    });
    // Listening before starting: a signal during start-up also ends in a clean stop.
    const signalled = stopSignal();
    await agent.start();
    logger.info(
      { engine: `unix://${socket}`, server: flags.server, cluster: flags.cluster },
      'agent started',
    );
    logger.info({ signal: await signalled }, 'stopping');
    await agent.stop();
    logger.info({ stats: agent.stats }, 'agent stopped');
  });
}
