/**
 * Quarantine only when the pod has a CRITICAL vulnerability that already has a fix — the team can
 * act on it at once — and tell the `security` channel which upgrades lift it. Anything else is left
 * alone.
 */
import { kubernetes, notify, vs } from '@containment/policy-sdk';
import type { ScanEventParams } from '@containment/policy-sdk';

export async function main(params: Record<string, unknown>) {
  const event = scanEvent(params);
  const pod = podOf(event);
  const findings = await vs.getFindings(pod, event.scanTime);
  const fixable = (findings?.vulnerablePackages ?? []).filter(
    (v) => v.severity === 'CRITICAL' && v.fixedVersion !== undefined,
  );
  if (fixable.length === 0) return { pod, decision: 'none' };
  const upgrades = fixable.map((v) => `${v.package.name} ${v.package.version} → ${v.fixedVersion} (${v.id})`);
  const result = await kubernetes.quarantine(pod, {
    wait: true,
    reason: `critical, fixable: ${upgrades.join('; ')}`,
  });
  await notify('security', { pod, quarantined: result.status?.phase === 'Succeeded', upgrades });
  return { pod, decision: 'Quarantine', phase: result.status?.phase ?? null, upgrades };
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
