/** Changes nothing: tells the `security` channel what a scan found (for teams starting out). */
import { notify, vs } from '@containment/policy-sdk';
import type { ScanEventParams } from '@containment/policy-sdk';

export async function main(params: Record<string, unknown>) {
  const event = scanEvent(params);
  const pod = podOf(event);
  const findings = await vs.getFindings(pod, event.scanTime);
  const message = {
    pod,
    scanTime: event.scanTime,
    newFindings: event.newFindings,
    vulnerabilities: (findings?.vulnerablePackages ?? []).map((v) => ({
      id: v.id,
      package: `${v.package.name}@${v.package.version}`,
      severity: v.severity,
      fixedVersion: v.fixedVersion ?? null,
    })),
    insecureConfigurations: (findings?.insecureConfigurations ?? []).map((c) => c.id),
  };
  const sent = await notify('security', message);
  return { pod, notified: sent.delivered, vulnerabilities: message.vulnerabilities.length };
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
