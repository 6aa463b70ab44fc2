/**
 * The local enforcer's target guard (least privilege): it acts only on containers in the managed
 * set — the agent's label filter (`containment up --label k=v`), never a pod's infra container —
 * and only when the action names the container's own namespace (`local`, or its Podman pod), so a
 * policy allowed in one namespace cannot reach a container of another by its name or id prefix.
 * Everything else is refused with TARGET_NOT_MANAGED before anything, a dry run included, is done.
 *
 * It judges the inspect document the enforcer resolved the target with (one engine lookup per
 * action, not one more here): labels, pod and infra flag are fixed when a container is created,
 * so the verdict for that container id cannot change before the drivers act on the same id.
 */
import { LOCAL_NAMESPACE, apiName } from '../agent/workload-identity.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import { describeSelector, selectedBy } from '../engine/managed-set.js';
import type { LabelSelector } from '../engine/managed-set.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { ContainerGuard } from './local-enforcer.js';

export function managedContainerGuard(
  engine: Pick<ContainerEngine, 'workloadFacts'>,
  selector: LabelSelector | undefined,
): ContainerGuard {
  return async (target, spec, info) => {
    const refuse = (why: string): never => {
      throw new ContainmentError(
        ErrorCodes.TARGET_NOT_MANAGED,
        `container ${target.name} (${target.uid.slice(0, 12)}) is not managed by this enforcer: ${why}`,
      );
    };
    // The document must be the one of the container the drivers will act on (pinned by id).
    if (info.id !== target.uid)
      refuse(`its inspect document names another container (${info.id.slice(0, 12)})`);
    if (!selectedBy(selector, info))
      refuse(`it does not carry the managed labels ${describeSelector(selector)}`);
    const facts = await engine.workloadFacts(info.id);
    if (facts.infra) refuse('it is a pod infra container');
    const namespace = facts.podName === undefined ? LOCAL_NAMESPACE : apiName(facts.podName, LOCAL_NAMESPACE);
    if (namespace !== spec.target.namespace)
      refuse(`it is in namespace ${namespace}, not ${spec.target.namespace}`);
  };
}
