import { Group, Loader, NativeSelect, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useNavigate, useSearch } from '@tanstack/react-router';
import { ActionPhaseBadge } from '../ActionPhase';
import { ACTION_PHASES, duration, KIND_LABELS, shortTime } from '../actions';
import type { SecurityAction } from '../actions';
import { AnchorLink } from '../AnchorLink';
import { api } from '../api';
import { ErrorNote } from '../ErrorNote';

const FINAL = new Set(['Succeeded', 'Failed']);

export function useActions(params: { namespace?: string; phase?: string }) {
  const q = new URLSearchParams({ limit: '500' });
  if (params.namespace) q.set('namespace', params.namespace);
  if (params.phase) q.set('phase', params.phase);
  return useQuery({
    queryKey: ['actions', params],
    queryFn: () => api<{ actions: SecurityAction[] }>(`/v1/actions?${q.toString()}`),
    // New actions and phase changes arrive over the live stream (Shell refetches on each); this
    // slower poll only covers a stream that is down. TanStack Query pauses it while the tab is hidden.
    refetchInterval: (query) =>
      query.state.data?.actions.some((a) => !FINAL.has(a.status?.phase ?? 'Pending')) ? 10_000 : 30_000,
  });
}

/** The actions table, shared by this page and the workload page's timeline. */
export function ActionsTable({ actions, testId }: { actions: SecurityAction[]; testId: string }) {
  if (actions.length === 0) return <Text data-testid={`${testId}-empty`}>No actions.</Text>;
  return (
    <Table striped withTableBorder data-testid={testId}>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Action</Table.Th>
          <Table.Th>Kind</Table.Th>
          <Table.Th>Target</Table.Th>
          <Table.Th>Phase</Table.Th>
          <Table.Th>Reason</Table.Th>
          <Table.Th>Requested by</Table.Th>
          <Table.Th>Started (UTC)</Table.Th>
          <Table.Th>Completed (UTC)</Table.Th>
          <Table.Th>Took</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {actions.map((a) => (
          <Table.Tr key={a.metadata.name} data-testid="action-row">
            <Table.Td>
              <AnchorLink to="/actions/$id" params={{ id: a.metadata.name }}>
                {a.metadata.name}
              </AnchorLink>
            </Table.Td>
            <Table.Td>{KIND_LABELS[a.spec.action]}</Table.Td>
            <Table.Td data-testid="action-target">
              {a.spec.target.namespace}/{a.spec.target.pod}
            </Table.Td>
            <Table.Td>
              <ActionPhaseBadge action={a} />
            </Table.Td>
            <Table.Td>{a.spec.reason}</Table.Td>
            <Table.Td>{a.spec.requestedBy ?? ''}</Table.Td>
            <Table.Td title={a.status?.startedAt}>{shortTime(a.status?.startedAt)}</Table.Td>
            <Table.Td title={a.status?.completedAt}>{shortTime(a.status?.completedAt)}</Table.Td>
            <Table.Td>{duration(a)}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

export default function Actions() {
  const search = useSearch({ from: '/actions' });
  const navigate = useNavigate({ from: '/actions' });
  const actions = useActions(search);
  return (
    <Stack>
      <Title order={2}>Actions</Title>
      <Group align="end">
        <TextInput
          label="Namespace"
          defaultValue={search.namespace ?? ''}
          onKeyDown={(e) => {
            if (e.key === 'Enter')
              void navigate({ search: { ...search, namespace: e.currentTarget.value || undefined } });
          }}
        />
        <NativeSelect
          label="Phase"
          value={search.phase ?? ''}
          data={[{ value: '', label: 'any' }, ...ACTION_PHASES.map((p) => ({ value: p, label: p }))]}
          onChange={(e) =>
            void navigate({ search: { ...search, phase: e.currentTarget.value || undefined } })
          }
        />
      </Group>
      {actions.error ? (
        <ErrorNote error={actions.error} />
      ) : !actions.data ? (
        <Loader aria-label="Loading actions" />
      ) : (
        <ActionsTable actions={actions.data.actions} testId="actions" />
      )}
    </Stack>
  );
}
