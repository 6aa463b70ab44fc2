/**
 * The dashboard's static assets (built by `npm run build` into `dist/web/`) at `/ui/`.
 *
 * Hashed files under `assets/` are cached for a year (`immutable`); `index.html` is revalidated
 * every time, so a new build is picked up on the next load. Every answer carries a strict
 * Content-Security-Policy: scripts and styles only from this origin (no inline script, no inline
 * `<style>`), API calls only to this origin, no framing. Paths the bundle does not contain fall
 * back to `index.html` so the client router can deep-link (`/ui/workloads/…`).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiErrorCodes } from '../api-error.js';

/** `dist/web/` of the package, both from `src/` (tsx) and from `dist/` (built). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../../dist/web/', import.meta.url));

export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

interface Asset {
  body: Buffer;
  type: string;
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (at: string): void => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else
        assets.set(relative(dir, path).split(sep).join('/'), {
          body: readFileSync(path),
          type: TYPES[extname(name)] ?? 'application/octet-stream',
        });
    }
  };
  walk(dir);
  return assets;
}

/** Security headers every `/ui/` answer carries. */
export function uiSecurityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', UI_CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin');
}

/**
 * Serves `dir` (read once, at registration: the bundle is small and immutable per build). When it
 * was not built, `/ui/` answers 503 UI_NOT_BUILT instead of failing the server.
 */
export function registerWebAssets(app: FastifyInstance, dir: string = DEFAULT_WEB_DIR): void {
  const assets = existsSync(join(dir, 'index.html')) ? loadAssets(dir) : undefined;

  app.get('/ui', async (_request, reply) => reply.redirect('/ui/', 308));
  app.get('/ui/*', async (request, reply) => {
    uiSecurityHeaders(reply);
    if (!assets)
      return reply.status(503).send({
        error: { code: ApiErrorCodes.UI_NOT_BUILT, message: 'the dashboard was not built (npm run build)' },
      });
    const path = (request.params as { '*': string })['*'];
    const asset = assets.get(path);
    if (asset && path !== 'index.html') {
      const hashed = path.startsWith('assets/');
      return reply
        .type(asset.type)
        .header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache')
        .send(asset.body);
    }
    // A missing hashed file is a stale page asking for an old build: 404, not the HTML shell.
    if (path.startsWith('assets/'))
      return reply
        .status(404)
        .send({ error: { code: ApiErrorCodes.NOT_FOUND, message: `no asset ${path}` } });
    const index = assets.get('index.html') as Asset;
    return reply.type(index.type).header('cache-control', 'no-cache').send(index.body);
  });
}
