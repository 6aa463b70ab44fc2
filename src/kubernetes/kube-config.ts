/**
 * Credentials for the API server: a kubeconfig file when one is given, else the pod's own
 * ServiceAccount (in-cluster), else the usual `KUBECONFIG` / `~/.kube/config`.
 */
import * as k8s from '@kubernetes/client-node';
import { ContainmentError, ErrorCodes } from '../errors.js';

export function loadKubeConfig(file?: string, env: NodeJS.ProcessEnv = process.env): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  try {
    if (file !== undefined) kc.loadFromFile(file);
    else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else kc.loadFromDefault();
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `cannot load Kubernetes credentials${file === undefined ? '' : ` from ${file}`}: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `no Kubernetes cluster configured${file === undefined ? ' (pass --kubeconfig)' : ` in ${file}`}`,
    );
  }
  return kc;
}
