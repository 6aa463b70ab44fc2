/**
 * The reference policy (DESIGN.md). On a scan event for a pod:
 * - a remote shell installed or permissively configured → quarantine the pod (traffic cut, it keeps
 *   running, so it can still be examined);
 * - vulnerable packages → terminate it gracefully; the enforcer takes the snapshot (evidence bundle)
 *   first, then stops it with the grace period (parameter `gracePeriodSeconds`, default 30);
 * - otherwise leave it.
 * Returns what it decided and each SecurityAction's outcome.
 */
import { kubernetes, vs } from '@containment/policy-sdk';
import type { ActionResult, ScanEventParams } from '@containment/policy-sdk';

const REMOTE_SHELL = new Set(['remote_shell_installed', 'remote_shell_permissive']);
/** The events this policy is about; others on the same trigger (runtime detections) are left alone. */
const SCAN_EVENTS = new Set(['dev.containment.scan.completed', 'dev.containment.findings.changed']);

export async function main(params: Record<string, unknown>) {
  if (typeof params.type === 'string' && !SCAN_EVENTS.has(params.type))
    return { decision: 'none', why: `not a scan event (${params.type})` };
  const event = scanEvent(params);
  const pod = podOf(event);
  const findings = await vs.getFindings(pod, event.scanTime);
  if (findings === null) return { pod, decision: 'none', why: 'the scanner has no findings for this pod' };

  const findingsRef = findings.scanId === undefined ? findings.scanTime : `scan/${findings.scanId}`;
  const shells = findings.insecureConfigurations.filter((c) => REMOTE_SHELL.has(c.id));
  const vulnerable = findings.vulnerablePackages;
  const actions: ActionResult[] = [];

  if (shells.length > 0) {
    const what = shells.map((c) => `${c.id} (${c.evidence.slice(0, 3).join(', ')})`).join('; ');
    actions.push(
      await kubernetes.quarantine(pod, { wait: true, reason: `remote shell: ${what}`, findingsRef }),
    );
  }
  if (vulnerable.length > 0) {
    const ids = [...new Set(vulnerable.map((v) => `${v.package.name}@${v.package.version}: ${v.id}`))];
    const grace = typeof params.gracePeriodSeconds === 'number' ? params.gracePeriodSeconds : 30;
    actions.push(
      await kubernetes.terminateGraceful(pod, {
        wait: true,
        gracePeriodSeconds: grace,
        reason: `vulnerable packages: ${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', …' : ''}`,
        findingsRef,
      }),
    );
  }
  const decision = actions.length === 0 ? 'none' : actions.map((a) => a.action).join('+');
  return {
    pod,
    decision,
    remoteShells: shells.map((c) => c.id),
    vulnerablePackages: vulnerable.length,
    actions: actions.map((a) => ({
      name: a.name,
      action: a.action,
      dryRun: a.dryRun,
      phase: a.status?.phase ?? null,
      message: a.status?.message ?? null,
    })),
  };
}

/** The scan event's data, whether invoked with the CloudEvent itself or with its data as parameters. */
function scanEvent(params: Record<string, unknown>): ScanEventParams {
  const data = typeof params.data === 'object' && params.data !== null ? params.data : params;
  const event = data as Partial<ScanEventParams>;
  if (typeof event.workload?.namespace !== 'string' || typeof event.workload.pod !== 'string')
    throw new Error('expected the data of a dev.containment.scan.completed event (no workload)');
  return event as ScanEventParams;
}

function podOf({ workload }: ScanEventParams): { namespace: string; name: string; container?: string } {
  return workload.container === undefined
    ? { namespace: workload.namespace, name: workload.pod }
    : { namespace: workload.namespace, name: workload.pod, container: workload.container };
}
