// The decoders against replies captured from a real kernel
// (scripts/capture-netlink-fixtures.ts → test/fixtures/netlink/*.json): every
// captured reply is decoded and compared with what iproute2 (`ip -j`,
// `bridge -j`) reported for the same objects at capture time.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { decodeMessage } from '../../lib/netlink/attrs.ts';
import * as m from '../../lib/netlink/rtnl.ts';
import { type BridgePortValues, type BridgeValues, LINK, type VxlanValues } from '../../lib/netlink/tables.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Fixture {
  notes: string[];
  replies: { type: number; payload: string }[];
  iproute2: { command: string; output: Json[] }[];
}

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'netlink');

function load(name: string): { payloads: Buffer[]; ip: Json[][]; notes: string[] } {
  const f = JSON.parse(fs.readFileSync(path.join(DIR, `${name}.json`), 'utf8')) as Fixture;
  return { payloads: f.replies.map((r) => Buffer.from(r.payload, 'hex')), ip: f.iproute2.map((c) => c.output), notes: f.notes };
}

// All fixtures come from one netns: names to ifindex from the link dump.
const links = load('links');
const INDEX = new Map<string, number>(links.ip[0]!.map((l) => [l.ifname as string, l.ifindex as number]));
const idx = (name: string | undefined) => (name === undefined ? undefined : INDEX.get(name) ?? assert.fail(`no link ${name}`));

const IFF: Record<string, number> = {
  UP: m.IFF_UP, BROADCAST: m.IFF_BROADCAST, LOOPBACK: m.IFF_LOOPBACK, POINTOPOINT: m.IFF_POINTOPOINT, NOARP: m.IFF_NOARP,
  PROMISC: m.IFF_PROMISC, ALLMULTI: m.IFF_ALLMULTI, MULTICAST: m.IFF_MULTICAST, LOWER_UP: m.IFF_LOWER_UP, DORMANT: m.IFF_DORMANT,
};

function flagNames(flags: number): string[] {
  assert.equal(flags & ~m.IFF_RUNNING & ~Object.values(IFF).reduce((a, b) => a | b), 0, 'flag bits without a name');
  return Object.entries(IFF).filter(([, bit]) => flags & bit).map(([n]) => n).sort();
}

test('links: every captured RTM_NEWLINK decodes to what `ip -j -d link show` printed', () => {
  const ip = links.ip[0]!;
  assert.equal(links.payloads.length, ip.length);
  const kinds = new Set<string>();
  links.payloads.forEach((p, i) => {
    const want = ip[i]!;
    const l = m.decodeLink(p);
    const info = want.linkinfo as Json | undefined;
    const slave = info?.info_slave_data as Json | undefined;
    const expected: m.Link = { index: want.ifindex, flags: l.flags, name: want.ifname, mtu: want.mtu, operState: want.operstate.toLowerCase() };
    if (want.address?.length === 17) expected.mac = want.address;
    if (want.master) expected.master = idx(want.master);
    if (want.link) expected.parentIndex = idx(want.link);
    if (want.ifalias) expected.alias = want.ifalias;
    if (info?.info_kind) expected.kind = info.info_kind;
    if (info?.info_slave_kind) expected.slaveKind = info.info_slave_kind;
    if (info?.info_kind === 'bridge') expected.vlanFiltering = info.info_data.vlan_filtering === 1;
    if (slave) Object.assign(expected, { hairpin: slave.hairpin, learning: slave.learning, unicastFlood: slave.flood, isolated: slave.isolated });
    if (info?.info_kind === 'vxlan') {
      const d = info.info_data as Json;
      expected.vxlan = {
        vni: d.id, port: d.port, learning: d.learning, proxy: d.proxy, local: d.local, underlay: idx(d.link),
        ttl: d.ttl, ageing: d.ageing, l2miss: d.l2miss ?? false, l3miss: d.l3miss ?? false,
      };
    }
    assert.deepEqual(l, expected, want.ifname);
    assert.deepEqual(flagNames(l.flags), (want.flags as string[]).filter((f) => f !== 'NO-CARRIER' && f !== 'M-DOWN').sort(), want.ifname);
    if (info?.info_kind) kinds.add(info.info_kind);
  });
  assert.deepEqual([...kinds].sort(), ['bridge', 'veth', 'vxlan'], 'the capture has a bridge, veths and a VXLAN device');
});

test('links: the table values behind the public shape (IFLA_*, IFLA_BR_*, IFLA_VXLAN_*, IFLA_BRPORT_*)', () => {
  links.payloads.forEach((p, i) => {
    const want = links.ip[0]![i]!;
    const { header, attrs: a } = decodeMessage(LINK, p, 'RTM_NEWLINK');
    assert.equal(header.family, m.AF_UNSPEC);
    assert.equal(a.txqlen, want.txqlen);
    assert.equal(a.promiscuity, want.promiscuity);
    assert.equal(a.minMtu, want.min_mtu);
    assert.equal(a.maxMtu, want.max_mtu);
    assert.equal(a.group, want.group === 'default' ? 0 : Number(want.group));
    assert.equal(a.linkmode, want.linkmode === 'DEFAULT' ? 0 : 1);
    assert.equal(a.broadcast, want.broadcast);
    const info = want.linkinfo as Json | undefined;
    if (info?.info_kind === 'bridge') {
      const d = a.linkinfo!.data as BridgeValues;
      const w = info.info_data as Json;
      assert.deepEqual([d.forwardDelay, d.ageingTime, d.stpState, d.priority], [w.forward_delay, w.ageing_time, w.stp_state, w.priority]);
    }
    if (info?.info_kind === 'vxlan') {
      const d = a.linkinfo!.data as VxlanValues;
      const w = info.info_data as Json;
      assert.deepEqual([d.udpCsum, d.udpZeroCsum6Tx, d.udpZeroCsum6Rx, d.tos ?? 0, d.gbp ?? false], [w.udp_csum, w.udp_zero_csum6_tx, w.udp_zero_csum6_rx, 0, false]);
    }
    const slave = info?.info_slave_data as Json | undefined;
    if (slave) {
      const s = a.linkinfo!.slaveData as BridgePortValues;
      assert.deepEqual(
        [s.priority, s.cost, s.guard, s.protect, s.fastLeave, s.mcastFlood, s.bcastFlood, s.neighSuppress],
        [slave.priority, slave.cost, slave.guard, slave.root_block, slave.fastleave, slave.mcast_flood, slave.bcast_flood, slave.neigh_suppress],
      );
    }
  });
});

const BR_STATES = ['disabled', 'listening', 'learning', 'forwarding', 'blocking'];

test('bridge ports: AF_BRIDGE dump (IFLA_PROTINFO) matches `bridge -j -d link show`', () => {
  const f = load('bridge-ports');
  const [ports, vlans] = f.ip as [Json[], Json[]];
  const decoded = f.payloads.map((p) => ({ link: m.decodeLink(p), raw: decodeMessage(LINK, p, 'RTM_NEWLINK') }));
  for (const want of ports) {
    const got = decoded.find((d) => d.link.index === want.ifindex) ?? assert.fail(`port ${want.ifname} not in the dump`);
    assert.equal(got.raw.header.family, m.AF_BRIDGE);
    const { link } = got;
    assert.deepEqual(
      { name: link.name, master: link.master, mtu: link.mtu, hairpin: link.hairpin, learning: link.learning, unicastFlood: link.unicastFlood, isolated: link.isolated },
      { name: want.ifname, master: idx(want.master), mtu: want.mtu, hairpin: want.hairpin, learning: want.learning, unicastFlood: want.flood, isolated: want.isolated },
    );
    const p = got.raw.attrs.protinfo!;
    assert.equal(BR_STATES[p.state!], want.state);
    assert.deepEqual([p.priority, p.cost, p.mcastFlood, p.bcastFlood], [want.priority, want.cost, want.mcast_flood, want.bcast_flood]);
  }
  assert.ok(ports.some((p) => p.hairpin === true && p.isolated === true), 'the capture has a hairpin, isolated port');
  if (vlans.length === 0) {
    // This kernel had no VLAN filtering (see the fixture notes): no IFLA_AF_SPEC sent.
    assert.ok(f.notes.some((n) => /VLAN filtering/.test(n)));
    for (const d of decoded) assert.equal(d.link.vlans, undefined);
  } else {
    for (const want of vlans) {
      const got = decoded.find((d) => d.link.name === want.ifname)!.link;
      assert.deepEqual(got.vlans!.map((v) => v.vid), (want.vlans as Json[]).map((v) => v.vlan));
    }
  }
});

test('IFLA_AF_SPEC bridge VLAN info (hand-made bytes: the capture kernel had no VLAN filtering)', () => {
  const payload = Buffer.from([
    '07 00 0000 05000000 43100100 00000000', // ifinfomsg AF_BRIDGE, index 5
    '0a00 0300 7665746830 00 0000', // IFLA_IFNAME "veth0"
    '1c00 1a80', // IFLA_AF_SPEC, 28 bytes
    '0600 0000 0000 0000', // IFLA_BRIDGE_FLAGS 0
    '0800 0200 0000 0100', // IFLA_BRIDGE_VLAN_INFO vid 1
    '0800 0200 0600 2a00', // IFLA_BRIDGE_VLAN_INFO vid 42 PVID|UNTAGGED
  ].join('').replace(/\s+/g, ''), 'hex');
  const l = m.decodeLink(payload);
  assert.deepEqual(l.vlans, [{ flags: 0, vid: 1 }, { flags: m.BRIDGE_VLAN_INFO_PVID | m.BRIDGE_VLAN_INFO_UNTAGGED, vid: 42 }]);
  assert.equal(l.name, 'veth0');
});

const SCOPES: Record<string, number> = { global: m.RT_SCOPE_UNIVERSE, site: m.RT_SCOPE_SITE, link: m.RT_SCOPE_LINK, host: m.RT_SCOPE_HOST };

test('addresses: the AF_UNSPEC dump matches `ip -j addr show`', () => {
  const f = load('addresses');
  const want = f.ip[0]!.flatMap((l) => (l.addr_info as Json[]).map((a) => ({
    index: l.ifindex, family: a.family === 'inet' ? 4 : 6, cidr: `${a.local}/${a.prefixlen}`, scope: SCOPES[a.scope],
    label: a.label, nodad: a.nodad === true, permanent: a.dynamic !== true,
  })));
  const got = f.payloads.map((p) => m.decodeAddress(p)).map((a) => ({
    index: a.index, family: a.family, cidr: a.cidr, scope: a.scope, label: a.label,
    nodad: (a.flags & m.IFA_F_NODAD) !== 0, permanent: (a.flags & m.IFA_F_PERMANENT) !== 0,
  }));
  const key = (a: Json) => JSON.stringify(a);
  assert.deepEqual(got.map(key).sort(), want.map(key).sort());
  assert.ok(got.some((a) => a.family === 6 && a.nodad) && got.some((a) => a.label === 'veth1:pod'));
});

const PROTOCOLS: Record<string, number> = { redirect: m.RTPROT_REDIRECT, kernel: m.RTPROT_KERNEL, boot: m.RTPROT_BOOT, static: m.RTPROT_STATIC };
const TYPES: Record<string, number> = { unicast: m.RTN_UNICAST, local: m.RTN_LOCAL, broadcast: m.RTN_BROADCAST, multicast: m.RTN_MULTICAST };
const TABLES: Record<string, number> = { main: m.RT_TABLE_MAIN, local: m.RT_TABLE_LOCAL };

function expectedRoute(r: Json, family: 4 | 6): m.Route {
  const full = family === 4 ? 32 : 128;
  const dst = r.dst === 'default' ? (family === 4 ? '0.0.0.0/0' : '::/0') : String(r.dst).includes('/') ? r.dst : `${r.dst}/${full}`;
  const out: m.Route = {
    family, dst,
    scope: r.scope ? SCOPES[r.scope]! : m.RT_SCOPE_UNIVERSE,
    table: r.table ? TABLES[r.table] ?? Number(r.table) : m.RT_TABLE_MAIN,
    protocol: r.protocol ? PROTOCOLS[r.protocol]! : m.RTPROT_BOOT,
    type: r.type ? TYPES[r.type]! : m.RTN_UNICAST,
    flags: (r.flags as string[]).includes('onlink') ? m.RTNH_F_ONLINK : 0,
  };
  if (r.gateway) out.gw = r.gateway;
  if (r.dev) out.oif = idx(r.dev);
  if (r.metric !== undefined) out.priority = r.metric;
  if (r.prefsrc) out.prefsrc = r.prefsrc;
  const metrics = (r.metrics as Json[] | undefined)?.[0];
  if (metrics?.mtu !== undefined) out.mtu = metrics.mtu;
  if (metrics?.advmss !== undefined) out.advmss = metrics.advmss;
  return out;
}

for (const [name, family] of [['routes4', 4], ['routes6', 6]] as const) {
  test(`${name}: the dump of every table matches \`ip -j -${family} route show table all\``, () => {
    const f = load(name);
    const ip = f.ip[0]!;
    assert.equal(f.payloads.length, ip.length);
    f.payloads.forEach((p, i) => assert.deepEqual(m.decodeRoute(p), expectedRoute(ip[i]!, family), JSON.stringify(ip[i])));
    if (family === 4) {
      const routes = f.payloads.map((p) => m.decodeRoute(p));
      assert.ok(routes.some((r) => r.mtu === 1400 && r.advmss === 1360 && r.priority === 100), 'RTA_METRICS captured');
      assert.ok(routes.some((r) => r.table === 1000) && routes.some((r) => r.flags & m.RTNH_F_ONLINK));
    }
  });
}

const NUD: Record<string, number> = {
  INCOMPLETE: m.NUD_INCOMPLETE, REACHABLE: m.NUD_REACHABLE, STALE: m.NUD_STALE, DELAY: m.NUD_DELAY, PROBE: m.NUD_PROBE,
  FAILED: m.NUD_FAILED, NOARP: m.NUD_NOARP, PERMANENT: m.NUD_PERMANENT,
};

test('neighbours: the AF_UNSPEC dump matches `ip -j neigh show nud all` (permanent, noarp, reachable, incomplete)', () => {
  const f = load('neighbours');
  const ip = f.ip[0]!;
  assert.equal(f.payloads.length, ip.length);
  const states = new Set<number>();
  f.payloads.forEach((p, i) => {
    const want = ip[i]!;
    const n = m.decodeNeighbour(p);
    const expected: m.Neighbour = {
      family: String(want.dst).includes(':') ? m.AF_INET6 : m.AF_INET,
      index: idx(want.dev)!,
      state: (want.state as string[]).reduce((s, name) => s | NUD[name]!, 0),
      flags: (want.router ? m.NTF_ROUTER : 0),
      dst: want.dst,
    };
    if (want.lladdr) expected.mac = want.lladdr;
    assert.deepEqual(n, expected, JSON.stringify(want));
    states.add(n.state);
  });
  for (const s of [m.NUD_PERMANENT, m.NUD_NOARP, m.NUD_REACHABLE]) assert.ok(states.has(s), `state ${s} captured`);
});

function fdbState(state: number): string {
  if (state & m.NUD_PERMANENT) return 'permanent';
  if (state & m.NUD_NOARP) return 'static';
  if (state & m.NUD_STALE) return 'stale';
  return '';
}

function checkFdb(name: string): m.Neighbour[] {
  const f = load(name);
  const ip = f.ip[0]!;
  assert.equal(f.payloads.length, ip.length);
  return f.payloads.map((p, i) => {
    const want = ip[i]!;
    const n = m.decodeNeighbour(p);
    assert.equal(n.family, m.AF_BRIDGE);
    const flags = (want.flags as string[]).reduce((s, x) => s | ({ self: m.NTF_SELF, master: m.NTF_MASTER } as Record<string, number>)[x]!, 0);
    assert.deepEqual(
      { mac: n.mac, dst: n.dst, port: n.port, vni: n.vni, vlan: n.vlan, master: n.master, flags: n.flags, state: fdbState(n.state) },
      { mac: want.mac, dst: want.dst, port: want.port, vni: want.vni, vlan: want.vlan, master: idx(want.master), flags, state: want.state },
      JSON.stringify(want),
    );
    return n;
  });
}

test('FDB of a VXLAN device: default destinations and per-MAC entries match `bridge -j fdb show dev vtep1042`', () => {
  const entries = checkFdb('fdb-vxlan');
  const vtep = idx('vtep1042');
  assert.ok(entries.every((e) => e.index === vtep && e.flags === m.NTF_SELF && e.state === (m.NUD_NOARP | m.NUD_PERMANENT)));
  assert.deepEqual(entries.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst).sort(), ['192.168.77.2', '192.168.77.3']);
  assert.ok(entries.some((e) => e.port === 4790 && e.vni === 2042), 'NDA_PORT and NDA_VNI captured');
});

test('FDB of a bridge port: master (NDA_MASTER) and self entries match `bridge -j fdb show dev veth0`', () => {
  const entries = checkFdb('fdb-port');
  assert.ok(entries.some((e) => e.master === idx('br0')) && entries.some((e) => e.flags & m.NTF_SELF));
});

test('decodeNeighbour reads NDA_PROTOCOL (as `ip neigh` shows "proto 0xce"); absent when the kernel sends none', () => {
  const hexBytes = (s: string): Buffer => Buffer.from(s.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
  const marked = hexBytes(`
    02 00 0000 05000000 8000 00 01         # AF_INET, ifindex 5, NUD_PERMANENT, type 1
    0800 0100 0a2a0214                     # NDA_DST 10.42.2.20
    0a00 0200 0e00c0a8640c 0000            # NDA_LLADDR
    0800 0400 00000000                     # NDA_PROBES 0
    0500 0c00 ce 000000                    # NDA_PROTOCOL 0xce`);
  assert.deepEqual(m.decodeNeighbour(marked), { family: m.AF_INET, index: 5, state: m.NUD_PERMANENT, flags: 0, dst: '10.42.2.20', mac: '0e:00:c0:a8:64:0c', protocol: m.NEIGH_PROTO_CATTLE_NET });
  const plain = hexBytes(`
    02 00 0000 05000000 8000 00 01
    0800 0100 0a2a0214
    0a00 0200 0e00c0a8640c 0000`);
  assert.equal(m.decodeNeighbour(plain).protocol, undefined);
});
