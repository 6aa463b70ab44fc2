import { useQuery } from '@tanstack/react-query';
import { api } from './api';
import type { Session } from './api';

export function useSession() {
  return useQuery({ queryKey: ['session'], queryFn: () => api<Session>('/ui/session'), staleTime: 60_000 });
}
