import { Badge } from '@mantine/core';
import type { Severity } from './api';

/** Badge colours; autoContrast picks black or white text so each passes WCAG AA. */
export const SEVERITY_COLOR: Record<Severity, string> = {
  CRITICAL: 'red.9',
  HIGH: 'orange.5',
  MEDIUM: 'yellow.4',
  LOW: 'blue.8',
  UNKNOWN: 'gray.7',
};

export function SeverityBadge({ severity }: { severity: Severity }) {
  return (
    <Badge color={SEVERITY_COLOR[severity]} variant="filled" autoContrast>
      {severity}
    </Badge>
  );
}
