import { Badge, Box, Button, Container, Group, Loader, Text, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { Outlet, useRouterState } from '@tanstack/react-router';
import { useEffect, useState } from 'react';
import { api, ApiError, signInUrl } from './api';
import { AnchorLink } from './AnchorLink';
import { ErrorNote } from './ErrorNote';
import { useSession } from './session';

function scopeText(scope: { cluster: string; namespaces: string[] | '*' }): string {
  const ns = scope.namespaces === '*' ? 'all namespaces' : scope.namespaces.join(', ');
  return `${scope.cluster === '*' ? 'all clusters' : scope.cluster} · ${ns}`;
}

type LiveCounts = Record<'scan' | 'detection' | 'action', number>;

/** "1 new scan · 2 new detections", the kinds that arrived since the page loaded. */
function liveText(live: LiveCounts): string {
  return (['scan', 'detection', 'action'] as const)
    .filter((k) => live[k] > 0)
    .map((k) => `${live[k]} new ${k}${live[k] === 1 ? '' : 's'}`)
    .join(' · ');
}

/** Header and navigation around every page but sign-in; no session → sign-in, keeping the page. */
export function Shell() {
  const pathname = useRouterState({ select: (s) => s.location.pathname });
  const onSignIn = pathname.endsWith('/signin');
  const session = useSession();
  const queryClient = useQueryClient();
  const unauthenticated = session.error instanceof ApiError && session.error.status === 401;

  useEffect(() => {
    if (!onSignIn && unauthenticated) location.assign(signInUrl());
  }, [onSignIn, unauthenticated]);

  // Live: new scans, detections and actions the principal may see arrive over SSE (the server
  // filters them); the pages' data is refetched, an action's own page is updated at once.
  const [live, setLive] = useState<LiveCounts>({ scan: 0, detection: 0, action: 0 });
  const signedIn = session.data !== undefined;
  useEffect(() => {
    if (!signedIn || onSignIn) return;
    const source = new EventSource('/v1/events/stream');
    for (const kind of ['scan', 'detection', 'action'] as const) {
      source.addEventListener(kind, (e: MessageEvent<string>) => {
        setLive((n) => ({ ...n, [kind]: n[kind] + 1 }));
        if (kind === 'action') {
          const action = JSON.parse(e.data) as { metadata: { name: string } };
          queryClient.setQueryData(['action', action.metadata.name], action);
        }
        void queryClient.invalidateQueries({ predicate: (q) => q.queryKey[0] !== 'session' });
      });
    }
    return () => source.close();
  }, [signedIn, onSignIn, queryClient]);

  if (onSignIn) return <Outlet />;
  return (
    <>
      <Box component="header" px="md" py="xs" bg="dark.7" c="white">
        <Group justify="space-between">
          <Group gap="lg">
            <Title order={1} size="h4">
              Containment
            </Title>
            <nav aria-label="Main">
              <Group gap="md">
                <AnchorLink to="/" c="white">
                  Overview
                </AnchorLink>
                <AnchorLink to="/workloads" c="white">
                  Workloads
                </AnchorLink>
                <AnchorLink to="/actions" c="white">
                  Actions
                </AnchorLink>
                <AnchorLink to="/policies" c="white">
                  Policies
                </AnchorLink>
              </Group>
            </nav>
          </Group>
          {session.data && (
            <Group gap="sm">
              <Text size="sm" aria-live="polite" data-testid="live-count">
                {liveText(live)}
              </Text>
              <Badge color="gray" variant="light" data-testid="principal-role">
                {session.data.role}
              </Badge>
              <Text size="sm" data-testid="principal-scope">
                {scopeText(session.data.scope)}
              </Text>
              <Button
                size="xs"
                variant="white"
                color="dark"
                onClick={async () => {
                  await api('/ui/session', { method: 'DELETE' });
                  queryClient.clear();
                  location.assign('/ui/signin');
                }}
              >
                Sign out
              </Button>
            </Group>
          )}
        </Group>
      </Box>
      <Container size="xl" py="md" component="main">
        {session.isPending || unauthenticated ? (
          <Loader aria-label="Loading" />
        ) : session.error ? (
          <ErrorNote error={session.error} />
        ) : (
          <Outlet />
        )}
      </Container>
    </>
  );
}
