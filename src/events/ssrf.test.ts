import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { describe, test } from 'node:test';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { requireOrSkip } from '../testing/shared-data.js';
import { TargetGuard, checkTargetUrl } from './ssrf.js';

const strict = new TargetGuard({ allow: [] });
const loopbackAllowed = new TargetGuard({ allow: ['127.0.0.0/8', '::1'] });

function assertRefused(guard: TargetGuard, url: string): void {
  assert.throws(
    () => guard.checkUrl(url),
    (e: unknown) => e instanceof ContainmentError && e.code === ErrorCodes.TARGET_URL_REFUSED,
    `${url} should be refused`,
  );
}

describe('checkUrl: metadata and link-local targets are refused whatever the allow-list says', () => {
  const wideOpen = new TargetGuard({ allow: ['0.0.0.0/0', '::/0'] });
  const attacks = [
    'http://169.254.169.254/latest/meta-data/',
    'http://[::ffff:169.254.169.254]/', // IPv4-mapped IPv6, normalised by URL to [::ffff:a9fe:a9fe]
    'http://[::ffff:a9fe:a9fe]/',
    'http://[::169.254.169.254]/', // IPv4-compatible
    'http://[64:ff9b::169.254.169.254]/', // NAT64
    'http://[::ffff:0:169.254.169.254]/', // SIIT IPv4-translated (::ffff:0:0:0/96)
    'http://[::ffff:0:a9fe:a9fe]/',
    'http://[0:0:0:0:ffff:0:7f00:1]/', // SIIT form of 127.0.0.1
    'http://[::ffff:0:5db8:d822]/', // SIIT form of a public address: the whole range is refused
    'http://[2002:a9fe:a9fe::1]/', // 6to4
    'http://2852039166/', // decimal
    'http://0xA9FEA9FE/', // hex
    'http://0251.0376.0251.0376/', // octal
    'http://169.254.0xa9.1/', // one hex octet
    'http://0/', // 0.0.0.0
    'http://[::]/',
    'http://100.100.100.200/', // Alibaba metadata
    'http://[fd00:ec2::254]/', // AWS IPv6 metadata
    'http://[fe80::1]/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
    'http://[ff02::1]/',
    'http://metadata.google.internal/computeMetadata/v1/',
    'http://METADATA.GOOGLE.INTERNAL./',
    'http://evil.example@169.254.169.254/', // userinfo: the host is the metadata address
    'http://169.254.169.254:80@evil.example/', // userinfo that looks like a host: refused for carrying credentials
  ];
  for (const url of attacks) {
    test(url, () => {
      assertRefused(strict, url);
      assertRefused(wideOpen, url);
    });
  }

  test('the WHATWG parser really normalises the odd IPv4 spellings to the metadata address', () => {
    for (const url of ['http://2852039166/', 'http://0xA9FEA9FE/', 'http://0251.0376.0251.0376/']) {
      assert.equal(new URL(url).hostname, '169.254.169.254');
    }
  });
});

describe('checkUrl: private and loopback ranges need --trigger-allow', () => {
  const restricted = [
    'http://127.0.0.1:8080/',
    'http://127.1/', // short form of 127.0.0.1
    'http://0x7f000001/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://10.1.2.3/',
    'http://172.16.0.1/',
    'http://172.31.255.255/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://[fd12:3456::1]/',
    'http://localhost:8080/',
    'http://LOCALHOST./',
    'http://api.localhost/',
  ];
  for (const url of restricted) {
    test(`${url} refused without an allow-list`, () => assertRefused(strict, url));
  }

  test('an allow-list opens exactly its ranges', () => {
    assert.equal(loopbackAllowed.checkUrl('http://127.0.0.1:8080/x').port, '8080');
    assert.ok(loopbackAllowed.checkUrl('http://[::1]/'));
    assert.ok(loopbackAllowed.checkUrl('http://[::ffff:127.0.0.1]/'));
    assert.ok(loopbackAllowed.checkUrl('http://localhost/'));
    assertRefused(loopbackAllowed, 'http://10.1.2.3/');
    const tenOnly = new TargetGuard({ allow: ['10.0.0.0/16'] });
    assert.ok(tenOnly.checkUrl('http://10.0.255.1/'));
    assertRefused(tenOnly, 'http://10.1.0.1/');
    assertRefused(tenOnly, 'http://127.0.0.1/');
  });

  test('SIIT (::ffff:0:0:0/96) is refused even when an allow-list covers its IPv4 address', () => {
    assertRefused(loopbackAllowed, 'http://[::ffff:0:127.0.0.1]/');
    assert.match(strict.refusal('::ffff:0:7f00:1') ?? '', /link-local, metadata, multicast or reserved/);
    // Its neighbours are judged by what they are: mapped (::ffff:a.b.c.d) and a public address.
    assert.ok(loopbackAllowed.checkUrl('http://[::ffff:127.0.0.1]/'));
    assert.equal(strict.refusal('::fffe:0:7f00:1'), undefined);
  });

  test('public addresses and names pass the static check', () => {
    assert.equal(strict.checkUrl('https://hooks.example.com/x?y=1').hostname, 'hooks.example.com');
    assert.ok(strict.checkUrl('http://93.184.216.34/'));
    assert.ok(strict.checkUrl('http://172.32.0.1/')); // just outside 172.16/12
    assert.ok(strict.checkUrl('http://[2001:db8::1]/'));
  });
});

describe('checkUrl: schemes and malformed input', () => {
  for (const url of [
    'file:///etc/passwd',
    'gopher://127.0.0.1:6379/_INFO',
    'ftp://example.com/',
    'not a url',
    'http://',
  ]) {
    test(url, () => assertRefused(loopbackAllowed, url));
  }
  test('credentials are refused even on an allowed host', () => {
    assertRefused(loopbackAllowed, 'http://user:pw@127.0.0.1/');
  });
  test('a malformed allow-list entry is a configuration error', () => {
    for (const bad of ['10.0.0.0/33', 'fe80::/129', 'example.com/8', '10.0.0.0/x']) {
      assert.throws(
        () => new TargetGuard({ allow: [bad] }),
        (e: unknown) => e instanceof ContainmentError && e.code === ErrorCodes.CONFIG_INVALID,
        bad,
      );
    }
  });
  test('checkTargetUrl is the same check', () => {
    assert.throws(
      () => checkTargetUrl('http://169.254.169.254/', { allow: ['0.0.0.0/0'] }),
      ContainmentError,
    );
    assert.equal(checkTargetUrl('http://127.0.0.1/', { allow: ['127.0.0.1'] }).hostname, '127.0.0.1');
  });
});

describe('resolve: DNS answers are checked too', () => {
  test('a name resolving to loopback is refused when loopback is not allowed', async (t) => {
    // The machine's own host name is not caught by any static name rule; here it resolves to 127.0.0.1.
    const name = hostname();
    const addresses = (await lookup(name, { all: true })).map((a) => a.address);
    if (
      !requireOrSkip(
        t,
        addresses.length > 0 && addresses.every((a) => a.startsWith('127.')),
        `${name} resolving to 127.x`,
      )
    ) {
      return;
    }
    assert.ok(strict.checkUrl(`http://${name}/`), 'passes the static check');
    await assert.rejects(
      strict.resolve(`http://${name}/`),
      (e: unknown) => e instanceof ContainmentError && e.code === ErrorCodes.TARGET_URL_REFUSED,
    );
    const ok = await loopbackAllowed.resolve(`http://${name}:9/`);
    assert.deepEqual(ok.addresses.sort(), addresses.sort());
    await assert.rejects(strict.resolve('http://localhost/'), ContainmentError);
  });

  test('lookup (used for connections) refuses names whose addresses are all refused', async () => {
    const result = await new Promise<{ err: unknown; address: unknown }>((resolve) =>
      strict.lookup('localhost', {}, (err, address) => resolve({ err, address })),
    );
    assert.ok(result.err instanceof ContainmentError);
    assert.equal(result.err.code, ErrorCodes.TARGET_URL_REFUSED);
    const allowed = await new Promise<{ err: unknown; address: unknown }>((resolve) =>
      loopbackAllowed.lookup('localhost', { all: true }, (err, address) => resolve({ err, address })),
    );
    assert.equal(allowed.err, null);
    assert.ok(Array.isArray(allowed.address) && allowed.address.length > 0);
  });
});
