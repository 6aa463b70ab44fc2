/**
 * The policy SDK's enforcement in cluster mode: a `SecurityAction` custom resource created in the
 * target pod's namespace through the API server, with the policy runtime's own ServiceAccount
 * (RBAC: securityactions get/list/watch/create, pods get — nothing more). The node operators act
 * on it; `wait` follows its status until Succeeded or Failed.
 *
 * The action carries `containment.dev/node=<spec.nodeName>` of the target pod so that only that
 * node's operator receives it, and the pod's UID, so a pod replaced under the same name is not
 * hit. The name is the action id: creating it again (a retried activation) returns the existing
 * object instead of a second action; the same name for a different request is refused.
 *
 * Which namespaces a policy may act in is the host's decision (`PolicySdkHost.allow`), made
 * before this client is called.
 */
import * as k8s from '@kubernetes/client-node';
import { apiMessage, apiStatus, isNotFound } from '../../kubernetes/api-errors.js';
import { ListWatcher } from '../../kubernetes/list-watch.js';
import type { ListPage } from '../../kubernetes/list-watch.js';
import { parseSecurityAction, securityActionSchema } from '../../enforcement/security-action.js';
import type { SecurityAction, SecurityActionInput } from '../../enforcement/security-action.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import {
  API_VERSION,
  GROUP as SECURITY_ACTION_GROUP,
  KIND,
  NODE_LABEL,
  PLURAL as SECURITY_ACTION_PLURAL,
  VERSION as SECURITY_ACTION_VERSION,
} from '../../kubernetes/security-action-api.js';
import type { EnforcementClient, LabelOutcome } from './enforcement-client.js';
import type { NamespaceCredentials } from './policy-sdk-host.js';

/** As long as the longest OpenWhisk action may run: a waiting policy cannot outlive it anyway. */
export const DEFAULT_WAIT_TIMEOUT_MS = 300_000;

export interface KubernetesEnforcementClientOptions {
  /** The runtime's own credentials (in-cluster ServiceAccount, or a kubeconfig). */
  kubeConfig: k8s.KubeConfig;
  /** For messages: which cluster this client acts in. */
  cluster?: string;
  /** How long `wait` follows an action's status. Default DEFAULT_WAIT_TIMEOUT_MS. */
  waitTimeoutMs?: number;
}

const FINAL = new Set(['Succeeded', 'Failed']);
/** The wait reports through its result, not a log. */
const quiet = { info: () => undefined, warn: () => undefined };
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const THROTTLE_ATTEMPTS = 5;

/**
 * Runs `call` again while the API server answers 429 (it says so when busy, or while a new
 * resource's storage initializes); any other failure is the caller's to report.
 */
async function throttled<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (e) {
      if (apiStatus(e) !== 429 || attempt === THROTTLE_ATTEMPTS) throw e;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}

function codeFor(e: unknown, otherwise: ErrorCode): ErrorCode {
  const status = apiStatus(e);
  if (status === 401) return ErrorCodes.UNAUTHENTICATED;
  if (status === 403) return ErrorCodes.FORBIDDEN;
  if (status === 400 || status === 422) return ErrorCodes.ACTION_INVALID;
  return otherwise;
}

export class KubernetesEnforcementClient implements EnforcementClient {
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly where: string;

  constructor(private readonly options: KubernetesEnforcementClientOptions) {
    this.core = options.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.custom = options.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    this.where = `cluster ${options.cluster ?? options.kubeConfig.getCurrentCluster()?.server ?? 'kubernetes'}`;
  }

  async create(input: SecurityActionInput, options: { wait: boolean }): Promise<SecurityAction> {
    const action = parseSecurityAction(input);
    const { name } = action.metadata;
    const { target } = action.spec;
    const namespace = action.metadata.namespace ?? target.namespace;
    if (namespace !== target.namespace) {
      throw new ContainmentError(
        ErrorCodes.ACTION_INVALID,
        `SecurityAction ${name}: must be created in its target's namespace ${target.namespace}, not ${namespace}`,
      );
    }
    const what = `SecurityAction ${namespace}/${name} in ${this.where}`;
    const pod = await this.pod(target.namespace, target.pod, what);
    const node = pod.spec?.nodeName;
    const body = {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: {
        name,
        namespace,
        // Unscheduled: no label; the operator that sees it first labels it once the pod has a node.
        ...(node ? { labels: { [NODE_LABEL]: node } } : {}),
      },
      spec: { ...action.spec, target: { ...target, uid: target.uid ?? pod.metadata?.uid } },
    };
    let created: SecurityAction;
    try {
      created = this.parse(
        await throttled(() =>
          this.custom.createNamespacedCustomObject({ ...this.resource(namespace), body }),
        ),
        what,
      );
    } catch (e) {
      if (apiStatus(e) !== 409) throw this.failure(e, what, ErrorCodes.ENFORCEMENT_FAILED);
      created = await this.existing(namespace, name, body.spec, what);
    }
    if (!options.wait || FINAL.has(created.status?.phase ?? '')) return created;
    return this.waitFor(namespace, name, what);
  }

  /**
   * A JSON merge patch of the pod's `metadata.labels`, pinned to the UID read just before (a pod
   * replaced under the same name meanwhile is refused by the API server, not relabelled). A dry
   * run sends the same patch with `dryRun=All`: the API server authorizes and validates it and
   * stores nothing. Labels the pod already has are not patched again.
   */
  async label(
    target: { namespace: string; pod: string },
    labels: Record<string, string>,
    options: { dryRun: boolean },
  ): Promise<LabelOutcome> {
    const what = `kubernetes.label(${target.namespace}/${target.pod}) in ${this.where}`;
    const pod = await this.pod(target.namespace, target.pod, what);
    const uid = pod.metadata?.uid ?? '';
    const current = pod.metadata?.labels ?? {};
    const changed = Object.keys(labels)
      .filter((k) => current[k] !== labels[k])
      .sort();
    const list = changed.map((k) => `${k}=${labels[k]}`).join(', ');
    if (changed.length === 0) return { uid, changed, message: 'the pod already has these labels' };
    try {
      await throttled(() =>
        this.core.patchNamespacedPod(
          {
            name: target.pod,
            namespace: target.namespace,
            body: { metadata: { uid, labels } },
            ...(options.dryRun ? { dryRun: 'All' } : {}),
          },
          mergePatch,
        ),
      );
    } catch (e) {
      if (apiStatus(e) === 409 || isNotFound(e)) {
        throw new ContainmentError(
          ErrorCodes.ENFORCEMENT_FAILED,
          `${what}: the pod was deleted or replaced while it was being labelled (uid ${uid})`,
          { cause: e },
        );
      }
      throw this.failure(e, what, ErrorCodes.KUBERNETES_UNAVAILABLE);
    }
    return {
      uid,
      changed,
      message: options.dryRun
        ? `dry run: would set ${list} (accepted by the API server, not stored)`
        : `set ${list}`,
    };
  }

  private resource(namespace: string): {
    group: string;
    version: string;
    namespace: string;
    plural: string;
  } {
    return {
      group: SECURITY_ACTION_GROUP,
      version: SECURITY_ACTION_VERSION,
      namespace,
      plural: SECURITY_ACTION_PLURAL,
    };
  }

  private async pod(namespace: string, name: string, what: string): Promise<k8s.V1Pod> {
    try {
      return await throttled(() => this.core.readNamespacedPod({ namespace, name }));
    } catch (e) {
      if (isNotFound(e)) {
        throw new ContainmentError(
          ErrorCodes.ACTION_INVALID,
          `${what}: target pod ${namespace}/${name} does not exist`,
        );
      }
      throw this.failure(e, `${what}: reading pod ${namespace}/${name}`, ErrorCodes.KUBERNETES_UNAVAILABLE);
    }
  }

  /** The action already created under `name` — the same request only. */
  private async existing(
    namespace: string,
    name: string,
    spec: SecurityAction['spec'],
    what: string,
  ): Promise<SecurityAction> {
    let found: SecurityAction;
    try {
      found = this.parse(
        await throttled(() => this.custom.getNamespacedCustomObject({ ...this.resource(namespace), name })),
        what,
      );
    } catch (e) {
      throw this.failure(e, what, ErrorCodes.KUBERNETES_UNAVAILABLE);
    }
    const same =
      found.spec.action === spec.action &&
      found.spec.target.namespace === spec.target.namespace &&
      found.spec.target.pod === spec.target.pod &&
      found.spec.target.container === spec.target.container &&
      found.spec.dryRun === spec.dryRun;
    if (!same) {
      throw new ContainmentError(
        ErrorCodes.ACTION_INVALID,
        `${what}: the name is already used by a different request (${found.spec.action} of ${found.spec.target.pod})`,
      );
    }
    return found;
  }

  /**
   * Follows the action's status until a final phase, through the shared list-watch (one object,
   * by name): it relists on 410 Gone and re-watches when the server closes the watch; any other
   * failure ends the wait with the API server's answer.
   */
  private waitFor(namespace: string, name: string, what: string): Promise<SecurityAction> {
    const timeoutMs = this.options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
    const fieldSelector = `metadata.name=${name}`;
    let last: SecurityAction | undefined;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (value: SecurityAction | undefined, error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        void watcher.stop();
        if (value) resolve(value);
        else
          reject(
            error instanceof ContainmentError
              ? error
              : this.failure(error, what, ErrorCodes.KUBERNETES_UNAVAILABLE),
          );
      };
      const timer = setTimeout(
        () =>
          settle(
            undefined,
            new ContainmentError(
              ErrorCodes.ENFORCEMENT_FAILED,
              `${what}: not finished within ${Math.round(timeoutMs / 1000)} s (phase ${last?.status?.phase ?? 'none yet'})`,
            ),
          ),
        timeoutMs,
      );
      const watcher = new ListWatcher<k8s.KubernetesObject>({
        kubeConfig: this.options.kubeConfig,
        path: `/apis/${SECURITY_ACTION_GROUP}/${SECURITY_ACTION_VERSION}/namespaces/${namespace}/${SECURITY_ACTION_PLURAL}`,
        fieldSelector,
        listPage: ({ limit, continue: cont }) =>
          throttled(
            () =>
              this.custom.listNamespacedCustomObject({
                ...this.resource(namespace),
                fieldSelector,
                limit,
                ...(cont === undefined ? {} : { _continue: cont }),
              }) as Promise<ListPage<k8s.KubernetesObject>>,
          ),
        onEvent: (type, object) => {
          if (type === 'DELETED') {
            settle(
              undefined,
              new ContainmentError(ErrorCodes.ENFORCEMENT_FAILED, `${what}: deleted before it finished`),
            );
            return;
          }
          try {
            last = this.parse(object, what);
          } catch (e) {
            settle(undefined, e);
            return;
          }
          if (FINAL.has(last.status?.phase ?? '')) settle(last);
        },
        logger: quiet,
        stopOnError: 'always',
        onStopped: (e) => settle(undefined, e),
      });
      watcher.start().then(
        () => {
          if (watcher.list().length === 0)
            settle(
              undefined,
              new ContainmentError(ErrorCodes.ENFORCEMENT_FAILED, `${what}: deleted before it finished`),
            );
        },
        (e: unknown) => settle(undefined, e),
      );
    });
  }

  private parse(raw: unknown, what: string): SecurityAction {
    const parsed = securityActionSchema.safeParse(raw);
    if (!parsed.success) {
      throw new ContainmentError(
        ErrorCodes.KUBERNETES_UNAVAILABLE,
        `${what}: the API server answered something else`,
      );
    }
    return parsed.data;
  }

  private failure(e: unknown, what: string, otherwise: ErrorCode): ContainmentError {
    if (e instanceof ContainmentError) return e;
    return new ContainmentError(codeFor(e, otherwise), `${what}: ${apiMessage(e)}`, { cause: e });
  }
}

/**
 * For `PolicySdkHost`'s `enforcement` option in cluster mode: SecurityActions go to the API
 * server of the function namespace's cluster, with the runtime's own credentials for it
 * (`kubeConfigFor(cluster)`); a cluster without any is refused before any call.
 */
export const kubernetesEnforcement =
  (
    kubeConfigFor: (cluster: string) => k8s.KubeConfig | undefined,
    options: { waitTimeoutMs?: number } = {},
  ) =>
  (credentials: NamespaceCredentials): EnforcementClient => {
    const kubeConfig = kubeConfigFor(credentials.cluster);
    if (!kubeConfig) {
      throw new ContainmentError(
        ErrorCodes.FORBIDDEN,
        `no Kubernetes credentials for cluster ${credentials.cluster}: enforcement there is not configured`,
      );
    }
    return new KubernetesEnforcementClient({ kubeConfig, cluster: credentials.cluster, ...options });
  };
