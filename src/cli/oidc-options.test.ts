/** The `--oidc-*` settings of `server` and `up`: flags over the config file, defaults, refused combinations. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { oidcSettings } from './oidc-options.js';
import { runMain } from './run-main.test-helper.js';

const file = {
  oidc: {
    issuer: 'https://idp.example',
    audience: 'containment',
    clientId: 'file-client',
    clientSecret: 'file-secret',
    rolesClaim: 'groups',
  },
};

test('a flag wins over the config file, key by key; claims default to roles and namespaces', () => {
  assert.deepEqual(oidcSettings({ oidcClientId: 'flag-client', oidcAudience: 'aud-flag' }, file), {
    oidc: {
      issuer: 'https://idp.example',
      audience: 'aud-flag',
      rolesClaim: 'groups',
      namespacesClaim: 'namespaces',
    },
    webOidc: { issuer: 'https://idp.example', clientId: 'flag-client', clientSecret: 'file-secret' },
  });
  assert.deepEqual(oidcSettings({ oidcIssuer: 'https://other.example', oidcAudience: 'a' }, {}), {
    oidc: {
      issuer: 'https://other.example',
      audience: 'a',
      rolesClaim: 'roles',
      namespacesClaim: 'namespaces',
    },
  });
  assert.deepEqual(oidcSettings({ oidcIssuer: '', oidcAudience: '' }, {}), {}, 'empty variables are unset');
});

test('a client without an issuer, a secret without a client, or a bad redirect URI is refused', () => {
  assert.throws(() => oidcSettings({ oidcClientId: 'x' }, {}), /need --oidc-issuer and --oidc-audience/);
  assert.throws(() => oidcSettings({ oidcIssuer: 'https://i.example' }, {}), /go together/);
  assert.throws(
    () => oidcSettings({ oidcIssuer: 'https://i.example', oidcAudience: 'a', oidcClientSecret: 's' }, {}),
    /need --oidc-client-id/,
  );
  assert.throws(
    () =>
      oidcSettings(
        {
          oidcIssuer: 'https://i.example',
          oidcAudience: 'a',
          oidcClientId: 'c',
          oidcRedirectUri: 'not a url',
        },
        {},
      ),
    /--oidc-redirect-uri not a url: not a URL/,
  );
});

test('containment up takes the OIDC client flags: listed in its help, checked before anything starts', async () => {
  const help = await runMain(['up', '--help']);
  assert.equal(help.status, 0);
  for (const flag of ['--oidc-issuer', '--oidc-client-id', '--oidc-client-secret', '--oidc-redirect-uri'])
    assert.match(help.stdout, new RegExp(flag), flag);
  const dir = mkdtempSync(join(tmpdir(), 'containment-up-oidc-'));
  try {
    const bad = await runMain(['up', '--data-dir', dir, '--oidc-client-id', 'dash']);
    assert.equal(bad.status, 2);
    assert.match(
      bad.stderr,
      /^error\[USAGE\]: --oidc-client-id, --oidc-client-secret and --oidc-redirect-uri need/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
