import { Alert, Badge, Card, Group, Loader, Stack, Text, Timeline, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useSearch } from '@tanstack/react-router';
import type { ReactNode } from 'react';
import { api } from '../api';
import { AnchorLink } from '../AnchorLink';
import { ErrorNote } from '../ErrorNote';

/** One action's chain as `GET /v1/audit` answers it (src/audit/trail.ts: AuditLink). */
interface AuditLink {
  action: {
    id: string;
    action: string;
    phase?: string;
    reason: string;
    requestedBy?: string;
    findingsRef?: string;
    startedAt?: string;
    completedAt?: string;
    message?: string;
  };
  activation?: {
    id: string;
    action: string;
    status: string;
    start: number;
    end: number;
    cause?: string;
    logs: string[];
    result?: unknown;
  };
  event?: {
    id: string;
    type: string;
    time?: string;
    subject?: string;
    reason?: string;
    scanId?: number;
    detectionId?: number;
    triggerActivationId: string;
    trigger: string;
    firedAt: number;
  };
  scan?: { id: number; kind: string; scanTime: string; receivedAt: string };
  detection?: {
    id: number;
    ruleId: string;
    severity: string;
    title: string;
    count: number;
    firstSeen: string;
    lastSeen: string;
  };
  complete: boolean;
  gaps: string[];
}
interface AuditAnswer {
  workload: { cluster: string; namespace: string; pod: string };
  trail: AuditLink[];
}

const at = (ms: number): string => new Date(ms).toISOString();

/** A missing link: drawn dashed, in the chain where it belongs. */
function Gap({ what }: { what: string }) {
  return (
    <Text size="sm" c="red.9" data-testid="audit-gap">
      Gap: no {what} found
    </Text>
  );
}

function Step({ title, children, found }: { title: string; children: ReactNode; found: boolean }) {
  return (
    <Timeline.Item
      title={title}
      bullet={found ? undefined : '?'}
      color={found ? 'blue.9' : 'red.9'}
      lineVariant={found ? 'solid' : 'dashed'}
      data-testid={found ? 'audit-step' : 'audit-step-missing'}
    >
      {children}
    </Timeline.Item>
  );
}

function Chain({ link }: { link: AuditLink }) {
  const { action, activation, event, scan, detection } = link;
  return (
    <Card withBorder data-testid="audit-chain">
      <Group justify="space-between" mb="sm">
        <Title order={3} size="h5">
          {action.action} <code>{action.id}</code>
        </Title>
        <Badge color={link.complete ? 'teal.9' : 'red.9'} data-testid="audit-complete">
          {link.complete ? 'complete chain' : `${link.gaps.length} gap${link.gaps.length === 1 ? '' : 's'}`}
        </Badge>
      </Group>
      {/* Every step is drawn; a missing one is red, with a dashed line to the next. */}
      <Timeline active={4} bulletSize={22} lineWidth={2}>
        {detection ? (
          <Step title="Runtime detection" found>
            <Text size="sm">
              {detection.title} (<code>{detection.ruleId}</code>), {detection.count}× from{' '}
              {detection.firstSeen} to {detection.lastSeen}
            </Text>
          </Step>
        ) : (
          <Step title="Scan" found={scan !== undefined}>
            {scan ? (
              <Text size="sm">
                Scan {scan.id} ({scan.kind}) at {scan.scanTime}, received {scan.receivedAt}
              </Text>
            ) : (
              <Gap what={`scan or detection (${action.findingsRef ?? 'the action cites none'})`} />
            )}
          </Step>
        )}
        <Step title="Event" found={event !== undefined}>
          {event ? (
            <Text size="sm">
              <code>{event.type}</code> {event.id}
              {event.time ? ` at ${event.time}` : ''}
              {event.reason ? ` — ${event.reason}` : ''}
            </Text>
          ) : (
            <Gap what="CloudEvent" />
          )}
        </Step>
        <Step title="Trigger" found={event !== undefined}>
          {event ? (
            <Text size="sm">
              {event.trigger} fired at {at(event.firedAt)} (activation{' '}
              <code>{event.triggerActivationId}</code>)
            </Text>
          ) : (
            <Gap what="trigger activation" />
          )}
        </Step>
        <Step title="Policy activation" found={activation !== undefined}>
          {activation ? (
            <Stack gap={4}>
              <Text size="sm">
                {activation.action}: {activation.status}, {at(activation.start)} → {at(activation.end)} (
                <code>{activation.id}</code>)
              </Text>
              <details>
                <summary>Logs ({activation.logs.length} lines)</summary>
                <pre className="audit-logs" data-testid="activation-logs" tabIndex={0}>
                  {activation.logs.join('\n') || '(no output)'}
                </pre>
              </details>
            </Stack>
          ) : (
            <Gap what={`policy activation (${action.requestedBy ?? 'the action names none'})`} />
          )}
        </Step>
        <Step title="Action" found>
          <Text size="sm">
            {action.action} — {action.phase ?? 'pending'}: {action.reason}
          </Text>
          <Text size="xs" c="dimmed">
            requested by {action.requestedBy ?? 'unknown'}
            {action.startedAt ? `, started ${action.startedAt}` : ''}
            {action.completedAt ? `, completed ${action.completedAt}` : ''}
          </Text>
        </Step>
      </Timeline>
      {link.gaps.length > 0 && (
        <Alert color="red" title="Why the chain has gaps" mt="sm" data-testid="audit-gaps">
          <ul>
            {link.gaps.map((g) => (
              <li key={g}>{g}</li>
            ))}
          </ul>
        </Alert>
      )}
    </Card>
  );
}

/** `/ui/audit?namespace=&pod=[&cluster=]` or `/ui/audit?action=<id>`. */
export default function AuditTrail() {
  const search = useSearch({ from: '/audit' });
  const query = new URLSearchParams(
    Object.entries(search).filter((e): e is [string, string] => typeof e[1] === 'string'),
  ).toString();
  const audit = useQuery({
    queryKey: ['audit', query],
    queryFn: () => api<AuditAnswer>(`/v1/audit?${query}`),
  });
  if (!search.action && !(search.namespace && search.pod))
    return (
      <Text>
        Open the audit trail from a workload page, or with <code>?namespace=&amp;pod=</code> or{' '}
        <code>?action=</code>.
      </Text>
    );
  if (audit.error) return <ErrorNote error={audit.error} />;
  if (!audit.data) return <Loader aria-label="Loading audit trail" />;
  const { workload, trail } = audit.data;
  return (
    <Stack>
      <Title order={2} data-testid="audit-title">
        Audit trail of {workload.namespace}/{workload.pod}
      </Title>
      <Text size="sm">
        Scan or detection → event → trigger → policy activation → action, for every action on{' '}
        <AnchorLink
          to="/workload/$cluster/$namespace/$pod"
          params={{ cluster: workload.cluster, namespace: workload.namespace, pod: workload.pod }}
        >
          the workload
        </AnchorLink>
        , newest first. A link that could not be followed is drawn dashed and named.
      </Text>
      {trail.length === 0 ? (
        <Text data-testid="audit-empty">No actions on this workload.</Text>
      ) : (
        trail.map((link) => <Chain key={link.action.id} link={link} />)
      )}
    </Stack>
  );
}
