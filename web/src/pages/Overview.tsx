import { Card, Group, Loader, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { AnchorLink } from '../AnchorLink';
import { SEVERITIES } from '../api';
import type { NamespaceSummary, Severity } from '../api';
import { ErrorNote } from '../ErrorNote';
import { summaryQuery } from '../overview-query';
import { SeverityBadge } from '../severity';

function Stat({ label, value, testId }: { label: string; value: number | string; testId: string }) {
  return (
    <Card withBorder padding="sm" miw={130}>
      <Text size="xs" c="dimmed" tt="uppercase" fw={700}>
        {label}
      </Text>
      <Text size="xl" fw={700} data-testid={testId}>
        {value}
      </Text>
    </Card>
  );
}

const total = (rows: NamespaceSummary[], s: Severity): number =>
  rows.reduce((n, r) => n + r.counts[s] + r.configurationCounts[s], 0);

export default function Overview() {
  const summary = useQuery(summaryQuery);
  if (summary.error) return <ErrorNote error={summary.error} />;
  if (!summary.data) return <Loader aria-label="Loading overview" />;
  const rows = summary.data.namespaces;
  const workloads = rows.reduce((n, r) => n + r.workloads, 0);
  const compliant = rows.reduce((n, r) => n + r.compliantWorkloads, 0);
  const clusters = new Set(rows.map((r) => r.cluster)).size;

  return (
    <Stack>
      <Title order={2}>Overview</Title>
      <Group data-testid="overview-ready">
        <Stat label="Clusters" value={clusters} testId="stat-clusters" />
        <Stat label="Namespaces" value={rows.length} testId="stat-namespaces" />
        <Stat label="Workloads" value={workloads} testId="stat-workloads" />
        <Stat label="Compliant" value={compliant} testId="stat-compliant" />
        <Stat label="Not compliant" value={workloads - compliant} testId="stat-noncompliant" />
      </Group>
      <Title order={3} size="h4">
        Findings by severity (vulnerabilities and insecure configurations)
      </Title>
      <Group>
        {SEVERITIES.map((s) => (
          <Card key={s} withBorder padding="sm" miw={130}>
            <SeverityBadge severity={s} />
            <Text size="xl" fw={700} data-testid={`count-${s}`}>
              {total(rows, s)}
            </Text>
          </Card>
        ))}
      </Group>
      <Title order={3} size="h4">
        Namespaces
      </Title>
      <Table striped withTableBorder>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Cluster</Table.Th>
            <Table.Th>Namespace</Table.Th>
            <Table.Th>Workloads</Table.Th>
            <Table.Th>Vulnerable</Table.Th>
            <Table.Th>Critical</Table.Th>
            <Table.Th>High</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.slice(0, 200).map((r) => (
            <Table.Tr key={`${r.cluster}/${r.namespace}`}>
              <Table.Td>{r.cluster}</Table.Td>
              <Table.Td>
                <AnchorLink to="/workloads" search={{ namespace: r.namespace }}>
                  {r.namespace}
                </AnchorLink>
              </Table.Td>
              <Table.Td>{r.workloads}</Table.Td>
              <Table.Td>{r.vulnerableWorkloads}</Table.Td>
              <Table.Td>{r.counts.CRITICAL + r.configurationCounts.CRITICAL}</Table.Td>
              <Table.Td>{r.counts.HIGH + r.configurationCounts.HIGH}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}
