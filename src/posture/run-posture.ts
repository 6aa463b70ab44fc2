/**
 * One posture run: read the inputs (live cluster, manifest files, local containers), look up image
 * scan verdicts when a source is given, evaluate, score. Inputs are all read and validated before
 * anything is evaluated or written.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { evaluateContainer } from './evaluate-containers.js';
import { evaluateObjects, imagesOf, namespaceOf } from './evaluate-objects.js';
import type { ImageVerdict, ImageVerdictSource } from './image-scan-verdict.js';
import { readContainers } from './engine/read-containers.js';
import { loadKubeConfig } from '../kubernetes/kube-config.js';
import { readCluster } from './kubernetes/read-cluster.js';
import { loadManifests } from './manifests/load-manifests.js';
import type { PodSecurityLevel } from './pod-security.js';
import { buildReport } from './score.js';
import type { PostureFinding, PostureInput, PostureReport } from './types.js';

export interface PostureRunOptions {
  level: PodSecurityLevel;
  /** Read a live cluster: a kubeconfig path, or `true` for the default locations. */
  kubeconfig?: string | true;
  files?: string[];
  /** Engine API socket for local containers. */
  engineSocket?: string;
  allowedRegistries?: string[];
  verdicts?: ImageVerdictSource;
}

export interface PostureRun {
  report: PostureReport;
  /** The cluster's KubeConfig when one was read (to write PolicyReports with). */
  kubeConfig?: KubeConfig;
}

export async function runPosture(options: PostureRunOptions): Promise<PostureRun> {
  const warnings: string[] = [];
  const namespaces = new Set<string>();
  // Manifests first: a bad file fails fast, before any network call.
  const manifestInputs = options.files && options.files.length > 0 ? loadManifests(options.files) : [];
  let kubeConfig: KubeConfig | undefined;
  let clusterInputs: PostureInput[] = [];
  if (options.kubeconfig !== undefined) {
    kubeConfig = loadKubeConfig(options.kubeconfig === true ? undefined : options.kubeconfig);
    const read = await readCluster(kubeConfig);
    clusterInputs = read.inputs;
    read.namespaces.forEach((n) => namespaces.add(n));
    warnings.push(...read.warnings);
  }
  const engine = options.engineSocket !== undefined ? await readContainers(options.engineSocket) : undefined;

  const findings: PostureFinding[] = [];
  for (const inputs of [clusterInputs, manifestInputs]) {
    if (inputs.length === 0) continue;
    let imageVerdicts: Map<string, ImageVerdict> | undefined;
    if (options.verdicts) {
      const images = imagesOf(inputs);
      const verdicts = await Promise.all(images.map((i) => options.verdicts!.verdict(i)));
      imageVerdicts = new Map(images.map((image, i) => [image, verdicts[i]!]));
      const unreachable = verdicts.filter((v) => v.status === 'unknown' && v.unreachable);
      if (unreachable.length > 0) {
        warnings.push(
          `${unreachable.length} image scan verdicts unavailable: ${unreachable[0]!.status === 'unknown' ? unreachable[0]!.reason : ''}`,
        );
      }
    }
    const objectFindings = evaluateObjects(inputs, {
      level: options.level,
      ...(options.allowedRegistries ? { allowedRegistries: options.allowedRegistries } : {}),
      ...(imageVerdicts ? { imageVerdicts } : {}),
    });
    findings.push(...objectFindings);
    // Every namespace holding an evaluated object gets a score, clean or not.
    for (const { object } of inputs) {
      const ns = namespaceOf(object);
      if (ns !== undefined) namespaces.add(ns);
    }
  }
  if (engine) for (const c of engine.containers) findings.push(...evaluateContainer(c, engine.engine));
  namespaces.delete('');
  return {
    report: buildReport({
      level: options.level,
      findings,
      namespaces,
      evaluated: clusterInputs.length + manifestInputs.length + (engine?.containers.length ?? 0),
      warnings,
    }),
    ...(kubeConfig ? { kubeConfig } : {}),
  };
}
