import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { ErrorCodes } from '../errors.js';
import {
  PodmanFixture,
  eventually,
  httpFromNetns,
  httpReachable,
  pingable,
  reachableFromNetns,
  udpRoundTrip,
} from '../enforcement/podman-fixture.test-helper.js';
import type { TestContainer } from '../enforcement/podman-fixture.test-helper.js';
import { QUARANTINE_TABLE, isQuarantined, quarantine, quarantineState, release } from './netns-quarantine.js';

let fixture: PodmanFixture | string | undefined;
let web: TestContainer;

before(async () => {
  fixture = await PodmanFixture.create();
  if (fixture instanceof PodmanFixture) {
    web = fixture.run('exec httpd -f -p 8080 -h /www');
    assert.ok(await eventually(() => httpReachable(web.ip, 8080)), 'httpd in the container never answered');
  }
});
after(() => {
  if (fixture instanceof PodmanFixture) fixture.cleanup();
});

function running(fx: PodmanFixture, name: string): boolean {
  return (
    execFileSync('podman', ['inspect', '--format', '{{.State.Running}}', name], {
      encoding: 'utf8',
    }).trim() === 'true'
  );
}

function nftInNetns(pid: number, script: string): void {
  execFileSync('nsenter', ['-t', String(pid), '-n', 'nft', '-f', '-'], { input: script });
}

test('quarantine cuts traffic both ways, keeps the container running, and release restores it', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const target = { pid: web.pid, containerId: web.id };
  assert.equal(await httpReachable(web.ip, 8080), true, 'host → container before');
  assert.equal(await reachableFromNetns(web.pid, web.gateway), true, 'container → host before');
  assert.equal(await isQuarantined(target), false);

  const result = await quarantine(target);
  assert.deepEqual(result.warnings, [], 'a default podman container has no CAP_NET_ADMIN');
  assert.equal(await isQuarantined(target), true);
  assert.equal(await httpReachable(web.ip, 8080), false, 'host → container during quarantine');
  assert.equal(await reachableFromNetns(web.pid, web.gateway), false, 'container → host during quarantine');
  assert.equal(running(fx, web.name), true, 'the container keeps running');

  // Applying again is harmless and leaves exactly one table.
  await quarantine(target);
  const tables = execFileSync('nsenter', ['-t', String(web.pid), '-n', 'nft', 'list', 'tables'], {
    encoding: 'utf8',
  });
  assert.equal(tables.split('\n').filter((l) => l.includes(QUARANTINE_TABLE)).length, 1);
  assert.equal(await httpReachable(web.ip, 8080), false);

  await release(target);
  assert.equal(await isQuarantined(target), false);
  assert.equal(await httpReachable(web.ip, 8080), true, 'host → container after release');
  assert.equal(await reachableFromNetns(web.pid, web.gateway), true, 'container → host after release');
  await release(target); // releasing what is not quarantined is fine too
});

test('quarantine cuts TCP, UDP and ICMP both ways across the netns boundary; loopback inside stays usable', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const box = fx.run('exec httpd -f -p 8080 -h /www');
  assert.ok(await eventually(() => httpReachable(box.ip, 8080)), 'httpd in the container never answered');
  const target = { pid: box.pid, containerId: box.id };
  const host = {};
  const inside = { pid: box.pid };
  const page = /containment test page/;
  /** Every path, as [name, works?] pairs so a failure names the path; probed at once (blocked ones wait ~1 s). */
  const probes: [string, () => Promise<boolean>][] = [
    ['tcp host → container', () => httpReachable(box.ip, 8080)],
    ['tcp container → host', () => reachableFromNetns(box.pid, box.gateway)],
    ['udp host → container', () => udpRoundTrip(host, { ...inside, bind: '0.0.0.0', address: box.ip })],
    ['udp container → host', () => udpRoundTrip(inside, { bind: box.gateway, address: box.gateway })],
    ['icmp host → container', () => pingable(undefined, box.ip)],
    ['icmp container → host', () => pingable(box.pid, box.gateway)],
    ['tcp loopback inside', () => httpFromNetns(box.pid, 'http://127.0.0.1:8080/', page)],
    [
      'udp loopback inside',
      () => udpRoundTrip(inside, { ...inside, bind: '127.0.0.1', address: '127.0.0.1' }),
    ],
    ['icmp loopback inside', () => pingable(box.pid, '127.0.0.1')],
  ];
  // A path expected to work gets two more tries (a loaded machine can miss a 1 s timeout); one
  // expected to be cut is probed once, beside the loopback probes that show the box still answers.
  const paths = (works: (name: string) => boolean): Promise<[string, boolean][]> =>
    Promise.all(
      probes.map(async ([name, probe]): Promise<[string, boolean]> => {
        let ok = await probe();
        for (let retry = 0; !ok && works(name) && retry < 2; retry++) ok = await probe();
        return [name, ok];
      }),
    );
  const open = (names: [string, boolean][]) => names.map(([name]) => [name, true]);
  const before = await paths(() => true);
  assert.deepEqual(before, open(before), `every path works before the quarantine: ${JSON.stringify(before)}`);

  await quarantine(target);
  const during = await paths((name) => name.includes('loopback'));
  assert.deepEqual(
    during,
    during.map(([name]) => [name, name.includes('loopback')]),
    'during the quarantine only loopback inside the container works',
  );

  await release(target);
  const after = await paths(() => true);
  assert.deepEqual(after, open(after), 'every path works again after release');
});

test('a quarantine table someone altered is reported and re-applied', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const target = { pid: web.pid, containerId: web.id };
  await quarantine(target);
  nftInNetns(web.pid, `add rule inet ${QUARANTINE_TABLE} input tcp dport 8080 accept\n`);
  assert.equal(await quarantineState(target), 'altered');
  assert.equal(await isQuarantined(target), false);
  await quarantine(target);
  assert.equal(await quarantineState(target), 'active');
  assert.equal(await httpReachable(web.ip, 8080), false);
  await release(target);
  assert.equal(await quarantineState(target), 'none');
});

test('a container on the host network is refused, and the host ruleset is untouched', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const hostNet = fx.run('exec sleep 300', { network: 'host' });
  await assert.rejects(
    quarantine({ pid: hostNet.pid, containerId: hostNet.id }),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, ErrorCodes.ENFORCEMENT_FAILED);
      assert.match(e.message, /host's network namespace/);
      return true;
    },
  );
  assert.doesNotMatch(
    execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }),
    new RegExp(QUARANTINE_TABLE),
  );
});

test('a pid that does not belong to the named container is refused (pid reuse guard)', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const other = fx.run('exec sleep 300');
  await assert.rejects(quarantine({ pid: other.pid, containerId: web.id }), {
    code: ErrorCodes.CONTAINER_NOT_FOUND,
  });
  assert.equal(await quarantineState({ pid: other.pid }), 'none');
  await assert.rejects(quarantine({ pid: 2 ** 30 }), { code: ErrorCodes.CONTAINER_NOT_FOUND });
});
