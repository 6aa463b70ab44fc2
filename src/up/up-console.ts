/**
 * What `containment up` tells its operator: the start banner (text, or one JSON object), the live
 * decision lines, and `<data dir>/up.env` — the addresses and admin token of the running loop as
 * shell `export` lines, for a second terminal (`. up.env`) and for scripts that wait for `up` to
 * be ready (the file appears once everything is started and is removed when `up` stops).
 */
import { rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { formatDecision, isProblem } from './decision-log.js';
import type { Decision } from './decision-log.js';
import type { RunningUp } from './run-up.js';

export const UP_ENV_FILE = 'up.env';

export type UpOutput = 'text' | 'quiet' | 'json';

/** The variables the other commands already read (posture/scan: server and token; policy: the rest). */
export function upEnv(up: RunningUp): Record<string, string> {
  return {
    CONTAINMENT_SERVER: up.scannerUrl,
    CONTAINMENT_TOKEN: up.adminToken,
    CONTAINMENT_ACTIONS_URL: up.actionApiUrl,
    CONTAINMENT_FUNCTIONS_URL: up.functionsUrl,
    CONTAINMENT_FUNCTIONS_AUTH: up.functionsAuth,
  };
}

/** Written whole (temporary file, then rename) and readable only by the owner: it holds the admin token. */
export function writeUpEnv(dataDir: string, up: RunningUp): string {
  const file = join(dataDir, UP_ENV_FILE);
  const text = Object.entries(upEnv(up))
    .map(([k, v]) => `export ${k}='${v}'\n`)
    .join('');
  writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return file;
}

export function removeUpEnv(dataDir: string): void {
  rmSync(join(dataDir, UP_ENV_FILE), { force: true });
}

export function modeLine(up: Pick<RunningUp, 'mode'>): string {
  return up.mode === 'enforce'
    ? 'ENFORCE: actions are carried out (start without --enforce to only watch)'
    : 'MONITOR: policies run, every action is recorded as a dry run, nothing is changed (--enforce to act)';
}

export function banner(up: RunningUp, dataDir: string, envFile: string): string {
  return [
    `containment up (data dir ${dataDir})`,
    `  mode:             ${modeLine(up)}`,
    `  scanner API:      ${up.scannerUrl}`,
    `  functions API:    ${up.functionsUrl}  (namespace local, auth ${up.functionsAuth})`,
    `  action API:       ${up.actionApiUrl}${up.enforcement ? '' : '  (enforcement OFF: no container engine; actions are refused)'}`,
    `  audit:            ${up.actionApiUrl}/v1/audit?namespace=local&pod=<container name>`,
    `  container engine: ${up.engineSocket === undefined ? 'none' : `unix://${up.engineSocket}`}`,
    `  admin token:      ${up.adminToken}`,
    `  environment:      . ${envFile}  (the URLs and token above, for another terminal)`,
    'ready; decisions and actions follow as they happen; Ctrl-C to stop',
    '',
  ].join('\n');
}

/** The JSON form of the banner: one object, no admin token in clear beyond what up.env holds. */
export function readyObject(up: RunningUp, dataDir: string, envFile: string): Record<string, unknown> {
  return {
    event: 'ready',
    time: new Date().toISOString(),
    mode: up.mode,
    dataDir,
    scannerUrl: up.scannerUrl,
    functionsUrl: up.functionsUrl,
    actionApiUrl: up.actionApiUrl,
    enforcement: up.enforcement,
    engineSocket: up.engineSocket ?? null,
    envFile,
  };
}

/** Where each decision goes in each output form (`undefined`: not printed). */
export function decisionOutput(
  output: UpOutput,
  d: Decision,
): { stream: 'stdout' | 'stderr'; line: string } | undefined {
  if (output === 'json') return { stream: 'stdout', line: JSON.stringify({ event: 'decision', ...d }) };
  if (output === 'quiet' && !isProblem(d)) return undefined;
  return { stream: isProblem(d) && output === 'quiet' ? 'stderr' : 'stdout', line: formatDecision(d) };
}
