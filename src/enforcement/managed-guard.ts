/**
 * The local enforcer's target guard (least privilege): it acts only on containers in the managed
 * set — the agent's label filter (`containment up --label k=v`), never a pod's infra container —
 * and only when the action names the container's own namespace (`local`, or its Podman pod), so a
 * policy allowed in one namespace cannot reach a container of another by its name or id prefix.
 * Everything else is refused with TARGET_NOT_MANAGED before anything, a dry run included, is done.
 */
import { LOCAL_NAMESPACE, apiName } from '../agent/workload-identity.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import { describeSelector, selectedBy } from '../engine/managed-set.js';
import type { LabelSelector } from '../engine/managed-set.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { TargetGuard } from './enforcer.js';

export function managedContainerGuard(
  engine: Pick<ContainerEngine, 'inspect' | 'workloadFacts'>,
  selector: LabelSelector | undefined,
): TargetGuard {
  return async (target, spec) => {
    const refuse = (why: string): never => {
      throw new ContainmentError(
        ErrorCodes.TARGET_NOT_MANAGED,
        `container ${target.name} (${target.uid.slice(0, 12)}) is not managed by this enforcer: ${why}`,
      );
    };
    // By id: the container the drivers will act on, not whatever now has the name.
    const info = await engine.inspect(target.uid);
    if (!selectedBy(selector, info))
      refuse(`it does not carry the managed labels ${describeSelector(selector)}`);
    const facts = await engine.workloadFacts(info.id);
    if (facts.infra) refuse('it is a pod infra container');
    const namespace = facts.podName === undefined ? LOCAL_NAMESPACE : apiName(facts.podName, LOCAL_NAMESPACE);
    if (namespace !== spec.target.namespace)
      refuse(`it is in namespace ${namespace}, not ${spec.target.namespace}`);
  };
}
