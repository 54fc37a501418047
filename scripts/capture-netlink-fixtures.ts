// Captures rtnetlink dump replies from the running kernel for the decoder
// tests: builds a bridge, veths, a VXLAN device with FDB entries, addresses,
// routes and neighbours in a throw-away netns with `ip`/`bridge`, dumps them
// through our own socket (raw reply payloads, before any decoding) and writes
// test/fixtures/netlink/*.json: the replies as hex next to what iproute2
// (`ip -j`, `bridge -j`) reported for the same objects.
//
// Then it checks the encoders against the kernel: the same VXLAN device, FDB
// entries and neighbours built through Rtnetlink in a second netns must read
// back (through iproute2) like the ones iproute2 made.
//
//   node scripts/capture-netlink-fixtures.ts [--check-only]   (root)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Rtnetlink } from '../lib/netlink/rtnetlink.ts';
import * as m from '../lib/netlink/rtnl.ts';
import { NetlinkSocket } from '../lib/netlink/socket.ts';
import { NLM_F_DUMP } from '../lib/netlink/wire.ts';

const OUT = path.join(import.meta.dirname, '..', 'test', 'fixtures', 'netlink');
const checkOnly = process.argv.includes('--check-only');

function sh(argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A netns with a record of the commands that built it. */
class Netns {
  readonly name: string;
  readonly setup: string[] = [];
  notes: string[] = [];

  constructor(name: string) {
    this.name = name;
    sh(['ip', 'netns', 'add', name]);
  }

  get path(): string {
    return `/run/netns/${this.name}`;
  }

  /** Run `ip …` or `bridge …` (or `sysctl …`) inside; recorded without the netns option. */
  run(cmd: string): string {
    const argv = cmd.split(' ');
    const full = argv[0] === 'sysctl' ? ['ip', 'netns', 'exec', this.name, ...argv] : [argv[0]!, '-n', this.name, ...argv.slice(1)];
    const out = sh(full);
    this.setup.push(cmd);
    return out;
  }

  /** Like run, but a failure is noted instead of thrown (a kernel without the feature). */
  tryRun(cmd: string, note: string): boolean {
    try {
      this.run(cmd);
      return true;
    } catch (e) {
      this.notes.push(`${note}: \`${cmd}\` failed (${((e as { stderr?: string }).stderr ?? String(e)).trim()})`);
      return false;
    }
  }

  json<T = unknown>(cmd: string): { command: string; output: T } {
    const argv = cmd.split(' ');
    return { command: cmd, output: JSON.parse(sh([argv[0]!, '-n', this.name, ...argv.slice(1)]) || 'null') as T };
  }

  destroy(): void {
    try {
      sh(['ip', 'netns', 'del', this.name]);
    } catch {
      // already gone
    }
  }
}

function build(ns: Netns): { vlanFiltering: boolean } {
  ns.run('sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0');
  ns.run('ip link set lo up');
  const vlanFiltering = ns.tryRun('ip link add br0 type bridge vlan_filtering 1', 'no VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING off?)');
  if (!vlanFiltering) ns.run('ip link add br0 type bridge');
  ns.run('ip link set br0 address 02:00:00:00:0b:01');
  ns.run('ip link add veth0 mtu 1450 address 02:00:00:00:0e:00 type veth peer name veth1 mtu 1450 address 02:00:00:00:0e:01');
  ns.run('ip link set veth0 alias cattle-cni:fixture/eth0');
  ns.run('ip link set veth0 master br0');
  ns.run('bridge link set dev veth0 hairpin on isolated on');
  if (vlanFiltering) ns.run('bridge vlan add dev veth0 vid 42 pvid untagged');
  for (const l of ['br0', 'veth0', 'veth1']) ns.run(`ip link set ${l} up`);
  // The VXLAN underlay (no dummy driver everywhere: a veth pair).
  ns.run('ip link add ul0 type veth peer name ul1');
  ns.run('ip addr add 192.168.77.1/24 dev ul0');
  ns.run('ip link set ul0 up');
  ns.run('ip link set ul1 up');
  ns.run('ip link add vtep1042 type vxlan id 1042 dstport 4789 nolearning proxy local 192.168.77.1 dev ul0');
  ns.run('ip link set vtep1042 mtu 1450 address 02:00:00:00:10:42 up');
  ns.run('bridge fdb append 00:00:00:00:00:00 dev vtep1042 dst 192.168.77.2');
  ns.run('bridge fdb append 00:00:00:00:00:00 dev vtep1042 dst 192.168.77.3');
  ns.run('bridge fdb add 02:42:0a:2a:01:05 dev vtep1042 dst 192.168.77.2 self permanent');
  ns.run('bridge fdb add 02:42:0a:2a:02:07 dev vtep1042 dst 192.168.77.3 port 4790 vni 2042 self permanent');
  ns.run('ip neigh replace 10.42.1.5 lladdr 02:42:0a:2a:01:05 dev vtep1042 nud permanent');
  ns.run('ip -6 neigh replace fd42:1::5 lladdr 02:42:0a:2a:01:05 dev vtep1042 nud permanent');
  ns.run('ip addr add 10.42.0.1/24 dev br0');
  ns.run('ip addr add fd42::1/64 dev br0 nodad');
  ns.run('ip addr add 10.42.0.5/24 dev veth1 label veth1:pod');
  ns.run('ip addr add 10.42.1.0/32 dev vtep1042');
  ns.run('ip neigh add 10.42.0.9 lladdr 02:00:00:00:0e:09 dev br0 nud noarp');
  ns.run('ip neigh add 10.42.0.10 lladdr 02:00:00:00:0e:0a dev br0 nud reachable');
  ns.run('ip route add 10.99.0.0/16 via 10.42.0.254 dev br0 metric 100 proto static mtu 1400 advmss 1360');
  ns.run('ip route add 10.98.0.0/16 dev br0 scope link table 1000');
  ns.run('ip route add 10.42.2.0/24 via 10.42.2.0 dev vtep1042 onlink');
  ns.run('ip route add default via 10.42.0.254 dev br0 src 10.42.0.1');
  ns.run('ip -6 route add fd99::/64 via fd42::fe dev br0 mtu 1380');
  return { vlanFiltering };
}

/** Wait until every link that is up reports operstate UP (veths come up a moment later). */
function settle(ns: Netns): void {
  const deadline = Date.now() + 5000;
  for (;;) {
    const links = ns.json<{ ifname: string; flags: string[]; operstate: string }[]>('ip -j link show').output;
    const pending = links.filter((l) => l.flags.includes('LOWER_UP') && l.operstate !== 'UP' && l.operstate !== 'UNKNOWN');
    if (pending.length === 0) return;
    if (Date.now() > deadline) throw new Error(`links not up: ${pending.map((l) => l.ifname).join(', ')}`);
    execFileSync('sleep', ['0.1']);
  }
}

interface Fixture {
  description: string;
  captured: { kernel: string; iproute2: string; date: string };
  notes: string[];
  setup: string[];
  request: { type: string; flags: string; body: string };
  replies: { type: number; flags: number; payload: string }[];
  iproute2: { command: string; output: unknown }[];
}

function dump(sock: NetlinkSocket, type: number, body: Buffer): { type: number; flags: number; payload: string }[] {
  return sock.request('capture', type, NLM_F_DUMP, body).map((r) => ({ type: r.type, flags: r.flags, payload: Buffer.from(r.payload).toString('hex') }));
}

function capture(): void {
  const ns = new Netns(`nlcap-${process.pid}`);
  try {
    build(ns);
    settle(ns);
    const nsFd = fs.openSync(ns.path, 'r');
    const sock = NetlinkSocket.open({ netnsFd: nsFd });
    const rt = new Rtnetlink(sock);
    const vtep = rt.linkByName('vtep1042')!.index;
    const veth0 = rt.linkByName('veth0')!.index;
    const captured = { kernel: os.release(), iproute2: sh(['ip', '-V']).trim(), date: new Date().toISOString().slice(0, 10) };
    const write = (file: string, description: string, type: number, body: Buffer, ipCmds: string[]) => {
      const replies = dump(sock, type, body);
      const iproute2 = ipCmds.map((c) => ns.json(c));
      const f: Fixture = {
        description, captured, notes: ns.notes, setup: ns.setup,
        request: { type: m.RTM_NAMES[type]!, flags: 'NLM_F_REQUEST|NLM_F_DUMP', body: body.toString('hex') },
        replies, iproute2,
      };
      fs.writeFileSync(path.join(OUT, file), `${JSON.stringify(f, null, 1)}\n`);
      console.log(`${file}: ${replies.length} replies`);
    };
    fs.mkdirSync(OUT, { recursive: true });
    write('links.json', 'RTM_GETLINK dump, AF_UNSPEC: every link with IFLA_LINKINFO (bridge, veth, vxlan) and bridge-port slave data',
      m.RTM_GETLINK, m.encodeGetLink({}), ['ip -j -d link show']);
    write('bridge-ports.json', 'RTM_GETLINK dump, AF_BRIDGE with RTEXT_FILTER_BRVLAN: IFLA_PROTINFO (IFLA_BRPORT_*) and IFLA_AF_SPEC',
      m.RTM_GETLINK, m.encodeGetLink({ family: m.AF_BRIDGE, vlans: true }), ['bridge -j -d link show', 'bridge -j vlan show']);
    write('addresses.json', 'RTM_GETADDR dump, AF_UNSPEC', m.RTM_GETADDR, m.encodeGetAddress(m.AF_UNSPEC), ['ip -j addr show']);
    write('routes4.json', 'RTM_GETROUTE dump, AF_INET, every table', m.RTM_GETROUTE, m.encodeGetRoute(m.AF_INET), ['ip -j -4 route show table all']);
    write('routes6.json', 'RTM_GETROUTE dump, AF_INET6, every table', m.RTM_GETROUTE, m.encodeGetRoute(m.AF_INET6), ['ip -j -6 route show table all']);
    write('neighbours.json', 'RTM_GETNEIGH dump, AF_UNSPEC: ARP and ND entries, permanent/noarp/reachable',
      m.RTM_GETNEIGH, m.encodeGetNeighbour(m.AF_UNSPEC), ['ip -j neigh show nud all']);
    write('fdb-vxlan.json', 'RTM_GETNEIGH dump, AF_BRIDGE, NDA_IFINDEX = vtep1042: VXLAN FDB entries (NTF_SELF)',
      m.RTM_GETNEIGH, m.encodeGetNeighbour(m.AF_BRIDGE, vtep), ['bridge -j fdb show dev vtep1042']);
    write('fdb-port.json', 'RTM_GETNEIGH dump, AF_BRIDGE, NDA_IFINDEX = veth0: a bridge port (NTF_MASTER and NTF_SELF entries)',
      m.RTM_GETNEIGH, m.encodeGetNeighbour(m.AF_BRIDGE, veth0), ['bridge -j fdb show dev veth0']);
    sock.close();
    fs.closeSync(nsFd);
  } finally {
    ns.destroy();
  }
}

// ---- encoder check ------------------------------------------------------------

type Json = Record<string, unknown>;

/** iproute2's view without what differs between two namespaces built alike. */
function comparable(ns: Netns): Json {
  const link = (ns.json<Json[]>('ip -j -d link show vtep1042').output)[0]!;
  const info = (link.linkinfo as Json).info_data as Json;
  const strip = (rows: Json[]) => rows.map(({ ifindex: _i, ...r }) => r);
  return {
    link: { mtu: link.mtu, address: link.address, master: link.master, kind: (link.linkinfo as Json).info_kind, info },
    fdb: strip(ns.json<Json[]>('bridge -j fdb show dev vtep1042').output),
    neigh: strip(ns.json<Json[]>('ip -j neigh show dev vtep1042 nud all').output),
  };
}

function checkEncoders(): void {
  const ref = new Netns(`nlref-${process.pid}`);
  const ours = new Netns(`nlour-${process.pid}`);
  try {
    for (const ns of [ref, ours]) {
      ns.run('ip link add br9 type bridge');
      ns.run('ip link add ul0 type veth peer name ul1');
      ns.run('ip addr add 192.168.77.1/24 dev ul0');
    }
    ref.run('ip link add vtep1042 mtu 1450 address 02:00:00:00:10:42 master br9 type vxlan id 1042 dstport 4789 nolearning proxy local 192.168.77.1 dev ul0');
    ref.run('bridge fdb append 00:00:00:00:00:00 dev vtep1042 dst 192.168.77.2');
    ref.run('bridge fdb append 00:00:00:00:00:00 dev vtep1042 dst 192.168.77.3');
    ref.run('bridge fdb append 00:00:00:00:00:00 dev vtep1042 dst 192.168.77.4');
    ref.run('bridge fdb del 00:00:00:00:00:00 dev vtep1042 dst 192.168.77.4');
    ref.run('bridge fdb add 02:42:0a:2a:01:05 dev vtep1042 dst 192.168.77.2 self permanent');
    ref.run('bridge fdb add 02:42:0a:2a:02:07 dev vtep1042 dst 192.168.77.3 port 4790 vni 2042 self permanent');
    ref.run('bridge fdb replace 02:42:0a:2a:02:07 dev vtep1042 dst 192.168.77.2 port 4790 vni 2042 self permanent');
    ref.run('ip neigh replace 10.42.1.5 lladdr 02:42:0a:2a:01:05 dev vtep1042 nud permanent');
    ref.run('ip neigh replace 10.42.1.5 lladdr 02:42:0a:2a:01:06 dev vtep1042 nud permanent');
    ref.run('ip -6 neigh add fd42:1::5 lladdr 02:42:0a:2a:01:05 dev vtep1042 nud permanent');
    ref.run('ip neigh add 10.42.1.9 lladdr 02:42:0a:2a:01:09 dev vtep1042 nud permanent');
    ref.run('ip neigh del 10.42.1.9 dev vtep1042');

    const fd = fs.openSync(ours.path, 'r');
    const rt = Rtnetlink.open({ netnsFd: fd });
    try {
      const ul0 = rt.linkByName('ul0')!.index;
      const br9 = rt.linkByName('br9')!.index;
      rt.createVxlan({
        name: 'vtep1042', vni: 1042, port: 4789, learning: false, proxy: true, local: '192.168.77.1', underlay: ul0,
        mtu: 1450, mac: '02:00:00:00:10:42', master: br9,
      });
      const vx = rt.linkByName('vtep1042')!;
      assert.deepEqual(vx.vxlan, { vni: 1042, port: 4789, learning: false, proxy: true, local: '192.168.77.1', underlay: ul0, ttl: 0, ageing: 300, l2miss: false, l3miss: false });
      const zero = '00:00:00:00:00:00';
      rt.appendFdb(vx.index, { mac: zero, dst: '192.168.77.2' });
      rt.appendFdb(vx.index, { mac: zero, dst: '192.168.77.3' });
      rt.appendFdb(vx.index, { mac: zero, dst: '192.168.77.4' });
      rt.delFdb(vx.index, { mac: zero, dst: '192.168.77.4' });
      rt.addFdb(vx.index, { mac: '02:42:0a:2a:01:05', dst: '192.168.77.2' });
      rt.addFdb(vx.index, { mac: '02:42:0a:2a:02:07', dst: '192.168.77.3', port: 4790, vni: 2042 });
      rt.replaceFdb(vx.index, { mac: '02:42:0a:2a:02:07', dst: '192.168.77.2', port: 4790, vni: 2042 });
      rt.replaceNeighbour(vx.index, { dst: '10.42.1.5', mac: '02:42:0a:2a:01:05' });
      rt.replaceNeighbour(vx.index, { dst: '10.42.1.5', mac: '02:42:0a:2a:01:06' });
      rt.addNeighbour(vx.index, { dst: 'fd42:1::5', mac: '02:42:0a:2a:01:05' });
      rt.addNeighbour(vx.index, { dst: '10.42.1.9', mac: '02:42:0a:2a:01:09' });
      rt.delNeighbour(vx.index, '10.42.1.9');
      assert.throws(() => rt.addNeighbour(vx.index, { dst: '10.42.1.5', mac: '02:42:0a:2a:01:07' }), { code: 'EEXIST' });
      assert.deepEqual(comparable(ours), comparable(ref));

      // Our dumps agree with iproute2's.
      const fdb = rt.fdb(vx.index).filter((e) => e.flags & m.NTF_SELF && e.dst);
      const shown = ours.json<Json[]>('bridge -j fdb show dev vtep1042').output.filter((e) => e.dst);
      assert.deepEqual(fdb.map((e) => `${e.mac} ${e.dst}`), shown.map((e) => `${e.mac} ${e.dst}`));
      const neigh = rt.neighbours({ index: vx.index });
      assert.deepEqual(neigh.map((n) => `${n.dst} ${n.mac} ${n.state}`).sort(), ['10.42.1.5 02:42:0a:2a:01:06 128', 'fd42:1::5 02:42:0a:2a:01:05 128']);
      console.log('encoder check: vxlan link, fdb add/append/replace/del, neighbour add/replace/del match iproute2');
    } finally {
      rt.close();
      fs.closeSync(fd);
    }
  } finally {
    ref.destroy();
    ours.destroy();
  }
}

if (!checkOnly) capture();
checkEncoders();
