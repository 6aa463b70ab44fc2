/**
 * The reference runtime policy (issue 11). On a `dev.containment.runtime.detected` event:
 * - `reverse_shell` or `crypto_miner` → quarantine the pod (traffic cut; it keeps running, so it
 *   can still be examined);
 * - `drift_executable` while the image's baseline is in `protect` → snapshot (evidence bundle),
 *   then terminate gracefully (parameter `gracePeriodSeconds`, default 30);
 * - anything else (drift outside protect mode included) → notify on channel `runtime` only.
 * Returns what it decided and each SecurityAction's outcome.
 */
import { kubernetes, notify } from '@containment/policy-sdk';
import type { ActionResult, RuntimeDetectedParams } from '@containment/policy-sdk';

const QUARANTINE = new Set(['reverse_shell', 'crypto_miner']);

export async function main(params: Record<string, unknown>) {
  // Scan events on the same trigger are the reference policy's; this one answers detections only.
  if (typeof params.type === 'string' && params.type !== 'dev.containment.runtime.detected')
    return { decision: 'none', why: `not a runtime detection (${params.type})` };
  const d = detection(params);
  const pod =
    d.workload.container === undefined
      ? { namespace: d.workload.namespace, name: d.workload.pod }
      : { namespace: d.workload.namespace, name: d.workload.pod, container: d.workload.container };
  const proc = d.process ? `${d.process.name} (pid ${d.process.pid})` : 'unknown process';
  const reason = `${d.ruleId}: ${d.title}; ${proc}`;
  // The scanner's aggregate, which the audit trail follows; the fingerprint when it was not stored.
  const findingsRef =
    d.detectionId === undefined ? `detection/${d.fingerprint}` : `detection/${d.detectionId}`;
  const actions: ActionResult[] = [];

  if (QUARANTINE.has(d.ruleId)) {
    actions.push(await kubernetes.quarantine(pod, { wait: true, reason, findingsRef }));
  } else if (d.ruleId === 'drift_executable' && d.baseline.state === 'protect') {
    const grace = typeof params.gracePeriodSeconds === 'number' ? params.gracePeriodSeconds : 30;
    actions.push(await kubernetes.snapshot(pod, { wait: true, reason, findingsRef }));
    actions.push(
      await kubernetes.terminateGraceful(pod, { wait: true, gracePeriodSeconds: grace, reason, findingsRef }),
    );
  } else {
    await notify('runtime', {
      pod: `${pod.namespace}/${pod.name}`,
      ruleId: d.ruleId,
      severity: d.severity,
      title: d.title,
      process: proc,
      baseline: d.baseline.state,
      count: d.count,
    });
  }
  return {
    pod,
    ruleId: d.ruleId,
    decision: actions.length === 0 ? 'notify' : actions.map((a) => a.action).join('+'),
    actions: actions.map((a) => ({
      name: a.name,
      action: a.action,
      dryRun: a.dryRun,
      phase: a.status?.phase ?? null,
      message: a.status?.message ?? null,
    })),
  };
}

/** The detection, whether invoked with the CloudEvent itself or with its data as parameters. */
function detection(params: Record<string, unknown>): RuntimeDetectedParams {
  const data = typeof params.data === 'object' && params.data !== null ? params.data : params;
  const d = data as Partial<RuntimeDetectedParams>;
  if (
    typeof d.ruleId !== 'string' ||
    typeof d.workload?.namespace !== 'string' ||
    typeof d.workload.pod !== 'string'
  )
    throw new Error('expected the data of a dev.containment.runtime.detected event (no ruleId or workload)');
  if (typeof d.baseline?.state !== 'string') throw new Error('expected the detection’s baseline state');
  return d as RuntimeDetectedParams;
}
