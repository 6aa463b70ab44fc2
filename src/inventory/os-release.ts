/**
 * Which distribution a root filesystem is, and the OSV ecosystem of its packages.
 *
 * Sources, in order: `/etc/os-release`, `/usr/lib/os-release`, then `/etc/debian_version` (Debian
 * before os-release existed) and `/etc/alpine-release`. Parsing and the ecosystem mapping are pure;
 * `detectOs` only reads the files.
 *
 * Ecosystem decisions (OSV's `ecosystems.json` names each release suffix):
 * - Debian: `Debian:<major>`; releases before 7 are spelled `Debian:<major>.0` as in
 *   distro-info-data. testing/sid have no VERSION_ID and no OSV release: no ecosystem (naming
 *   the next stable release would compare against the wrong version ranges).
 * - Ubuntu: `Ubuntu:<YY.MM>` plus `:LTS` when VERSION says LTS. Ubuntu Pro is not visible in
 *   os-release and is not guessed.
 * - Alpine: `Alpine:v<major>.<minor>` (edge's `3.22.0_alpha…` gives `v3.22`).
 * - RHEL: `Red Hat:enterprise_linux:<major>::baseos`. OSV scopes Red Hat records by repository
 *   stream (baseos, appstream, crb …) which the rpm database does not record; baseos is the
 *   stream of the base image and stands for the whole release: the advisory stores and the
 *   matcher accept every `Red Hat:enterprise_linux:<major>::*` stream for it (`rhelStreamFamily`
 *   in src/vulndb/package-key.ts), never another major release or `rhel_eus`/`rhel_aus`.
 * - openSUSE / SUSE: the suffix is the PRETTY_NAME without the vendor word, as the schema says
 *   (`openSUSE:Leap 15.6`, `openSUSE:Tumbleweed`, `SUSE:Linux Enterprise Server 15 SP5`).
 * - openEuler: `openEuler:<VERSION_ID>` plus `-<LTS…>` from VERSION's parentheses
 *   (`24.03 (LTS-SP1)` → `openEuler:24.03-LTS-SP1`).
 * - Unknown distributions (Fedora, CentOS, Amazon Linux …): no ecosystem; the extractors fall
 *   back to a best-effort ecosystem and say so in a note.
 */
import { isContainmentError } from '../errors.js';
import type { RootFs } from './fs/root-fs.js';
import type { OsInfo } from './types.js';

/** os-release is a few hundred bytes; anything much larger is not one. */
const MAX_RELEASE_FILE_BYTES = 64 * 1024;

/**
 * Parse the os-release format (os-release(5)): `KEY=value` lines, values in shell quoting
 * (single quotes literal; double quotes with `\` escaping `$ " \ \``; unquoted with `\` escapes),
 * `#` comment lines, blank lines. Malformed lines are ignored, later keys win.
 */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue;
    const value = parseShellValue(line.slice(eq + 1));
    if (value !== undefined) fields[key] = value;
  }
  return fields;
}

/** One shell word; undefined when a quote is left open. Stops at unquoted whitespace. */
function parseShellValue(raw: string): string | undefined {
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const c = raw[i] as string;
    if (c === ' ' || c === '\t') break; // the rest is a trailing comment or junk
    if (c === "'") {
      const end = raw.indexOf("'", i + 1);
      if (end === -1) return undefined;
      out += raw.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= raw.length) return undefined;
        const d = raw[i] as string;
        if (d === '"') break;
        if (d === '\\' && i + 1 < raw.length && '$"\\`'.includes(raw[i + 1] as string)) {
          out += raw[i + 1];
          i += 2;
        } else {
          out += d;
          i++;
        }
      }
      i++;
    } else if (c === '\\' && i + 1 < raw.length) {
      out += raw[i + 1];
      i += 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function major(versionId: string | undefined): string | undefined {
  return versionId?.match(/^(\d+)/)?.[1];
}

/** The OSV ecosystem for parsed os-release fields, or undefined when OSV has none for it. */
export function osvEcosystem(fields: Readonly<Record<string, string>>): string | undefined {
  const id = (fields.ID ?? '').toLowerCase();
  const versionId = fields.VERSION_ID;
  const maj = major(versionId);
  const pretty = fields.PRETTY_NAME ?? fields.NAME ?? '';
  switch (id) {
    case 'debian':
      if (maj === undefined) return undefined;
      return Number(maj) < 7 ? `Debian:${maj}.0` : `Debian:${maj}`;
    case 'ubuntu': {
      const release = versionId?.match(/^\d+\.\d+/)?.[0];
      if (release === undefined) return undefined;
      return /\bLTS\b/.test(fields.VERSION ?? pretty) ? `Ubuntu:${release}:LTS` : `Ubuntu:${release}`;
    }
    case 'alpine': {
      const release = versionId?.match(/^\d+\.\d+/)?.[0];
      return release === undefined ? undefined : `Alpine:v${release}`;
    }
    case 'rhel':
      return maj === undefined ? undefined : `Red Hat:enterprise_linux:${maj}::baseos`;
    case 'rocky':
      return maj === undefined ? undefined : `Rocky Linux:${maj}`;
    case 'almalinux':
      return maj === undefined ? undefined : `AlmaLinux:${maj}`;
    case 'azurelinux':
    case 'mariner':
      return maj === undefined ? undefined : `Azure Linux:${maj}`;
    case 'mageia':
      return versionId === undefined ? undefined : `Mageia:${versionId}`;
    case 'photon':
      return versionId === undefined ? undefined : `Photon OS:${versionId}`;
    case 'alpaquita':
      return versionId === undefined ? undefined : `Alpaquita:${versionId}`;
    case 'openeuler': {
      if (versionId === undefined) return undefined;
      const lts = fields.VERSION?.match(/\((LTS[^)]*)\)/)?.[1];
      return lts ? `openEuler:${versionId}-${lts}` : `openEuler:${versionId}`;
    }
    case 'wolfi':
      return 'Wolfi';
    case 'chainguard':
      return 'Chainguard';
    case 'minimos':
      return 'MinimOS';
    default:
      break;
  }
  if (id.startsWith('opensuse')) {
    const release = pretty.replace(/^openSUSE\s+/i, '').trim();
    return release ? `openSUSE:${release}` : undefined;
  }
  if (
    id === 'sles' ||
    id === 'sled' ||
    id.startsWith('sles_') ||
    id.startsWith('sle-') ||
    id.startsWith('sle_')
  ) {
    const release = pretty.replace(/^SUSE\s+/i, '').trim();
    return release ? `SUSE:${release}` : undefined;
  }
  return undefined;
}

/** OsInfo from parsed os-release fields; undefined without an ID. */
export function osInfoFromRelease(fields: Readonly<Record<string, string>>): OsInfo | undefined {
  const id = fields.ID?.toLowerCase();
  if (!id) return undefined;
  const info: OsInfo = { id };
  if (fields.VERSION_ID) info.versionId = fields.VERSION_ID;
  if (fields.VERSION_CODENAME) info.versionCodename = fields.VERSION_CODENAME;
  if (fields.PRETTY_NAME) info.prettyName = fields.PRETTY_NAME;
  const ecosystem = osvEcosystem(fields);
  if (ecosystem) info.ecosystem = ecosystem;
  return info;
}

/**
 * `/etc/debian_version` holds `12.5` on a release and `trixie/sid` on testing/unstable (also
 * on Ubuntu, which is why it is only read when os-release is missing).
 */
export function osInfoFromDebianVersion(text: string): OsInfo | undefined {
  const value = text.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)*$/.test(value)) return osInfoFromRelease({ ID: 'debian', VERSION_ID: value });
  const codename = value.split('/')[0];
  return codename ? { id: 'debian', versionCodename: codename } : { id: 'debian' };
}

/** `/etc/alpine-release` holds the full version, e.g. `3.20.3`. */
export function osInfoFromAlpineRelease(text: string): OsInfo | undefined {
  const value = text.trim();
  if (!/^\d+\.\d+/.test(value)) return undefined;
  return osInfoFromRelease({ ID: 'alpine', VERSION_ID: value });
}

async function readSmall(fs: RootFs, path: string): Promise<string | undefined> {
  try {
    return await fs.readText(path, { maxBytes: MAX_RELEASE_FILE_BYTES });
  } catch (e) {
    if (isContainmentError(e)) return undefined; // oversized: not a release file we trust
    throw e;
  }
}

/** Detect the distribution of a root filesystem; undefined when nothing identifies it. */
export async function detectOs(fs: RootFs): Promise<OsInfo | undefined> {
  for (const path of ['/etc/os-release', '/usr/lib/os-release']) {
    const text = await readSmall(fs, path);
    const info = text === undefined ? undefined : osInfoFromRelease(parseOsRelease(text));
    if (info) return info;
  }
  const debian = await readSmall(fs, '/etc/debian_version');
  if (debian !== undefined) {
    const info = osInfoFromDebianVersion(debian);
    if (info) return info;
  }
  const alpine = await readSmall(fs, '/etc/alpine-release');
  return alpine === undefined ? undefined : osInfoFromAlpineRelease(alpine);
}
