/**
 * Reads the objects the posture controls look at from a live cluster, in pages (`limit` +
 * `continue`), every kind concurrently. `@kubernetes/client-node` supplies the connection and
 * credentials (certificates, tokens, exec plugins); the lists are read as the API server's JSON
 * rather than the generated model classes: those drop fields they do not know (a Pod Security
 * field newer than the client would vanish unchecked) and cost four times the time. A kind the
 * credentials may not list (403) or the server does not serve (404) becomes a warning, except
 * pods and namespaces; an API server that cannot be reached is an error.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type * as k8s from '@kubernetes/client-node';
import { ApiError } from '../../clients/http.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { PostureInput } from '../types.js';

const PAGE_SIZE = 500;
const MANDATORY = new Set(['Namespace', 'Pod']);

interface KindSource {
  apiVersion: string;
  kind: string;
  /** Collection path across namespaces, e.g. `/apis/apps/v1/deployments`. */
  path: string;
}

const SOURCES: readonly KindSource[] = [
  ['v1', 'Namespace', 'namespaces'],
  ['v1', 'Pod', 'pods'],
  ['v1', 'ReplicationController', 'replicationcontrollers'],
  ['v1', 'Service', 'services'],
  ['v1', 'ServiceAccount', 'serviceaccounts'],
  ['v1', 'ResourceQuota', 'resourcequotas'],
  ['apps/v1', 'Deployment', 'deployments'],
  ['apps/v1', 'ReplicaSet', 'replicasets'],
  ['apps/v1', 'StatefulSet', 'statefulsets'],
  ['apps/v1', 'DaemonSet', 'daemonsets'],
  ['batch/v1', 'Job', 'jobs'],
  ['batch/v1', 'CronJob', 'cronjobs'],
  ['networking.k8s.io/v1', 'NetworkPolicy', 'networkpolicies'],
  ['rbac.authorization.k8s.io/v1', 'Role', 'roles'],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding', 'rolebindings'],
  ['rbac.authorization.k8s.io/v1', 'ClusterRole', 'clusterroles'],
  ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'clusterrolebindings'],
].map(([apiVersion, kind, plural]) => ({
  apiVersion: apiVersion!,
  kind: kind!,
  path: `${apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`}/${plural}`,
}));

interface ListPage {
  items?: Record<string, unknown>[];
  metadata?: { continue?: string };
}

/** One GET through client-node's connection settings; rejects with ApiError on a non-2xx. */
async function getJson(kc: k8s.KubeConfig, base: URL, path: string): Promise<ListPage> {
  const options: https.RequestOptions = {
    protocol: base.protocol,
    hostname: base.hostname.replace(/^\[|\]$/g, ''),
    port: base.port || (base.protocol === 'http:' ? 80 : 443),
    path: `${base.pathname.replace(/\/+$/, '')}${path}`,
    method: 'GET',
    headers: { accept: 'application/json' },
  };
  // Certificates, token or exec-plugin credentials, TLS settings and the agent (proxy included).
  await kc.applyToHTTPSOptions(options);
  const request = base.protocol === 'http:' ? http.request : https.request;
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          let message = text.slice(0, 200);
          let reason = `HTTP_${status}`;
          try {
            const body = JSON.parse(text) as { message?: unknown; reason?: unknown };
            message = String(body.message ?? message);
            if (typeof body.reason === 'string' && body.reason !== '') reason = body.reason;
          } catch {
            // not a Status object: keep the text
          }
          reject(new ApiError(status, reason, message));
          return;
        }
        try {
          resolve(JSON.parse(text) as ListPage);
        } catch {
          reject(new Error(`answer to GET ${path} is not JSON`));
        }
      });
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error('no answer in 60 s')));
    req.end();
  });
}

export interface ClusterRead {
  inputs: PostureInput[];
  /** Every namespace in the cluster (scored even when nothing in it fails). */
  namespaces: string[];
  warnings: string[];
}

async function listAll(
  get: (path: string) => Promise<ListPage>,
  source: KindSource,
  pageSize: number,
): Promise<PostureInput[]> {
  const out: PostureInput[] = [];
  let token: string | undefined;
  do {
    const page = await get(
      `${source.path}?limit=${pageSize}${token ? `&continue=${encodeURIComponent(token)}` : ''}`,
    );
    for (const item of page.items ?? []) {
      // List items carry no kind/apiVersion; the evaluation needs them. Status and managedFields
      // are dropped: no control reads them, and they are most of a pod's size.
      const { status: _status, ...object } = item;
      const meta = object.metadata as Record<string, unknown> | undefined;
      if (meta) delete meta.managedFields;
      object.kind = source.kind;
      object.apiVersion = source.apiVersion;
      out.push({ object, source: 'cluster' });
    }
    token = page.metadata?.continue || undefined;
  } while (token);
  return out;
}

export async function readCluster(
  kc: k8s.KubeConfig,
  options: { pageSize?: number } = {},
): Promise<ClusterRead> {
  const server = kc.getCurrentCluster()?.server ?? '(no current cluster)';
  const warnings: string[] = [];
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `kubeconfig server ${JSON.stringify(server)} is not a URL`,
    );
  }
  const get = (path: string): Promise<ListPage> => getJson(kc, base, path);
  const results = await Promise.all(
    SOURCES.map(async (source) => {
      try {
        return await listAll(get, source, options.pageSize ?? PAGE_SIZE);
      } catch (e) {
        const code = e instanceof ApiError ? e.status : undefined;
        // Without pods and namespaces there is no posture to speak of: a score would be a lie.
        if (code === 403 && MANDATORY.has(source.kind)) {
          throw new ContainmentError(
            ErrorCodes.FORBIDDEN,
            `the kubeconfig's user may not list ${source.kind} objects on ${server} (HTTP 403)`,
          );
        }
        if (code === 403 || code === 404) {
          warnings.push(
            `could not list ${source.kind} objects (HTTP ${code}); their controls were not checked`,
          );
          return [];
        }
        throw new ContainmentError(
          ErrorCodes.KUBERNETES_UNAVAILABLE,
          `listing ${source.kind} objects from ${server} failed: ${code !== undefined ? `HTTP ${code}` : ((e as Error).message.split('\n')[0] ?? '')}`,
          { cause: e },
        );
      }
    }),
  );
  const inputs = results.flat();
  const namespaces = inputs
    .filter((i) => i.object.kind === 'Namespace')
    .map((i) => String((i.object.metadata as { name?: string } | undefined)?.name ?? ''))
    .filter((n) => n !== '');
  return { inputs, namespaces, warnings: warnings.sort() };
}
