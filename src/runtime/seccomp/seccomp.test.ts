/** Pure parts of seccomp recording: tables, program text, output parsing, profile builders. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isContainmentError } from '../../errors.js';
import {
  archOf,
  baseSyscalls,
  buildSeccompProfile,
  buildSpoSeccompProfile,
  parseSeccompProfile,
  syscallNames,
} from './profile.js';
import { countsOf, parseRecorderLine, recorderProgram } from './recorder.js';
import type { CgroupSyscallCounts } from './recorder.js';
import { AARCH64_SYSCALLS, X86_64_SYSCALLS } from './syscall-tables.js';
import { parseRecordTarget } from './target.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return isContainmentError(e) ? e.code : 'OTHER';
  }
  return undefined;
};

describe('syscall tables (generated from the UAPI headers)', () => {
  test('well-known numbers per architecture', () => {
    assert.equal(X86_64_SYSCALLS[0], 'read');
    assert.equal(X86_64_SYSCALLS[59], 'execve');
    assert.equal(X86_64_SYSCALLS[272], 'unshare');
    assert.equal(AARCH64_SYSCALLS[63], 'read');
    assert.equal(AARCH64_SYSCALLS[221], 'execve');
    assert.equal(AARCH64_SYSCALLS[25], 'fcntl');
    assert.ok(!Object.values(AARCH64_SYSCALLS).includes('open'), 'aarch64 has no open(2)');
  });

  test('names resolve per architecture; unknown numbers are reported, not guessed', () => {
    const r = syscallNames([59, 0, 0, 9999], archOf('x64'));
    assert.deepEqual(r, { observed: ['execve', 'read'], unknown: [9999] });
    assert.deepEqual(syscallNames([221], archOf('arm64')).observed, ['execve']);
    assert.equal(
      code(() => archOf('riscv64')),
      'TARGET_UNSUPPORTED',
    );
  });
});

describe('recorder program and output', () => {
  test('the program carries only checked numbers', () => {
    const p = recorderProgram({ kind: 'cgroups', cgroupIds: [12, 34] }, 5000);
    assert.match(p, /\/cgroup == 12 \|\| cgroup == 34\//);
    assert.match(p, /interval:ms:5000 \{ exit\(\); \}/);
    const s = recorderProgram({ kind: 'seccomp', hostPidLevel: 0 });
    assert.match(s, /curtask->seccomp.mode == 2 && curtask->thread_pid->level > 0/);
    assert.doesNotMatch(s, /interval/);
    assert.equal(
      code(() => recorderProgram({ kind: 'cgroups', cgroupIds: [] })),
      'RECORDING_FAILED',
    );
    assert.equal(
      code(() => recorderProgram({ kind: 'cgroups', cgroupIds: [1.5] })),
      'RECORDING_FAILED',
    );
    assert.equal(
      code(() => recorderProgram({ kind: 'cgroups', cgroupIds: [1] }, 0)),
      'USAGE',
    );
  });

  test("bpftrace's JSON map (recorded output) per cgroup", () => {
    const all: CgroupSyscallCounts = new Map();
    assert.equal(parseRecorderLine('{"type": "attached_probes", "data": {"probes": 1}}', all), 'attached');
    assert.equal(parseRecorderLine('not json', all), undefined);
    assert.equal(
      parseRecorderLine(
        '{"type": "map", "data": {"@syscalls": {"2115,59": 1, "2115,0": 4, "1564,0": 9, "x": 1}}}',
        all,
      ),
      'map',
    );
    assert.deepEqual(
      [...countsOf(all, [2115])],
      [
        [59, 1],
        [0, 4],
      ],
    );
    assert.deepEqual([...countsOf(all, [2115, 1564, 2115])].sort(), [
      [0, 13],
      [59, 1],
    ]);
  });
});

describe('profiles', () => {
  const x64 = archOf('x64');

  test('OCI profile: observed names, then the base set not observed; EPERM by default', () => {
    const p = buildSeccompProfile(['write', 'read', 'accept4'], x64);
    assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(p.defaultErrnoRet, 1);
    assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64']);
    assert.deepEqual(p.syscalls?.[0], { names: ['accept4', 'read', 'write'], action: 'SCMP_ACT_ALLOW' });
    const base = p.syscalls?.[1]?.names ?? [];
    assert.ok(base.includes('execve') && !base.includes('read'));
    for (const dangerous of ['unshare', 'mount', 'ptrace', 'setns', 'init_module', 'bpf'])
      assert.ok(!baseSyscalls(x64).includes(dangerous), dangerous);
    assert.equal(buildSeccompProfile(['read'], x64, { includeBase: false }).syscalls?.length, 1);
    assert.ok(!baseSyscalls(archOf('arm64')).includes('arch_prctl'));
  });

  test('SPO SeccompProfile has the v1beta1 shape and a valid name', () => {
    const spo = buildSpoSeccompProfile(buildSeccompProfile(['read'], x64, { includeBase: false }), {
      name: 'web',
      namespace: 'shop',
    });
    assert.deepEqual(spo, {
      apiVersion: 'security-profiles-operator.x-k8s.io/v1beta1',
      kind: 'SeccompProfile',
      metadata: { name: 'web', namespace: 'shop' },
      spec: {
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures: ['SCMP_ARCH_X86_64'],
        syscalls: [{ action: 'SCMP_ACT_ALLOW', names: ['read'] }],
      },
    });
    assert.equal(
      code(() => buildSpoSeccompProfile(buildSeccompProfile([], x64), { name: 'Web_1' })),
      'USAGE',
    );
  });

  test('profile files are checked', () => {
    const good = JSON.stringify(buildSeccompProfile(['read'], x64));
    assert.equal(parseSeccompProfile(good, 'f').defaultAction, 'SCMP_ACT_ERRNO');
    for (const bad of [
      '{',
      '[]',
      '{"defaultAction":"ALLOW"}',
      '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x y"],"action":"SCMP_ACT_ALLOW"}]}',
    ])
      assert.equal(
        code(() => parseSeccompProfile(bad, 'f')),
        'SECCOMP_PROFILE_INVALID',
        bad,
      );
  });
});

describe('record targets', () => {
  test('container:<name> and pod <ns>/<name>', () => {
    assert.deepEqual(parseRecordTarget(['container:web']), { kind: 'container', name: 'web' });
    assert.deepEqual(parseRecordTarget(['pod', 'shop/web-0'], 'app'), {
      kind: 'pod',
      namespace: 'shop',
      name: 'web-0',
      container: 'app',
    });
    for (const bad of [
      [],
      ['web'],
      ['container:'],
      ['pod'],
      ['pod', 'web'],
      ['pod', 'a/b/c'],
      ['pod', 'Shop/x'],
    ])
      assert.equal(
        code(() => parseRecordTarget(bad)),
        'USAGE',
        bad.join(' '),
      );
    assert.equal(
      code(() => parseRecordTarget(['container:web'], 'app')),
      'USAGE',
    );
  });
});
