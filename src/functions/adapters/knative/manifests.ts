/**
 * The Knative manifests for a policy: a ConfigMap holding the bundled CloudEvents handler (policy +
 * SDK, knative-handler-entry.ts), a Knative Service (`serving.knative.dev/v1`) running it with the
 * image the user names (any image with Node 20), and one `eventing.knative.dev/v1` Trigger per event
 * type on a Broker. Tokens come from a Secret (written too when the tokens are given). Pure.
 */
import { dump } from 'js-yaml';
import { ContainmentError, ErrorCodes } from '../../../errors.js';

export const DEFAULT_EVENT_TYPES = ['dev.containment.scan.completed', 'dev.containment.findings.changed'];
export const HANDLER_FILE = 'handler.cjs';
export const POLICY_MOUNT = '/var/containment/policy';
/** A ConfigMap may hold 1 MiB in all; leave room for its metadata. */
const CONFIGMAP_LIMIT = 1024 * 1024 - 16 * 1024;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export interface KnativeOptions {
  /** The policy's name: the Service's, and the prefix of every other object's. */
  name: string;
  namespace: string;
  /** Container image with Node 20 (e.g. `node:20-slim` or a mirror of it). */
  image: string;
  /** The bundled handler (bundlePolicy('knative', …)). */
  handler: string;
  broker?: string;
  eventTypes?: string[];
  scannerUrl: string;
  actionsUrl: string;
  cluster?: string;
  /** Pod namespaces the policy may act on. */
  namespaces: string[];
  dryRun?: boolean;
  /** When both are given, a Secret holding them is written; otherwise it must exist. */
  scannerToken?: string;
  enforcerToken?: string;
  /** `whsec_…` for Standard Webhooks on direct delivery (Secret key `webhook-secret`). */
  webhookSecret?: string;
}

export type KubernetesObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string };
} & Record<string, unknown>;

function checkName(what: string, value: string): void {
  if (!DNS_LABEL.test(value))
    throw new ContainmentError(
      ErrorCodes.USAGE,
      `${what} "${value}" must be a DNS label (lower-case letters, digits, -)`,
    );
}

/** `dev.containment.scan.completed` → `scan-completed`. */
function typeSuffix(type: string): string {
  return type
    .replace(/^dev\.containment\./, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 30);
}

export function knativeManifests(options: KnativeOptions): KubernetesObject[] {
  const { name, namespace } = options;
  checkName('the policy name', name);
  checkName('the namespace', namespace);
  if (options.image.trim() === '' || /\s/.test(options.image))
    throw new ContainmentError(ErrorCodes.USAGE, `--image "${options.image}" is not an image reference`);
  if (Buffer.byteLength(options.handler) > CONFIGMAP_LIMIT)
    throw new ContainmentError(
      ErrorCodes.USAGE,
      `the bundled policy is ${Buffer.byteLength(options.handler)} bytes, more than a ConfigMap holds (${CONFIGMAP_LIMIT})`,
    );
  const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'containment' };
  const secretName = `${name}-credentials`;
  const metadata = (objectName: string) => ({ name: objectName, namespace, labels });
  const secretRef = (key: string) => ({ valueFrom: { secretKeyRef: { name: secretName, key } } });
  const objects: KubernetesObject[] = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: metadata(`${name}-policy`),
      data: { [HANDLER_FILE]: options.handler },
    },
  ];
  if (options.scannerToken !== undefined && options.enforcerToken !== undefined)
    objects.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: metadata(secretName),
      type: 'Opaque',
      stringData: {
        'scanner-token': options.scannerToken,
        'enforcer-token': options.enforcerToken,
        ...(options.webhookSecret === undefined ? {} : { 'webhook-secret': options.webhookSecret }),
      },
    });
  objects.push({
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: metadata(name),
    spec: {
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'policy',
              image: options.image,
              command: ['node', `${POLICY_MOUNT}/${HANDLER_FILE}`],
              ports: [{ containerPort: 8080 }],
              env: [
                { name: 'CONTAINMENT_SCANNER_URL', value: options.scannerUrl },
                { name: 'CONTAINMENT_ACTIONS_URL', value: options.actionsUrl },
                { name: 'CONTAINMENT_CLUSTER', value: options.cluster ?? 'local' },
                { name: 'CONTAINMENT_NAMESPACES', value: options.namespaces.join(',') },
                { name: 'CONTAINMENT_DRY_RUN', value: options.dryRun ? 'true' : 'false' },
                { name: 'CONTAINMENT_SCANNER_TOKEN', ...secretRef('scanner-token') },
                { name: 'CONTAINMENT_ENFORCER_TOKEN', ...secretRef('enforcer-token') },
                // Standard Webhooks on direct (scanner → Service) delivery; optional: a Broker
                // Trigger cannot carry webhook-* headers (docs/policies.md).
                {
                  name: 'CONTAINMENT_WEBHOOK_SECRET',
                  valueFrom: { secretKeyRef: { name: secretName, key: 'webhook-secret', optional: true } },
                },
              ],
              volumeMounts: [{ name: 'policy', mountPath: POLICY_MOUNT, readOnly: true }],
              readinessProbe: { httpGet: { path: '/healthz' } },
              securityContext: {
                runAsNonRoot: true,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
            },
          ],
          volumes: [{ name: 'policy', configMap: { name: `${name}-policy` } }],
        },
      },
    },
  });
  for (const type of options.eventTypes ?? DEFAULT_EVENT_TYPES)
    objects.push({
      apiVersion: 'eventing.knative.dev/v1',
      kind: 'Trigger',
      metadata: metadata(`${name}-${typeSuffix(type)}`.slice(0, 63).replace(/-$/, '')),
      spec: {
        broker: options.broker ?? 'default',
        filter: { attributes: { type } },
        subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name } },
        delivery: { retry: 5, backoffPolicy: 'exponential', backoffDelay: 'PT1S' },
      },
    });
  return objects;
}

/** One YAML stream (`---` between documents). */
export function toYaml(objects: KubernetesObject[]): string {
  return objects.map((o) => dump(o, { lineWidth: -1, noRefs: true })).join('---\n');
}

/** `kind-name.yaml` for each object, for `--output <dir>`. */
export function manifestFiles(objects: KubernetesObject[]): { file: string; yaml: string }[] {
  return objects.map((o) => ({
    file: `${o.kind.toLowerCase()}-${o.metadata.name}.yaml`,
    yaml: dump(o, { lineWidth: -1, noRefs: true }),
  }));
}
