import { Box, Group, Select, Stack, Text, TextInput, Title } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { keepPreviousData, useQueries, useQuery } from '@tanstack/react-query';
import { useNavigate, useSearch } from '@tanstack/react-router';
import { memo, useMemo, useState } from 'react';
import { api, SEVERITIES } from '../api';
import type { WorkloadRecord } from '../api';
import { AnchorLink } from '../AnchorLink';
import { ErrorNote } from '../ErrorNote';

const PAGE = 200;
const ROW = 40;
const VIEW = 560;
const OVERSCAN = 10;

interface SearchResult {
  total: number;
  workloads: WorkloadRecord[];
}

function query(params: Record<string, string | undefined>, offset: number): string {
  const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return `/v1/workload-search?${q}`;
}

/** One row: plain elements (a list of thousands scrolls; component overhead per row adds up). */
const Row = memo(function Row({ record, top }: { record: WorkloadRecord | undefined; top: number }) {
  const w = record?.workload;
  const s = record?.lastScan?.summary;
  return (
    <div role="row" className="wl-row" style={{ top }}>
      {w ? (
        <>
          <span role="cell" className="wl-ns">
            {w.namespace}
          </span>
          <span role="cell" className="wl-pod">
            <AnchorLink
              to="/workload/$cluster/$namespace/$pod"
              params={{ cluster: w.cluster, namespace: w.namespace, pod: w.pod }}
              search={{ container: w.container }}
              size="sm"
            >
              {w.pod}
              {w.container ? ` / ${w.container}` : ''}
            </AnchorLink>
          </span>
          <span role="cell" className="wl-image">
            {w.image}
          </span>
          <span role="cell" className="wl-num wl-critical">
            {s ? s.counts.CRITICAL : '–'}
          </span>
          <span role="cell" className="wl-num wl-high">
            {s ? s.counts.HIGH : '–'}
          </span>
          <span role="cell" className="wl-verdict">
            {s ? (s.compliance.passed ? 'compliant' : 'not compliant') : 'no scan'}
          </span>
        </>
      ) : (
        <span role="cell">loading…</span>
      )}
    </div>
  );
});

type Params = Record<string, string | undefined>;

/**
 * The scrolling rows, apart from the page's filters: a scroll re-renders only this, and only when
 * the first visible row changes (state is a row index, not a pixel offset).
 */
function RowList({ params, total, first }: { params: Params; total: number; first?: SearchResult }) {
  const [start, setStart] = useState(0);
  const from = Math.max(0, start - OVERSCAN);
  const to = Math.min(total, start + Math.ceil(VIEW / ROW) + 1 + OVERSCAN);
  const pages: number[] = [];
  for (let p = Math.floor(from / PAGE); p * PAGE < to; p++) if (p > 0) pages.push(p);
  const more = useQueries({
    queries: pages.map((p) => ({
      queryKey: ['workloads', params, p],
      queryFn: () => api<SearchResult>(query(params, p * PAGE)),
    })),
  });
  const rowAt = (i: number): WorkloadRecord | undefined => {
    const p = Math.floor(i / PAGE);
    const data = p === 0 ? first : more[pages.indexOf(p)]?.data;
    return data?.workloads[i - p * PAGE];
  };
  const error = more.find((m) => m.error)?.error;
  return (
    <Box
      data-testid="workload-list"
      className="wl-list"
      role="rowgroup"
      tabIndex={0}
      aria-label="Workload rows (scroll)"
      h={VIEW}
      style={{ overflowY: 'auto', border: '1px solid var(--mantine-color-gray-4)' }}
      onScroll={(e) => setStart(Math.floor(e.currentTarget.scrollTop / ROW))}
    >
      {error ? (
        <div role="row">
          <span role="cell">
            <ErrorNote error={error} />
          </span>
        </div>
      ) : null}
      <Box pos="relative" h={total * ROW}>
        {Array.from({ length: Math.max(0, to - from) }, (_, k) => (
          <Row key={from + k} record={rowAt(from + k)} top={(from + k) * ROW} />
        ))}
      </Box>
    </Box>
  );
}

/** The workload list: filtered and paged by the server, only the visible rows rendered. */
export default function Workloads() {
  const search = useSearch({ from: '/workloads' });
  const navigate = useNavigate({ from: '/workloads' });
  const [text, setText] = useState(search.q ?? '');
  const [debounced] = useDebouncedValue(text, 250);
  const q = debounced.trim() || undefined;
  // Stable while the filters are: the rows' queries and memoised rows keep their identity.
  const params = useMemo(
    () => ({ q, severity: search.severity, namespace: search.namespace }),
    [q, search.severity, search.namespace],
  );

  const first = useQuery({
    queryKey: ['workloads', params, 0],
    queryFn: () => api<SearchResult>(query(params, 0)),
    placeholderData: keepPreviousData,
  });
  const total = first.data?.total ?? 0;

  return (
    <Stack>
      <Title order={2}>Workloads</Title>
      <Group align="end">
        <TextInput
          label="Search"
          description="name, image, package or advisory id"
          value={text}
          w={360}
          onChange={(e) => {
            setText(e.currentTarget.value);
            void navigate({
              search: (s) => ({ ...s, q: e.currentTarget.value || undefined }),
              replace: true,
            });
          }}
        />
        <Select
          label="Severity at least"
          clearable
          data={SEVERITIES}
          value={search.severity ?? null}
          onChange={(v) => void navigate({ search: (s) => ({ ...s, severity: v ?? undefined }) })}
        />
        <TextInput
          label="Namespace"
          value={search.namespace ?? ''}
          onChange={(e) =>
            void navigate({ search: (s) => ({ ...s, namespace: e.currentTarget.value || undefined }) })
          }
        />
      </Group>
      {first.error ? <ErrorNote error={first.error} /> : null}
      <Text size="sm" data-testid="workload-total" aria-live="polite">
        {first.data ? `${total} workloads` : 'loading…'}
      </Text>
      <Box role="table" aria-label="Workloads" aria-rowcount={total}>
        <Box role="rowgroup">
          <Group role="row" px="xs" gap="sm" wrap="nowrap" fw={700}>
            <Text role="columnheader" w={140} size="sm" fw={700}>
              Namespace
            </Text>
            <Text role="columnheader" w={260} size="sm" fw={700}>
              Pod / container
            </Text>
            <Text role="columnheader" flex={1} size="sm" fw={700}>
              Image
            </Text>
            <Text role="columnheader" w={70} size="sm" fw={700}>
              Critical
            </Text>
            <Text role="columnheader" w={70} size="sm" fw={700}>
              High
            </Text>
            <Text role="columnheader" w={110} size="sm" fw={700}>
              Compliance
            </Text>
          </Group>
        </Box>
        {/* A new filter starts a new list at the top. */}
        <RowList key={JSON.stringify(params)} params={params} total={total} first={first.data} />
      </Box>
    </Stack>
  );
}
