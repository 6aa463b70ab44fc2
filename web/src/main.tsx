import '@mantine/core/styles.css';
import './app.css';
import { MantineProvider } from '@mantine/core';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import {
  createRootRoute,
  createRoute,
  createRouter,
  lazyRouteComponent,
  RouterProvider,
} from '@tanstack/react-router';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiError } from './api';
import { summaryQuery } from './overview-query';
import { Shell } from './Shell';
import { SignIn } from './pages/SignIn';

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

const rootRoute = createRootRoute({ component: Shell });
const signInRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/signin',
  validateSearch: (s: Record<string, unknown>): { next?: string; error?: string } => ({
    next: text(s.next),
    error: text(s.error),
  }),
  component: SignIn,
});
const overviewRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/',
  // Not awaited: the request goes out beside the page's code instead of after it.
  loader: () => void queryClient.prefetchQuery(summaryQuery),
  component: lazyRouteComponent(() => import('./pages/Overview')),
});
export const workloadsRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/workloads',
  validateSearch: (s: Record<string, unknown>): { q?: string; severity?: string; namespace?: string } => ({
    q: text(s.q),
    severity: text(s.severity),
    namespace: text(s.namespace),
  }),
  component: lazyRouteComponent(() => import('./pages/Workloads')),
});
export const workloadRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/workload/$cluster/$namespace/$pod',
  validateSearch: (s: Record<string, unknown>): { container?: string } => ({ container: text(s.container) }),
  component: lazyRouteComponent(() => import('./pages/WorkloadPage')),
});
const auditRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/audit',
  validateSearch: (
    s: Record<string, unknown>,
  ): { cluster?: string; namespace?: string; pod?: string; action?: string } => ({
    cluster: text(s.cluster),
    namespace: text(s.namespace),
    pod: text(s.pod),
    action: text(s.action),
  }),
  component: lazyRouteComponent(() => import('./pages/AuditTrail')),
});
const policiesRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/policies',
  component: lazyRouteComponent(() => import('./pages/Policies')),
});

export const actionsRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/actions',
  validateSearch: (s: Record<string, unknown>): { namespace?: string; phase?: string } => ({
    namespace: text(s.namespace),
    phase: text(s.phase),
  }),
  component: lazyRouteComponent(() => import('./pages/Actions')),
});
const actionRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/actions/$id',
  component: lazyRouteComponent(() => import('./pages/ActionDetail')),
});

const router = createRouter({
  routeTree: rootRoute.addChildren([
    signInRoute,
    overviewRoute,
    workloadsRoute,
    workloadRoute,
    actionsRoute,
    actionRoute,
    auditRoute,
    policiesRoute,
  ]),
  basepath: '/ui',
  defaultPreload: false,
});

declare module '@tanstack/react-router' {
  interface Register {
    router: typeof router;
  }
}

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 10_000,
      // Retrying a 4xx answer only repeats it.
      retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
    },
  },
});

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    {/* Theme variables come from styles.css: injecting them as a <style> would break the CSP. */}
    <MantineProvider withCssVariables={false} withGlobalClasses={false} defaultColorScheme="light">
      <QueryClientProvider client={queryClient}>
        <RouterProvider router={router} />
      </QueryClientProvider>
    </MantineProvider>
  </StrictMode>,
);
