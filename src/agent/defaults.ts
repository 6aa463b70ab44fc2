/** The agent's defaults, apart from the agent so that `containment agent --help` shows them without loading it. */
export const DEFAULT_RESCAN_INTERVAL_MS = 30_000;
export const DEFAULT_DRIFT_CHECK_INTERVAL_MS = 5_000;
export const DEFAULT_SCAN_CONCURRENCY = 2;
