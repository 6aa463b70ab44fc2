/** `containment harden`: a patch bringing a workload to the Pod Security restricted level. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import yaml from 'js-yaml';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { hardenWorkload } from '../posture/harden.js';
import { parseSeccompProfile } from '../runtime/seccomp/profile.js';
import { parseManifests } from '../posture/manifests/load-manifests.js';
import type { HardeningResult } from '../posture/harden.js';
import { POD_OWNING_KINDS } from '../posture/workload-pods.js';

interface HardenFlags {
  filename?: string;
  kubeconfig?: string;
  format: 'yaml' | 'json';
  seccompProfile?: string;
  seccompLocalhost?: string;
}

interface SeccompChoice {
  /** The kubelet-relative path the patch names. */
  localhost: string;
  file: string;
}

/** Checks the recorded profile is one, and where the kubelet will find it. */
function seccompChoice(flags: HardenFlags): SeccompChoice | undefined {
  if (flags.seccompProfile === undefined) {
    if (flags.seccompLocalhost !== undefined)
      throw new ContainmentError(ErrorCodes.USAGE, '--seccomp-localhost needs --seccomp-profile <file>');
    return undefined;
  }
  let text: string;
  try {
    text = readFileSync(flags.seccompProfile, 'utf8');
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.TARGET_NOT_FOUND,
      `cannot read ${flags.seccompProfile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  parseSeccompProfile(text, flags.seccompProfile);
  const localhost = flags.seccompLocalhost ?? basename(flags.seccompProfile);
  if (localhost.startsWith('/') || localhost.split('/').includes('..'))
    throw new ContainmentError(
      ErrorCodes.USAGE,
      `--seccomp-localhost must be relative to the kubelet's seccomp directory, got "${localhost}"`,
    );
  return { localhost, file: flags.seccompProfile };
}

/** API version of each pod-owning kind, for reading it from a cluster. */
const API_VERSIONS: Readonly<Record<string, string>> = {
  Pod: 'v1',
  ReplicationController: 'v1',
  Deployment: 'apps/v1',
  ReplicaSet: 'apps/v1',
  StatefulSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  Job: 'batch/v1',
  CronJob: 'batch/v1',
};

/** `deployment`, `deployments`, `Deployment` → `Deployment`. */
function kindOf(value: string): string {
  const lower = value.toLowerCase();
  const kind = POD_OWNING_KINDS.find((k) => [k.toLowerCase(), `${k.toLowerCase()}s`].includes(lower));
  if (!kind) {
    throw new ContainmentError(
      ErrorCodes.USAGE,
      `kind "${value}" does not own pods (one of ${POD_OWNING_KINDS.join(', ')})`,
    );
  }
  return kind;
}

function readManifest(path: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.TARGET_NOT_FOUND,
      `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  // The same reader as `posture -f`: multi-document YAML, JSON, List kinds, one-line errors.
  return parseManifests(text, path === '-' ? '<stdin>' : path).map((input) => input.object);
}

async function readFromCluster(kubeconfig: string | undefined, ref: string): Promise<unknown> {
  const parts = ref.split('/');
  if (parts.length !== 3 || parts.some((p) => p === '')) {
    throw new ContainmentError(ErrorCodes.USAGE, `expected <namespace>/<kind>/<name>, got "${ref}"`);
  }
  const [namespace, kindName, name] = parts as [string, string, string];
  const kind = kindOf(kindName);
  const k8s = await import('@kubernetes/client-node');
  const { loadKubeConfig } = await import('../kubernetes/kube-config.js');
  const client = k8s.KubernetesObjectApi.makeApiClient(loadKubeConfig(kubeconfig));
  try {
    const object = await client.read({
      apiVersion: API_VERSIONS[kind] as string,
      kind,
      metadata: { name, namespace },
    });
    // Some client versions drop apiVersion/kind from typed reads; the template lookup needs kind.
    return { ...object, kind };
  } catch (e) {
    const code = (e as { code?: number }).code;
    if (code === 404)
      throw new ContainmentError(ErrorCodes.TARGET_NOT_FOUND, `${kind} ${namespace}/${name} not found`);
    throw new ContainmentError(
      ErrorCodes.KUBERNETES_UNAVAILABLE,
      `cannot read ${kind} ${namespace}/${name}: ${(e as Error).message.split('\n')[0]}`,
    );
  }
}

function yamlDocument(r: HardeningResult, seccomp: SeccompChoice | undefined): string {
  const where = r.namespace === undefined ? '' : ` -n ${r.namespace}`;
  const header = [
    `# ${r.kind} ${r.name}${r.namespace === undefined ? '' : ` (namespace ${r.namespace})`}: strategic-merge patch to the restricted level`,
    `# apply: kubectl patch ${r.kind.toLowerCase()} ${r.name}${where} --type strategic --patch-file <this file>`,
    seccomp === undefined
      ? '# seccomp: RuntimeDefault (record a tighter one: containment profile record, then --seccomp-profile)'
      : `# seccomp: Localhost ${seccomp.localhost}, recorded in ${seccomp.file}: copy it to <kubelet root>/seccomp/${seccomp.localhost} on every node, or apply its SeccompProfile (Security Profiles Operator)`,
    ...r.notes.map((n) => `# note: ${n}`),
  ];
  return `${header.join('\n')}\n${yaml.dump(r.patch, { noRefs: true, lineWidth: 120 })}`;
}

export function registerHardenCommand(program: Command): void {
  program
    .command('harden')
    .description(
      'print a strategic-merge patch (securityContext for the pod and every container) that brings a workload to the Pod Security restricted level',
    )
    .argument('[workload]', 'with --kubeconfig: <namespace>/<kind>/<name> read from the cluster')
    .option('-f, --filename <file>', 'manifest file (YAML or JSON, several documents allowed; - for stdin)')
    .option('--kubeconfig <file>', 'read the workload from this cluster')
    .addOption(new Option('--format <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .option(
      '--seccomp-profile <file>',
      'propose this recorded profile (containment profile record) as seccompProfile Localhost instead of RuntimeDefault',
    )
    .option(
      '--seccomp-localhost <path>',
      "the profile's path under the kubelet's seccomp directory (default: the file's name; SPO: operator/<ns>/<name>.json)",
    )
    .action(async (workload: string | undefined, flags: HardenFlags) => {
      if ((flags.filename === undefined) === (workload === undefined)) {
        throw new ContainmentError(
          ErrorCodes.USAGE,
          'give either -f <manifest> or <namespace>/<kind>/<name> (with --kubeconfig)',
        );
      }
      const seccomp = seccompChoice(flags);
      const objects =
        flags.filename !== undefined
          ? readManifest(flags.filename).filter((o) =>
              POD_OWNING_KINDS.includes(String((o as { kind?: unknown } | null)?.kind)),
            )
          : [await readFromCluster(flags.kubeconfig, workload as string)];
      if (objects.length === 0) {
        throw new ContainmentError(
          ErrorCodes.MANIFEST_INVALID,
          `${flags.filename ?? 'input'} holds no Pod or pod-owning workload`,
        );
      }
      const results = objects.map((o) =>
        hardenWorkload(o, seccomp === undefined ? {} : { seccompLocalhostProfile: seccomp.localhost }),
      );
      if (flags.format === 'json') {
        process.stdout.write(
          `${JSON.stringify(
            results.map(({ remaining: _remaining, ...r }) => r),
            null,
            2,
          )}\n`,
        );
        return;
      }
      process.stdout.write(results.map((r) => yamlDocument(r, seccomp)).join('---\n'));
    });
}
