/** Installs the chart's SecurityAction CRD (the file itself, never a copy) into a test API server. */
import * as k8s from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isConflict } from './api-errors.js';
import { repoRoot } from '../testing/shared-data.js';
import { CRD_NAME } from './security-action-api.js';

export const crdManifestPath = join(
  repoRoot,
  'deploy',
  'helm',
  'containment',
  'crds',
  'securityactions.containment.dev.yaml',
);

export function loadCrdManifest(path = crdManifestPath): k8s.V1CustomResourceDefinition {
  // Through client-node's typed model: its serializer drops keys it does not know by their
  // model names (`enum` is `_enum` there), which would silently strip the schema's validation.
  return k8s.loadYaml<k8s.V1CustomResourceDefinition>(readFileSync(path, 'utf8'));
}

/** Creates (or keeps) the CRD and waits until the API server serves it. */
export async function installCrd(kubeConfig: k8s.KubeConfig, timeoutMs = 30_000): Promise<void> {
  const api = kubeConfig.makeApiClient(k8s.ApiextensionsV1Api);
  try {
    await api.createCustomResourceDefinition({ body: loadCrdManifest() });
  } catch (e) {
    if (!isConflict(e)) throw e;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const crd = await api.readCustomResourceDefinition({ name: CRD_NAME });
    if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
    if (Date.now() > deadline) throw new Error(`CRD ${CRD_NAME} was not established in time`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
