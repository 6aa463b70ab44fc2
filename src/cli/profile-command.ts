/**
 * `containment profile record`: a seccomp profile from the system calls one workload really
 * makes, recorded through eBPF on this node (OCI profile JSON, and optionally a Security
 * Profiles Operator `SeccompProfile`).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import yaml from 'js-yaml';
import { findEngineSocket } from '../engine/socket.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import {
  archOf,
  baseSyscalls,
  buildSeccompProfile,
  buildSpoSeccompProfile,
  syscallNames,
} from '../runtime/seccomp/profile.js';
import { recordSyscalls } from '../runtime/seccomp/recorder.js';
import { parseRecordTarget, resolveRecordTarget } from '../runtime/seccomp/target.js';
import type { TargetDeps } from '../runtime/seccomp/target.js';
import { preflight } from '../runtime/sensor/preflight.js';
import { parseDuration } from './agent-command.js';

interface RecordFlags {
  duration: number;
  output?: string;
  spoName?: string;
  spoNamespace?: string;
  spoOutput?: string;
  container?: string;
  base: boolean;
  engineSocket?: string;
  kubeconfig?: string;
  bpftrace?: string;
}

/** Both files appear whole or not at all. */
function writeAtomically(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
}

function targetDeps(flags: RecordFlags): TargetDeps {
  return {
    engine: async () => {
      const socket = findEngineSocket(flags.engineSocket, process.env);
      if (!socket)
        throw new ContainmentError(
          ErrorCodes.ENGINE_UNAVAILABLE,
          'no container engine socket found; pass --engine-socket or set CONTAINER_HOST',
        );
      const { DockerEngine } = await import('../engine/docker/docker-engine.js');
      return new DockerEngine(socket);
    },
    readPod: async (namespace, name) => {
      const k8s = await import('@kubernetes/client-node');
      const { loadKubeConfig } = await import('../kubernetes/kube-config.js');
      const api = loadKubeConfig(flags.kubeconfig).makeApiClient(k8s.CoreV1Api);
      try {
        return await api.readNamespacedPod({ namespace, name });
      } catch (e) {
        if ((e as { code?: number }).code === 404)
          throw new ContainmentError(ErrorCodes.TARGET_NOT_FOUND, `pod ${namespace}/${name} not found`);
        throw new ContainmentError(
          ErrorCodes.KUBERNETES_UNAVAILABLE,
          `cannot read pod ${namespace}/${name}: ${(e as Error).message.split('\n')[0]}`,
        );
      }
    },
  };
}

async function record(args: string[], flags: RecordFlags): Promise<void> {
  const target = parseRecordTarget(args, flags.container);
  if (flags.spoName !== undefined && flags.output === undefined && flags.spoOutput === undefined)
    throw new ContainmentError(ErrorCodes.USAGE, '--spo-name needs -o <file> or --spo-output <file>');
  const arch = archOf();
  const pf = preflight(flags.bpftrace ? { bpftrace: flags.bpftrace } : {});
  if (pf.mode !== 'ebpf')
    throw new ContainmentError(
      ErrorCodes.RECORDING_FAILED,
      `eBPF is not available: ${pf.reasons.join('; ')}`,
    );
  const resolved = await resolveRecordTarget(target, targetDeps(flags));
  process.stderr.write(`recording ${resolved.label} for ${flags.duration / 1000}s …\n`);
  const recording = await recordSyscalls({
    cgroupIds: resolved.cgroupIds,
    durationMs: flags.duration,
    ...(flags.bpftrace ? { bpftrace: flags.bpftrace } : {}),
  });
  const { observed, unknown } = syscallNames(recording.counts.keys(), arch);
  const profile = buildSeccompProfile(observed, arch, { includeBase: flags.base });
  const calls = [...recording.counts.values()].reduce((a, b) => a + b, 0);
  const json = `${JSON.stringify(profile, null, 2)}\n`;
  let spoText: string | undefined;
  if (flags.spoName !== undefined) {
    const namespace = flags.spoNamespace ?? (target.kind === 'pod' ? target.namespace : undefined);
    const spo = buildSpoSeccompProfile(profile, {
      name: flags.spoName,
      ...(namespace === undefined ? {} : { namespace }),
      labels: { 'app.kubernetes.io/managed-by': 'containment' },
    });
    spoText = yaml.dump(spo, { noRefs: true, lineWidth: 120 });
  }
  if (flags.output === undefined) process.stdout.write(json);
  else writeAtomically(flags.output, json);
  if (spoText !== undefined)
    writeAtomically(flags.spoOutput ?? (flags.output as string).replace(/(\.json)?$/, '.spo.yaml'), spoText);
  const baseAdded = baseSyscalls(arch).filter((n) => !observed.includes(n)).length;
  process.stderr.write(
    `${resolved.label}: ${observed.length} system calls observed (${calls} calls) on ${arch.name}` +
      `${flags.base ? `, ${baseAdded} added from the runtime base set` : ''}` +
      `${unknown.length > 0 ? `; numbers not in the ${arch.name} table (left out): ${unknown.join(', ')}` : ''}\n`,
  );
}

export function registerProfileCommand(program: Command): void {
  const profile = program
    .command('profile')
    .description('seccomp profiles recorded from what workloads really do');
  profile
    .command('record')
    .description(
      "record one workload's system calls through eBPF and write a seccomp profile allowing only those (plus the runtime's base set)",
    )
    .argument('<target...>', 'container:<name-or-id> (local engine) or pod <namespace>/<name> (on this node)')
    .option('--duration <duration>', 'how long to record, e.g. 60s or 5m', (v) => parseDuration(v), 60_000)
    .option('-o, --output <file>', 'write the OCI seccomp profile here (default: stdout)')
    .option('--spo-name <name>', 'also write a Security Profiles Operator SeccompProfile of this name')
    .option('--spo-namespace <namespace>', "the SeccompProfile's namespace (default: the pod's)")
    .option('--spo-output <file>', 'where the SeccompProfile goes (default: the -o file with .spo.yaml)')
    .option('--container <name>', "a pod target's container (needed when the pod has several)")
    .option('--no-base', "leave out the runtime base set (when SPO's baseProfileName supplies it)")
    .option('--engine-socket <path>', 'container engine API socket for container: targets')
    .option('--kubeconfig <file>', 'kubeconfig for pod targets')
    .option('--bpftrace <path>', 'the bpftrace binary (default: bpftrace on PATH)')
    .action(async (args: string[], flags: RecordFlags) => record(args, flags));
}
