/** `containment server`: the vulnerability scanner service (SQLite, or PostgreSQL with --database), until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { DEFAULT_DETECTION_RETENTION_MS, parseRetention } from '../scanner/detection-retention.js';
import { DEFAULT_MATCH_CACHE, MATCH_CACHE_MODES } from '../scanner/match-cache-mode.js';
import type { MatchCacheMode } from '../scanner/match-cache-mode.js';
import type { RateLimit } from '../scanner/server.js';
import {
  addDbOptions,
  commandLogger,
  configOf,
  databaseOption,
  dataDirOf,
  dbPathOf,
  stopSignal,
} from './common.js';
import type { DbFlags } from './common.js';
import { addOidcOptions, oidcSettings } from './oidc-options.js';
import type { OidcFlags } from './oidc-options.js';

interface ServerFlags extends DbFlags, OidcFlags {
  database?: string;
  host: string;
  port: number;
  triggerAllow: string[];
  bodyLimit?: number;
  rateLimit?: RateLimit | false;
  signInRateLimit?: RateLimit | false;
  detectionRetention?: number;
  matchCache?: MatchCacheMode;
}

const WINDOW_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `<n>/<window>` such as `600/1m`, `20/s` or `5/500ms`; `off` for no limit. */
export function parseRateLimit(value: string): RateLimit | false {
  if (value === 'off') return false;
  const m = /^(\d+)\/(\d*)(ms|s|m|h)$/.exec(value);
  const max = Number(m?.[1]);
  const windowMs = Number(m?.[2] || 1) * (WINDOW_UNITS[m?.[3] ?? ''] ?? NaN);
  if (!m || max < 1 || !(windowMs >= 1)) {
    throw new InvalidArgumentError('expected <requests>/<window> such as 600/1m, 20/s or 5/500ms, or off');
  }
  return { max, windowMs };
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

const RETENTION_EXPECTED =
  'expected an age from 1m to 3650d such as 30d, 12h or 90m, or 0 to keep detections';

function retentionArgument(value: string): number {
  const ms = parseRetention(value);
  if (ms === undefined) throw new InvalidArgumentError(RETENTION_EXPECTED);
  return ms;
}

/** The config file's `detectionRetention` (flag and environment win). */
function retentionOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseRetention(value);
  if (ms === undefined)
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `config detectionRetention ${value}: ${RETENTION_EXPECTED}`,
    );
  return ms;
}

export function registerServerCommand(program: Command): void {
  const serverCommand = addDbOptions(
    program
      .command('server')
      .description('run the vulnerability scanner service (reports, findings API, event triggers)')
      .addOption(new Option('--host <address>', 'address to listen on').default('127.0.0.1'))
      .addOption(
        new Option('--port <n>', 'port to listen on (0 = any free port)')
          .argParser(integer(0, 65535))
          .default(8080),
      )
      .addOption(databaseOption())
      .addOption(
        new Option('--trigger-allow <cidr>', 'private/loopback range trigger URLs may use (repeatable)')
          .argParser((value: string, previous: string[] = []) => [...previous, value])
          .default([]),
      )
      .addOption(
        new Option('--body-limit <bytes>', 'largest request body accepted').argParser(integer(1024, 1 << 30)),
      )
      .addOption(
        new Option(
          '--rate-limit <n/window>',
          'requests per token (per address unauthenticated), e.g. 600/1m, or off (default 30000/1m)',
        )
          .env('CONTAINMENT_RATE_LIMIT')
          .argParser(parseRateLimit),
      )
      .addOption(
        new Option(
          '--sign-in-rate-limit <n/window>',
          'dashboard sign-ins per client address, e.g. 20/1m, or off (default 20/1m)',
        )
          .env('CONTAINMENT_SIGN_IN_RATE_LIMIT')
          .argParser(parseRateLimit),
      )
      .addOption(
        new Option(
          '--detection-retention <age>',
          `delete runtime detections last seen longer ago, e.g. 30d, 12h, or 0 to keep them (default ${DEFAULT_DETECTION_RETENTION_MS / 86_400_000}d)`,
        )
          .env('CONTAINMENT_DETECTION_RETENTION')
          .argParser(retentionArgument),
      )
      .addOption(
        new Option(
          '--match-cache <where>',
          `package matches kept in this process only (local) or also in the advisory database for the other replicas and restarts (shared; default ${DEFAULT_MATCH_CACHE})`,
        )
          .env('CONTAINMENT_MATCH_CACHE')
          .choices(MATCH_CACHE_MODES),
      ),
  ).action(async (flags: ServerFlags, command: Command) => {
    const file = await configOf(command);
    const detectionRetention = flags.detectionRetention ?? retentionOf(file.detectionRetention);
    const oidc = oidcSettings(flags, file);
    // Logs go to stderr so stdout carries only the generated admin token.
    const logger = await commandLogger('info');
    // Loaded here, not at startup: every other command would pay for Fastify and the stores.
    const { runScannerServer } = await import('../scanner/run-server.js');
    const server = await runScannerServer({
      host: flags.host,
      port: flags.port,
      ...(flags.database === undefined ? {} : { database: flags.database }),
      dataDir: dataDirOf(flags, file),
      advisoryDbPath: dbPathOf(flags, file),
      triggerAllow: flags.triggerAllow,
      ...(process.env.CONTAINMENT_ADMIN_TOKEN === undefined
        ? {}
        : { adminToken: process.env.CONTAINMENT_ADMIN_TOKEN }),
      ...(flags.bodyLimit === undefined ? {} : { bodyLimit: flags.bodyLimit }),
      ...oidc,
      ...(flags.rateLimit === undefined ? {} : { rateLimit: flags.rateLimit }),
      ...(flags.signInRateLimit === undefined ? {} : { signInRateLimit: flags.signInRateLimit }),
      ...(detectionRetention === undefined ? {} : { detectionRetentionMs: detectionRetention }),
      ...(flags.matchCache === undefined ? {} : { matchCache: flags.matchCache }),
      logger,
    });
    if (server.generatedAdminToken !== undefined) {
      process.stderr.write('generated the first admin token (shown only once):\n');
      process.stdout.write(`${server.generatedAdminToken}\n`);
    }
    logger.info(
      {
        url: server.url,
        detectionRetentionMs: detectionRetention ?? DEFAULT_DETECTION_RETENTION_MS,
        matchCache: flags.matchCache ?? DEFAULT_MATCH_CACHE,
      },
      'scanner listening',
    );
    logger.info({ signal: await stopSignal() }, 'stopping');
    await server.close();
  });
  addOidcOptions(serverCommand);
}
