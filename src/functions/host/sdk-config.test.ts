/** `--sdk-config`: the policy SDK's credentials file, checked whole before the runtime starts. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCodes } from '../../errors.js';
import { credentialsOf, parseSdkConfig } from './sdk-config.js';

const GOOD = `
scanner: http://scanner:8080
actionApi: http://127.0.0.1:8082
kubeconfigs: { west: /etc/west.kubeconfig }
namespaces:
  east-policies: { cluster: east, scannerToken: s1, enforcerToken: e1, namespaces: [shop, billing] }
  west-policies: { cluster: west, scannerToken: s2, enforcerToken: e2 }
`;

describe('sdk config', () => {
  test('namespaces map to their cluster, tokens and pod namespaces; unknown ones to nothing', () => {
    const config = parseSdkConfig(GOOD, 'sdk.yaml', 'http');
    const credentials = credentialsOf(config);
    assert.deepEqual(credentials('east-policies'), {
      cluster: 'east',
      scannerToken: 's1',
      enforcerToken: 'e1',
      namespaces: ['shop', 'billing'],
    });
    assert.deepEqual(credentials('west-policies')?.namespaces, []);
    assert.equal(credentials('guest'), undefined);
    assert.equal(credentials('__proto__'), undefined);
    assert.deepEqual(config.kubeconfigs, { west: '/etc/west.kubeconfig' });
  });

  test('kubernetes mode needs no action API nor enforcer tokens', () => {
    const config = parseSdkConfig(
      'scanner: https://s\nnamespaces:\n  p: { cluster: east, scannerToken: t }\n',
      'sdk.yaml',
      'kubernetes',
    );
    assert.equal(credentialsOf(config)('p')?.enforcerToken, '');
  });

  const bad: [string, string, RegExp][] = [
    ['not YAML', 'scanner: [', /^sdk\.yaml: not YAML/],
    ['a bad scanner URL', 'scanner: ftp://x\nnamespaces: {}', /^sdk\.yaml: scanner: /],
    ['a misspelt field', 'scanner: http://s\nnamespace: {}', /^sdk\.yaml: /],
    [
      'a cluster name the scanner would refuse',
      'scanner: http://s\nnamespaces:\n  p: { cluster: "*", scannerToken: t }',
      /^sdk\.yaml: namespaces\.p\.cluster: /,
    ],
    [
      'http mode without actionApi',
      'scanner: http://s\nnamespaces: {}',
      /actionApi is required with --enforcement http/,
    ],
    [
      'http mode without an enforcer token',
      'scanner: http://s\nactionApi: http://a\nnamespaces:\n  p: { cluster: east, scannerToken: t }',
      /namespaces\.p\.enforcerToken is required/,
    ],
  ];
  for (const [name, text, message] of bad) {
    test(`refuses ${name} with one line`, () => {
      assert.throws(
        () => parseSdkConfig(text, 'sdk.yaml', 'http'),
        (e: { code?: string; message: string }) => {
          assert.equal(e.code, ErrorCodes.CONFIG_INVALID);
          assert.match(e.message, message);
          assert.equal(e.message.includes('\n'), false);
          return true;
        },
      );
    });
  }
});
