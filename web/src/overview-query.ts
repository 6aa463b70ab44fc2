import { queryOptions } from '@tanstack/react-query';
import { api } from './api';
import type { NamespaceSummary } from './api';

/**
 * The overview's one request (counts, compliance verdicts and namespaces in one aggregate), shared
 * by the page and its route's loader: the loader starts it while the page's code still loads.
 */
export const summaryQuery = queryOptions({
  queryKey: ['summary'],
  queryFn: () => api<{ namespaces: NamespaceSummary[] }>('/v1/summary'),
});
