/**
 * Container image references, normalised as the container runtimes do (`nginx` →
 * `docker.io/library/nginx:latest`), and the image controls of the posture check. Pure: no I/O.
 */
import { ContainmentError, ErrorCodes } from '../errors.js';

export interface ImageReference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  /** `registry/repository[:tag][@digest]`, with `:latest` added when neither tag nor digest was given. */
  normalized: string;
}

const DEFAULT_REGISTRY = 'docker.io';
// The grammar of github.com/distribution/reference, restated.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

function invalid(image: string, why: string): ContainmentError {
  return new ContainmentError(
    ErrorCodes.IMAGE_REFERENCE_INVALID,
    `invalid image reference ${JSON.stringify(image.slice(0, 300))}: ${why}`,
  );
}

/** Parses an image reference; throws IMAGE_REFERENCE_INVALID for anything a runtime would refuse. */
export function parseImageReference(image: string): ImageReference {
  if (typeof image !== 'string' || image === '') throw invalid(String(image), 'empty');
  if (image.length > 4096) throw invalid(image, 'longer than 4096 characters');
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(image, `bad digest ${JSON.stringify(digest)}`);
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest)) {
      throw invalid(image, 'a sha256 digest is 64 lowercase hex digits');
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(image, `bad tag ${JSON.stringify(tag)}`);
  }
  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // Like the runtimes: a first component with a dot or port, `localhost`, or upper case is a registry.
    if (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase()) {
      if (!DOMAIN.test(first)) throw invalid(image, `bad registry ${JSON.stringify(first)}`);
      registry = first;
      path = rest.slice(slash + 1);
    }
  }
  if (registry === 'index.docker.io') registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !path.includes('/')) path = `library/${path}`;
  if (path === '' || !path.split('/').every((c) => COMPONENT.test(c))) {
    throw invalid(image, 'repository must be lowercase path components of letters, digits and separators');
  }
  if (registry.length + path.length + 1 > 255) throw invalid(image, 'name longer than 255 characters');
  const normalized =
    `${registry}/${path}` +
    (tag !== undefined ? `:${tag}` : digest === undefined ? ':latest' : '') +
    (digest ? `@${digest}` : '');
  return {
    registry,
    repository: path,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
    normalized,
  };
}

export interface ImageFinding {
  control: string;
  severity: string;
  message: string;
}

/** Stable ids of the image controls. */
export const IMAGE_CONTROLS = {
  invalid: 'IMG-INVALID-REFERENCE',
  latest: 'IMG-LATEST-TAG',
  untagged: 'IMG-NO-TAG-OR-DIGEST',
  registry: 'IMG-REGISTRY-NOT-ALLOWED',
  notPinned: 'IMG-NOT-DIGEST-PINNED',
} as const;

/**
 * `allowedRegistries` entries match a registry (`ghcr.io`), or a registry plus repository prefix
 * (`ghcr.io/acme`, matching `ghcr.io/acme/*` only at a path boundary). An empty or absent list
 * allows every registry.
 */
export function registryAllowed(
  ref: ImageReference,
  allowedRegistries: readonly string[] | undefined,
): boolean {
  if (!allowedRegistries || allowedRegistries.length === 0) return true;
  const full = `${ref.registry}/${ref.repository}`;
  return allowedRegistries.some((raw) => {
    const entry = raw
      .trim()
      .replace(/\/+$/, '')
      .toLowerCase()
      .replace(/^index\.docker\.io(?=\/|$)/, 'docker.io');
    if (entry === '') return false;
    return ref.registry.toLowerCase() === entry || full.toLowerCase().startsWith(`${entry}/`);
  });
}

/** Image controls: invalid reference, `:latest`, neither tag nor digest, registry not allowed, not digest-pinned. */
export function checkImage(image: string, options: { allowedRegistries?: string[] }): ImageFinding[] {
  let ref: ImageReference;
  try {
    ref = parseImageReference(image);
  } catch (e) {
    return [{ control: IMAGE_CONTROLS.invalid, severity: 'HIGH', message: (e as Error).message }];
  }
  const out: ImageFinding[] = [];
  if (ref.tag === 'latest' && !ref.digest) {
    out.push({
      control: IMAGE_CONTROLS.latest,
      severity: 'MEDIUM',
      message: `image ${image} uses the mutable tag "latest"`,
    });
  }
  if (ref.tag === undefined && ref.digest === undefined) {
    out.push({
      control: IMAGE_CONTROLS.untagged,
      severity: 'MEDIUM',
      message: `image ${image} has neither a tag nor a digest (runs whatever "latest" is)`,
    });
  }
  if (!registryAllowed(ref, options.allowedRegistries)) {
    out.push({
      control: IMAGE_CONTROLS.registry,
      severity: 'HIGH',
      message: `image ${image} comes from registry ${ref.registry}, which is not in the allowed list`,
    });
  }
  if (ref.digest === undefined) {
    out.push({
      control: IMAGE_CONTROLS.notPinned,
      severity: 'LOW',
      message: `image ${image} is not pinned to a digest`,
    });
  }
  return out;
}
