import { Alert, Anchor, Button, Code, Group, Loader, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useEffect, useState } from 'react';
import { ActionPhaseBadge } from '../ActionPhase';
import { duration, evidenceFileName, KIND_LABELS, verifiedEvidence } from '../actions';
import type { EvidenceItem, SecurityAction } from '../actions';
import { AnchorLink } from '../AnchorLink';
import { api } from '../api';
import { ErrorNote } from '../ErrorNote';

type Check =
  { state: 'verifying' } | { state: 'verified'; url: string } | { state: 'failed'; error: unknown };

/** One evidence file: verified in the browser before it is offered (see `verifiedEvidence`). */
function EvidenceRow({ actionId, item }: { actionId: string; item: EvidenceItem }) {
  const name = evidenceFileName(actionId, item);
  const [check, setCheck] = useState<Check | undefined>();
  const url = check?.state === 'verified' ? check.url : undefined;
  useEffect(() => () => (url === undefined ? undefined : URL.revokeObjectURL(url)), [url]);
  return (
    <Table.Tr data-testid="evidence-row">
      <Table.Td>{name}</Table.Td>
      <Table.Td>{item.kind}</Table.Td>
      <Table.Td>{item.bytes.toLocaleString('en')} B</Table.Td>
      <Table.Td>
        <Code data-testid="evidence-sha256">{item.sha256}</Code>
      </Table.Td>
      <Table.Td>
        {check?.state === 'verified' ? (
          <Group gap="xs">
            <Text size="sm" c="green.9" data-testid="evidence-verified">
              SHA-256 verified
            </Text>
            <Anchor
              href={check.url}
              download={`${actionId}-${name.replaceAll('/', '-')}`}
              data-testid="evidence-save"
            >
              Save {name}
            </Anchor>
          </Group>
        ) : check?.state === 'failed' ? (
          <ErrorNote error={check.error} />
        ) : (
          <Button
            size="xs"
            variant="light"
            loading={check?.state === 'verifying'}
            aria-label={`Verify and download ${name}`}
            onClick={async () => {
              setCheck({ state: 'verifying' });
              try {
                const { blob } = await verifiedEvidence(actionId, item);
                setCheck({ state: 'verified', url: URL.createObjectURL(blob) });
              } catch (error) {
                setCheck({ state: 'failed', error });
              }
            }}
          >
            Verify and download
          </Button>
        )}
      </Table.Td>
    </Table.Tr>
  );
}

export default function ActionDetail() {
  const { id } = useParams({ from: '/actions/$id' });
  const action = useQuery({
    queryKey: ['action', id],
    queryFn: () => api<SecurityAction>(`/v1/actions/${encodeURIComponent(id)}`),
    refetchInterval: (q) =>
      q.state.data?.status?.phase === 'Succeeded' || q.state.data?.status?.phase === 'Failed'
        ? false
        : 10_000,
  });
  if (action.error) return <ErrorNote error={action.error} />;
  if (!action.data) return <Loader aria-label="Loading action" />;
  const a = action.data;
  const { target } = a.spec;
  return (
    <Stack>
      <Title order={2} data-testid="action-title">
        {KIND_LABELS[a.spec.action]} {target.namespace}/{target.pod}
      </Title>
      <Group>
        <ActionPhaseBadge action={a} />
        <Text size="sm">
          Action <code>{a.metadata.name}</code>
        </Text>
        {a.status?.node && <Text size="sm">Node {a.status.node}</Text>}
      </Group>
      <Table withTableBorder variant="vertical" maw={900}>
        <Table.Tbody>
          <Table.Tr>
            <Table.Th>Reason</Table.Th>
            <Table.Td>{a.spec.reason || '(none given)'}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th>Requested by</Table.Th>
            <Table.Td data-testid="action-requester">{a.spec.requestedBy ?? '(unknown)'}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th>Started</Table.Th>
            <Table.Td>{a.status?.startedAt ?? ''}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th>Completed</Table.Th>
            <Table.Td>
              {a.status?.completedAt ?? ''} {duration(a) && `(${duration(a)})`}
            </Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th>Outcome</Table.Th>
            <Table.Td data-testid="action-message">{a.status?.message ?? ''}</Table.Td>
          </Table.Tr>
        </Table.Tbody>
      </Table>
      <Text size="sm">
        <AnchorLink to="/actions" search={{ namespace: target.namespace }}>
          Other actions in {target.namespace}
        </AnchorLink>
      </Text>
      <Title order={3} size="h4">
        Evidence
      </Title>
      {(a.status?.evidence ?? []).length === 0 ? (
        <Text>No evidence bundle.</Text>
      ) : (
        <>
          <Alert color="blue" title="Verified downloads">
            Each file is downloaded into the browser and its SHA-256 compared with the one the enforcer
            recorded when it captured the bundle; only a matching file is offered for saving.
          </Alert>
          <Table striped withTableBorder data-testid="evidence">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>File</Table.Th>
                <Table.Th>Kind</Table.Th>
                <Table.Th>Size</Table.Th>
                <Table.Th>SHA-256</Table.Th>
                <Table.Th>Download</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {a.status?.evidence.map((item) => (
                <EvidenceRow key={item.uri} actionId={a.metadata.name} item={item} />
              ))}
            </Table.Tbody>
          </Table>
        </>
      )}
    </Stack>
  );
}
