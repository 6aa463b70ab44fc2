import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { requireOrSkip } from '../../testing/shared-data.js';
import { cloudCredentialsPresent, isSecretCandidate, maskKeyId, privateKeyPresent } from './secrets.js';
import { contextFor, makeRoot, tempDir } from './test-root.test-helper.js';
import type { RootSpec } from './test-root.test-helper.js';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const SEC1 = privateKey.export({ type: 'sec1', format: 'pem' }).toString();
const PKCS8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const PKCS8_ENCRYPTED = privateKey
  .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pass' })
  .toString();

async function scan(t: Parameters<typeof makeRoot>[0], spec: RootSpec) {
  const { ctx, notes } = await contextFor(await makeRoot(t, spec));
  return { keys: await privateKeyPresent.check(ctx), cloud: await cloudCredentialsPresent.check(ctx), notes };
}

test('private_key_present: keys in a home directory and /etc are HIGH, without key material', async (t) => {
  const { keys } = await scan(t, {
    '/root/.ssh/deploy': SEC1,
    '/etc/ssl/private/server.key': PKCS8,
    '/home/alice/notes.txt': 'nothing here\n',
  });
  assert.equal(keys?.id, 'private_key_present');
  assert.equal(keys?.severity, 'HIGH');
  assert.deepEqual(keys?.evidence, ['/etc/ssl/private/server.key', '/root/.ssh/deploy']);
  assert.match(keys?.details ?? '', /\/root\/\.ssh\/deploy \(EC\)/);
  assert.match(keys?.details ?? '', /server\.key \(PKCS#8\)/);
  const body = SEC1.split('\n')[1] as string;
  assert.ok(!(keys?.details ?? '').includes(body.slice(0, 16)));
});

test('private_key_present: only encrypted keys or SSH host keys are MEDIUM', async (t) => {
  const { keys } = await scan(t, {
    '/app/signing.pem': PKCS8_ENCRYPTED,
    '/etc/ssh/ssh_host_ecdsa_key': SEC1,
  });
  assert.equal(keys?.severity, 'MEDIUM');
  assert.deepEqual(keys?.evidence, ['/app/signing.pem', '/etc/ssh/ssh_host_ecdsa_key']);
  assert.match(keys?.details ?? '', /signing\.pem \(PKCS#8, encrypted\)/);
  assert.match(keys?.details ?? '', /SSH host keys fixed in the image .*ssh_host_ecdsa_key/);
});

test('private_key_present: OpenSSH keys from ssh-keygen, plain and with a passphrase', async (t) => {
  if (!requireOrSkip(t, existsSync('/usr/bin/ssh-keygen'), 'ssh-keygen (openssh-client)')) return;
  const work = await tempDir(t);
  const keygen = (name: string, pass: string) => {
    execFileSync('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-a',
      '1',
      '-N',
      pass,
      '-C',
      '',
      '-f',
      join(work, name),
    ]);
    return readFile(join(work, name), 'utf8');
  };
  const plain = await scan(t, { '/home/bob/.ssh/id_ed25519': await keygen('plain', '') });
  assert.equal(plain.keys?.severity, 'HIGH');
  assert.match(plain.keys?.details ?? '', /id_ed25519 \(OPENSSH\)/);
  const locked = await scan(t, { '/home/bob/.ssh/id_ed25519': await keygen('locked', 'secret') });
  assert.equal(locked.keys?.severity, 'MEDIUM');
  assert.match(locked.keys?.details ?? '', /\(OPENSSH, encrypted\)/);
});

test('private_key_present: PuTTY keys', async (t) => {
  const ppk = 'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: x\nPublic-Lines: 1\nAAAA\n';
  const { keys } = await scan(t, { '/srv/keys/admin.ppk': ppk });
  assert.match(keys?.details ?? '', /admin\.ppk \(PuTTY ssh-ed25519\)/);
});

test('private_key_present: docs, package trees and certificates are not the image keys', async (t) => {
  const { keys } = await scan(t, {
    '/usr/share/doc/openvpn/examples/sample-keys/server.key': PKCS8,
    '/usr/lib/python3/dist-packages/twisted/test/server.pem': PKCS8,
    '/app/node_modules/https-proxy/test/key.pem': PKCS8,
    '/usr/local/go/src/crypto/tls/handshake_test.go': `var k = \`${PKCS8}\``,
    '/root/go/pkg/mod/golang.org/x/crypto@v0.1.0/ssh/keys_data.go': `var k = \`${PKCS8}\``,
    '/usr/bin/tool': PKCS8, // a small system file with no key-like name is not read
    '/etc/ssl/certs/ca.pem': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    '/etc/motd': 'The PRIVATE KEY is in the vault.\n',
  });
  assert.equal(keys, undefined);
});

test('private_key_present: key-named files in system trees are read', async (t) => {
  const { keys } = await scan(t, {
    '/var/cache/app/id_rsa': SEC1,
    '/usr/bin/server.key': PKCS8,
    '/usr/local/etc/app.conf': SEC1,
    '/usr/lib/google-cloud-sdk/third_party/urllib3/dummyserver/certs/server.key': PKCS8,
  });
  assert.deepEqual(keys?.evidence, [
    '/usr/bin/server.key',
    '/usr/local/etc/app.conf',
    '/var/cache/app/id_rsa',
  ]);
});

test('private_key_present: a huge id_rsa is skipped with a note, not read', async (t) => {
  const huge = Buffer.concat([Buffer.from(SEC1), Buffer.alloc(200 * 1024, 0x41)]);
  const { keys, notes } = await scan(t, { '/root/.ssh/id_rsa': huge, '/etc/app/bundle.pem': huge });
  assert.equal(keys, undefined);
  assert.equal(notes.length, 1);
  assert.match(notes[0] ?? '', /\/root\/\.ssh\/id_rsa: \d+ bytes, over the 65536-byte limit/);
});

test('secret file rule', () => {
  assert.equal(isSecretCandidate('/opt/app/config.yml'), true);
  assert.equal(isSecretCandidate('/usr/local/bin/run.sh'), true);
  assert.equal(isSecretCandidate('/usr/local/go/src/x.go'), false);
  assert.equal(isSecretCandidate('/usr/bin/env'), false);
  assert.equal(isSecretCandidate('/var/cache/x/id_rsa'), true);
  assert.equal(isSecretCandidate('/usr/lib/x/id_rsa'), false);
  assert.equal(isSecretCandidate('/usr/local/go/src/crypto/x509/platform_root_key.pem'), false);
  assert.equal(isSecretCandidate('/usr/share/doc/x/id_rsa'), false);
  assert.equal(isSecretCandidate('/home/a/project/tests/id_rsa'), false);
});

// A random key in AWS's shape (never a real one).
const KEY_ID = 'AKIA' + randomBytes(12).toString('hex').toUpperCase().slice(0, 16);
const SECRET = randomBytes(30).toString('base64'); // 40 characters, no padding

test('cloud_credentials_present: ~/.aws/credentials, masked', async (t) => {
  const { cloud } = await scan(t, {
    '/root/.aws/credentials': `[default]\naws_access_key_id = ${KEY_ID}\naws_secret_access_key = ${SECRET}\n`,
  });
  assert.equal(cloud?.id, 'cloud_credentials_present');
  assert.equal(cloud?.severity, 'CRITICAL');
  assert.deepEqual(cloud?.evidence, ['/root/.aws/credentials']);
  assert.ok(cloud?.details?.includes(maskKeyId(KEY_ID)));
  assert.ok(!cloud?.details?.includes(KEY_ID));
  assert.ok(!cloud?.details?.includes(SECRET.slice(0, 8)));
});

test('cloud_credentials_present: a key id near a bare secret in an env file', async (t) => {
  const { cloud } = await scan(t, { '/app/.env': `ID=${KEY_ID}\nKEY=${SECRET}\n` });
  assert.match(cloud?.details ?? '', /AWS access key AKIA…/);
});

test('cloud_credentials_present: GCP service-account JSON', async (t) => {
  const json = JSON.stringify({
    type: 'service_account',
    project_id: 'p',
    private_key: PKCS8,
    client_email: 'a@p',
  });
  const { cloud, keys } = await scan(t, { '/srv/gcp/sa.json': json });
  assert.match(cloud?.details ?? '', /sa\.json: a GCP service-account key/);
  assert.deepEqual(keys?.evidence, ['/srv/gcp/sa.json']); // the key inside is a private key as well
});

test('cloud_credentials_present: documentation examples, digests and lone key ids are not credentials', async (t) => {
  const { cloud } = await scan(t, {
    '/etc/app/example.ini':
      'aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n',
    '/opt/build.txt': `key ${KEY_ID}\nsha1 ${randomBytes(20).toString('hex')}\n`,
    '/usr/share/doc/awscli/creds': `aws_secret_access_key = ${SECRET}\n`,
  });
  assert.equal(cloud, undefined);
});
