/** `containment admission`: the validating admission webhook, until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { resolveThresholds } from '../config/config.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { commandLogger, configOf, stopSignal } from './common.js';

interface AdmissionFlags {
  host: string;
  port: number;
  tlsCert?: string;
  tlsKey?: string;
  mode: 'deny' | 'warn';
  level: 'privileged' | 'baseline' | 'restricted';
  denyUnknownImages: boolean;
  allowedRegistry: string[];
  exemptNamespace: string[];
  server?: string;
  token?: string;
  threshold: string[];
  cacheTtl: number;
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

const repeatable = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerAdmissionCommand(program: Command): void {
  program
    .command('admission')
    .description(
      'serve a ValidatingAdmissionWebhook (admission.k8s.io/v1) that refuses Pods and workloads with failing or unscanned images, disallowed registries or Pod Security violations',
    )
    .addOption(new Option('--host <address>', 'address to listen on').default('0.0.0.0'))
    .addOption(
      new Option('--port <n>', 'HTTPS port (0 = any free port)').argParser(integer(0, 65535)).default(8443),
    )
    .addOption(new Option('--tls-cert <file>', 'PEM serving certificate (chain)').env('CONTAINMENT_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'PEM private key').env('CONTAINMENT_TLS_KEY'))
    .addOption(
      new Option('--mode <mode>', 'deny: refuse on any problem; warn: admit and return warnings')
        .choices(['deny', 'warn'])
        .default('deny'),
    )
    .addOption(
      new Option('--level <level>', 'Pod Security Standards level pods must meet (privileged: no check)')
        .choices(['privileged', 'baseline', 'restricted'])
        .default('baseline'),
    )
    .option(
      '--deny-unknown-images',
      'refuse images the scanner has never scanned (or cannot be asked about)',
      false,
    )
    .addOption(
      new Option(
        '--allowed-registry <registry>',
        'registry (or registry/repository prefix) images may come from; repeatable; default any',
      )
        .argParser(repeatable)
        .default([]),
    )
    .addOption(
      new Option('--exempt-namespace <namespace>', 'namespace never checked; repeatable')
        .argParser(repeatable)
        .default([]),
    )
    .addOption(
      new Option('--server <url>', 'scanner API base URL; without it scans are not checked').env(
        'CONTAINMENT_SERVER',
      ),
    )
    .addOption(
      new Option('--token <token>', 'bearer token for the scanner (viewer)').env('CONTAINMENT_TOKEN'),
    )
    .addOption(
      new Option(
        '--threshold <SEVERITY=N>',
        "compliance threshold an image's latest scan must meet, repeatable, as `scan --threshold` (default CRITICAL=0 HIGH=5 MEDIUM=20 LOW=50)",
      )
        .argParser(repeatable)
        .default([]),
    )
    .addOption(
      new Option('--cache-ttl <ms>', 'how long a scanner answer about an image is reused')
        .argParser(integer(0, 3_600_000))
        .default(5000),
    )
    .action(async (flags: AdmissionFlags, command: Command) => {
      // An empty CONTAINMENT_SERVER / CONTAINMENT_TOKEN is no setting at all.
      if (flags.server === '') delete flags.server;
      if (flags.token === '') delete flags.token;
      if (!flags.tlsCert || !flags.tlsKey) {
        // The API server calls webhooks over HTTPS only.
        throw new ContainmentError(ErrorCodes.USAGE, '--tls-cert and --tls-key are required');
      }
      if (flags.server !== undefined && !flags.token) {
        throw new ContainmentError(ErrorCodes.USAGE, '--server needs --token or CONTAINMENT_TOKEN');
      }
      if (flags.server === undefined && flags.denyUnknownImages) {
        throw new ContainmentError(ErrorCodes.USAGE, '--deny-unknown-images needs --server (the scanner)');
      }
      if (flags.server !== undefined && !/^https?:\/\/[^/]/.test(flags.server)) {
        throw new ContainmentError(
          ErrorCodes.USAGE,
          `--server: expected an http(s) URL, got "${flags.server}"`,
        );
      }
      const thresholds = resolveThresholds(flags.threshold, process.env, await configOf(command));
      const logger = await commandLogger('info');
      const stopping = stopSignal();
      const { runAdmissionServer } = await import('../admission/run-admission.js');
      const running = await runAdmissionServer({
        host: flags.host,
        port: flags.port,
        tls: { certFile: flags.tlsCert, keyFile: flags.tlsKey },
        policy: {
          mode: flags.mode,
          level: flags.level,
          denyUnknownImages: flags.denyUnknownImages,
          allowedRegistries: flags.allowedRegistry,
          exemptNamespaces: flags.exemptNamespace,
        },
        ...(flags.server !== undefined && flags.token
          ? { scanner: { server: flags.server, token: flags.token, thresholds, cacheTtlMs: flags.cacheTtl } }
          : {}),
        logger,
      });
      logger.info({ url: running.url, mode: flags.mode, level: flags.level }, 'admission webhook listening');
      logger.info({ signal: await stopping }, 'stopping');
      await running.close();
    });
}
