/**
 * `containment server --match-cache`: where package matches are kept (`package-matcher.ts`). Its
 * own module so the CLI can name the choices without loading the server.
 */
export type MatchCacheMode = 'local' | 'shared';
export const MATCH_CACHE_MODES: readonly MatchCacheMode[] = ['local', 'shared'];
/** See docs/capacity.md ("What limits it") for what sharing saves and costs. */
export const DEFAULT_MATCH_CACHE: MatchCacheMode = 'shared';
