/**
 * The posture controls: stable id, severity, title and remediation. Ids never change once
 * published; reports, SARIF rules and PolicyReport `policy` fields all use them. Pure data.
 */
import type { Severity } from '../inventory/types.js';

export type ControlCategory = 'pod-security' | 'resources' | 'network' | 'rbac' | 'image' | 'container';

export interface ControlDefinition {
  id: string;
  category: ControlCategory;
  severity: Severity;
  title: string;
  remediation: string;
}

function define(list: ControlDefinition[]): Readonly<Record<string, ControlDefinition>> {
  return Object.freeze(Object.fromEntries(list.map((c) => [c.id, Object.freeze(c)])));
}

const pss = (id: string, severity: Severity, title: string, remediation: string): ControlDefinition => ({
  id: `PSS-${id}`,
  category: 'pod-security',
  severity,
  title,
  remediation,
});

export const CONTROLS = define([
  // Pod Security Standards, baseline
  pss(
    'privileged',
    'CRITICAL',
    'Privileged container',
    'Remove securityContext.privileged or set it to false.',
  ),
  pss(
    'hostNamespaces',
    'HIGH',
    'Pod shares host namespaces',
    'Remove hostNetwork, hostPID and hostIPC (or set them to false).',
  ),
  pss(
    'hostPathVolumes',
    'HIGH',
    'hostPath volume',
    'Replace hostPath volumes with emptyDir, configMap, secret or persistentVolumeClaim volumes.',
  ),
  pss(
    'hostPorts',
    'MEDIUM',
    'Container uses a host port',
    'Remove ports[].hostPort; expose the pod through a Service instead.',
  ),
  pss(
    'capabilities_baseline',
    'HIGH',
    'Capability beyond the default set added',
    'Remove capabilities outside the runtime default set from securityContext.capabilities.add.',
  ),
  pss(
    'appArmorProfile',
    'MEDIUM',
    'AppArmor disabled or overridden',
    'Set appArmorProfile.type to RuntimeDefault or Localhost (or leave it unset).',
  ),
  pss(
    'seLinuxOptions',
    'MEDIUM',
    'Custom SELinux options',
    'Do not set seLinuxOptions.user or .role; use only the container_t family of types.',
  ),
  pss('procMount', 'MEDIUM', 'Unmasked /proc', 'Remove securityContext.procMount or set it to Default.'),
  pss(
    'seccompProfile_baseline',
    'HIGH',
    'Seccomp explicitly disabled',
    'Set seccompProfile.type to RuntimeDefault or Localhost.',
  ),
  pss(
    'sysctls',
    'MEDIUM',
    'Unsafe sysctl',
    'Set only the namespaced safe sysctls (e.g. net.ipv4.ip_local_port_range).',
  ),
  pss(
    'windowsHostProcess',
    'CRITICAL',
    'Windows HostProcess container',
    'Remove windowsOptions.hostProcess or set it to false.',
  ),
  pss(
    'hostProbesAndHostLifecycle',
    'MEDIUM',
    'Probe or lifecycle hook targets another host',
    'Remove the host field from httpGet/tcpSocket probes and lifecycle handlers.',
  ),
  // Pod Security Standards, restricted
  pss(
    'restrictedVolumes',
    'MEDIUM',
    'Volume type not allowed by the restricted level',
    'Use only configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret volumes.',
  ),
  pss(
    'allowPrivilegeEscalation',
    'MEDIUM',
    'Privilege escalation allowed',
    'Set securityContext.allowPrivilegeEscalation: false on every container.',
  ),
  pss(
    'capabilities_restricted',
    'MEDIUM',
    'Capabilities not dropped',
    'Set securityContext.capabilities.drop: ["ALL"]; add back at most NET_BIND_SERVICE.',
  ),
  pss(
    'runAsNonRoot',
    'MEDIUM',
    'May run as root',
    'Set securityContext.runAsNonRoot: true on the pod or every container.',
  ),
  pss(
    'runAsUser',
    'MEDIUM',
    'Runs as UID 0',
    'Set runAsUser to a non-zero UID (or leave it unset with runAsNonRoot: true).',
  ),
  pss(
    'seccompProfile_restricted',
    'MEDIUM',
    'No seccomp profile',
    'Set securityContext.seccompProfile.type: RuntimeDefault on the pod.',
  ),
  pss(
    'procMount_restricted',
    'MEDIUM',
    'Unmasked /proc',
    'Remove securityContext.procMount or set it to Default.',
  ),
  // Resources
  {
    id: 'RES-NO-CPU-LIMIT',
    category: 'resources',
    severity: 'LOW',
    title: 'Container without a CPU limit',
    remediation: 'Set resources.limits.cpu so one container cannot starve its neighbours.',
  },
  {
    id: 'RES-NO-MEMORY-LIMIT',
    category: 'resources',
    severity: 'MEDIUM',
    title: 'Container without a memory limit',
    remediation: 'Set resources.limits.memory so the cgroup stops a runaway container, not the node.',
  },
  {
    id: 'NS-NO-RESOURCEQUOTA',
    category: 'resources',
    severity: 'LOW',
    title: 'Namespace without a ResourceQuota',
    remediation: 'Create a ResourceQuota in the namespace (limits.cpu, limits.memory, pods).',
  },
  // Network
  {
    id: 'NS-NO-NETWORKPOLICY',
    category: 'network',
    severity: 'MEDIUM',
    title: 'Namespace with workloads but no NetworkPolicy',
    remediation: 'Add a default-deny NetworkPolicy and allow only the traffic the workloads need.',
  },
  {
    id: 'NET-NODEPORT-SERVICE',
    category: 'network',
    severity: 'LOW',
    title: 'Service exposed on every node (NodePort)',
    remediation: 'Use type ClusterIP behind an Ingress or gateway, or restrict node access.',
  },
  {
    id: 'NET-LOADBALANCER-SERVICE',
    category: 'network',
    severity: 'MEDIUM',
    title: 'Service exposed through a load balancer',
    remediation: 'Use type ClusterIP behind an Ingress, or set loadBalancerSourceRanges.',
  },
  // RBAC
  {
    id: 'RBAC-WILDCARD-VERB',
    category: 'rbac',
    severity: 'HIGH',
    title: 'Role grants every verb (*)',
    remediation: 'List the verbs the subject needs instead of "*".',
  },
  {
    id: 'RBAC-WILDCARD-RESOURCE',
    category: 'rbac',
    severity: 'HIGH',
    title: 'Role grants every resource (*)',
    remediation: 'List the resources the subject needs instead of "*".',
  },
  {
    id: 'RBAC-CLUSTER-ADMIN-BINDING',
    category: 'rbac',
    severity: 'CRITICAL',
    title: 'Binding to cluster-admin',
    remediation: 'Bind a narrower role; keep cluster-admin for break-glass accounts.',
  },
  {
    id: 'RBAC-SECRETS-CLUSTER-WIDE',
    category: 'rbac',
    severity: 'HIGH',
    title: 'Secrets readable in every namespace',
    remediation: 'Grant get/list/watch on secrets through namespaced RoleBindings, for named secrets only.',
  },
  {
    id: 'RBAC-DEFAULT-SA-TOKEN',
    category: 'rbac',
    severity: 'MEDIUM',
    title: 'Default service account with its token mounted',
    remediation:
      'Use a dedicated ServiceAccount, and set automountServiceAccountToken: false where the pod does not call the API.',
  },
  // Images
  {
    id: 'IMG-INVALID-REFERENCE',
    category: 'image',
    severity: 'HIGH',
    title: 'Invalid image reference',
    remediation: 'Use a valid reference: registry/repository:tag@sha256:digest.',
  },
  {
    id: 'IMG-LATEST-TAG',
    category: 'image',
    severity: 'MEDIUM',
    title: 'Image uses the "latest" tag',
    remediation: 'Use a versioned tag and pin the digest.',
  },
  {
    id: 'IMG-NO-TAG-OR-DIGEST',
    category: 'image',
    severity: 'MEDIUM',
    title: 'Image without tag or digest',
    remediation: 'Use a versioned tag and pin the digest.',
  },
  {
    id: 'IMG-REGISTRY-NOT-ALLOWED',
    category: 'image',
    severity: 'HIGH',
    title: 'Image from a registry outside the allowlist',
    remediation: 'Mirror the image into an allowed registry.',
  },
  {
    id: 'IMG-NOT-DIGEST-PINNED',
    category: 'image',
    severity: 'LOW',
    title: 'Image not pinned to a digest',
    remediation: 'Append @sha256:<digest> so the image cannot change under the same tag.',
  },
  {
    id: 'IMG-SCAN-FAILED',
    category: 'image',
    severity: 'HIGH',
    title: 'Image fails the vulnerability compliance thresholds',
    remediation: 'Update the image to a version whose scan passes, or rebuild it with fixed packages.',
  },
  {
    id: 'IMG-NOT-SCANNED',
    category: 'image',
    severity: 'LOW',
    title: 'Image never scanned',
    remediation: 'Scan the image (containment scan) before deploying it.',
  },
  // Local containers (engine)
  {
    id: 'CTR-PRIVILEGED',
    category: 'container',
    severity: 'CRITICAL',
    title: 'Privileged container',
    remediation: 'Run without --privileged.',
  },
  {
    id: 'CTR-ADDED-CAPABILITIES',
    category: 'container',
    severity: 'HIGH',
    title: 'Container with added capabilities',
    remediation: 'Remove --cap-add; drop what the process does not need (--cap-drop=ALL).',
  },
  {
    id: 'CTR-NO-SECCOMP',
    category: 'container',
    severity: 'HIGH',
    title: 'Container without seccomp',
    remediation: 'Remove --security-opt seccomp=unconfined.',
  },
  {
    id: 'CTR-NO-USERNS',
    category: 'container',
    severity: 'MEDIUM',
    title: 'Container root is host root (no user namespace)',
    remediation: 'Run rootless or with --userns=auto (Podman) / userns-remap (Docker).',
  },
  {
    id: 'CTR-WRITABLE-ROOTFS',
    category: 'container',
    severity: 'LOW',
    title: 'Writable root filesystem',
    remediation: 'Run with --read-only and mount tmpfs where writes are needed.',
  },
  {
    id: 'CTR-NO-MEMORY-LIMIT',
    category: 'container',
    severity: 'MEDIUM',
    title: 'Container without a memory limit',
    remediation: 'Set --memory.',
  },
  {
    id: 'CTR-NO-PIDS-LIMIT',
    category: 'container',
    severity: 'LOW',
    title: 'Container without a pids limit',
    remediation: 'Set --pids-limit.',
  },
]);

export function controlOf(id: string): ControlDefinition {
  const c = CONTROLS[id];
  if (!c) throw new Error(`unknown posture control ${id}`);
  return c;
}
