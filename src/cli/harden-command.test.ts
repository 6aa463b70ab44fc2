/** `containment harden -f`: the printed patch, its notes, and bad input. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import yaml from 'js-yaml';
import { insecureDeployment } from '../testing/harden-fixture.js';
import { hardenWorkload } from '../posture/harden.js';
import { archOf, buildSeccompProfile } from '../runtime/seccomp/profile.js';
import { containment } from '../testing/tools.js';
import { runMain } from './run-main.test-helper.js';

type TemplatePatch = { spec: { template: { spec: { securityContext: { seccompProfile: unknown } } } } };

describe('containment harden', () => {
  let dir: string;
  let manifest: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'containment-harden-cli-'));
    manifest = join(dir, 'app.yaml');
    // A Service between two workloads: skipped, as objects that own no pods are.
    const service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's' },
      spec: { ports: [{ port: 80 }] },
    };
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: { containers: [{ name: 'a', image: 'r/a:1' }] },
    };
    writeFileSync(manifest, [insecureDeployment(), service, pod].map((d) => yaml.dump(d)).join('---\n'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('-f prints one strategic-merge patch per workload, with how to apply it and the notes as comments', () => {
    const r = containment(['harden', '-f', manifest]);
    assert.equal(r.status, 0, r.stderr);
    const docs = yaml.loadAll(r.stdout);
    assert.equal(docs.length, 2);
    assert.deepEqual(docs[0], hardenWorkload(insecureDeployment()).patch);
    assert.match(
      r.stdout,
      /^# Deployment legacy-web \(namespace harden\): strategic-merge patch to the restricted level$/m,
    );
    assert.match(
      r.stdout,
      /^# apply: kubectl patch deployment legacy-web -n harden --type strategic --patch-file /m,
    );
    assert.match(
      r.stdout,
      /^# seccomp: RuntimeDefault \(record a tighter one: containment profile record, then --seccomp-profile\)$/m,
    );
    assert.match(r.stdout, /^# note: volume "host-logs": hostPath \/var\/log replaced by an emptyDir/m);
    assert.match(r.stdout, /^# note: .*mostly immutable/m);

    const json = containment(['harden', '-f', manifest, '--format', 'json']);
    assert.equal(json.status, 0, json.stderr);
    const results = JSON.parse(json.stdout) as {
      kind: string;
      name: string;
      patchType: string;
      patch: unknown;
      notes: string[];
    }[];
    assert.deepEqual(
      results.map((x) => [x.kind, x.name, x.patchType]),
      [
        ['Deployment', 'legacy-web', 'strategic'],
        ['Pod', 'p', 'strategic'],
      ],
    );
  });

  test('--seccomp-profile proposes the recorded profile as Localhost for the pod and containers that set their own', () => {
    const profile = join(dir, 'web.json');
    writeFileSync(profile, JSON.stringify(buildSeccompProfile(['read', 'write', 'accept4'], archOf('x64'))));
    const r = containment(['harden', '-f', manifest, '--seccomp-profile', profile]);
    assert.equal(r.status, 0, r.stderr);
    const [patch] = yaml.loadAll(r.stdout) as TemplatePatch[];
    assert.deepEqual(patch?.spec.template.spec.securityContext.seccompProfile, {
      type: 'Localhost',
      localhostProfile: 'web.json',
    });
    assert.match(r.stdout, /^# seccomp: Localhost web\.json, recorded in .*web\.json: copy it to/m);
    assert.doesNotMatch(r.stdout, /RuntimeDefault/);

    const spo = containment([
      'harden',
      '-f',
      manifest,
      '--seccomp-profile',
      profile,
      '--seccomp-localhost',
      'operator/harden/web.json',
      '--format',
      'json',
    ]);
    assert.equal(spo.status, 0, spo.stderr);
    const [first] = JSON.parse(spo.stdout) as { patch: TemplatePatch }[];
    assert.deepEqual(first?.patch.spec.template.spec.securityContext.seccompProfile, {
      type: 'Localhost',
      localhostProfile: 'operator/harden/web.json',
    });
  });

  test('bad input: one line with a stable code, exit 2', async () => {
    const services = join(dir, 'svc.yaml');
    writeFileSync(services, 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n');
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'kind: Deployment\n  spec: [\n');
    const notAProfile = join(dir, 'not-profile.json');
    writeFileSync(
      notAProfile,
      JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: [] }] }),
    );
    const goodProfile = join(dir, 'good.json');
    writeFileSync(goodProfile, JSON.stringify(buildSeccompProfile(['read'], archOf('x64'))));
    for (const [args, code] of [
      [['harden'], 'USAGE'],
      [['harden', '-f', manifest, 'ns/deployment/x'], 'USAGE'],
      [['harden', '-f', join(dir, 'missing.yaml')], 'TARGET_NOT_FOUND'],
      [['harden', '-f', services], 'MANIFEST_INVALID'],
      [['harden', '-f', broken], 'MANIFEST_INVALID'],
      [['harden', 'ns/service/x', '--kubeconfig', join(dir, 'none')], 'USAGE'],
      [['harden', '-f', manifest, '--seccomp-profile', join(dir, 'nope.json')], 'TARGET_NOT_FOUND'],
      [['harden', '-f', manifest, '--seccomp-profile', manifest], 'SECCOMP_PROFILE_INVALID'],
      [['harden', '-f', manifest, '--seccomp-profile', notAProfile], 'SECCOMP_PROFILE_INVALID'],
      [['harden', '-f', manifest, '--seccomp-localhost', 'x.json'], 'USAGE'],
      [
        ['harden', '-f', manifest, '--seccomp-profile', goodProfile, '--seccomp-localhost', '../../etc/x'],
        'USAGE',
      ],
    ] as const) {
      const r = await runMain(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error\\[${code}\\]: [^\\n]+\\n$`), args.join(' '));
      assert.equal(r.stdout, '');
    }
  });
});
