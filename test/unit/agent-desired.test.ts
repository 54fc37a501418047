// cattle-net's desired state, decided as rancher/vxlan decides it: networks by
// metadata.cniConfig, peers by agent_ip, remote containers by network, host
// and state; bad records skipped and reported, never fatal.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { desiredState, type Environment, isIpv4, servedNetworks, vtepMac } from '../../agent/desired.ts';

const NET = { uuid: 'net-1', name: 'managed', metadata: { cniConfig: { '10-rancher.conf': { type: 'rancher-bridge' } } } };
const HOSTS = [
  { uuid: 'h-a', name: 'a', agent_ip: '192.168.100.11' },
  { uuid: 'h-b', name: 'b', agent_ip: '192.168.100.12' },
  { uuid: 'h-c', name: 'c', agent_ip: '192.168.100.13' },
];

function container(over: Record<string, unknown>): Record<string, unknown> {
  return { uuid: `c-${String(over.primary_ip)}`, name: 'x', host_uuid: 'h-b', network_uuid: 'net-1', primary_ip: '10.42.2.10', state: 'running', network_from_container_uuid: '', ...over };
}

function env(containers: Record<string, unknown>[], over: Partial<Environment> = {}): Environment {
  return { self: { host: HOSTS[0]! }, hosts: HOSTS, networks: [NET], containers, ...over };
}

test('VTEP MAC is 0e:00 and the agent IP octets', () => {
  assert.equal(vtepMac('192.168.100.11'), '0e:00:c0:a8:64:0b');
  assert.equal(vtepMac('10.0.0.1'), '0e:00:0a:00:00:01');
  assert.throws(() => vtepMac(''), /not an IPv4/);
  assert.throws(() => vtepMac('fd00::1'), /not an IPv4/);
  fc.assert(fc.property(fc.ipV4(), (ip) => {
    const mac = vtepMac(ip);
    assert.match(mac, /^0e:00(:[0-9a-f]{2}){4}$/);
    assert.equal(mac.split(':').slice(2).map((h) => parseInt(h, 16)).join('.'), ip);
  }));
});

test('IPv4 check: dotted quads only', () => {
  for (const ok of ['1.2.3.4', '255.255.255.255', '0.0.0.0']) assert.ok(isIpv4(ok), ok);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', ' 1.2.3.4', '1.2.3.4/24', 'fd00::1', 5, null]) assert.ok(!isIpv4(bad), String(bad));
});

test('networks: those whose metadata.cniConfig is an object, whatever their name or kind', () => {
  const nets = servedNetworks([
    NET,
    { uuid: 'n2', metadata: { cniConfig: {} } },
    { uuid: 'n3', metadata: { cniConfig: 'string' } },
    { uuid: 'n4', metadata: { cniConfig: [] } },
    { uuid: 'n5', metadata: { cniConfig: null } },
    { uuid: 'n6', metadata: {} },
    { uuid: 'n7' },
    { uuid: '', metadata: { cniConfig: {} } },
  ]);
  assert.deepEqual([...nets].sort(), ['n2', 'net-1']);
});

test('peers: every host but self, by agent_ip, with its VTEP MAC', () => {
  const d = desiredState(env([]));
  assert.equal(d.selfIp, '192.168.100.11');
  assert.equal(d.vtepMac, '0e:00:c0:a8:64:0b');
  assert.deepEqual([...d.peers], [['192.168.100.12', '0e:00:c0:a8:64:0c'], ['192.168.100.13', '0e:00:c0:a8:64:0d']]);
  assert.deepEqual(d.problems, []);
});

test('remote containers: network, primary_ip, host, state, network_from_container_uuid as rancher/vxlan', () => {
  const d = desiredState(env([
    container({ primary_ip: '10.42.2.10' }),
    container({ primary_ip: '10.42.3.10', host_uuid: 'h-c', state: 'starting' }),
    container({ primary_ip: '10.42.2.11', state: 'stopping' }),
    container({ primary_ip: '10.42.2.12', state: 'stopped' }), // not live
    container({ primary_ip: '10.42.2.13', state: 'created' }),
    container({ primary_ip: '10.42.1.10', host_uuid: 'h-a' }), // on self
    container({ primary_ip: '10.42.2.14', host_uuid: 'h-gone' }), // host not in /hosts
    container({ primary_ip: '10.42.2.15', network_uuid: 'other' }), // not a served network
    container({ primary_ip: '10.42.2.16', network_from_container_uuid: 'c-0' }), // shares a netns
    container({ primary_ip: '' }),
    container({ primary_ip: undefined }),
    container({ primary_ip: '192.168.100.12' }), // its host's agent IP (host network)
  ]));
  assert.deepEqual([...d.neighbours].sort(), [
    ['10.42.2.10', '0e:00:c0:a8:64:0c'],
    ['10.42.2.11', '0e:00:c0:a8:64:0c'],
    ['10.42.3.10', '0e:00:c0:a8:64:0d'],
  ]);
  assert.deepEqual(d.problems, []);
});

test('invalid agent_ip and primary_ip are skipped and reported, never fatal', () => {
  const hosts = [...HOSTS, { uuid: 'h-d', name: 'd', agent_ip: '' }, { uuid: 'h-e', name: 'e', agent_ip: 'fd00::5' }, { uuid: 'h-f', name: 'f' }];
  const d = desiredState(env([
    container({ primary_ip: '10.42.4.10', host_uuid: 'h-d' }),
    container({ primary_ip: 'garbage', name: 'bad' }),
    container({ primary_ip: '10.42.2.20' }),
  ], { hosts }));
  assert.deepEqual([...d.peers.keys()].sort(), ['192.168.100.12', '192.168.100.13']);
  assert.deepEqual([...d.neighbours.keys()], ['10.42.2.20']);
  assert.equal(d.problems.length, 4, d.problems.join('\n'));
  assert.match(d.problems.join('\n'), /host "d" \(h-d\): agent_ip is empty/);
  assert.match(d.problems.join('\n'), /host "e" \(h-e\): agent_ip is not an IPv4 address: "fd00::5"/);
  assert.match(d.problems.join('\n'), /host "f" \(h-f\): agent_ip is empty/);
  assert.match(d.problems.join('\n'), /container "bad".*primary_ip is not an IPv4 address: "garbage"/);
});

test('self without a valid agent_ip: an error (nothing to program), not a crash', () => {
  assert.throws(() => desiredState(env([], { self: { host: { uuid: 'h-a', agent_ip: '' } } })), /this host's agent_ip is empty/);
  assert.throws(() => desiredState(env([], { self: { host: { uuid: 'h-a', agent_ip: 'x' } } })), /not an IPv4 address/);
});

test('self is also recognised by agent_ip (a record without uuid)', () => {
  const d = desiredState(env([], { self: { host: { agent_ip: '192.168.100.11' } } }));
  assert.deepEqual([...d.peers.keys()].sort(), ['192.168.100.12', '192.168.100.13']);
});

test('an IP claimed on two hosts keeps the first and reports it', () => {
  const d = desiredState(env([container({ primary_ip: '10.42.9.9', name: 'one' }), container({ primary_ip: '10.42.9.9', host_uuid: 'h-c', name: 'two' })]));
  assert.deepEqual([...d.neighbours], [['10.42.9.9', '0e:00:c0:a8:64:0c']]);
  assert.match(d.problems.join('\n'), /container "two".*also on another host/);
});

test('property: neighbours only point at peers, never at self; garbage never throws', () => {
  const anyValue = fc.oneof(fc.string(), fc.ipV4(), fc.constant(undefined), fc.constant(null), fc.integer());
  const host = fc.record({ uuid: fc.constantFrom('h-a', 'h-b', 'h-c', 'h-x', ''), agent_ip: fc.oneof(fc.constantFrom('192.168.100.11', '192.168.100.12', '192.168.100.13'), anyValue) });
  const cont = fc.record({
    host_uuid: fc.constantFrom('h-a', 'h-b', 'h-c', 'h-x', ''),
    network_uuid: fc.constantFrom('net-1', 'other', ''),
    primary_ip: fc.oneof(fc.ipV4(), anyValue),
    state: fc.constantFrom('running', 'starting', 'stopping', 'stopped', 'removed', ''),
    network_from_container_uuid: fc.constantFrom('', 'c-1'),
  });
  fc.assert(fc.property(fc.array(host, { maxLength: 8 }), fc.array(cont, { maxLength: 30 }), (hosts, containers) => {
    const d = desiredState({ self: { host: { uuid: 'h-a', agent_ip: '192.168.100.11' } }, hosts, networks: [NET], containers });
    const peerMacs = new Set(d.peers.values());
    assert.ok(!d.peers.has(d.selfIp));
    for (const [ip, mac] of d.neighbours) {
      assert.ok(isIpv4(ip));
      assert.ok(peerMacs.has(mac), `${ip} → ${mac} is not a peer's VTEP`);
      assert.notEqual(mac, d.vtepMac);
    }
  }));
});
