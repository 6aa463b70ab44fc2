import { Badge } from '@mantine/core';
import type { Severity } from './api';

export const SEVERITY_COLOR: Record<Severity, string> = {
  CRITICAL: 'red.9',
  HIGH: 'orange.9',
  MEDIUM: 'yellow.9',
  LOW: 'blue.8',
  UNKNOWN: 'gray.7',
};

export function SeverityBadge({ severity }: { severity: Severity }) {
  return (
    <Badge color={SEVERITY_COLOR[severity]} variant="filled">
      {severity}
    </Badge>
  );
}
