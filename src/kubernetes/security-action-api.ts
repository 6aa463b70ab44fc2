/**
 * The SecurityAction resource on the API server: names, the CRD manifest, and the calls the
 * operator makes (paged list, label with optimistic concurrency, status through the status
 * subresource with conflict retries).
 */
import * as k8s from '@kubernetes/client-node';
import { isConflict } from './api-errors.js';
import { ListWatcher } from './list-watch.js';
import type { ListWatchEventType, ListWatchLogger } from './list-watch.js';
import type { ActionStatus } from '../enforcement/security-action.js';

export const GROUP = 'containment.dev';
export const VERSION = 'v1alpha1';
export const PLURAL = 'securityactions';
export const KIND = 'SecurityAction';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CRD_NAME = `${PLURAL}.${GROUP}`;
/** Set by the policy SDK (or by the first operator that sees an unlabelled action). */
export const NODE_LABEL = 'containment.dev/node';
export const WATCH_PATH = `/apis/${GROUP}/${VERSION}/${PLURAL}`;

/** A SecurityAction as the API server returns it (spec/status as in security-action.ts, loosely typed). */
export interface SecurityActionObject {
  apiVersion?: string;
  kind?: string;
  metadata: k8s.V1ObjectMeta & { name: string; namespace: string; uid: string; resourceVersion: string };
  spec: Record<string, unknown>;
  status?: ActionStatus;
}

export interface ActionKey {
  namespace: string;
  name: string;
}

export const keyOf = (a: ActionKey): string => `${a.namespace}/${a.name}`;

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const MAX_STATUS_ATTEMPTS = 8;

export class SecurityActionApi {
  private readonly api: k8s.CustomObjectsApi;

  constructor(kubeConfig: k8s.KubeConfig) {
    this.api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  }

  async get(key: ActionKey): Promise<SecurityActionObject> {
    return (await this.api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      ...key,
    })) as SecurityActionObject;
  }

  /** One page of a cluster-wide list. */
  async listPage(
    labelSelector: string,
    limit: number,
    cont?: string,
  ): Promise<{ items: SecurityActionObject[]; resourceVersion: string; continue?: string }> {
    const list = (await this.api.listClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      labelSelector,
      limit,
      ...(cont === undefined ? {} : { _continue: cont }),
    })) as { items: SecurityActionObject[]; metadata?: { resourceVersion?: string; continue?: string } };
    const next = list.metadata?.continue;
    return {
      items: list.items,
      resourceVersion: list.metadata?.resourceVersion ?? '',
      ...(next ? { continue: next } : {}),
    };
  }

  /**
   * Labels the action with its target's node, only if it is still the version we saw: of several
   * operators racing on one unlabelled action exactly one wins. False when another write came first.
   */
  async labelNode(action: SecurityActionObject, node: string): Promise<boolean> {
    try {
      await this.api.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: action.metadata.namespace,
          name: action.metadata.name,
          body: {
            metadata: { resourceVersion: action.metadata.resourceVersion, labels: { [NODE_LABEL]: node } },
          },
        },
        mergePatch,
      );
      return true;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }

  /**
   * Writes the status through the status subresource, carrying the resourceVersion. On a
   * conflict it re-reads the object: when someone else already finished it, that object is
   * returned unchanged (`written: false`); otherwise `update` is applied to the fresh copy.
   */
  async writeStatus(
    action: SecurityActionObject,
    update: (current: SecurityActionObject) => ActionStatus,
  ): Promise<{ action: SecurityActionObject; written: boolean }> {
    let current = action;
    for (let attempt = 1; ; attempt++) {
      const body = { ...current, status: update(current) };
      try {
        const saved = (await this.api.replaceNamespacedCustomObjectStatus({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: current.metadata.namespace,
          name: current.metadata.name,
          body,
        })) as SecurityActionObject;
        return { action: saved, written: true };
      } catch (e) {
        if (!isConflict(e) || attempt >= MAX_STATUS_ATTEMPTS) throw e;
      }
      current = await this.get(current.metadata);
      if (current.metadata.uid !== action.metadata.uid)
        throw new Error('the action was deleted and recreated');
      const phase = current.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed') return { action: current, written: false };
    }
  }
}

/** The SecurityActions matching one label selector, listed then watched for as long as it runs. */
export function watchSecurityActions(options: {
  kubeConfig: k8s.KubeConfig;
  labelSelector: string;
  onEvent: (type: ListWatchEventType, action: SecurityActionObject) => void;
  logger: ListWatchLogger;
  /** Start by watching from this resourceVersion instead of listing (tests: a too-old one). */
  resourceVersion?: string;
}): ListWatcher<SecurityActionObject> {
  const api = new SecurityActionApi(options.kubeConfig);
  return new ListWatcher<SecurityActionObject>({
    kubeConfig: options.kubeConfig,
    path: WATCH_PATH,
    labelSelector: options.labelSelector,
    listPage: async ({ limit, continue: cont }) => {
      const page = await api.listPage(options.labelSelector, limit, cont);
      return {
        items: page.items,
        metadata: {
          resourceVersion: page.resourceVersion,
          ...(page.continue === undefined ? {} : { continue: page.continue }),
        },
      };
    },
    onEvent: options.onEvent,
    logger: options.logger,
    slim: slimFinished,
    ...(options.resourceVersion === undefined ? {} : { resourceVersion: options.resourceVersion }),
  });
}

/**
 * A finished action as the watch keeps it: its identity and phase. Phases never go back, so
 * nothing else of it is read again; a node's history of thousands of actions then costs little.
 */
export function slimFinished(action: SecurityActionObject): SecurityActionObject {
  const phase = action.status?.phase;
  if (phase !== 'Succeeded' && phase !== 'Failed') return action;
  const { name, namespace, uid, resourceVersion, labels } = action.metadata;
  return {
    ...(action.apiVersion === undefined ? {} : { apiVersion: action.apiVersion }),
    ...(action.kind === undefined ? {} : { kind: action.kind }),
    metadata: { name, namespace, uid, resourceVersion, ...(labels === undefined ? {} : { labels }) },
    spec: {},
    status: { phase, evidence: [], conditions: [] },
  };
}
