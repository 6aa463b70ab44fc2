import { Alert } from '@mantine/core';
import { ApiError } from './api';

/** An API failure, always with its code (never a blank page). */
export function ErrorNote({ error }: { error: unknown }) {
  const code = error instanceof ApiError ? error.code : 'CLIENT_ERROR';
  const message = error instanceof Error ? error.message : String(error);
  return (
    <Alert color="red" title={`Error ${code}`} role="alert" data-testid="api-error">
      {message}
    </Alert>
  );
}
