/**
 * Releases a quarantined pod once a rescan comes back clean: no vulnerable package and no insecure
 * configuration of severity HIGH or CRITICAL. A pod that is still dirty stays as it is.
 */
import { kubernetes, vs } from '@containment/policy-sdk';
import type { ScanEventParams } from '@containment/policy-sdk';

export async function main(params: Record<string, unknown>) {
  const event = scanEvent(params);
  const pod = podOf(event);
  const findings = await vs.getFindings(pod, event.scanTime);
  if (findings === null) return { pod, decision: 'none', why: 'no findings for this pod' };
  const serious = findings.insecureConfigurations.filter(
    (c) => c.severity === 'HIGH' || c.severity === 'CRITICAL',
  );
  if (findings.vulnerablePackages.length > 0 || serious.length > 0)
    return { pod, decision: 'none', why: 'still has findings' };
  const result = await kubernetes.release(pod, {
    wait: true,
    reason: `rescan at ${findings.scanTime} is clean`,
  });
  return {
    pod,
    decision: 'Release',
    phase: result.status?.phase ?? null,
    message: result.status?.message ?? null,
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
