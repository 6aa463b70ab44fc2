import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { realpathSync } from 'node:fs';
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer, connect } from 'node:net';
import { resolve } from 'node:path';
import type { AddressInfo, Server, Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { containerProcesses, containerSockets, parseProcNet } from './proc-inspect.js';

// Real sockets of this test process, read back through /proc (the cgroup path of containerProcesses).
let tcp4: Server;
let tcp6: Server | undefined;
let udp: UdpSocket;
let client: Socket;

const listen = (server: Server, host: string): Promise<number> =>
  new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(0, host, () => res((server.address() as AddressInfo).port));
  });

let ports: { tcp4: number; tcp6?: number; udp: number };

before(async () => {
  tcp4 = createServer((c) => c.on('error', () => undefined));
  const p4 = await listen(tcp4, '127.0.0.1');
  tcp6 = createServer();
  const p6 = await listen(tcp6, '::1').catch(() => undefined); // IPv6 may be off on the machine
  if (p6 === undefined) tcp6 = undefined;
  udp = createSocket('udp4');
  await new Promise<void>((res) => udp.bind(0, '127.0.0.1', res));
  client = connect(p4, '127.0.0.1');
  await new Promise((res) => client.once('connect', res));
  ports = { tcp4: p4, ...(p6 !== undefined ? { tcp6: p6 } : {}), udp: udp.address().port };
});
after(() => {
  client.destroy();
  tcp4.close();
  tcp6?.close();
  udp.close();
});

test('listening, established and UDP sockets are read with addresses, states and owning pid', async () => {
  const processes = await containerProcesses(process.pid);
  const self = processes.find((p) => p.pid === process.pid);
  assert.ok(self, 'this process is in its own cgroup');
  assert.equal(self.uid, process.getuid?.());
  assert.equal(self.ppid, process.ppid);
  // The test runner passes the file as given (relative); Node makes process.argv[1] absolute.
  assert.ok(
    self.cmdline.some((arg) => resolve(arg) === process.argv[1]),
    `the test file is on the command line: ${self.cmdline.join(' ')}`,
  );
  assert.equal(self.exe, realpathSync(process.execPath));
  const sockets = await containerSockets(process.pid, processes);
  const find = (pred: (s: (typeof sockets)[number]) => boolean): (typeof sockets)[number] | undefined =>
    sockets.find(pred);

  const listener = find((s) => s.protocol === 'tcp' && s.state === 'LISTEN' && s.localPort === ports.tcp4);
  assert.equal(listener?.localAddress, '127.0.0.1');
  assert.ok(listener.pids.includes(process.pid));
  assert.ok(self.socketInodes.includes(listener.inode));

  const outgoing = find((s) => s.state === 'ESTABLISHED' && s.localPort === client.localPort);
  assert.equal(outgoing?.remotePort, ports.tcp4);
  assert.equal(outgoing.remoteAddress, '127.0.0.1');
  assert.ok(
    find((s) => s.state === 'ESTABLISHED' && s.localPort === ports.tcp4 && s.remotePort === client.localPort),
  );

  const u = find((s) => s.protocol === 'udp' && s.localPort === ports.udp);
  assert.equal(u?.state, 'UNCONNECTED');
  assert.equal(u.localAddress, '127.0.0.1');

  if (ports.tcp6 !== undefined) {
    const l6 = find((s) => s.protocol === 'tcp6' && s.localPort === ports.tcp6);
    assert.equal(l6?.localAddress, '::1');
    assert.equal(l6.state, 'LISTEN');
  }
});

test('malformed /proc/net lines are skipped, not guessed', () => {
  const header =
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
  const good =
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0';
  const text = [
    header,
    good,
    '   1: garbage',
    '   2: 0100007G:1F90 00000000:0000 0A 0 0 0 0 0 4243',
    '',
  ].join('\n');
  const parsed = parseProcNet(text, 'tcp');
  assert.equal(parsed.length, 1);
  assert.equal(parsed[0]?.inode, 4242);
});
