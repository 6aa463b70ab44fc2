/**
 * `containment operator`: the node enforcement operator — carries out the SecurityActions for
 * pods bound to this node until SIGINT/SIGTERM.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { commandLogger, configOf, dataDirOf, stopSignal } from './common.js';
import { dataDirOption } from './help.js';

interface OperatorFlags {
  node?: string;
  kubeconfig?: string;
  evidenceDir?: string;
  dataDir?: string;
  concurrency: number;
  podLogsDir: string;
  hostRoot: string;
  evidenceMaxLayerBytes: number;
  evidenceMaxLogBytes: number;
}

const bytesFlag = (v: string): number => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 4096 || n > 2 ** 40)
    throw new InvalidArgumentError('expected bytes, 4096 to 2^40');
  return n;
};

/** How long a stopping operator waits for actions in progress (a pod's grace period is ~30 s). */
const DRAIN_MS = 10_000;

/** A Kubernetes node name: a DNS subdomain. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function registerOperatorCommand(program: Command): void {
  program
    .command('operator')
    .description('carry out the SecurityActions for pods on this node (Kubernetes)')
    .addOption(new Option('--node <name>', "this node's name (default: $NODE_NAME, from the downward API)"))
    .addOption(
      new Option('--kubeconfig <file>', 'kubeconfig file (default: in-cluster service account credentials)'),
    )
    .addOption(new Option('--evidence-dir <dir>', 'where Snapshot bundles go (default: <data dir>/evidence)'))
    .addOption(dataDirOption())
    .addOption(
      new Option(
        '--pod-logs-dir <dir>',
        "the kubelet's pod log directory, copied into Snapshot bundles",
      ).default('/var/log/pods'),
    )
    .addOption(
      new Option(
        '--host-root <dir>',
        "where the node's root filesystem is seen (writable layers are read below it by their host path)",
      ).default('/'),
    )
    .addOption(
      new Option('--evidence-max-layer-bytes <n>', "cap of each container's filesystem-changes.tar")
        .argParser(bytesFlag)
        .default(256 * 1024 * 1024),
    )
    .addOption(
      new Option('--evidence-max-log-bytes <n>', "cap of the pod's logs in a Snapshot bundle")
        .argParser(bytesFlag)
        .default(64 * 1024 * 1024),
    )
    .addOption(
      new Option('--concurrency <n>', 'actions carried out at once')
        .argParser((v: string) => {
          const n = Number(v);
          if (!/^\d+$/.test(v) || n < 1 || n > 256) throw new InvalidArgumentError('expected 1 to 256');
          return n;
        })
        .default(16),
    )
    .action(async (flags: OperatorFlags, cmd: Command) => {
      const node = flags.node ?? process.env.NODE_NAME;
      if (!node) {
        throw new ContainmentError(
          ErrorCodes.USAGE,
          'the operator needs its node name: pass --node or set NODE_NAME (the downward API spec.nodeName)',
        );
      }
      if (!NODE_NAME.test(node))
        throw new ContainmentError(ErrorCodes.USAGE, `--node ${node}: not a valid node name`);
      const evidenceDir = flags.evidenceDir ?? join(dataDirOf(flags, await configOf(cmd)), 'evidence');
      // Loaded here, not at the top: the Kubernetes client costs every other command ~100 MB.
      const [{ loadKubeConfig }, { Operator }] = await Promise.all([
        import('../kubernetes/kube-config.js'),
        import('../operator/operator.js'),
      ]);
      const kubeConfig = loadKubeConfig(flags.kubeconfig);
      const logger = await commandLogger('info');
      const operator = new Operator({
        kubeConfig,
        node,
        logger,
        evidenceDir,
        podLogsDir: flags.podLogsDir,
        hostRoot: flags.hostRoot,
        maxLayerBytes: flags.evidenceMaxLayerBytes,
        maxLogBytes: flags.evidenceMaxLogBytes,
        concurrency: flags.concurrency,
      });
      // Listening before starting: a signal during start-up also ends in a clean stop.
      const signalled = stopSignal();
      await Promise.race([operator.start(), signalled]);
      logger.info({ node, evidenceDir, server: kubeConfig.getCurrentCluster()?.server }, 'operator started');
      logger.info({ signal: await signalled }, 'stopping');
      await operator.stop();
      // Let actions in progress finish; one cut short stays Running and the next operator resumes it.
      const drained = await operator.drain(DRAIN_MS);
      logger.info({ stats: operator.stats, drained }, 'operator stopped');
    });
}
