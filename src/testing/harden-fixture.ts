/**
 * A Deployment breaking most of the restricted level — root, privileged sidecar, added
 * capabilities (NET_BIND_SERVICE among them), host namespaces, a hostPath volume, a host port, an
 * unsafe sysctl, Unconfined seccomp and AppArmor — that the API server still accepts.
 */
export function insecureDeployment(namespace = 'harden'): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'legacy-web', namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'legacy-web' } },
      template: {
        metadata: {
          labels: { app: 'legacy-web' },
          annotations: { 'container.apparmor.security.beta.kubernetes.io/web': 'unconfined' },
        },
        spec: {
          hostNetwork: true,
          hostPID: true,
          securityContext: {
            runAsUser: 0,
            seccompProfile: { type: 'Unconfined' },
            sysctls: [
              { name: 'kernel.shm_rmid_forced', value: '1' },
              { name: 'kernel.msgmax', value: '65536' },
            ],
          },
          initContainers: [
            {
              name: 'setup',
              image: 'registry.local/shop/setup:1',
              securityContext: { allowPrivilegeEscalation: true },
            },
          ],
          containers: [
            {
              name: 'web',
              image: 'registry.local/shop/web:1',
              ports: [{ containerPort: 80, hostPort: 80, protocol: 'TCP' }],
              securityContext: { capabilities: { add: ['NET_BIND_SERVICE', 'NET_ADMIN'] } },
              volumeMounts: [{ name: 'host-logs', mountPath: '/var/log/host' }],
            },
            {
              name: 'agent',
              image: 'registry.local/shop/agent:1',
              securityContext: { privileged: true, procMount: 'Default' },
            },
          ],
          volumes: [
            { name: 'host-logs', hostPath: { path: '/var/log', type: 'Directory' } },
            { name: 'cache', emptyDir: {} },
          ],
        },
      },
    },
  };
}
