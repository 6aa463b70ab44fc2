/** `containment agent`: scan this node's running containers and report to the scanner, until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import {
  DEFAULT_DRIFT_CHECK_INTERVAL_MS,
  DEFAULT_RESCAN_INTERVAL_MS,
  DEFAULT_SCAN_CONCURRENCY,
} from '../agent/defaults.js';
import type { WorkloadDiscovery } from '../agent/discovery.js';
import type { DockerEngine } from '../engine/docker/docker-engine.js';
import { findEngineSocket } from '../engine/socket.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { nameSchema } from '../scanner/schemas.js';
import { addApiOptions, clientFrom } from './api-flags.js';
import type { ApiFlags } from './api-flags.js';
import { commandLogger, stopSignal } from './common.js';
import { baselineLearningOption, labelOption, parseDuration, runtimeDetectionOption } from './options.js';

interface AgentFlags extends ApiFlags {
  engineSocket?: string;
  kubernetes?: boolean;
  kubeconfig?: string;
  cluster: string;
  node?: string;
  rescanInterval: number;
  driftInterval: number;
  concurrency: number;
  label: Record<string, string>;
  runtimeDetection: 'on' | 'off';
  baselineLearning?: number;
}

function seconds(ms: number): string {
  return `${ms / 1000}s`;
}

// Over 120 lines, but half of it is commander's option declarations, read top to bottom as `--help`.
export function registerAgentCommand(program: Command): void {
  addApiOptions(
    program
      .command('agent')
      .description("scan this node's running containers (through /proc/<pid>/root) and report them")
      .addOption(
        new Option(
          '--kubernetes',
          "a Kubernetes node: find pod containers through /proc/*/cgroup and name them by this node's pods",
        ).conflicts('engineSocket'),
      )
      .addOption(
        new Option(
          '--kubeconfig <file>',
          'with --kubernetes: API server credentials (default: in-cluster ServiceAccount, else KUBECONFIG)',
        ),
      )
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
      .addOption(
        new Option(
          '--node <name>',
          'node name in workload identities (default: NODE_NAME with --kubernetes, else the hostname)',
        ),
      )
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
      .addOption(labelOption())
      .addOption(runtimeDetectionOption())
      .addOption(baselineLearningOption()),
  ).action(async (flags: AgentFlags) => {
    const client = clientFrom(flags);
    const logger = await commandLogger('info');
    let source: { discovery: WorkloadDiscovery } | { engine: DockerEngine };
    let node = flags.node;
    if (flags.kubernetes) {
      node ??= process.env.NODE_NAME;
      if (!node) {
        throw new ContainmentError(
          ErrorCodes.USAGE,
          '--kubernetes needs the node name: pass --node or set NODE_NAME (the downward API spec.nodeName)',
        );
      }
      if (Object.keys(flags.label).length > 0) {
        throw new ContainmentError(
          ErrorCodes.USAGE,
          '--label selects engine containers; not used with --kubernetes',
        );
      }
      if (!nameSchema.safeParse(node).success) {
        throw new ContainmentError(ErrorCodes.USAGE, `--node ${node}: not a valid node name`);
      }
      // Loaded here, not at the top: the Kubernetes client costs every other command ~100 MB.
      const [{ loadKubeConfig }, { KubernetesDiscovery }] = await Promise.all([
        import('../kubernetes/kube-config.js'),
        import('../agent/kubernetes/kubernetes-discovery.js'),
      ]);
      source = {
        discovery: new KubernetesDiscovery({
          kubeConfig: loadKubeConfig(flags.kubeconfig),
          cluster: flags.cluster,
          node,
          logger,
        }),
      };
    } else {
      if (flags.kubeconfig !== undefined) {
        throw new ContainmentError(ErrorCodes.USAGE, '--kubeconfig is only used with --kubernetes');
      }
      const socket = findEngineSocket(flags.engineSocket, process.env);
      if (!socket) {
        throw new ContainmentError(
          ErrorCodes.ENGINE_UNAVAILABLE,
          'no container engine socket found; pass --engine-socket or set CONTAINER_HOST',
        );
      }
      const { DockerEngine } = await import('../engine/docker/docker-engine.js');
      source = { engine: new DockerEngine(socket) };
    }
    const { Agent } = await import('../agent/agent.js');
    const agent = new Agent({
      ...source,
      sink: client,
      logger,
      cluster: flags.cluster,
      ...(node === undefined ? {} : { node }),
      rescanIntervalMs: flags.rescanInterval,
      driftCheckIntervalMs: flags.driftInterval,
      concurrency: flags.concurrency,
      labels: flags.label,
      runtimeDetection: flags.runtimeDetection,
      detections: client,
      ...(flags.baselineLearning === undefined
        ? {}
        : { baselines: { learning: { durationMs: flags.baselineLearning }, client } }),
    });
    // Listening before starting: a signal during start-up also ends in a clean stop.
    const signalled = stopSignal();
    await agent.start();
    logger.info(
      {
        source: 'engine' in source ? source.engine.endpoint : source.discovery.endpoint,
        server: flags.server,
        cluster: flags.cluster,
      },
      'agent started',
    );
    logger.info({ signal: await signalled }, 'stopping');
    await agent.stop();
    logger.info({ stats: agent.stats, runtime: agent.runtimeStatus() }, 'agent stopped');
  });
}
