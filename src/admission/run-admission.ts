/**
 * Starts the admission webhook: reads the TLS key pair, wires the scanner's image verdicts and
 * listens. What `containment admission` runs, and what its tests and benchmark start.
 */
import { readFileSync } from 'node:fs';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { ComplianceThresholds } from '../matching/types.js';
import { HttpImageVerdictSource } from '../posture/image-scan-verdict.js';
import type { ImageVerdictSource } from '../posture/image-scan-verdict.js';
import type { AdmissionPolicy } from './admission-policy.js';
import { buildAdmissionApp } from './admission-server.js';

export interface RunAdmissionOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  /** PEM text, or read from these files. */
  tls: { cert: string; key: string } | { certFile: string; keyFile: string };
  policy: AdmissionPolicy;
  /** The scanner to ask about images; none: scans are not checked. */
  scanner?: {
    server: string;
    token: string;
    thresholds: ComplianceThresholds;
    cacheTtlMs?: number;
    timeoutMs?: number;
  };
  /** Instead of `scanner` (tests). */
  images?: ImageVerdictSource;
  logger?: FastifyBaseLogger;
}

export interface RunningAdmission {
  app: FastifyInstance;
  /** `https://host:port`. */
  url: string;
  close(): Promise<void>;
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.USAGE,
      `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
}

export async function runAdmissionServer(options: RunAdmissionOptions): Promise<RunningAdmission> {
  const tls =
    'certFile' in options.tls
      ? {
          cert: readPem(options.tls.certFile, '--tls-cert'),
          key: readPem(options.tls.keyFile, '--tls-key'),
        }
      : options.tls;
  const images =
    options.images ??
    (options.scanner &&
      new HttpImageVerdictSource({
        server: options.scanner.server,
        token: options.scanner.token,
        thresholds: options.scanner.thresholds,
        ...(options.scanner.cacheTtlMs === undefined ? {} : { cacheTtlMs: options.scanner.cacheTtlMs }),
        ...(options.scanner.timeoutMs === undefined ? {} : { timeoutMs: options.scanner.timeoutMs }),
      }));
  let app: FastifyInstance;
  try {
    app = await buildAdmissionApp({
      policy: options.policy,
      ...(images ? { images } : {}),
      tls,
      ...(options.logger ? { logger: options.logger } : {}),
    });
  } catch (e) {
    // Node's TLS layer names a bad key or certificate; that is the user's input, not a bug.
    throw new ContainmentError(ErrorCodes.USAGE, `TLS key pair refused: ${(e as Error).message}`);
  }
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return { app, url: `https://${host}:${port}`, close: () => app.close() };
}
