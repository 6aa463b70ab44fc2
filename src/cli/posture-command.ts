/** `containment posture`: hardening posture of a cluster, manifest files and local containers. */
import { once } from 'node:events';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { findEngineSocket } from '../engine/socket.js';
import { HttpImageVerdictSource } from '../posture/image-scan-verdict.js';
import { policyReportsOf } from '../posture/policy-report.js';
import { POSTURE_FORMATS, renderPostureChunks } from '../posture/render-report.js';
import type { PostureFormat } from '../posture/render-report.js';
import { VERSION } from './common.js';

interface PostureFlags {
  kubeconfig?: string | true;
  file: string[];
  engine?: string | true;
  level: 'baseline' | 'restricted';
  format: PostureFormat;
  failBelow?: number;
  policyReports: boolean;
  allowedRegistry: string[];
  server?: string;
  token?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function score(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 100) throw new InvalidArgumentError('expected an integer 0-100');
  return n;
}

function registry(value: string, previous: string[]): string[] {
  const v = value.trim();
  if (v === '' || /[\s@]/.test(v) || v.includes('://'))
    throw new InvalidArgumentError(
      'expected a registry host (optionally with a repository prefix), e.g. ghcr.io/acme',
    );
  return [...previous, v];
}

export function registerPostureCommand(program: Command): void {
  program
    .command('posture')
    .description('find weak pod, namespace, RBAC, image and container configuration; score it 0-100')
    .option('--kubeconfig [file]', 'read a live cluster (default kubeconfig locations without a file)')
    .option(
      '-f, --file <path>',
      'manifest file or directory (multi-document YAML, JSON, List kinds, Helm output); repeatable',
      collect,
      [],
    )
    .option(
      '--engine [socket]',
      'check the local containers of this Docker-API engine (found automatically without a socket)',
    )
    .addOption(
      new Option('--level <level>', 'Pod Security Standards level pods are held to')
        .choices(['baseline', 'restricted'])
        .default('restricted'),
    )
    .addOption(
      new Option('--format <format>', 'output format').choices([...POSTURE_FORMATS]).default('table'),
    )
    .addOption(
      new Option('--fail-below <score>', 'exit 1 when the overall score is below this').argParser(score),
    )
    .option(
      '--policy-reports',
      'write wgpolicyk8s.io/v1alpha2 PolicyReports (per namespace) and a ClusterPolicyReport to the cluster',
      false,
    )
    .option(
      '--allowed-registry <registry>',
      'registry (or registry/repository prefix) images may come from; repeatable; default any',
      registry,
      [],
    )
    .addOption(
      new Option('--server <url>', 'scanner API base URL: images whose latest scan fails are findings').env(
        'CONTAINMENT_SERVER',
      ),
    )
    .addOption(new Option('--token <token>', 'bearer token for --server (viewer)').env('CONTAINMENT_TOKEN'))
    .action(async (flags: PostureFlags) => {
      if (flags.kubeconfig === undefined && flags.file.length === 0 && flags.engine === undefined) {
        throw new ContainmentError(
          ErrorCodes.USAGE,
          'nothing to check: give --kubeconfig, -f <file|dir> or --engine',
        );
      }
      if (flags.policyReports && flags.kubeconfig === undefined) {
        throw new ContainmentError(
          ErrorCodes.USAGE,
          '--policy-reports writes to a cluster: it needs --kubeconfig',
        );
      }
      if ((flags.server === undefined) !== (flags.token === undefined)) {
        throw new ContainmentError(ErrorCodes.USAGE, '--server and --token go together');
      }
      if (flags.server !== undefined && !/^https?:\/\/[^/]/.test(flags.server)) {
        throw new ContainmentError(
          ErrorCodes.USAGE,
          `--server must be an http(s) URL, got ${JSON.stringify(flags.server)}`,
        );
      }
      let engineSocket: string | undefined;
      if (flags.engine !== undefined) {
        engineSocket = findEngineSocket(flags.engine === true ? undefined : flags.engine, process.env);
        if (!engineSocket)
          throw new ContainmentError(
            ErrorCodes.ENGINE_UNAVAILABLE,
            'no container engine socket found (give --engine <socket>)',
          );
      }
      // Loaded here, not at the top: the Kubernetes client costs every other command ~100 MB.
      const { runPosture } = await import('../posture/run-posture.js');
      const { report, kubeConfig } = await runPosture({
        level: flags.level,
        ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
        files: flags.file,
        ...(engineSocket !== undefined ? { engineSocket } : {}),
        ...(flags.allowedRegistry.length > 0 ? { allowedRegistries: flags.allowedRegistry } : {}),
        ...(flags.server !== undefined && flags.token !== undefined
          ? { verdicts: new HttpImageVerdictSource({ server: flags.server, token: flags.token }) }
          : {}),
      });
      if (flags.policyReports && kubeConfig) {
        const reports = policyReportsOf(report);
        const { writePolicyReports } = await import('../posture/kubernetes/write-policy-reports.js');
        await writePolicyReports(kubeConfig, reports);
        const cluster = reports.filter((r) => r.kind === 'ClusterPolicyReport').length;
        process.stderr.write(
          `wrote ${reports.length - cluster} PolicyReports and ${cluster} ClusterPolicyReports\n`,
        );
      }
      for (const chunk of renderPostureChunks(report, flags.format, VERSION)) {
        // Wait for a slow reader instead of queueing the whole report in memory.
        if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
      }
      if (flags.failBelow !== undefined && report.score < flags.failBelow) {
        process.stderr.write(`posture score ${report.score} is below ${flags.failBelow}\n`);
        process.exitCode = 1;
      }
    });
}
