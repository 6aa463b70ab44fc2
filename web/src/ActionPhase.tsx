import { Badge } from '@mantine/core';
import type { SecurityAction } from './actions';

const COLORS: Record<string, string> = {
  Pending: 'gray.8',
  Running: 'blue.9',
  Succeeded: 'teal.9',
  Failed: 'red.9',
};

/** Phase, and whether it only was (or would be) a dry run. */
export function ActionPhaseBadge({ action }: { action: SecurityAction }) {
  const phase = action.status?.phase ?? 'Pending';
  return (
    <Badge color={COLORS[phase] ?? 'gray.8'} miw="max-content" data-testid="action-phase">
      {phase}
      {action.spec.dryRun ? ' (dry run)' : ''}
    </Badge>
  );
}
