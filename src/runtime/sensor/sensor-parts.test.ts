/**
 * The sensor's pure parts: the native engine's JSON lines recorded on this host, preflight
 * decisions, cgroup paths of Podman/Kubernetes/host processes, /proc TCP tables.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SensorDecoder, lineSplitter } from './decode.js';
import { parseContainerCgroupPath } from './cgroups.js';
import { preflight } from './preflight.js';
import type { PreflightProbe } from './preflight.js';
import { parseTcpTable } from './proc-poller.js';

const ID = '973b1710211ef5fde0a0515149a75ea78e644d44ede48c4f34bc2140a00ebdb1';

// Recorded from `containment-sensor 0` while `podman exec` ran `sh -c …`, cat and nc; the last
// four lines are not from it (a short exec, garbage, an unknown kind, an unknown control line).
const RECORDED = [
  '{"type":"attached_probes","data":{"probes":18,"missing":["tracepoint:syscalls:sys_enter_finit_module","tracepoint:syscalls:sys_enter_init_module"]}}',
  '["exec",1036,1036,1025,0,462,"sh",0,8630,4480,1279971855918,"/bin/sh",["sh","-c","echo \\"a\\\\\\"b\\" > /dev/null"],0,"/bin/busybox",0,0]',
  '["exec",1041,1041,1036,0,462,"exe",0,8630,4480,1279973414672,"/proc/self/exe",["cat","/etc/shadow"],0,"/bin/busybox",0,0]',
  '["open",1041,0,462,"cat","/etc/shadow",0]',
  '["exit",1041,462,"cat"]',
  '["bind",1042,0,462,"nc","::",8080]',
  '["listen",1042,0,462,"nc","::",8080]',
  '["connect",1045,0,462,"nc","127.0.0.1",8080]',
  '["accept",1042,0,462,"nc","",0]',
  '{"type":"lost_events","data":{"events":7}}',
  '["exec","x"]',
  'not json at all',
  '["mystery",1,2,3,"x"]',
  '{"type":"map","data":{}}',
];

describe('SensorDecoder', () => {
  test('decodes every event kind, one line each, and counts what it does not understand', () => {
    const dec = new SensorDecoder(() => 1000);
    const events = RECORDED.map((l) => dec.decode(l)).filter((e) => e !== undefined);
    assert.equal(dec.attachedProbes, 18);
    assert.deepEqual(dec.missingProbes, [
      'tracepoint:syscalls:sys_enter_finit_module',
      'tracepoint:syscalls:sys_enter_init_module',
    ]);
    assert.deepEqual(events[0], {
      kind: 'exec',
      pid: 1036,
      uid: 0,
      cgroupId: 462,
      comm: 'sh',
      time: 1000,
      source: 'ebpf',
      ppid: 1025,
      euid: 0,
      stdinSocket: false,
      stdoutSocket: false,
      monotonicNs: 1279971855918,
      path: '/bin/sh',
      argv: ['sh', '-c', 'echo "a\\"b" > /dev/null'],
      argvTruncated: false,
      exe: '/bin/busybox',
      upperLayer: false,
      exeDeleted: false,
    });
    assert.deepEqual(
      events.map((e) => e.kind),
      ['exec', 'exec', 'open', 'exit', 'bind', 'listen', 'connect', 'accept'],
    );
    assert.equal(events[1]?.path, '/proc/self/exe');
    assert.equal(events[2]?.file, '/etc/shadow');
    assert.deepEqual([events[6]?.address, events[6]?.port], ['127.0.0.1', 8080]);
    assert.deepEqual([events[7]?.address, events[7]?.port], ['', 0]);
    assert.deepEqual(dec.counters, { lostEvents: 7, parseFailures: 4, events: 8 });
  });
  test('an exec record carries the socket modes, the cut argv and the executable facts', () => {
    const dec = new SensorDecoder();
    const e = dec.decode(
      `["exec",5,5,1,1000,9,"x",0,${0o140777},${0o140777},1,"/dev/fd/3",["a0","a1","a2","a3","a4","a5"],1,"/memfd:x",1,1]`,
    );
    assert.equal(e?.stdinSocket, true);
    assert.equal(e?.stdoutSocket, true);
    assert.equal(e?.argv?.length, 6);
    assert.equal(e?.argvTruncated, true);
    assert.equal(e?.exeName, 'memfd:x');
    assert.deepEqual([e?.upperLayer, e?.exeDeleted], [true, true]);
  });
  test('an exec whose executable path the kernel could not give whole leaves it to /proc', () => {
    const e = new SensorDecoder().decode('["exec",5,5,1,0,9,"x",0,0,0,1,"/a",["a"],0,"",1,0]');
    assert.equal(e?.path, '/a');
    assert.deepEqual([e?.exe, e?.upperLayer, e?.exeDeleted], [undefined, undefined, undefined]);
  });
  test('setid, ptrace and module name their syscall and fields', () => {
    const dec = new SensorDecoder();
    assert.equal(dec.decode('["setid",7,1000,9,"su","setuid",0]')?.syscall, 'setuid');
    const p = dec.decode('["ptrace",7,0,9,"gdb",42,16]');
    assert.deepEqual([p?.targetPid, p?.request], [42, 16]);
    assert.equal(dec.decode('["module",7,0,9,"insmod","finit_module"]')?.syscall, 'finit_module');
  });
});

describe('lineSplitter', () => {
  test('lines cut anywhere by the pipe, even inside a UTF-8 character, come out whole', () => {
    const text = '{"a":"é€"}\n{"b":1}\n\n{"c":"𝄞"}\nlast';
    const bytes = Buffer.from(text, 'utf8');
    for (let cut = 1; cut < bytes.length; cut++) {
      const got: string[] = [];
      const split = lineSplitter((l) => got.push(l));
      split.push(bytes.subarray(0, cut));
      split.push(bytes.subarray(cut));
      split.end();
      assert.deepEqual(got, ['{"a":"é€"}', '{"b":1}', '', '{"c":"𝄞"}', 'last'], `cut at ${cut}`);
    }
  });
  test('many chunks without a newline make one line', () => {
    const got: string[] = [];
    const split = lineSplitter((l) => got.push(l));
    assert.deepEqual(
      ['ab', 'cd', 'ef\ng', 'h\ni\nj'].map((c) => split.push(Buffer.from(c))),
      [0, 0, 1, 2],
      'whole lines per chunk',
    );
    assert.deepEqual(got, ['abcdef', 'gh', 'i']);
    split.end();
    split.end();
    assert.deepEqual(got, ['abcdef', 'gh', 'i', 'j']);
  });
});

describe('preflight', () => {
  const probe = (over: Partial<PreflightProbe>): PreflightProbe => ({
    isRoot: () => true,
    bpftraceVersion: () => 'bpftrace v0.17.0',
    executable: () => true,
    hasBtf: () => true,
    ensureTracefs: () => true,
    pidLevel: () => 0,
    ...over,
  });
  test('eBPF when everything is there', () => {
    assert.deepEqual(preflight({}, probe({})), { mode: 'ebpf', reasons: [], hostPidLevel: 0 });
    assert.deepEqual(preflight({ needs: 'bpftrace' }, probe({})), {
      mode: 'ebpf',
      reasons: [],
      bpftraceVersion: 'bpftrace v0.17.0',
      hostPidLevel: 0,
    });
  });
  test('degraded, with every reason said', () => {
    const pf = preflight(
      { sensor: '/nowhere/containment-sensor' },
      probe({ isRoot: () => false, executable: () => false, hasBtf: () => false }),
    );
    assert.equal(pf.mode, 'procfs');
    assert.equal(pf.reasons.length, 3);
    assert.match(
      pf.reasons.join(';'),
      /not root.*native eBPF sensor is not built \(\/nowhere\/containment-sensor; `npm run build:sensor`.*no BTF/,
    );
    assert.equal(preflight({}, probe({ ensureTracefs: () => false })).mode, 'procfs');
    const recorder = preflight({ needs: 'bpftrace' }, probe({ bpftraceVersion: () => undefined }));
    assert.match(recorder.reasons.join(';'), /bpftrace is not installed/);
  });
});

describe('cgroup paths to containers', () => {
  const cases: [string, string | undefined][] = [
    [`/libpod_parent/libpod-${ID}`, ID],
    [`/machine.slice/libpod-${ID}.scope`, ID],
    [`/machine.slice/libpod-${ID}.scope/container`, ID],
    [`/docker/${ID}`, ID],
    [`/system.slice/docker-${ID}.scope`, ID],
    [`/kubepods/besteffort/pod1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9/${ID}`, ID],
    [`/machine.slice/libpod-conmon-${ID}.scope`, undefined],
    ['/user.slice/user-0.slice/session-1.scope', undefined],
    ['/', undefined],
  ];
  for (const [path, id] of cases)
    test(`${path.slice(0, 50)} → ${id ? 'container' : 'none'}`, () => {
      assert.equal(parseContainerCgroupPath(path)?.containerId, id);
    });
  test('a pod container keeps its pod uid and the container cgroup', () => {
    const ref = parseContainerCgroupPath(
      `/kubepods/burstable/pod1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9/${ID}/sub`,
    );
    assert.equal(ref?.podUid, '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9');
    assert.equal(ref?.cgroupPath, `/kubepods/burstable/pod1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9/${ID}`);
  });
});

test('/proc/net/tcp{,6} rows', () => {
  const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0D05 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:9C40 0100007F:0D05 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1`;
  const rows = parseTcpTable(tcp, 4);
  assert.deepEqual(rows[0], {
    localAddress: '127.0.0.1',
    localPort: 3333,
    remoteAddress: '0.0.0.0',
    remotePort: 0,
    state: 10,
  });
  assert.deepEqual([rows[1]?.remoteAddress, rows[1]?.remotePort, rows[1]?.state], ['127.0.0.1', 3333, 1]);
  const tcp6 = `  sl  local_address                         remote_address
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0`;
  assert.deepEqual(parseTcpTable(tcp6, 6)[0]?.localAddress, '::');
});
