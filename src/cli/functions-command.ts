/** `containment functions`: the OpenWhisk-compatible policy runtime, until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { PolicyHost } from '../functions/host/policy-host.js';
import type { EnforcementMode } from '../functions/host/sdk-config.js';
import { commandLogger, configOf, dataDirOf, stopSignal } from './common.js';
import { dataDirOption } from './help.js';

interface FunctionsFlags {
  host: string;
  port: number;
  dataDir?: string;
  sdkConfig?: string;
  enforcement?: EnforcementMode;
  kubeconfig?: string;
  rateLimit?: number;
  acceptLegacySignature?: boolean;
}

/**
 * The policy SDK's host from `--sdk-config` (none without it: policies can then only `notify`).
 * Every credential file is read now, so a bad one stops the start, not a policy later.
 */
async function sdkHost(flags: FunctionsFlags): Promise<PolicyHost | undefined> {
  if (flags.sdkConfig === undefined) {
    if (flags.enforcement !== undefined || flags.kubeconfig !== undefined)
      throw new ContainmentError(ErrorCodes.USAGE, '--enforcement and --kubeconfig need --sdk-config');
    return undefined;
  }
  const mode = flags.enforcement ?? 'http';
  if (flags.kubeconfig !== undefined && mode !== 'kubernetes')
    throw new ContainmentError(ErrorCodes.USAGE, '--kubeconfig is only used with --enforcement kubernetes');
  const { credentialsOf, loadSdkConfig } = await import('../functions/host/sdk-config.js');
  const { PolicySdkHost, httpEnforcement, httpFindings } =
    await import('../functions/host/policy-sdk-host.js');
  const config = loadSdkConfig(flags.sdkConfig, mode);
  let enforcement;
  if (mode === 'kubernetes') {
    const { loadKubeConfig } = await import('../kubernetes/kube-config.js');
    const { kubernetesEnforcement } = await import('../functions/host/kubernetes-enforcement-client.js');
    const fallback = loadKubeConfig(flags.kubeconfig);
    const perCluster = new Map(Object.entries(config.kubeconfigs).map(([c, f]) => [c, loadKubeConfig(f)]));
    enforcement = kubernetesEnforcement((cluster) => perCluster.get(cluster) ?? fallback);
  } else {
    enforcement = httpEnforcement(config.actionApi as string);
  }
  return new PolicySdkHost({
    credentials: credentialsOf(config),
    findings: httpFindings(config.scanner),
    enforcement,
  });
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535)
    throw new InvalidArgumentError('expected an integer from 0 to 65535');
  return n;
}

export function registerFunctionsCommand(program: Command): void {
  program
    .command('functions')
    .description('run the OpenWhisk-compatible policy runtime (actions, triggers, rules, activations)')
    .addOption(new Option('--host <address>', 'address to listen on').default('127.0.0.1'))
    .addOption(
      new Option('--port <n>', 'port to listen on (0 = any free port)').argParser(port).default(3233),
    )
    .addOption(dataDirOption())
    .addOption(
      new Option(
        '--sdk-config <file>',
        "the policy SDK's credentials: scanner URL and each function namespace's cluster, tokens and pod namespaces (YAML)",
      ),
    )
    .addOption(
      new Option(
        '--enforcement <mode>',
        "where the SDK's enforcement calls go: the local action API (http) or SecurityAction objects through the API server (kubernetes)",
      ).choices(['http', 'kubernetes']),
    )
    .addOption(
      new Option(
        '--kubeconfig <file>',
        'with --enforcement kubernetes: API server credentials (default: in-cluster ServiceAccount, else KUBECONFIG)',
      ),
    )
    .addOption(
      new Option(
        '--rate-limit <n>',
        'API requests per minute per source address (web endpoints: a fifth of it; 0 = no limit; default 6000)',
      ).argParser((value: string) => {
        if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number');
        return Number(value);
      }),
    )
    .addOption(
      new Option(
        '--accept-legacy-signature',
        'deprecated, for one release: also accept deliveries signed with containment-signature or X-Require-Whisk-Auth, which can be replayed',
      ),
    )
    .action(async (flags: FunctionsFlags, command: Command) => {
      // Logs go to stderr so stdout carries only the generated guest key.
      const logger = await commandLogger('info');
      // Loaded here, not at startup: other commands would pay for Fastify, esbuild and QuickJS.
      const { runFunctions } = await import('../functions/run-functions.js');
      const guestAuth = process.env.CONTAINMENT_FUNCTIONS_AUTH;
      const policyHost = await sdkHost(flags);
      const running = await runFunctions({
        host: flags.host,
        port: flags.port,
        dataDir: dataDirOf(flags, await configOf(command)),
        logger,
        ...(guestAuth === undefined || guestAuth === '' ? {} : { guestAuth }),
        ...(policyHost === undefined ? {} : { policyHost }),
        acceptLegacySignature: flags.acceptLegacySignature === true,
        ...(flags.rateLimit === undefined
          ? {}
          : {
              rateLimit:
                flags.rateLimit === 0
                  ? false
                  : {
                      api: { max: flags.rateLimit, windowMs: 60_000 },
                      web: { max: Math.max(1, Math.floor(flags.rateLimit / 5)), windowMs: 60_000 },
                    },
            }),
      });
      if (running.generatedGuestAuth !== undefined) {
        process.stderr.write('generated the key of namespace guest (shown only once):\n');
        process.stdout.write(`${running.generatedGuestAuth}\n`);
      }
      logger.info({ apihost: running.url }, 'function runtime listening');
      logger.info({ signal: await stopSignal() }, 'stopping');
      await running.close();
    });
}
