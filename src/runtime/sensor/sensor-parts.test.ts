/**
 * The sensor's pure parts: bpftrace JSON lines recorded on this host, probe selection per kernel,
 * preflight decisions, cgroup paths of Podman/Kubernetes/host processes, /proc TCP tables.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { BpftraceDecoder, lineSplitter } from './decode.js';
import { parseContainerCgroupPath } from './cgroups.js';
import { preflight } from './preflight.js';
import type { PreflightProbe } from './preflight.js';
import { PROBES_FILE, selectProbes } from './program.js';
import { parseTcpTable } from './proc-poller.js';

const ID = '973b1710211ef5fde0a0515149a75ea78e644d44ede48c4f34bc2140a00ebdb1';

// Recorded from `bpftrace -f json probes.bt 0` while `podman exec` ran `sh -c …` and nc.
const RECORDED = [
  '{"type": "attached_probes", "data": {"probes": 19}}',
  '{"type": "value", "data": ["arg",12659,0,"sh"]}',
  '{"type": "value", "data": ["arg",12659,1,"-c"]}',
  '{"type": "value", "data": ["arg",12659,2,"echo \\"a\\\\\\"b\\" > /dev/null"]}',
  '{"type": "value", "data": ["argv",12659,3,0]}',
  '{"type": "value", "data": ["execpath",12659,"/bin/sh"]}',
  '{"type": "value", "data": ["exefile",12659,"busybox"]}',
  '{"type": "value", "data": ["exec",12659,12659,12648,0,120,"sh",0,8630,4480]}',
  '{"type": "value", "data": ["open",12671,0,120,"cat","/etc/shadow",0]}',
  '{"type": "value", "data": ["listen",12672,0,120,"nc","::",8080]}',
  '{"type": "value", "data": ["connect",12684,0,120,"nc","127.0.0.1",8080]}',
  '{"type": "value", "data": ["exit",12672,120,"nc"]}',
  '{"type": "lost_events", "data": {"events": 7}}',
  'not json at all',
  '{"type": "value", "data": ["exec","x"]}',
  '{"type": "map", "data": {"@peer": {}}}',
];

describe('BpftraceDecoder', () => {
  test('joins an exec from its fragments and decodes every event kind', () => {
    const dec = new BpftraceDecoder(() => 1000);
    const events = RECORDED.map((l) => dec.decode(l)).filter((e) => e !== undefined);
    assert.equal(dec.attachedProbes, 19);
    assert.deepEqual(events[0], {
      kind: 'exec',
      pid: 12659,
      uid: 0,
      cgroupId: 120,
      comm: 'sh',
      time: 1000,
      source: 'ebpf',
      ppid: 12648,
      euid: 0,
      stdinSocket: false,
      stdoutSocket: false,
      argv: ['sh', '-c', 'echo "a\\"b" > /dev/null'],
      argvTruncated: false,
      path: '/bin/sh',
      exeName: 'busybox',
    });
    assert.deepEqual(
      events.map((e) => e.kind),
      ['exec', 'open', 'listen', 'connect', 'exit'],
    );
    assert.equal(events[1]?.file, '/etc/shadow');
    assert.deepEqual([events[3]?.address, events[3]?.port], ['127.0.0.1', 8080]);
    assert.deepEqual(dec.counters, { lostEvents: 7, parseFailures: 2, events: 5 });
  });
  test('a socket on stdin is seen from the inode mode; a failed execve leaves nothing behind', () => {
    const dec = new BpftraceDecoder();
    dec.decode('{"type": "value", "data": ["arg",5,0,"ghost"]}');
    dec.decode('{"type": "value", "data": ["argv",5,1,0]}');
    // The same task's next execve starts over.
    dec.decode('{"type": "value", "data": ["arg",5,0,"sh"]}');
    dec.decode('{"type": "value", "data": ["argv",5,1,0]}');
    const e = dec.decode(`{"type": "value", "data": ["exec",5,5,1,0,9,"sh",0,${0o140777},${0o140777}]}`);
    assert.deepEqual(e?.argv, ['sh']);
    assert.equal(e?.stdinSocket, true);
    assert.equal(e?.stdoutSocket, true);
  });
});

describe('the lines of the shipped program', () => {
  // Recorded from probes.bt as it is: no `argv` line when the args read were the whole argv, no
  // `exefile` line for a file that is not a memfd.
  test('an exec without its count line has the args it sent, and no file name', () => {
    const dec = new BpftraceDecoder(() => 1);
    const events = [
      '{"type": "value", "data": ["arg",1192,0,"sleep"]}',
      '{"type": "value", "data": ["arg",1192,1,"4"]}',
      '{"type": "value", "data": ["execpath",1192,"/proc/self/exe"]}',
      '{"type": "value", "data": ["exec",1192,1192,1182,0,405,"exe",0,8630,4480,1249245271797]}',
    ].map((l) => dec.decode(l));
    const exec = events[3];
    assert.deepEqual(exec?.argv, ['sleep', '4']);
    assert.equal(exec?.argvTruncated, false);
    assert.equal(exec?.path, '/proc/self/exe');
    assert.equal(exec?.exeName, undefined);
    assert.equal(exec?.monotonicNs, 1249245271797);
  });
  test('an argv longer than the slots read is cut and says so', () => {
    const dec = new BpftraceDecoder();
    for (let i = 0; i < 6; i++) dec.decode(`{"type": "value", "data": ["arg",7,${i},"a${i}"]}`);
    dec.decode('{"type": "value", "data": ["argv",7,6,1]}');
    const e = dec.decode('{"type": "value", "data": ["exec",7,7,1,0,9,"x",0,0,0,1]}');
    assert.equal(e?.argv?.length, 6);
    assert.equal(e?.argvTruncated, true);
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

describe('probe selection', () => {
  test('the shipped program keeps every block this kernel supports and names the rest', () => {
    const source = readFileSync(PROBES_FILE, 'utf8');
    const all = selectProbes(source, () => true);
    assert.deepEqual(all.missing, []);
    const none = selectProbes(source, (p) => !p.includes('module'));
    assert.deepEqual(none.missing, [
      'tracepoint:syscalls:sys_enter_finit_module',
      'tracepoint:syscalls:sys_enter_init_module',
    ]);
    assert.ok(!none.text.includes('finit_module'));
    assert.ok(none.text.includes('sched_process_exec'));
  });
});

describe('preflight', () => {
  const probe = (over: Partial<PreflightProbe>): PreflightProbe => ({
    isRoot: () => true,
    bpftraceVersion: () => 'bpftrace v0.17.0',
    hasBtf: () => true,
    ensureTracefs: () => true,
    pidLevel: () => 0,
    ...over,
  });
  test('eBPF when everything is there', () => {
    assert.deepEqual(preflight({}, probe({})), {
      mode: 'ebpf',
      reasons: [],
      bpftraceVersion: 'bpftrace v0.17.0',
      hostPidLevel: 0,
    });
  });
  test('degraded, with every reason said', () => {
    const pf = preflight(
      {},
      probe({ isRoot: () => false, bpftraceVersion: () => undefined, hasBtf: () => false }),
    );
    assert.equal(pf.mode, 'procfs');
    assert.equal(pf.reasons.length, 3);
    assert.match(pf.reasons.join(';'), /not root.*bpftrace is not installed.*no BTF/);
    assert.equal(preflight({}, probe({ ensureTracefs: () => false })).mode, 'procfs');
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
