/**
 * The simulated fleet's data (pure, deterministic): package pools of three ecosystems, a few
 * hundred images drawn from them (popular base packages shared by most, application packages by
 * some), workloads that run those images with a skew towards popular ones, and an OSV feed whose
 * records hit a share of every pool's versions. The packages are synthetic (`fleet-…` names) so the
 * feed is small, self-contained and fast to import; their shape is what real agents report.
 */
import type { Package } from '../../src/inventory/types.js';
import type { StoredInventory } from '../../src/scanner/scanner-store.js';
import { inventoryHash, reportInventory } from '../../src/scanner/agent-report.js';

/** Deterministic PRNG (mulberry32), so every run builds the same fleet. */
export function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const POOL = { debian: 1_500, npm: 2_000, pypi: 1_000 } as const;
/** Every package exists in VERSIONS versions; records are fixed somewhere among them. */
const VERSIONS = 4;
/** Debian packages every image has (a base layer), and the rest drawn per image. */
const BASE_DEBIAN = 100;
const EXTRA_DEBIAN = 60;
const NPM_PER_APP = 40;
const PYPI_PER_APP = 25;

type Eco = 'Debian:12' | 'npm' | 'PyPI';
const nameOf = (eco: Eco, k: number): string =>
  eco === 'Debian:12' ? `fleetdeb-${k}` : eco === 'npm' ? `fleet-npm-${k}` : `fleet-py-${k}`;
const versionOf = (eco: Eco, v: number): string =>
  eco === 'Debian:12' ? `1.${v}-1` : eco === 'npm' ? `1.${v}.0` : `1.${v}`;

function pkg(eco: Eco, k: number, v: number): Package {
  const name = nameOf(eco, k);
  const version = versionOf(eco, v);
  if (eco === 'Debian:12')
    return {
      name,
      version,
      ecosystem: eco,
      source: { name, version },
      location: '/var/lib/dpkg/status',
      extractor: 'dpkg',
    };
  if (eco === 'npm')
    return {
      name,
      version,
      ecosystem: eco,
      location: `/app/node_modules/${name}/package.json`,
      extractor: 'npm',
    };
  return {
    name,
    version,
    ecosystem: eco,
    location: `/usr/local/lib/python3.11/site-packages/${name}-${version}.dist-info/METADATA`,
    extractor: 'python',
  };
}

export interface Image {
  ref: string;
  /** The report inventory (canonical order) as JSON, and its hash: built once, sent by every workload. */
  inventoryJson: string;
  hash: string;
  packages: number;
}

/** `count` images: every one a Debian base; half are Node.js apps, a third Python apps. */
export function buildImages(count: number, seed = 7): Image[] {
  const rand = random(seed);
  const pick = (n: number): number => Math.floor(rand() * n);
  return Array.from({ length: count }, (_, i) => {
    const packages: Package[] = [];
    // The base layer's version drifts slowly: images of one era share it exactly.
    const era = i % VERSIONS;
    for (let k = 0; k < BASE_DEBIAN; k++)
      packages.push(pkg('Debian:12', k, (era + (k % 3 === 0 ? 1 : 0)) % VERSIONS));
    const seen = new Set<number>();
    while (seen.size < EXTRA_DEBIAN) seen.add(BASE_DEBIAN + pick(POOL.debian - BASE_DEBIAN));
    for (const k of seen) packages.push(pkg('Debian:12', k, pick(VERSIONS)));
    const app = (eco: Eco, pool: number, n: number): void => {
      const chosen = new Set<number>();
      // Popular libraries first: the square skews the draw towards low indexes.
      while (chosen.size < n) chosen.add(Math.floor(pool * rand() ** 2));
      for (const k of chosen) packages.push(pkg(eco, k, pick(VERSIONS)));
    };
    if (i % 2 === 0) app('npm', POOL.npm, NPM_PER_APP);
    if (i % 3 === 0) app('PyPI', POOL.pypi, PYPI_PER_APP);
    const inventory: StoredInventory = reportInventory({
      os: { id: 'debian', versionId: '12', ecosystem: 'Debian:12' },
      packages,
      insecureConfigurations: [],
    });
    return {
      ref: `registry.example/fleet/app-${i}:1.${era}`,
      inventoryJson: JSON.stringify(inventory),
      hash: inventoryHash(inventory),
      packages: packages.length,
    };
  });
}

/** Which image container `c` of node `n` runs: skewed towards popular images (many pods, one image). */
export function imageOf(images: number, node: number, container: number): number {
  const r = random(node * 1_000 + container + 1)();
  return Math.floor(images * r ** 2);
}

export interface OsvRecord {
  schema_version: string;
  id: string;
  modified: string;
  published: string;
  withdrawn?: string;
  summary: string;
  affected: {
    package: { ecosystem: string; name: string };
    ranges: { type: 'ECOSYSTEM'; events: ({ introduced: string } | { fixed: string })[] }[];
  }[];
  database_specific?: { severity: string };
}

const SEVERITIES = ['LOW', 'MODERATE', 'HIGH', 'CRITICAL'];

/** `total` records spread over the three pools; each is fixed at a version 1..VERSIONS-1. */
export function buildFeed(total: number, modified = '2025-01-01T00:00:00Z'): OsvRecord[] {
  const rand = random(11);
  const ecos: [Eco, number][] = [
    ['Debian:12', POOL.debian],
    ['npm', POOL.npm],
    ['PyPI', POOL.pypi],
  ];
  return Array.from({ length: total }, (_, i) => {
    const [eco, pool] = ecos[i % 3] as [Eco, number];
    const k = Math.floor(pool * rand());
    const fixed = 1 + Math.floor(rand() * (VERSIONS - 1));
    return {
      schema_version: '1.6.0',
      id: `FLEET-${String(i).padStart(6, '0')}`,
      modified,
      published: '2024-06-01T00:00:00Z',
      summary: `synthetic advisory ${i} for ${nameOf(eco, k)}`,
      affected: [
        {
          package: { ecosystem: eco, name: nameOf(eco, k) },
          ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: versionOf(eco, fixed) }] }],
        },
      ],
      database_specific: { severity: SEVERITIES[i % SEVERITIES.length] as string },
    };
  });
}

/**
 * The changed 1 %: every `1/share`-th record, half withdrawn, half made to affect every version,
 * all with a newer `modified` (what an upstream feed update looks like to the importer).
 */
export function changeFeed(feed: readonly OsvRecord[], share: number): OsvRecord[] {
  const step = Math.max(1, Math.round(1 / share));
  const modified = '2025-06-01T00:00:00Z';
  return feed
    .filter((_, i) => i % step === 0)
    .map((r, j) =>
      j % 2 === 0
        ? { ...r, modified, withdrawn: modified }
        : {
            ...r,
            modified,
            affected: r.affected.map((a) => ({
              ...a,
              ranges: [{ type: 'ECOSYSTEM' as const, events: [{ introduced: '0' }] }],
            })),
          },
    );
}
