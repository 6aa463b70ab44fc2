import { Alert, Button, Code, Group, Loader, Modal, Stack, Text, Textarea } from '@mantine/core';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { ACTING_ROLES, KIND_LABELS, newActionId } from './actions';
import type { ActionKind, ActionPreview, SecurityAction } from './actions';
import { AnchorLink } from './AnchorLink';
import { api } from './api';
import { ErrorNote } from './ErrorNote';
import { useSession } from './session';

const KINDS: ActionKind[] = ['Quarantine', 'Release', 'Snapshot', 'TerminateGraceful', 'Terminate'];
const GRACE_SECONDS = 10;

interface Target {
  cluster: string;
  namespace: string;
  pod: string;
  container?: string;
}

function body(kind: ActionKind, target: Target, reason: string, id: string) {
  return {
    metadata: { name: id },
    spec: {
      target: {
        namespace: target.namespace,
        pod: target.pod,
        ...(target.container ? { container: target.container } : {}),
      },
      action: kind,
      gracePeriodSeconds: GRACE_SECONDS,
      reason,
    },
  };
}

/** The confirmation: names the workload, shows the server's dry-run preview, then submits. */
function Confirm({ kind, target, onClose }: { kind: ActionKind; target: Target; onClose: () => void }) {
  const queryClient = useQueryClient();
  const [reason, setReason] = useState('');
  // One id per dialog: a double submit is the same action, done once (the API is idempotent by id).
  const [id] = useState(() => newActionId(kind));
  const preview = useQuery({
    queryKey: ['preview', kind, target],
    queryFn: () =>
      api<ActionPreview>('/v1/actions/preview', { method: 'POST', json: body(kind, target, '', id) }),
    staleTime: 0,
    gcTime: 0,
  });
  const submit = useMutation({
    mutationFn: () =>
      api<SecurityAction>('/v1/actions', {
        method: 'POST',
        // No requestedBy: the server records the signed-in principal, which the page cannot forge.
        json: body(kind, target, reason, id),
      }),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ['actions'] }),
  });
  const workload = `${target.cluster}/${target.namespace}/${target.pod}${target.container ? `/${target.container}` : ''}`;
  return (
    <Modal
      opened
      onClose={onClose}
      title={`${KIND_LABELS[kind]} ${workload}?`}
      size="lg"
      closeButtonProps={{ 'aria-label': 'Close' }}
      transitionProps={{ duration: 0 }}
      // The scroll lock injects a <style> element, which the CSP (style-src 'self') blocks.
      lockScroll={false}
    >
      <Stack data-testid="act-dialog">
        <Text>
          Workload <Code data-testid="act-workload">{workload}</Code>
        </Text>
        {preview.error ? (
          <ErrorNote error={preview.error} />
        ) : !preview.data ? (
          <Loader aria-label="Loading preview" />
        ) : (
          <Alert color="blue" title="Dry run: what would be done" data-testid="act-preview">
            <Text size="sm">{preview.data.plan}</Text>
            <Text size="sm">
              Container {preview.data.target.name} ({preview.data.target.id.slice(0, 12)}), image{' '}
              {preview.data.target.image}
            </Text>
            {preview.data.dryRun && (
              <Text size="sm" fw={700}>
                The enforcer runs in monitor mode: this will only be recorded.
              </Text>
            )}
          </Alert>
        )}
        {submit.data ? (
          <Alert color="blue" title="Submitted" data-testid="act-done">
            <AnchorLink to="/actions/$id" params={{ id: submit.data.metadata.name }}>
              {submit.data.metadata.name}
            </AnchorLink>{' '}
            — {submit.data.status?.phase ?? 'Pending'}
          </Alert>
        ) : (
          <>
            <Textarea label="Reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)} />
            {submit.error && <ErrorNote error={submit.error} />}
            <Group justify="flex-end">
              <Button variant="default" onClick={onClose}>
                Cancel
              </Button>
              <Button
                color="red.9"
                disabled={!preview.data || submit.isPending}
                loading={submit.isPending}
                onClick={() => submit.mutate()}
                data-testid="act-confirm"
              >
                {KIND_LABELS[kind]} {target.pod}
              </Button>
            </Group>
          </>
        )}
      </Stack>
    </Modal>
  );
}

/** Act on the workload: only for roles that may (the server refuses the others anyway). */
export function ActPanel({ target }: { target: Target }) {
  const session = useSession();
  const [kind, setKind] = useState<ActionKind | undefined>();
  if (!session.data || !ACTING_ROLES.has(session.data.role)) return null;
  return (
    <Group gap="xs" data-testid="act-panel" role="group" aria-label="Act on this workload">
      {KINDS.map((k) => (
        <Button
          key={k}
          size="xs"
          variant="outline"
          color={k === 'Release' ? 'teal.9' : 'red.9'}
          onClick={() => setKind(k)}
        >
          {KIND_LABELS[k]}
        </Button>
      ))}
      {kind && <Confirm kind={kind} target={target} onClose={() => setKind(undefined)} />}
    </Group>
  );
}
