import { Badge, Card, Group, Loader, Stack, Switch, Table, Text, Title } from '@mantine/core';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../api';
import { ErrorNote } from '../ErrorNote';

// Badge colours with at least 4.5:1 contrast for their white text (axe-core): teal.9, red.9, dark.*.

/** `GET /v1/policies` (src/scanner/routes/linked-parts.ts). */
interface Activation {
  id: string;
  name: string;
  start: number;
  end?: number;
  cause?: string;
  status: string;
  logs: string[];
  result: unknown;
}
interface RuntimeNamespace {
  namespace: string;
  mayChangeRules: boolean;
  policies: { name: string; version?: string; kind: string; source: string; dryRun: boolean }[];
  triggers: { name: string }[];
  rules: { name: string; trigger: string; action: string; status: string }[];
  activations: Activation[];
}
interface PoliciesAnswer {
  cluster: string;
  namespaces: RuntimeNamespace[];
}

const at = (ms: number): string => new Date(ms).toISOString();

function RuleSwitch({
  namespace,
  rule,
  may,
}: {
  namespace: string;
  rule: RuntimeNamespace['rules'][number];
  may: boolean;
}) {
  const queryClient = useQueryClient();
  const change = useMutation({
    mutationFn: (status: 'active' | 'inactive') =>
      api(`/v1/policies/${encodeURIComponent(namespace)}/rules/${encodeURIComponent(rule.name)}`, {
        method: 'POST',
        json: { status },
      }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['policies'] }),
  });
  return (
    <Stack gap={2}>
      <Switch
        checked={rule.status === 'active'}
        // Not disabled while the change is sent: a disabled switch would lose the keyboard focus.
        disabled={!may}
        aria-busy={change.isPending}
        label={rule.status === 'active' ? 'enabled' : 'disabled'}
        aria-label={`Rule ${rule.name} enabled`}
        data-testid={`rule-switch-${rule.name}`}
        onChange={(e) => {
          if (!change.isPending) change.mutate(e.currentTarget.checked ? 'active' : 'inactive');
        }}
      />
      {change.error && <ErrorNote error={change.error} />}
    </Stack>
  );
}

function Namespace({ ns }: { ns: RuntimeNamespace }) {
  return (
    <Stack data-testid={`policies-${ns.namespace}`}>
      <Title order={3} size="h4">
        Namespace {ns.namespace}
      </Title>
      {ns.policies.map((p) => (
        <Card withBorder key={p.name} data-testid="policy">
          <Group gap="sm">
            <Title order={4} size="h5">
              {p.name}
            </Title>
            <Badge color="dark.6">{p.kind}</Badge>
            {p.version && <Text size="xs">v{p.version}</Text>}
            <Badge color={p.dryRun ? 'dark.5' : 'red.9'}>
              {p.dryRun ? 'dry run (monitor)' : 'enforcing'}
            </Badge>
          </Group>
          <details>
            <summary>Source</summary>
            <pre className="audit-logs" data-testid="policy-source" tabIndex={0}>
              {p.source}
            </pre>
          </details>
        </Card>
      ))}
      <Table striped withTableBorder data-testid="rules">
        <Table.Caption>Rules: which trigger runs which policy</Table.Caption>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Rule</Table.Th>
            <Table.Th>Trigger</Table.Th>
            <Table.Th>Policy</Table.Th>
            <Table.Th>Status</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {ns.rules.map((r) => (
            <Table.Tr key={r.name}>
              <Table.Td>{r.name}</Table.Td>
              <Table.Td>{r.trigger}</Table.Td>
              <Table.Td>{r.action}</Table.Td>
              <Table.Td>
                <RuleSwitch namespace={ns.namespace} rule={r} may={ns.mayChangeRules} />
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Text size="sm">Triggers: {ns.triggers.map((t) => t.name).join(', ') || 'none'}</Text>
      <Table striped withTableBorder data-testid="activations">
        <Table.Caption>Recent activations, newest first</Table.Caption>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Started</Table.Th>
            <Table.Th>Name</Table.Th>
            <Table.Th>Status</Table.Th>
            <Table.Th>Logs and result</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {ns.activations.map((a) => (
            <Table.Tr key={a.id}>
              <Table.Td>{at(a.start)}</Table.Td>
              <Table.Td>{a.name}</Table.Td>
              <Table.Td>
                <Badge color={a.status === 'success' ? 'teal.9' : 'red.9'}>{a.status}</Badge>
              </Table.Td>
              <Table.Td>
                <details>
                  <summary>
                    {a.logs.length} log line{a.logs.length === 1 ? '' : 's'}, result
                  </summary>
                  <pre className="audit-logs" tabIndex={0}>
                    {a.logs.join('\n') || '(no output)'}
                  </pre>
                  <pre className="audit-logs" tabIndex={0}>
                    {JSON.stringify(a.result, null, 2)}
                  </pre>
                </details>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

export default function Policies() {
  const policies = useQuery({
    queryKey: ['policies'],
    queryFn: () => api<PoliciesAnswer>('/v1/policies?activations=20'),
  });
  if (policies.error) return <ErrorNote error={policies.error} />;
  if (!policies.data) return <Loader aria-label="Loading policies" />;
  return (
    <Stack>
      <Title order={2}>Policies</Title>
      {policies.data.namespaces.length === 0 ? (
        <Text>No policy namespace you may read.</Text>
      ) : (
        policies.data.namespaces.map((ns) => <Namespace key={ns.namespace} ns={ns} />)
      )}
    </Stack>
  );
}
