import { Alert, Button, Container, Paper, PasswordInput, Stack, Text, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useSearch } from '@tanstack/react-router';
import { useState } from 'react';
import type { FormEvent } from 'react';
import { api, ApiError } from '../api';

/** Only paths of this app: `next` must not send the user to another site. */
function safeNext(next: string | undefined): string {
  return next !== undefined && next.startsWith('/ui/') && !next.startsWith('//') ? next : '/ui/';
}

export function SignIn() {
  const { next, error: failed } = useSearch({ from: '/signin' });
  const oidc = useQuery({ queryKey: ['oidc'], queryFn: () => api<{ enabled: boolean }>('/ui/oidc') });
  const [token, setToken] = useState('');
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const queryClient = useQueryClient();

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await api('/ui/session', { method: 'POST', json: { token } });
      queryClient.clear();
      location.assign(safeNext(next));
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT_ERROR', String(e)));
      setBusy(false);
    }
  }

  return (
    <Container size="xs" py="xl" component="main">
      <Paper withBorder p="lg" radius="md">
        <form onSubmit={submit}>
          <Stack>
            <Title order={1} size="h3">
              Sign in to Containment
            </Title>
            <Text size="sm">
              Paste an API token once. The server keeps it in an HttpOnly session cookie; this page never
              stores it.
            </Text>
            <PasswordInput
              label="API token"
              name="token"
              autoComplete="off"
              required
              value={token}
              onChange={(e) => setToken(e.currentTarget.value)}
            />
            {error && (
              <Alert color="red" title={`Error ${error.code}`} role="alert" data-testid="api-error">
                {error.message}
              </Alert>
            )}
            {failed && !error && (
              <Alert color="red" title={`Error ${failed}`} role="alert" data-testid="api-error">
                Sign-in through the identity provider failed.
              </Alert>
            )}
            <Button type="submit" loading={busy}>
              Sign in
            </Button>
            {oidc.data?.enabled && (
              <Button
                component="a"
                variant="outline"
                href={`/ui/oidc/login?next=${encodeURIComponent(safeNext(next))}`}
              >
                Sign in with your identity provider (OIDC)
              </Button>
            )}
          </Stack>
        </form>
      </Paper>
    </Container>
  );
}
