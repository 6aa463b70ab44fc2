import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContainmentError } from '../errors.js';
import type { OsvRecord } from '../vulndb/osv.js';
import {
  ALL_RHEL_RECORDS,
  APPSTREAM_9,
  RHEL9_INVENTORY_ECOSYSTEM,
  RHEL9_NODEJS,
  RHEL9_NODEJS_IDS,
} from '../vulndb/rhel-stream-records.test-helper.js';
import { affects } from './affects.js';

type Events = { introduced?: string; fixed?: string; last_affected?: string; limit?: string }[];

/** A one-package record; `ranges` default to a single ECOSYSTEM range of `events`. */
function record(
  ecosystem: string,
  name: string,
  opts: {
    events?: Events;
    ranges?: { type: 'ECOSYSTEM' | 'SEMVER' | 'GIT'; events: Events }[];
    versions?: string[];
    id?: string;
    withdrawn?: string;
  },
): OsvRecord {
  return {
    id: opts.id ?? 'TEST-1',
    modified: '2024-01-01T00:00:00Z',
    ...(opts.withdrawn ? { withdrawn: opts.withdrawn } : {}),
    affected: [
      {
        package: { ecosystem, name },
        ranges: opts.ranges ?? (opts.events ? [{ type: 'ECOSYSTEM', events: opts.events }] : []),
        ...(opts.versions ? { versions: opts.versions } : {}),
      },
    ],
  };
}

const npm = (name: string, version: string) => ({ ecosystem: 'npm', name, version });

describe('affects: range evaluation', () => {
  it('evaluates unsorted events from several branches after sorting them', () => {
    // Two branches: [1.0.0, 1.4.2) and [2.0.0, 2.1.0), listed out of order.
    const r = record('npm', 'pkg', {
      events: [{ fixed: '2.1.0' }, { introduced: '2.0.0' }, { fixed: '1.4.2' }, { introduced: '1.0.0' }],
    });
    assert.deepEqual(affects(r, npm('pkg', '0.9.0')), { affected: false });
    assert.equal(affects(r, npm('pkg', '1.0.0')).affected, true);
    assert.equal(affects(r, npm('pkg', '1.4.1')).fixedVersion, '1.4.2');
    assert.equal(affects(r, npm('pkg', '1.4.2')).affected, false);
    assert.equal(affects(r, npm('pkg', '1.9.9')).affected, false);
    assert.equal(affects(r, npm('pkg', '2.0.5')).fixedVersion, '2.1.0');
    assert.equal(affects(r, npm('pkg', '2.1.0')).affected, false);
  });

  it('treats introduced "0" as before every version and sorts it first', () => {
    const r = record('npm', 'pkg', { events: [{ fixed: '1.0.0' }, { introduced: '0' }] });
    assert.equal(affects(r, npm('pkg', '0.0.0-alpha')).affected, true);
    assert.equal(affects(r, npm('pkg', '1.0.0')).affected, false);
  });

  it('lets a fix at the same version as an introduction win', () => {
    const r = record('npm', 'pkg', { events: [{ fixed: '1.0.0' }, { introduced: '1.0.0' }] });
    assert.equal(affects(r, npm('pkg', '1.0.0')).affected, false);
  });

  it('is affected when any of several ranges includes the version', () => {
    const r = record('npm', 'pkg', {
      ranges: [
        { type: 'ECOSYSTEM', events: [{ introduced: '1.0.0' }, { fixed: '1.2.0' }] },
        { type: 'ECOSYSTEM', events: [{ introduced: '3.0.0' }, { fixed: '3.0.5' }] },
      ],
    });
    assert.equal(affects(r, npm('pkg', '1.1.0')).fixedVersion, '1.2.0');
    assert.equal(affects(r, npm('pkg', '2.0.0')).affected, false);
    assert.equal(affects(r, npm('pkg', '3.0.4')).fixedVersion, '3.0.5');
  });

  it('reports the highest fix when overlapping ranges both affect the version', () => {
    const r = record('npm', 'pkg', {
      ranges: [
        { type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.0.0' }] },
        { type: 'ECOSYSTEM', events: [{ introduced: '1.0.0' }, { fixed: '3.0.0' }] },
      ],
    });
    assert.equal(affects(r, npm('pkg', '1.5.0')).fixedVersion, '3.0.0');
    assert.equal(affects(r, npm('pkg', '0.5.0')).fixedVersion, '2.0.0');
  });

  it('treats last_affected as inclusive and reports no fix for it', () => {
    const r = record('npm', 'pkg', { events: [{ introduced: '1.0.0' }, { last_affected: '1.3.0' }] });
    assert.deepEqual(Object.keys(affects(r, npm('pkg', '1.3.0'))).sort(), ['affected', 'affectedEntry']);
    assert.equal(affects(r, npm('pkg', '1.3.0')).affected, true);
    assert.equal(affects(r, npm('pkg', '1.3.1')).affected, false);
  });

  it('reports no fix when one affecting range is open-ended', () => {
    const r = record('npm', 'pkg', {
      ranges: [
        { type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.0.0' }] },
        { type: 'ECOSYSTEM', events: [{ introduced: '1.0.0' }] },
      ],
    });
    const res = affects(r, npm('pkg', '1.5.0'));
    assert.equal(res.affected, true);
    assert.equal(res.fixedVersion, undefined);
  });

  it('excludes versions at or above every limit', () => {
    const r = record('npm', 'pkg', { events: [{ introduced: '1.0.0' }, { limit: '2.0.0' }] });
    assert.equal(affects(r, npm('pkg', '1.9.9')).affected, true);
    assert.equal(affects(r, npm('pkg', '2.0.0')).affected, false);
    const star = record('npm', 'pkg', { events: [{ introduced: '1.0.0' }, { limit: '*' }] });
    assert.equal(affects(star, npm('pkg', '99.0.0')).affected, true);
  });

  it('counts exact membership in versions even without ranges', () => {
    const r = record('PyPI', 'pkg', { versions: ['1.0', '1.1'] });
    assert.equal(affects(r, { ecosystem: 'PyPI', name: 'pkg', version: '1.1' }).affected, true);
    assert.equal(affects(r, { ecosystem: 'PyPI', name: 'pkg', version: '1.2' }).affected, false);
    assert.equal(affects(r, { ecosystem: 'PyPI', name: 'pkg', version: '1.1' }).fixedVersion, undefined);
  });

  it('evaluates SEMVER ranges with SemVer 2 even in a non-SemVer ecosystem', () => {
    // "1.2.3-1" is a Debian revision ABOVE 1.2.3, but a SemVer prerelease BELOW it.
    const events = [{ introduced: '0' }, { fixed: '1.2.3' }];
    const semverRange = record('Debian:12', 'pkg', { ranges: [{ type: 'SEMVER', events }] });
    const ecosystemRange = record('Debian:12', 'pkg', { ranges: [{ type: 'ECOSYSTEM', events }] });
    const pkg = { ecosystem: 'Debian:12', name: 'pkg', version: '1.2.3-1' };
    assert.equal(affects(semverRange, pkg).affected, true);
    assert.equal(affects(ecosystemRange, pkg).affected, false);
  });

  it('ignores GIT ranges', () => {
    const r = record('npm', 'pkg', {
      ranges: [{ type: 'GIT', events: [{ introduced: '0' }, { fixed: 'a'.repeat(40) }] }],
    });
    assert.equal(affects(r, npm('pkg', '1.0.0')).affected, false);
  });

  it('never matches a withdrawn record', () => {
    const r = record('npm', 'pkg', { events: [{ introduced: '0' }], withdrawn: '2024-02-01T00:00:00Z' });
    assert.equal(affects(r, npm('pkg', '1.0.0')).affected, false);
  });

  it('throws ECOSYSTEM_UNSUPPORTED for a range it cannot order, unless versions already answer', () => {
    const r = record('NoSuchEcosystem', 'pkg', { events: [{ introduced: '0' }], versions: ['1'] });
    assert.throws(
      () => affects(r, { ecosystem: 'NoSuchEcosystem', name: 'pkg', version: '2' }),
      (e: unknown) => e instanceof ContainmentError && e.code === 'ECOSYSTEM_UNSUPPORTED',
    );
    assert.equal(affects(r, { ecosystem: 'NoSuchEcosystem', name: 'pkg', version: '1' }).affected, true);
  });
});

describe('affects: which package a record names', () => {
  const debianRecord = (ecosystem: string) =>
    record(ecosystem, 'openssl', { events: [{ introduced: '0' }, { fixed: '3.0.13-1~deb12u1' }] });
  const onDebian12 = { ecosystem: 'Debian:12', name: 'openssl', version: '3.0.11-1~deb12u2' };

  it('matches a release-scoped record only on that release', () => {
    assert.equal(affects(debianRecord('Debian:12'), onDebian12).affected, true);
    assert.equal(affects(debianRecord('Debian:11'), onDebian12).affected, false);
    assert.equal(affects(debianRecord('Debian'), onDebian12).affected, true);
    assert.equal(affects(debianRecord('Ubuntu:22.04:LTS'), onDebian12).affected, false);
  });

  it('keeps Alpine branches and Ubuntu Pro streams apart', () => {
    const alpine = record('Alpine:v3.18', 'musl', { events: [{ introduced: '0' }, { fixed: '1.2.4-r3' }] });
    const v318 = { ecosystem: 'Alpine:v3.18', name: 'musl', version: '1.2.4-r2' };
    assert.equal(affects(alpine, v318).affected, true);
    assert.equal(affects(alpine, { ...v318, ecosystem: 'Alpine:v3.20' }).affected, false);
    const pro = record('Ubuntu:Pro:22.04:LTS', 'curl', { events: [{ introduced: '0' }] });
    assert.equal(affects(pro, { ecosystem: 'Ubuntu:22.04:LTS', name: 'curl', version: '1' }).affected, false);
  });

  it('applies every RHEL stream of the same major release to a baseos-mapped package, nothing else', () => {
    // Synthetic records in the real Red Hat OSV shape; the inventory maps RHEL 9 to `::baseos`.
    const nodejs = { ecosystem: RHEL9_INVENTORY_ECOSYSTEM, ...RHEL9_NODEJS };
    const hit = affects(APPSTREAM_9, nodejs);
    assert.equal(hit.affected, true);
    assert.equal(hit.fixedVersion, '1:20.11.1-1.el9_4');
    assert.equal(hit.affectedEntry?.package?.ecosystem, 'Red Hat:enterprise_linux:9::appstream');
    const matched = ALL_RHEL_RECORDS.filter((r) => affects(r, nodejs).affected).map((r) => r.id);
    assert.deepEqual(matched.sort(), RHEL9_NODEJS_IDS);
    // The fix still decides: at the AppStream fix the package is not affected.
    assert.equal(affects(APPSTREAM_9, { ...nodejs, version: '1:20.11.1-1.el9_4' }).affected, false);
    // A RHEL 8 inventory does not see the RHEL 9 AppStream record, nor does another distribution.
    assert.equal(
      affects(APPSTREAM_9, { ...nodejs, ecosystem: 'Red Hat:enterprise_linux:8::baseos' }).affected,
      false,
    );
    assert.equal(affects(APPSTREAM_9, { ...nodejs, ecosystem: 'Rocky Linux:9' }).affected, false);
    // EUS inventories keep exact stream matching (a separate product with its own fixes).
    assert.equal(
      affects(APPSTREAM_9, { ...nodejs, ecosystem: 'Red Hat:rhel_eus:9.2::baseos' }).affected,
      false,
    );
  });

  it('matches a binary package through its source package name and version', () => {
    const r = debianRecord('Debian:12');
    const libssl = {
      ecosystem: 'Debian:12',
      name: 'libssl3',
      version: '3.0.11-1~deb12u2',
      source: { name: 'openssl', version: '3.0.11-1~deb12u2' },
    };
    assert.deepEqual(
      { ...affects(r, libssl), affectedEntry: undefined },
      { affected: true, fixedVersion: '3.0.13-1~deb12u1', affectedEntry: undefined },
    );
    // The source version decides, not the binary's (binNMU / differing binary versions).
    assert.equal(
      affects(r, { ...libssl, source: { name: 'openssl', version: '3.0.13-1~deb12u1' } }).affected,
      false,
    );
    // An empty source version falls back to the binary version.
    assert.equal(affects(r, { ...libssl, source: { name: 'openssl', version: '' } }).affected, true);
    // Without the source mapping, the binary name names nothing.
    assert.equal(
      affects(r, { ecosystem: 'Debian:12', name: 'libssl3', version: '3.0.11-1~deb12u2' }).affected,
      false,
    );
  });

  it('normalises PyPI names per PEP 503', () => {
    const r = record('PyPI', 'Zope.Interface', { events: [{ introduced: '0' }, { fixed: '5.0' }] });
    for (const name of ['zope.interface', 'zope-interface', 'ZOPE__interface', 'zope_-.interface']) {
      assert.equal(affects(r, { ecosystem: 'PyPI', name, version: '4.0' }).affected, true, name);
    }
    assert.equal(affects(r, { ecosystem: 'PyPI', name: 'zopeinterface', version: '4.0' }).affected, false);
  });

  it('keeps npm and Maven names case-sensitive', () => {
    const axios = record('npm', 'Axios', { events: [{ introduced: '0' }] });
    assert.equal(affects(axios, npm('axios', '1.0.0')).affected, false);
    assert.equal(affects(axios, npm('Axios', '1.0.0')).affected, true);
    const maven = record('Maven', 'org.Example:lib', { events: [{ introduced: '0' }] });
    assert.equal(
      affects(maven, { ecosystem: 'Maven', name: 'org.example:lib', version: '1' }).affected,
      false,
    );
  });
});
