/**
 * Fixtures for every built-in rule: events that must fire it and near misses that must not.
 * Shapes are what the sensor produces on this host (see native/sensor and decode.ts).
 */
import type { SensorEvent } from '../contracts.js';
import type { ContainerView, ProcessView, RuleContext } from './rule.js';
import { DEFAULT_RULE_OPTIONS } from './rule.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

const container = (over: Partial<ContainerView> = {}): ContainerView => ({
  containerId: 'c'.repeat(64),
  image: 'localhost/web:1',
  entrypointName: 'nginx',
  startedAt: T0,
  initialListeners: new Set([80]),
  ...over,
});

const proc = (name: string, over: Partial<ProcessView> = {}): ProcessView => ({
  pid: 100,
  uid: 0,
  name,
  argv: [name],
  ...over,
});

const event = (kind: SensorEvent['kind'], over: Partial<SensorEvent> = {}): SensorEvent => ({
  kind,
  pid: 100,
  uid: 0,
  cgroupId: 44,
  comm: 'x',
  time: T0 + 120_000,
  source: 'ebpf',
  ...over,
});

export function ctx(
  e: SensorEvent,
  p: ProcessView,
  c: ContainerView = container(),
  drift?: RuleContext['drift'],
): RuleContext {
  return { event: e, process: p, container: c, options: DEFAULT_RULE_OPTIONS, ...(drift ? { drift } : {}) };
}

const noDrift = { upperLayer: false, memfd: false, deleted: false };

/** rule id → [fixture name, context, should fire]. */
export const FIXTURES: Record<string, [string, RuleContext, boolean][]> = {
  shell_in_container: [
    ['podman exec sh in an nginx container', ctx(event('exec'), proc('sh', { parentName: 'runc' })), true],
    ['bash spawned by nginx (an exploit)', ctx(event('exec'), proc('bash', { parentName: 'nginx' })), true],
    ['sh run by sh (folded into the first)', ctx(event('exec'), proc('sh', { parentName: 'sh' })), false],
    [
      'a shell entrypoint container',
      ctx(event('exec'), proc('sh'), container({ entrypointName: 'sh' })),
      false,
    ],
    ['not a shell', ctx(event('exec'), proc('ls')), false],
  ],
  package_manager_at_runtime: [
    ['apt-get install', ctx(event('exec'), proc('apt-get', { argv: ['apt-get', 'install', 'curl'] })), true],
    ['apk add', ctx(event('exec'), proc('apk')), true],
    ['pip', ctx(event('exec'), proc('pip3')), true],
    ['an app called apt-helper', ctx(event('exec'), proc('apt-helper')), false],
  ],
  drift_executable: [
    [
      'a file in the upper layer',
      ctx(event('exec'), proc('x', { exe: '/tmp/x' }), container(), { ...noDrift, upperLayer: true }),
      true,
    ],
    [
      'a memfd',
      ctx(event('exec', { exeName: 'memfd:payload' }), proc('3'), container(), { ...noDrift, memfd: true }),
      true,
    ],
    [
      'a program of the image',
      ctx(event('exec'), proc('ls', { exe: '/bin/ls' }), container(), noDrift),
      false,
    ],
  ],
  new_listener: [
    [
      'nc -l 4444 two minutes after start',
      ctx(event('listen', { port: 4444, address: '::' }), proc('nc')),
      true,
    ],
    [
      'the service port it had at start',
      ctx(event('listen', { port: 80, address: '0.0.0.0' }), proc('nginx')),
      false,
    ],
    [
      'a listener during start-up',
      ctx(event('listen', { port: 8081, time: T0 + 1000 }), proc('nginx')),
      false,
    ],
    ['a UDP bind to a new port', ctx(event('bind', { port: 5353, address: '0.0.0.0' }), proc('x')), true],
  ],
  outbound_unexpected: [
    [
      'to a public address on 6667',
      ctx(event('connect', { address: '203.0.113.9', port: 6667 }), proc('x')),
      true,
    ],
    ['HTTPS', ctx(event('connect', { address: '203.0.113.9', port: 443 }), proc('curl')), false],
    ['loopback', ctx(event('connect', { address: '127.0.0.1', port: 6667 }), proc('x')), false],
    [
      'a stratum port (crypto_miner says it)',
      ctx(event('connect', { address: '203.0.113.9', port: 3333 }), proc('x')),
      false,
    ],
  ],
  crypto_miner: [
    ['xmrig', ctx(event('exec'), proc('xmrig')), true],
    [
      'a stratum URL',
      ctx(event('exec'), proc('kworker', { argv: ['kworker', '-o', 'stratum+tcp://pool:4444'] })),
      true,
    ],
    ['connect to 3333', ctx(event('connect', { address: '127.0.0.1', port: 3333 }), proc('nc')), true],
    ['connect to 443', ctx(event('connect', { address: '203.0.113.9', port: 443 }), proc('curl')), false],
    ['a normal program', ctx(event('exec'), proc('node')), false],
  ],
  sensitive_file_read: [
    ['/etc/shadow', ctx(event('open', { file: '/etc/shadow', flags: 0 }), proc('cat')), true],
    [
      'an ssh private key',
      ctx(event('open', { file: '/root/.ssh/id_ed25519', flags: 0 }), proc('cat')),
      true,
    ],
    [
      'the service-account token',
      ctx(
        event('open', { file: '/var/run/secrets/kubernetes.io/serviceaccount/token', flags: 0 }),
        proc('curl'),
      ),
      true,
    ],
    [
      'aws credentials',
      ctx(event('open', { file: '/home/app/.aws/credentials', flags: 0 }), proc('python')),
      true,
    ],
    [
      'a home directory file',
      ctx(event('open', { file: '/home/app/notes.txt', flags: 0 }), proc('cat')),
      false,
    ],
    [
      '/etc/shadowsocks.json',
      ctx(event('open', { file: '/etc/shadowsocks.json', flags: 0 }), proc('ss')),
      false,
    ],
  ],
  privilege_escalation: [
    [
      'a setuid-root exec by uid 1000',
      ctx(event('exec', { uid: 1000, euid: 0 }), proc('su', { uid: 1000 })),
      true,
    ],
    [
      'setuid(0) by uid 1000',
      ctx(event('setid', { uid: 1000, syscall: 'setuid' }), proc('x', { uid: 1000 })),
      true,
    ],
    ['root running a program', ctx(event('exec', { uid: 0, euid: 0 }), proc('ls')), false],
    [
      'uid 1000 running a program',
      ctx(event('exec', { uid: 1000, euid: 1000 }), proc('ls', { uid: 1000 })),
      false,
    ],
  ],
  reverse_shell: [
    [
      'sh with a socket on stdin and stdout',
      ctx(event('exec', { stdinSocket: true, stdoutSocket: true }), proc('sh')),
      true,
    ],
    [
      'bash with a socket on stdout only',
      ctx(event('exec', { stdinSocket: false, stdoutSocket: true }), proc('bash')),
      true,
    ],
    ['sh on pipes', ctx(event('exec', { stdinSocket: false, stdoutSocket: false }), proc('sh')), false],
    [
      'a server with a socket on stdin (inetd style)',
      ctx(event('exec', { stdinSocket: true, stdoutSocket: true }), proc('sshd')),
      false,
    ],
  ],
  ptrace_attach: [['PTRACE_ATTACH', ctx(event('ptrace', { targetPid: 7, request: 16 }), proc('gdb')), true]],
  kernel_module_load: [
    ['finit_module', ctx(event('module', { syscall: 'finit_module' }), proc('insmod')), true],
  ],
};
