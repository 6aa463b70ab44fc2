/**
 * `containment profile record`: a seccomp profile from the system calls one workload really
 * makes, recorded through eBPF on this node (OCI profile JSON, and optionally a Security
 * Profiles Operator `SeccompProfile`).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
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
import { countsOf, startRecorder } from '../runtime/seccomp/recorder.js';
import { parseRecordTarget, resolveRecordTarget } from '../runtime/seccomp/target.js';
import type { RecordTarget, ResolvedTarget, TargetDeps } from '../runtime/seccomp/target.js';
import { preflight } from '../runtime/sensor/preflight.js';
import { parseDuration } from './options.js';

interface RecordFlags {
  duration: number;
  output?: string;
  spoName?: string;
  spoNamespace?: string;
  spoOutput?: string;
  container?: string;
  /** undefined: the default (added when attaching to a running workload, not --from-start). */
  base?: boolean;
  fromStart: boolean;
  startTimeout: number;
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until the target runs (from-start mode); other errors end the wait at once. */
async function waitForTarget(
  target: RecordTarget,
  deps: TargetDeps,
  timeoutMs: number,
): Promise<ResolvedTarget> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await resolveRecordTarget(target, deps);
    } catch (e) {
      const code = (e as { code?: string }).code;
      const notYet = code === ErrorCodes.CONTAINER_NOT_FOUND || code === ErrorCodes.RECORDING_FAILED;
      if (!notYet || Date.now() >= deadline) throw e;
    }
    await sleep(200);
  }
}

/** Records and returns the target and its syscall counts (by number). */
async function recordTarget(
  target: RecordTarget,
  flags: RecordFlags,
): Promise<{ resolved: ResolvedTarget; counts: Map<number, number> }> {
  const pf = preflight({ needs: 'bpftrace', ...(flags.bpftrace ? { bpftrace: flags.bpftrace } : {}) });
  if (pf.mode !== 'ebpf')
    throw new ContainmentError(
      ErrorCodes.RECORDING_FAILED,
      `eBPF is not available: ${pf.reasons.join('; ')}`,
    );
  const deps = targetDeps(flags);
  const bin = flags.bpftrace ? { bpftrace: flags.bpftrace } : {};
  const label =
    target.kind === 'container' ? `container:${target.name}` : `pod ${target.namespace}/${target.name}`;
  if (!flags.fromStart) {
    const resolved = await resolveRecordTarget(target, deps);
    const recorder = await startRecorder({
      filter: { kind: 'cgroups', cgroupIds: resolved.cgroupIds },
      durationMs: flags.duration,
      ...bin,
    });
    process.stderr.write(`recording ${resolved.label} for ${flags.duration / 1000}s …\n`);
    return { resolved, counts: countsOf(await recorder.finished, resolved.cgroupIds) };
  }
  const recorder = await startRecorder({
    filter: { kind: 'seccomp', hostPidLevel: pf.hostPidLevel },
    ...bin,
  });
  try {
    process.stderr.write(`recording: start ${label} now (waiting up to ${flags.startTimeout / 1000}s) …\n`);
    const resolved = await waitForTarget(target, deps, flags.startTimeout);
    process.stderr.write(`recording ${resolved.label} from its start for ${flags.duration / 1000}s …\n`);
    await sleep(flags.duration);
    // Cgroups made since the start (a runtime's sub-cgroup) count too; the container may be gone.
    const ids = new Set(resolved.cgroupIds);
    await resolveRecordTarget(target, deps).then(
      (r) => r.cgroupIds.forEach((id) => ids.add(id)),
      () => undefined,
    );
    recorder.stop();
    return { resolved, counts: countsOf(await recorder.finished, ids) };
  } finally {
    recorder.stop();
    await recorder.finished.catch(() => undefined);
  }
}

async function record(args: string[], flags: RecordFlags): Promise<void> {
  const target = parseRecordTarget(args, flags.container);
  if (flags.spoName !== undefined && flags.output === undefined && flags.spoOutput === undefined)
    throw new ContainmentError(ErrorCodes.USAGE, '--spo-name needs -o <file> or --spo-output <file>');
  const arch = archOf();
  const { resolved, counts } = await recordTarget(target, flags);
  const { observed, unknown } = syscallNames(counts.keys(), arch);
  if (observed.length === 0)
    throw new ContainmentError(
      ErrorCodes.RECORDING_FAILED,
      `no system calls of ${resolved.label} were recorded${flags.fromStart ? " (--from-start counts calls made under a seccomp filter: start the workload with its runtime's default profile, not unconfined)" : ''}`,
    );
  // From its start, the runtime's own steps after loading the filter were recorded.
  const includeBase = flags.base ?? !flags.fromStart;
  const profile = buildSeccompProfile(observed, arch, { includeBase });
  const calls = [...counts.values()].reduce((a, b) => a + b, 0);
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
  const baseAdded = includeBase ? baseSyscalls(arch).filter((n) => !observed.includes(n)).length : 0;
  process.stderr.write(
    `${resolved.label}: ${observed.length} system calls observed (${calls} calls) on ${arch.name}` +
      `${includeBase ? `, ${baseAdded} added from the runtime base set` : ''}` +
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
      "record one workload's system calls through eBPF and write a seccomp profile allowing only those",
    )
    .argument('<target...>', 'container:<name-or-id> (local engine) or pod <namespace>/<name> (on this node)')
    .addOption(
      new Option('--duration <duration>', 'how long to record, e.g. 60s or 5m')
        .argParser((v) => parseDuration(v))
        .default(60_000, '60s'),
    )
    .option('-o, --output <file>', 'write the OCI seccomp profile here (default: stdout)')
    .option('--spo-name <name>', 'also write a Security Profiles Operator SeccompProfile of this name')
    .option('--spo-namespace <namespace>', "the SeccompProfile's namespace (default: the pod's)")
    .option('--spo-output <file>', 'where the SeccompProfile goes (default: the -o file with .spo.yaml)')
    .option('--container <name>', "a pod target's container (needed when the pod has several)")
    .option(
      '--from-start',
      'start recording first, then wait for the workload to start (start it yourself): its start-up is recorded too',
    )
    .addOption(
      new Option(
        '--start-timeout <duration>',
        'with --from-start: how long to wait for the workload to start',
      )
        .argParser((v) => parseDuration(v))
        .default(300_000, '5m'),
    )
    .option('--base', 'add the runtime base set (the default unless --from-start)')
    .option('--no-base', "leave out the runtime base set (e.g. when SPO's baseProfileName supplies it)")
    .option('--engine-socket <path>', 'container engine API socket for container: targets')
    .option('--kubeconfig <file>', 'kubeconfig for pod targets')
    .option('--bpftrace <path>', 'the bpftrace binary (default: bpftrace on PATH)')
    .action(async (args: string[], flags: RecordFlags) => record(args, flags));
}
