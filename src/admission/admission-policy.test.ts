import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ImageVerdict, ImageVerdictSource } from '../posture/image-scan-verdict.js';
import { judgeImageScan } from '../posture/image-scan-verdict.js';
import { decideAdmission, imagesOf } from './admission-policy.js';
import type { AdmissionPolicy } from './admission-policy.js';
import { admissionResponse } from './admission-review.js';
import type { AdmissionRequest } from './admission-review.js';

/** Verdicts from fixed severity counts (the real judgement), recording what was asked. */
class FixedVerdicts implements ImageVerdictSource {
  readonly asked: string[] = [];
  constructor(
    private readonly counts: Record<string, number>,
    private readonly unreachable = false,
  ) {}
  async verdict(image: string): Promise<ImageVerdict> {
    this.asked.push(image);
    if (this.unreachable)
      return { status: 'unknown', image, unreachable: true, reason: 'scanner unreachable (ECONNREFUSED)' };
    const critical = this.counts[image];
    return judgeImageScan(
      image,
      critical === undefined
        ? undefined
        : {
            image,
            scanId: 1,
            scanTime: '2026-01-01T00:00:00.000Z',
            severityCounts: { CRITICAL: critical, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
          },
    );
  }
}

const images = new FixedVerdicts({ 'reg.local/vuln:1': 2, 'reg.local/clean:1': 0, 'reg.local/sidecar:1': 0 });

const policy: AdmissionPolicy = {
  mode: 'deny',
  level: 'baseline',
  denyUnknownImages: false,
  allowedRegistries: [],
};

function pod(containers: object[], extra: object = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'shop' },
    spec: { containers, ...extra },
  };
}

function request(object: unknown, over: Partial<AdmissionRequest> = {}): AdmissionRequest {
  const kind = (object as { kind?: string } | undefined)?.kind ?? 'Pod';
  return {
    uid: 'u-1',
    kind: { group: '', version: 'v1', kind },
    operation: 'CREATE',
    namespace: 'shop',
    object,
    ...over,
  };
}

describe('admission decision', () => {
  it('denies a pod whose image fails the thresholds, saying which image and why', async () => {
    const d = await decideAdmission(
      request(pod([{ name: 'app', image: 'reg.local/vuln:1' }])),
      policy,
      images,
    );
    assert.equal(d.allowed, false);
    assert.deepEqual(d.reasons, [
      'image "reg.local/vuln:1": latest scan (2026-01-01T00:00:00.000Z) fails the compliance thresholds: 2 CRITICAL > 0 allowed',
    ]);
    const clean = await decideAdmission(
      request(pod([{ name: 'app', image: 'reg.local/clean:1' }])),
      policy,
      images,
    );
    assert.deepEqual(clean, { allowed: true, reasons: [], warnings: [] });
  });

  it('checks init and ephemeral containers too, each image once', async () => {
    const spec = pod(
      [
        { name: 'a', image: 'reg.local/clean:1' },
        { name: 'b', image: 'reg.local/clean:1' },
      ],
      {
        initContainers: [{ name: 'init', image: 'reg.local/vuln:1' }],
        ephemeralContainers: [{ name: 'debug', image: 'reg.local/other:1' }],
      },
    );
    assert.deepEqual(
      imagesOf((spec as { spec: unknown }).spec).map((u) => [u.image, u.where]),
      [
        ['reg.local/vuln:1', ['initContainers[0] "init"']],
        ['reg.local/clean:1', ['containers[0] "a"', 'containers[1] "b"']],
        ['reg.local/other:1', ['ephemeralContainers[0] "debug"']],
      ],
    );
    const d = await decideAdmission(request(spec), { ...policy, denyUnknownImages: true }, images);
    assert.equal(d.allowed, false);
    assert.equal(d.reasons.length, 2);
    assert.match(d.reasons[0] ?? '', /reg\.local\/vuln:1.*CRITICAL/);
    assert.equal(
      d.reasons[1],
      'image "reg.local/other:1" has never been scanned (unknown images are denied)',
    );
  });

  it('checks the pod template of workloads (Deployment, CronJob)', async () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { template: { spec: { containers: [{ name: 'app', image: 'reg.local/vuln:1' }] } } },
    };
    assert.equal((await decideAdmission(request(deployment), policy, images)).allowed, false);
    const cron = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'c' },
      spec: {
        schedule: '* * * * *',
        jobTemplate: {
          spec: {
            template: {
              spec: {
                containers: [{ name: 'x', image: 'reg.local/vuln:1', securityContext: { privileged: true } }],
              },
            },
          },
        },
      },
    };
    const d = await decideAdmission(request(cron), policy, images);
    assert.equal(d.allowed, false);
    assert.ok(
      d.reasons.includes(
        'Pod Security "baseline": spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged: container "x" must not set securityContext.privileged=true',
      ),
      d.reasons.join('\n'),
    );
  });

  it('unknown images: a warning by default, a denial with denyUnknownImages; an unreachable scanner says so', async () => {
    const unknown = pod([{ name: 'app', image: 'reg.local/new:1' }]);
    const lenient = await decideAdmission(request(unknown), policy, images);
    assert.deepEqual(lenient, {
      allowed: true,
      reasons: [],
      warnings: ['image "reg.local/new:1" has never been scanned'],
    });
    const down = new FixedVerdicts({}, true);
    const strict = await decideAdmission(request(unknown), { ...policy, denyUnknownImages: true }, down);
    assert.deepEqual(strict.reasons, [
      'image "reg.local/new:1": scan status unknown, scanner unreachable (ECONNREFUSED) (unknown images are denied)',
    ]);
    const noScanner = await decideAdmission(request(unknown), policy, undefined);
    assert.deepEqual(noScanner, { allowed: true, reasons: [], warnings: [] });
  });

  it('refuses registries outside the allowlist and unparseable references', async () => {
    const p = { ...policy, allowedRegistries: ['reg.local'] };
    const d = await decideAdmission(
      request(
        pod([
          { name: 'a', image: 'docker.io/library/nginx:1' },
          { name: 'b', image: 'nginx:1' },
          { name: 'c', image: 'reg.local/clean:1' },
          { name: 'd', image: 'Bad Image' },
        ]),
      ),
      p,
      images,
    );
    assert.equal(d.allowed, false);
    assert.equal(
      d.reasons.filter((r) => r.includes('registry docker.io is not allowed (allowed: reg.local)')).length,
      2,
    );
    assert.ok(
      d.reasons.some((r) => r.startsWith('invalid image reference "Bad Image"')),
      d.reasons.join('\n'),
    );
    assert.ok(!d.reasons.some((r) => r.includes('reg.local/clean:1')));
  });

  it('refuses Pod Security violations of the chosen level, and nothing at privileged', async () => {
    const hostile = pod([{ name: 'app', image: 'reg.local/clean:1' }], { hostNetwork: true });
    const baseline = await decideAdmission(request(hostile), policy, images);
    assert.deepEqual(baseline.reasons, [
      'Pod Security "baseline": spec.hostNetwork: pod must not set hostNetwork=true',
    ]);
    const plain = pod([{ name: 'app', image: 'reg.local/clean:1' }]);
    assert.equal((await decideAdmission(request(plain), policy, images)).allowed, true);
    const restricted = await decideAdmission(request(plain), { ...policy, level: 'restricted' }, images);
    assert.equal(restricted.allowed, false);
    assert.ok(restricted.reasons.every((r) => r.startsWith('Pod Security "restricted": ')));
    assert.ok(restricted.reasons.some((r) => r.includes('allowPrivilegeEscalation')));
    assert.equal(
      (await decideAdmission(request(hostile), { ...policy, level: 'privileged' }, images)).allowed,
      true,
    );
  });

  it('warn mode admits with every problem as a warning', async () => {
    const d = await decideAdmission(
      request(pod([{ name: 'app', image: 'reg.local/vuln:1' }], { hostPID: true })),
      { ...policy, mode: 'warn' },
      images,
    );
    assert.equal(d.allowed, true);
    assert.equal(d.reasons.length, 0);
    assert.equal(d.warnings.length, 2);
    const review = admissionResponse('u-9', d);
    assert.equal(review.response.allowed, true);
    assert.equal(review.response.status, undefined);
    assert.deepEqual(review.response.warnings, d.warnings);
  });

  it('lets through what it does not judge: DELETE, status updates, other kinds, exempt namespaces, unchanged templates', async () => {
    const bad = pod([{ name: 'app', image: 'reg.local/vuln:1' }]);
    const ok = { allowed: true, reasons: [], warnings: [] };
    assert.deepEqual(await decideAdmission(request(bad, { operation: 'DELETE' }), policy, images), ok);
    assert.deepEqual(
      await decideAdmission(request(bad, { operation: 'UPDATE', subResource: 'status' }), policy, images),
      ok,
    );
    assert.deepEqual(
      await decideAdmission(
        request({ kind: 'ConfigMap', metadata: { name: 'x' }, data: {} }),
        policy,
        images,
      ),
      ok,
    );
    assert.deepEqual(
      await decideAdmission(request(bad), { ...policy, exemptNamespaces: ['shop'] }, images),
      ok,
    );
    // Scaling a Deployment whose image has since become vulnerable must still work.
    const deployment = (replicas: number, image: string): object => ({
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { replicas, template: { spec: { containers: [{ name: 'app', image }] } } },
    });
    const scale = request(deployment(3, 'reg.local/vuln:1'), {
      operation: 'UPDATE',
      oldObject: deployment(1, 'reg.local/vuln:1'),
    });
    assert.deepEqual(await decideAdmission(scale, policy, images), ok);
    const change = request(deployment(1, 'reg.local/vuln:1'), {
      operation: 'UPDATE',
      oldObject: deployment(1, 'reg.local/clean:1'),
    });
    assert.equal((await decideAdmission(change, policy, images)).allowed, false);
  });

  it('checks ephemeral containers added through the pods/ephemeralcontainers subresource', async () => {
    const before = pod([{ name: 'app', image: 'reg.local/clean:1' }]);
    const after = pod([{ name: 'app', image: 'reg.local/clean:1' }], {
      ephemeralContainers: [{ name: 'dbg', image: 'reg.local/vuln:1' }],
    });
    const d = await decideAdmission(
      request(after, { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: before }),
      policy,
      images,
    );
    assert.equal(d.allowed, false);
    assert.match(d.reasons[0] ?? '', /reg\.local\/vuln:1/);
  });

  it('denial response: code 403, one line per reason; long warning lists are capped', () => {
    const denied = admissionResponse('u-2', { allowed: false, reasons: ['a', 'b'], warnings: [] });
    assert.deepEqual(denied.response, {
      uid: 'u-2',
      allowed: false,
      status: { code: 403, reason: 'Forbidden', message: 'a\nb' },
    });
    const many = admissionResponse('u-3', {
      allowed: true,
      reasons: [],
      warnings: Array.from({ length: 50 }, (_, i) => `w${i} ${'x'.repeat(i === 0 ? 500 : 1)}`),
    });
    assert.equal(many.response.warnings?.length, 20);
    assert.ok((many.response.warnings?.[0]?.length ?? 0) <= 240);
    assert.equal(many.response.warnings?.at(-1), '… and 31 more');
  });
});
