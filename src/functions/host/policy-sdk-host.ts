/**
 * The function runtime's PolicyHost: each SDK call a sandboxed policy makes goes to the one SDK host
 * (sdk-host.ts) with its function namespace's credentials — a scanner token and an enforcer token
 * scoped to its namespaces. The pod must be in the activation's namespace or one its credentials
 * list. A dry-run annotation on the action, its package or the rule makes enforcement a dry run.
 */
import { ActionApiClient } from '../../clients/action-client.js';
import { ScannerClient } from '../../clients/scanner-client.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { JsonValue } from '../sandbox/sandbox.js';
import type { EnforcementClient } from './enforcement-client.js';
import type { FindingsClient } from './findings-client.js';
import { AuditNotifier } from './notifier.js';
import type { Notifier } from './notifier.js';
import type { PolicyCallContext, PolicyHost } from './policy-host.js';
import { SdkHost } from './sdk-host.js';

export { actionName, RESERVED_LABEL_DOMAIN } from './sdk-host.js';
export type { EnforcementResult, LabelResult } from './sdk-host.js';

/** The annotation (on the action, its package or the rule) that turns enforcement into a dry run. */
export const DRY_RUN_ANNOTATION = 'containment-dry-run';

/** What one function namespace's policies may use. */
export interface NamespaceCredentials {
  /** The cluster the namespace's pods are in (`local` in single-machine mode). */
  cluster: string;
  /** Bearer token for the scanner's findings API (role `policy`, scoped to the namespaces). */
  scannerToken: string;
  /** Bearer token for the enforcer's action API (role `policy`, same scope). */
  enforcerToken: string;
  /** Pod namespaces the policies may act on besides the function namespace's own name. */
  namespaces?: readonly string[];
}

export interface PolicySdkHostOptions {
  /** Function namespace → its credentials; a namespace without any can make no SDK call but `notify`. */
  credentials: (namespace: string) => NamespaceCredentials | undefined;
  /** Findings client for one namespace's credentials (e.g. `httpFindings(scannerUrl)`). */
  findings: (credentials: NamespaceCredentials) => FindingsClient;
  /** Enforcement client for one namespace's credentials (e.g. `httpEnforcement(actionApiUrl)`). */
  enforcement: (credentials: NamespaceCredentials) => EnforcementClient;
  /** Default: an AuditNotifier (structured log + the latest notifications in memory). */
  notifier?: Notifier;
  now?: () => Date;
}

export const httpFindings =
  (scannerUrl: string) =>
  (credentials: NamespaceCredentials): FindingsClient => {
    const client = new ScannerClient({ server: scannerUrl, token: credentials.scannerToken });
    return { get: (query) => client.findings(query) };
  };

export const httpEnforcement =
  (actionApiUrl: string) =>
  (credentials: NamespaceCredentials): EnforcementClient =>
    new ActionApiClient({ url: actionApiUrl, token: credentials.enforcerToken });

export function isDryRun(context: PolicyCallContext): boolean {
  return context.annotations[DRY_RUN_ANNOTATION] === true;
}

export class PolicySdkHost implements PolicyHost {
  private readonly host: SdkHost;

  constructor(options: PolicySdkHostOptions) {
    const notifier = options.notifier ?? new AuditNotifier();
    this.host = new SdkHost({
      notify: (n) => notifier.notify(n),
      ...(options.now === undefined ? {} : { now: options.now }),
      scope: (call) => {
        const namespace = call.namespace as string;
        const credentials = options.credentials(namespace);
        if (!credentials)
          throw new ContainmentError(
            ErrorCodes.FORBIDDEN,
            `${call.method}: function namespace ${namespace} has no scanner or enforcer credentials`,
          );
        return {
          cluster: credentials.cluster,
          namespaces: [namespace, ...(credentials.namespaces ?? [])],
          describe: `the namespaces function namespace ${namespace} may use`,
          findings: () => options.findings(credentials),
          enforcement: () => options.enforcement(credentials),
        };
      },
    });
  }

  async invokeSdk(
    namespace: string,
    action: string,
    method: string,
    args: JsonValue[],
    context: PolicyCallContext,
  ): Promise<JsonValue> {
    const call = {
      namespace,
      action,
      method,
      activationId: context.activationId,
      dryRun: isDryRun(context),
      scope: context.scope,
    };
    // The results are JSON built from JSON answers; TypeScript cannot see that through the interfaces.
    return (await this.host.call(call, args)) as JsonValue;
  }
}
