import { Badge, Group, Loader, Stack, Table, Tabs, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useParams, useSearch } from '@tanstack/react-router';
import { lazy, Suspense, useMemo } from 'react';
import { api } from '../api';
import { AnchorLink } from '../AnchorLink';
import type { Severity, Summary, Workload } from '../api';
import { ActPanel } from '../ActPanel';
import { ErrorNote } from '../ErrorNote';
import { ActionsTable, useActions } from './Actions';
import { SeverityBadge } from '../severity';

const RiskChart = lazy(() => import('../RiskChart').then((m) => ({ default: m.RiskChart })));

/** A runtime detection aggregate as `GET /v1/detections` gives it (the fields shown). */
interface Detection {
  id: number;
  ruleId: string;
  severity: Severity;
  title: string;
  count: number;
  lastSeen: string;
}

interface Finding {
  id: string;
  aliases: string[];
  summary?: string;
  severity: Severity;
  fixedVersion?: string;
  package: { name: string; version: string; ecosystem: string; location: string };
}
interface Configuration {
  id: string;
  severity: Severity;
  title: string;
  evidence: string[];
}
interface ScanDetail {
  id: number;
  workload: Workload;
  scanTime: string;
  kind: string;
  summary: Summary;
  vulnerabilities: Finding[];
  insecureConfigurations: Configuration[];
  inventory: { packages: { name: string; version: string; ecosystem: string; location: string }[] };
}
interface ScanRecord {
  id: number;
  scanTime: string;
  kind: string;
  inventoryHash: string;
  summary: Summary;
}

function qs(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return q.toString();
}

export default function WorkloadPage() {
  const { cluster, namespace, pod } = useParams({ from: '/workload/$cluster/$namespace/$pod' });
  const { container } = useSearch({ from: '/workload/$cluster/$namespace/$pod' });
  const where = { cluster, namespace, pod, container };
  const findings = useQuery({
    queryKey: ['findings', where],
    queryFn: () => api<{ scanId?: number }>(`/v1/findings?${qs(where)}`),
  });
  const scanId = findings.data?.scanId;
  const detail = useQuery({
    queryKey: ['scan', scanId],
    enabled: scanId !== undefined,
    queryFn: () => api<ScanDetail>(`/v1/scans/${scanId}`),
  });
  const history = useQuery({
    queryKey: ['scans', where],
    queryFn: () => api<{ scans: ScanRecord[] }>(`/v1/scans?${qs({ ...where, limit: '100' })}`),
  });
  const series = useMemo(() => {
    const scans = [...(history.data?.scans ?? [])].sort((a, b) => a.scanTime.localeCompare(b.scanTime));
    return {
      times: scans.map((s) => Date.parse(s.scanTime) / 1000),
      scores: scans.map((s) => s.summary.riskScore),
    };
  }, [history.data]);

  // Runtime detections on this pod, newest first; the live stream refreshes them (and polls slowly).
  const detections = useQuery({
    queryKey: ['detections', { cluster, namespace, pod }],
    queryFn: () =>
      api<{ detections: Detection[] }>(`/v1/detections?${qs({ cluster, namespace, pod, limit: '200' })}`),
    refetchInterval: 60_000,
  });

  // The action timeline: this namespace's actions on this pod (none visible without actions:read).
  const actions = useActions({ namespace });
  const timeline = (actions.data?.actions ?? []).filter((a) => a.spec.target.pod === pod);

  const error = findings.error ?? detail.error ?? history.error;
  if (error) return <ErrorNote error={error} />;
  const scan = detail.data;
  if (!scan) return <Loader aria-label="Loading workload" />;

  return (
    <Stack>
      <Title order={2} data-testid="workload-title">
        {namespace}/{pod}
        {container ? ` / ${container}` : ''}
      </Title>
      <Group>
        <Text size="sm">
          Image <code>{scan.workload.image}</code>
        </Text>
        {scan.workload.imageDigest && (
          <Text size="sm">
            Digest <code>{scan.workload.imageDigest}</code>
          </Text>
        )}
        <Badge color={scan.summary.compliance.passed ? 'green.9' : 'red.9'}>
          {scan.summary.compliance.passed ? 'compliant' : 'not compliant'}
        </Badge>
        <Text size="sm">Risk score {scan.summary.riskScore}</Text>
        <AnchorLink to="/audit" search={{ cluster, namespace, pod }} size="sm">
          Audit trail
        </AnchorLink>
      </Group>
      {/* Only where an enforcer serves the action API (`containment up`). */}
      {actions.data && <ActPanel target={where} />}
      <Tabs defaultValue="vulnerabilities" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="vulnerabilities">Vulnerabilities ({scan.vulnerabilities.length})</Tabs.Tab>
          <Tabs.Tab value="configurations">
            Insecure configurations ({scan.insecureConfigurations.length})
          </Tabs.Tab>
          <Tabs.Tab value="packages">Packages ({scan.inventory.packages.length})</Tabs.Tab>
          <Tabs.Tab value="history">Scan history</Tabs.Tab>
          <Tabs.Tab value="detections">
            Runtime detections ({detections.data?.detections.length ?? 0})
          </Tabs.Tab>
          <Tabs.Tab value="actions">Actions ({timeline.length})</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="vulnerabilities" pt="sm">
          <Table striped withTableBorder data-testid="vulnerabilities">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Advisory</Table.Th>
                <Table.Th>Severity</Table.Th>
                <Table.Th>Package</Table.Th>
                <Table.Th>Installed</Table.Th>
                <Table.Th>Fixed in</Table.Th>
                <Table.Th>Aliases</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {scan.vulnerabilities.slice(0, 500).map((v) => (
                <Table.Tr key={`${v.id}/${v.package.name}/${v.package.location}`}>
                  <Table.Td>{v.id}</Table.Td>
                  <Table.Td>
                    <SeverityBadge severity={v.severity} />
                  </Table.Td>
                  <Table.Td>{v.package.name}</Table.Td>
                  <Table.Td>{v.package.version}</Table.Td>
                  <Table.Td>{v.fixedVersion ?? 'no fix'}</Table.Td>
                  <Table.Td>{v.aliases.slice(0, 4).join(', ')}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Tabs.Panel>
        <Tabs.Panel value="configurations" pt="sm">
          <Table striped withTableBorder>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Check</Table.Th>
                <Table.Th>Severity</Table.Th>
                <Table.Th>Evidence</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {scan.insecureConfigurations.map((c) => (
                <Table.Tr key={c.id}>
                  <Table.Td>{c.title}</Table.Td>
                  <Table.Td>
                    <SeverityBadge severity={c.severity} />
                  </Table.Td>
                  <Table.Td>{c.evidence.join(', ')}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Tabs.Panel>
        <Tabs.Panel value="packages" pt="sm">
          <Table striped withTableBorder>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Package</Table.Th>
                <Table.Th>Version</Table.Th>
                <Table.Th>Ecosystem</Table.Th>
                <Table.Th>Found at</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {scan.inventory.packages.slice(0, 1000).map((p) => (
                <Table.Tr key={`${p.ecosystem}/${p.name}/${p.location}`}>
                  <Table.Td>{p.name}</Table.Td>
                  <Table.Td>{p.version}</Table.Td>
                  <Table.Td>{p.ecosystem}</Table.Td>
                  <Table.Td>{p.location}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Tabs.Panel>
        <Tabs.Panel value="history" pt="sm">
          <Suspense fallback={<Loader aria-label="Loading chart" />}>
            {series.times.length > 0 && <RiskChart times={series.times} scores={series.scores} />}
          </Suspense>
          <Table striped withTableBorder>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Scan</Table.Th>
                <Table.Th>Time</Table.Th>
                <Table.Th>Kind</Table.Th>
                <Table.Th>Critical</Table.Th>
                <Table.Th>High</Table.Th>
                <Table.Th>Risk</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(history.data?.scans ?? []).map((s) => (
                <Table.Tr key={s.id}>
                  <Table.Td>{s.id}</Table.Td>
                  <Table.Td>{s.scanTime}</Table.Td>
                  <Table.Td>{s.kind}</Table.Td>
                  <Table.Td>{s.summary.counts.CRITICAL}</Table.Td>
                  <Table.Td>{s.summary.counts.HIGH}</Table.Td>
                  <Table.Td>{s.summary.riskScore}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Tabs.Panel>
        <Tabs.Panel value="detections" pt="sm">
          {detections.error ? (
            <ErrorNote error={detections.error} />
          ) : (detections.data?.detections ?? []).length === 0 ? (
            <Text data-testid="workload-detections-empty">No runtime detections.</Text>
          ) : (
            <Table striped withTableBorder data-testid="workload-detections">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Rule</Table.Th>
                  <Table.Th>Severity</Table.Th>
                  <Table.Th>What</Table.Th>
                  <Table.Th>Count</Table.Th>
                  <Table.Th>Last seen (UTC)</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {(detections.data?.detections ?? []).map((d) => (
                  <Table.Tr key={d.id}>
                    <Table.Td>
                      <code>{d.ruleId}</code>
                    </Table.Td>
                    <Table.Td>
                      <SeverityBadge severity={d.severity} />
                    </Table.Td>
                    <Table.Td>{d.title}</Table.Td>
                    <Table.Td>{d.count}</Table.Td>
                    <Table.Td>{d.lastSeen}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </Tabs.Panel>
        <Tabs.Panel value="actions" pt="sm">
          {actions.error ? (
            <ErrorNote error={actions.error} />
          ) : (
            <ActionsTable actions={timeline} testId="workload-actions" />
          )}
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}
