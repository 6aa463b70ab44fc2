import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ContainmentError } from '../errors.js';
import { checkImage, parseImageReference, registryAllowed } from './image-reference.js';

const D = `sha256:${'a'.repeat(64)}`;

test('normalises references as the container runtimes do', () => {
  const cases: [string, string, string, string | undefined, string | undefined][] = [
    ['nginx', 'docker.io', 'library/nginx', undefined, undefined],
    ['nginx:1.27', 'docker.io', 'library/nginx', '1.27', undefined],
    ['bitnami/redis:7', 'docker.io', 'bitnami/redis', '7', undefined],
    ['index.docker.io/library/nginx', 'docker.io', 'library/nginx', undefined, undefined],
    ['localhost/app', 'localhost', 'app', undefined, undefined],
    ['localhost:5000/team/app:v1', 'localhost:5000', 'team/app', 'v1', undefined],
    ['ghcr.io/acme/api@' + D, 'ghcr.io', 'acme/api', undefined, D],
    ['registry.k8s.io/pause:3.10@' + D, 'registry.k8s.io', 'pause', '3.10', D],
    ['[::1]:5000/app:1', '[::1]:5000', 'app', '1', undefined],
  ];
  for (const [image, registry, repository, tag, digest] of cases) {
    const ref = parseImageReference(image);
    assert.equal(ref.registry, registry, image);
    assert.equal(ref.repository, repository, image);
    assert.equal(ref.tag, tag, image);
    assert.equal(ref.digest, digest, image);
  }
  assert.equal(parseImageReference('nginx').normalized, 'docker.io/library/nginx:latest');
  assert.equal(parseImageReference(`nginx@${D}`).normalized, `docker.io/library/nginx@${D}`);
  assert.equal(parseImageReference(`ghcr.io/a/b:1@${D}`).normalized, `ghcr.io/a/b:1@${D}`);
});

test('refuses references a runtime would refuse, with a stable code', () => {
  for (const bad of [
    '',
    'acme/UPPER',
    'nginx:',
    'nginx@sha256:abc',
    'a//b',
    'nginx:bad tag',
    `nginx@sha256:${'A'.repeat(64)}`,
    '-x',
    'x'.repeat(5000),
  ]) {
    assert.throws(
      () => parseImageReference(bad),
      (e: unknown) =>
        e instanceof ContainmentError && e.code === 'IMAGE_REFERENCE_INVALID' && !e.message.includes('\n'),
      bad,
    );
  }
});

test('registry allowlist matches hosts and repository prefixes at boundaries only', () => {
  const ref = (s: string) => parseImageReference(s);
  assert.equal(registryAllowed(ref('ghcr.io/acme/api:1'), ['ghcr.io']), true);
  assert.equal(registryAllowed(ref('ghcr.io/acme/api:1'), ['ghcr.io/acme']), true);
  // attacks on naive prefix matching
  assert.equal(registryAllowed(ref('ghcr.io.evil.com/acme/api:1'), ['ghcr.io']), false);
  assert.equal(registryAllowed(ref('ghcr.io/acme-evil/api:1'), ['ghcr.io/acme']), false);
  assert.equal(registryAllowed(ref('evil.com/ghcr.io/api:1'), ['ghcr.io']), false);
  // Docker Hub short names belong to docker.io, not to an allowlisted look-alike
  assert.equal(registryAllowed(ref('nginx:1'), ['docker.io/library']), true);
  assert.equal(registryAllowed(ref('nginx:1'), ['ghcr.io']), false);
  assert.equal(registryAllowed(ref('nginx:1'), []), true);
});

test('checkImage: latest, untagged, registry, pinning', () => {
  const ids = (image: string, allowed?: string[]) =>
    checkImage(image, allowed ? { allowedRegistries: allowed } : {}).map((f) => f.control);
  assert.deepEqual(ids('nginx'), ['IMG-NO-TAG-OR-DIGEST', 'IMG-NOT-DIGEST-PINNED']);
  assert.deepEqual(ids('nginx:latest'), ['IMG-LATEST-TAG', 'IMG-NOT-DIGEST-PINNED']);
  assert.deepEqual(ids('nginx:1.27', ['ghcr.io']), ['IMG-REGISTRY-NOT-ALLOWED', 'IMG-NOT-DIGEST-PINNED']);
  assert.deepEqual(ids(`ghcr.io/a/b:1@${D}`, ['ghcr.io']), []);
  assert.deepEqual(ids(`ghcr.io/a/b@${D}`), []);
  assert.deepEqual(ids('Bad Image'), ['IMG-INVALID-REFERENCE']);
});
