// cattle-ptp through the built executable, in fresh namespaces. A test "host"
// netns runs the plugin; it gets an uplink (a veth pair into another netns)
// with a default route through it, because proxy ARP answers only for
// addresses the host routes out of another interface. "pod" netns are the
// containers.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { hashedVethName } from '../../lib/hostveth.ts';
import { assertCurrentShape, assertOk, type Attach, cni, cniAsync, hostLocalIpam, links, markOf, ping, tempDir, vethNames } from '../helpers/cni.ts';
import { cleanupAll, makeNetns, netnsNames, ROOT, rootLinkNames, type TestNetns, trackPid, untrackPid } from '../helpers/harness.ts';

const HOST_ADDR = '192.168.252.1';
const METADATA = '169.254.169.250';
const GW6 = 'fe80::ecee:eeff:feee:eeee';
const PER_INTERFACE_V6_FORWARDING = fs.existsSync('/proc/sys/net/ipv6/conf/lo/force_forwarding');

let linksBefore: string[];
let nsBefore: string[];
let dataDir: string;

before(() => {
  linksBefore = rootLinkNames();
  nsBefore = netnsNames();
  dataDir = tempDir('cptp-hostlocal-');
});
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const hostLocalRanges = hostLocalIpam(() => dataDir);
function hostLocal(ranges: string[] = ['10.78.0.0/24'], extra: object = {}): Record<string, unknown> {
  return hostLocalRanges(ranges, extra);
}

// Debian's host-local (1.1.1) speaks up to 1.0.0.
function conf(over: Record<string, unknown> = {}, version = '1.0.0'): Record<string, unknown> {
  return { cniVersion: version, name: 'ptpnet', type: 'cattle-ptp', ipam: hostLocal(), ...over };
}

function attach(host: TestNetns, pod: TestNetns | undefined, c: object, id: string, more: Partial<Attach> = {}): Attach {
  return { plugin: 'cattle-ptp', host, conf: c, containerId: id, netns: pod?.path, ...more };
}

const ok = assertOk;

interface PtpResult {
  cniVersion: string;
  interfaces: { name: string; mac?: string; mtu?: number; sandbox?: string }[];
  ips: { interface: number; address: string; gateway?: string; version?: string }[];
  routes: { dst: string; gw?: string }[];
}

/** A "host" netns with an uplink: up0 (HOST_ADDR/24) ↔ up1 in another netns, default route via up0. */
function makeHost(): TestNetns {
  const host = makeNetns('cptp-host');
  const up = makeNetns('cptp-up');
  host.exec('ip', ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1', 'netns', up.path]);
  host.exec('ip', ['addr', 'add', `${HOST_ADDR}/24`, 'dev', 'up0']);
  host.exec('ip', ['link', 'set', 'up0', 'up']);
  up.exec('ip', ['addr', 'add', '192.168.252.2/24', 'dev', 'up1']);
  up.exec('ip', ['link', 'set', 'up1', 'up']);
  host.exec('ip', ['route', 'add', 'default', 'via', '192.168.252.2', 'dev', 'up0']);
  // Kernels before 6.17 cannot forward IPv6 per interface (force_forwarding):
  // there the host must forward IPv6 globally, as a routed host does anyway.
  if (!PER_INTERFACE_V6_FORWARDING) host.exec('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
  return {
    ...host,
    destroy() {
      host.destroy();
      up.destroy();
    },
  };
}

function hostVeths(host: TestNetns): string[] {
  return vethNames(host, ['up0']);
}

function podLinks(pod: TestNetns): string[] {
  return links(pod).map((l) => l.ifname);
}

/** A sysctl of a netns; `missing` when the key does not exist on this kernel (else it is an error). */
function sysctl(ns: TestNetns, key: string, missing?: string): string {
  const r = ns.exec('cat', [`/proc/sys/${key}`], { allowFail: missing !== undefined });
  return r.status === 0 ? r.stdout.trim() : missing!;
}

function routeLines(ns: TestNetns, family: '-4' | '-6' = '-4'): string[] {
  return ns.exec('ip', [family, 'route', 'show']).stdout.trim().split('\n').map((l) => l.trim()).filter(Boolean);
}

function leases(ipam: Record<string, unknown>, network = 'ptpnet'): string[] {
  const dir = path.join(ipam.dataDir as string, network);
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^[0-9a-f]+[.:]/.test(f)) : [];
}

function addrOf(r: { json?: unknown }, family: 4 | 6 = 4): string {
  const ip = (r.json as PtpResult).ips.find((i) => i.address.includes(':') === (family === 6))!;
  return ip.address.split('/')[0]!;
}

// ---- TCP through Node itself, bounded in time, killed by PID in cleanup ------

const SERVER = `const net=require('net');const [h,p]=process.argv.slice(1);
const s=net.createServer((c)=>c.end('hello from '+h));
s.listen(+p,h,()=>console.log('ready'));setTimeout(()=>process.exit(0),60000);`;
const CLIENT = `const net=require('net');const [h,p]=process.argv.slice(1);
const c=net.connect({host:h,port:+p});let d='';c.on('data',(x)=>d+=x);
c.on('end',()=>{process.stdout.write(d);process.exit(0)});c.on('error',(e)=>{console.error(e.message);process.exit(1)});
setTimeout(()=>{console.error('timeout');process.exit(2)},5000);`;

interface Server {
  stop(): void;
}

function startServer(ns: TestNetns, addr: string, port: number): Promise<Server> {
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', SERVER, addr, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  trackPid(child.pid);
  const stop = () => {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
    untrackPid(child.pid);
  };
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`server on ${addr}:${port} in ${ns.name} not ready: ${err}`));
    }, 10_000);
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve({ stop });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      untrackPid(child.pid);
      reject(new Error(`server on ${addr}:${port} exited (${code}): ${err}`));
    });
  });
}

function tcpGet(from: TestNetns, addr: string, port: number): string {
  const r = spawnSync('ip', ['netns', 'exec', from.name, process.execPath, '-e', CLIENT, addr, String(port)], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(r.status, 0, `TCP ${from.name} → [${addr}]:${port}: ${r.stderr}`);
  return r.stdout;
}

// ---- tests ----------------------------------------------------------------------

test('two pods reach each other and the host by ping and TCP; wiring as Calico does it', async () => {
  const host = makeHost();
  const [p1, p2] = [makeNetns('cptp-pod'), makeNetns('cptp-pod')];
  const c = conf({ mtu: 1400, ipam: hostLocal(['10.78.1.0/24']) });
  const r1 = cni('ADD', attach(host, p1, c, 'pod-one'));
  ok(r1);
  const r2 = cni('ADD', attach(host, p2, c, 'pod-two'));
  ok(r2);
  const res1 = r1.json as PtpResult;
  const hv = res1.interfaces[0]!.name;
  assert.equal(hv, hashedVethName('cptp', { containerId: 'pod-one', ifname: 'eth0' }));
  assert.equal(hv.length, 15);
  assert.deepEqual(res1.interfaces[0], { name: hv, mac: 'ee:ee:ee:ee:ee:ee' });
  assert.equal(res1.interfaces[1]!.name, 'eth0');
  assert.equal(res1.interfaces[1]!.sandbox, p1.path);
  assert.match(res1.ips[0]!.address, /^10\.78\.1\.\d+\/32$/);
  assert.equal(res1.ips[0]!.interface, 1);
  assert.equal(res1.ips[0]!.gateway, '169.254.1.1');
  assert.deepEqual(res1.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);

  const ip1 = addrOf(r1);
  const ip2 = addrOf(r2);
  // Host side: fixed MAC, mark, sysctls, /32 scope-link route, no address.
  const hostLink = links(host).find((l) => l.ifname === hv)!;
  assert.equal(hostLink.address, 'ee:ee:ee:ee:ee:ee');
  assert.equal(hostLink.mtu, 1400);
  assert.equal(hostLink.ifalias, markOf('cattle-ptp', 'pod-one', 'ptpnet'));
  assert.equal(sysctl(host, `net/ipv4/conf/${hv}/proxy_arp`), '1');
  assert.equal(sysctl(host, `net/ipv4/neigh/${hv}/proxy_delay`), '0');
  assert.equal(sysctl(host, `net/ipv4/conf/${hv}/forwarding`), '1');
  assert.equal(sysctl(host, `net/ipv4/conf/${hv}/route_localnet`), '0');
  assert.equal(sysctl(host, `net/ipv6/conf/${hv}/accept_ra`), '0');
  assert.equal(sysctl(host, `net/ipv6/conf/${hv}/proxy_ndp`), '1');
  assert.equal(sysctl(host, `net/ipv6/conf/${hv}/accept_dad`), '0');
  // No IPv6 router mode for an IPv4-only pod (it makes the veth's deletion ~15 ms slower).
  if (PER_INTERFACE_V6_FORWARDING) assert.equal(sysctl(host, `net/ipv6/conf/${hv}/forwarding`), '0');
  assert.ok(routeLines(host).includes(`${ip1} dev ${hv} scope link`), routeLines(host).join('\n'));
  assert.deepEqual(host.ipJson<{ addr_info: unknown[] }[]>('-4', 'addr', 'show', 'dev', hv)[0]?.addr_info ?? [], []);
  // Container side: /32, link route to the gateway, default through it, forwarding off.
  const podAddrs = p1.ipJson<{ addr_info: { local: string; prefixlen: number; family: string }[] }[]>('addr', 'show', 'dev', 'eth0')[0]!.addr_info
    .filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
  assert.deepEqual(podAddrs, [`${ip1}/32`]);
  assert.deepEqual(routeLines(p1), ['default via 169.254.1.1 dev eth0', '169.254.1.1 dev eth0 scope link']);
  assert.equal(links(p1).find((l) => l.ifname === 'eth0')!.mtu, 1400);
  assert.equal(sysctl(p1, 'net/ipv4/ip_forward'), '0');

  assert.ok(ping(p1, ip2), 'pod one pings pod two');
  assert.ok(ping(p2, ip1), 'pod two pings pod one');
  assert.ok(ping(p1, HOST_ADDR), 'pod pings the host');
  // ARP for the gateway was answered by the host veth (proxy ARP), with its fixed MAC.
  const neigh = p1.exec('ip', ['neigh', 'show', '169.254.1.1', 'dev', 'eth0']).stdout;
  assert.match(neigh, /^169\.254\.1\.1 lladdr ee:ee:ee:ee:ee:ee (REACHABLE|STALE|DELAY|PROBE)/);

  const s2 = await startServer(p2, ip2, 7001);
  const sh = await startServer(host, HOST_ADDR, 7002);
  try {
    assert.equal(tcpGet(p1, ip2, 7001), `hello from ${ip2}`);
    assert.equal(tcpGet(p1, HOST_ADDR, 7002), `hello from ${HOST_ADDR}`);
  } finally {
    s2.stop();
    sh.stop();
  }

  ok(cni('DEL', attach(host, p1, c, 'pod-one')));
  ok(cni('DEL', attach(host, p2, c, 'pod-two')));
  assert.deepEqual(hostVeths(host), []);
  assert.ok(!routeLines(host).some((l) => l.startsWith('10.78.1.')), 'host routes gone with the veths');
  assert.deepEqual(podLinks(p1), ['lo']);
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('a pod reaches a server bound to the metadata address 169.254.169.250 on the host', async () => {
  const host = makeHost();
  host.exec('ip', ['addr', 'add', `${METADATA}/32`, 'dev', 'lo']);
  const pod = makeNetns('cptp-pod');
  // Our IPAM with Rancher's metadata route: it goes via 169.254.1.1 like every route.
  const c = conf({ ipam: { type: 'cattle-ipam', subnetPrefixSize: '/16', routes: [{ dst: `${METADATA}/32` }] } }, '1.1.0');
  const a = attach(host, pod, c, 'meta', { args: 'IgnoreUnknown=1;IPAddress=10.79.3.4' });
  const r = cni('ADD', a);
  ok(r);
  const res = r.json as PtpResult;
  assert.deepEqual(res.ips, [{ interface: 1, address: '10.79.3.4/32', gateway: '169.254.1.1' }]);
  assert.deepEqual(res.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }, { dst: `${METADATA}/32`, gw: '169.254.1.1' }]);
  assert.ok(routeLines(pod).includes(`${METADATA} via 169.254.1.1 dev eth0`), routeLines(pod).join('\n'));
  const server = await startServer(host, METADATA, 80);
  try {
    assert.equal(tcpGet(pod, METADATA, 80), `hello from ${METADATA}`);
  } finally {
    server.stop();
  }
  ok(cni('DEL', a));
  assert.deepEqual(hostVeths(host), []);
  host.destroy();
  pod.destroy();
});

test('IPv6: dual-stack pods reach each other over IPv6 through the host veth link-local gateway', async () => {
  const host = makeHost();
  const [p1, p2] = [makeNetns('cptp-pod'), makeNetns('cptp-pod')];
  const c = conf({ ipam: hostLocal(['10.78.2.0/24', 'fd00:78:2::/64']) });
  const r1 = cni('ADD', attach(host, p1, c, 'six-one'));
  ok(r1);
  const r2 = cni('ADD', attach(host, p2, c, 'six-two'));
  ok(r2);
  const res1 = r1.json as PtpResult;
  const v6 = res1.ips.find((i) => i.address.includes(':'))!;
  assert.match(v6.address, /^fd00:78:2::[0-9a-f]+\/128$/);
  assert.equal(v6.interface, 1);
  assert.equal(v6.gateway, GW6);
  assert.deepEqual(res1.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }, { dst: '::/0', gw: GW6 }]);
  const hv = res1.interfaces[0]!.name;
  const a1 = addrOf(r1, 6);
  const a2 = addrOf(r2, 6);
  // Pod: default via the host veth's EUI-64 link-local; host: /128 to the pod, the link-local on the veth.
  assert.ok(routeLines(p1, '-6').some((l) => l.startsWith(`default via ${GW6} dev eth0`)), routeLines(p1, '-6').join('\n'));
  assert.ok(routeLines(host, '-6').some((l) => l.startsWith(`${a1} dev ${hv}`)), routeLines(host, '-6').join('\n'));
  const hostV6 = host.ipJson<{ addr_info: { local: string; family: string }[] }[]>('-6', 'addr', 'show', 'dev', hv)[0]!.addr_info.map((a) => a.local);
  assert.deepEqual(hostV6, [GW6]);
  assert.equal(sysctl(host, `net/ipv6/conf/${hv}/forwarding`), '1');
  assert.equal(sysctl(host, `net/ipv6/conf/${hv}/force_forwarding`, '0'), PER_INTERFACE_V6_FORWARDING ? '1' : '0');
  if (PER_INTERFACE_V6_FORWARDING) assert.equal(sysctl(host, 'net/ipv6/conf/all/forwarding'), '0', 'the host-wide switch is left alone');

  assert.ok(ping(p1, a2), 'pod one pings pod two over IPv6');
  assert.ok(ping(p2, a1), 'pod two pings pod one over IPv6');
  assert.ok(ping(p1, addrOf(r2)), 'and over IPv4');
  assert.match(p1.exec('ip', ['-6', 'neigh', 'show', GW6, 'dev', 'eth0']).stdout, /lladdr ee:ee:ee:ee:ee:ee/);
  const server = await startServer(p2, a2, 7006);
  try {
    assert.equal(tcpGet(p1, a2, 7006), `hello from ${a2}`);
  } finally {
    server.stop();
  }
  ok(cni('DEL', attach(host, p1, c, 'six-one')));
  ok(cni('DEL', attach(host, p2, c, 'six-two')));
  assert.deepEqual(hostVeths(host), []);
  assert.deepEqual(leases(c.ipam as Record<string, unknown>), []);
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('every cniVersion from 0.1.0 to 1.1.0 returns its own result shape', () => {
  const host = makeHost();
  for (const version of ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    const pod = makeNetns('cptp-pod');
    // host-local 1.1.1 stops at 1.0.0: 1.1.0 goes through our IPAM (CNI_ARGS fast path).
    const ours = version === '1.1.0';
    const ipam = ours ? { type: 'cattle-ipam', subnetPrefixSize: '/24' } : hostLocal(['10.78.3.0/24']);
    const c = conf({ ipam }, version);
    const args = ours ? 'IgnoreUnknown=1;IPAddress=10.78.3.200/24' : undefined;
    const r = cni('ADD', attach(host, pod, c, `v-${version}`, { args }));
    ok(r);
    const res = r.json as Record<string, unknown>;
    assert.equal(res.cniVersion, version);
    if (version === '0.1.0' || version === '0.2.0') {
      const ip4 = res.ip4 as { ip: string; gateway: string; routes: unknown[] };
      assert.match(ip4.ip, /^10\.78\.3\.\d+\/32$/);
      assert.equal(ip4.gateway, '169.254.1.1');
      assert.deepEqual(ip4.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
      assert.equal(res.interfaces, undefined);
      assert.deepEqual(res.dns, {});
    } else {
      const ips = res.ips as { version?: string; interface: number; address: string; gateway: string }[];
      const ifaces = res.interfaces as { name: string; mtu?: number; sandbox?: string }[];
      assert.equal(ifaces.length, 2);
      assert.equal(ifaces[0]!.sandbox, undefined);
      assert.equal(ifaces[1]!.sandbox, pod.path);
      assert.equal(ips[0]!.gateway, '169.254.1.1');
      assert.match(ips[0]!.address, ours ? /^10\.78\.3\.200\/32$/ : /^10\.78\.3\.\d+\/32$/);
      assertCurrentShape(res, version, 1);
    }
    ok(cni('DEL', attach(host, pod, c, `v-${version}`, { args })));
    pod.destroy();
  }
  assert.deepEqual(hostVeths(host), []);
  host.destroy();
});

test('re-ADD of the same attachment returns the same result and changes nothing', () => {
  const host = makeHost();
  const pod = makeNetns('cptp-pod');
  const c = conf({ ipam: hostLocal(['10.78.4.0/24']) });
  const a = attach(host, pod, c, 'again');
  const first = cni('ADD', a);
  ok(first);
  const snapshot = () => JSON.stringify([links(host).map((l) => [l.ifname, l.ifindex]), routeLines(host), routeLines(pod), leases(c.ipam as Record<string, unknown>)]);
  const before = snapshot();
  const second = cni('ADD', a);
  ok(second);
  assert.deepEqual(second.json, first.json);
  assert.equal(snapshot(), before);
  ok(cni('DEL', a));
  host.destroy();
  pod.destroy();
});

test('options: prefix, host MAC, allowIPForwarding, routeLocalnet, runtime MAC', () => {
  const host = makeHost();
  const pod = makeNetns('cptp-pod');
  const c = conf({ hostVethPrefix: 'pp', hostVethMac: 'EE:EE:EE:00:00:01', allowIPForwarding: 'true', routeLocalnet: true, ipam: hostLocal(['10.78.5.0/24']) });
  const a = attach(host, pod, c, 'opts', { args: 'IgnoreUnknown=1;MAC=0a:58:0a:4e:05:09' });
  const r = cni('ADD', a);
  ok(r);
  const res = r.json as PtpResult;
  const hv = res.interfaces[0]!.name;
  assert.equal(hv, hashedVethName('pp', { containerId: 'opts', ifname: 'eth0' }));
  assert.equal(res.interfaces[0]!.mac, 'ee:ee:ee:00:00:01');
  assert.equal(res.interfaces[1]!.mac, '0a:58:0a:4e:05:09');
  assert.equal(sysctl(host, `net/ipv4/conf/${hv}/route_localnet`), '1');
  assert.equal(sysctl(pod, 'net/ipv4/ip_forward'), '1');
  assert.ok(ping(pod, HOST_ADDR));
  assert.match(pod.exec('ip', ['neigh', 'show', '169.254.1.1']).stdout, /lladdr ee:ee:ee:00:00:01/);
  ok(cni('DEL', a));
  assert.deepEqual(hostVeths(host), []);
  host.destroy();
  pod.destroy();
});

test('DEL is idempotent: no netns, netns gone, interface gone, repeated; IPAM always released', () => {
  const host = makeHost();
  const c = conf({ ipam: hostLocal(['10.78.6.0/24']) });
  // Never added at all, no netns given.
  ok(cni('DEL', attach(host, undefined, c, 'never-added')));
  // Netns deleted before DEL (the host veth dies with it).
  const p1 = makeNetns('cptp-pod');
  ok(cni('ADD', attach(host, p1, c, 'gone-netns')));
  const gonePath = p1.path;
  p1.destroy();
  ok(cni('DEL', attach(host, undefined, c, 'gone-netns', { netns: gonePath })));
  // Netns given but empty: DEL without CNI_NETNS still removes the host veth.
  const p2 = makeNetns('cptp-pod');
  ok(cni('ADD', attach(host, p2, c, 'no-netns-given')));
  ok(cni('DEL', attach(host, undefined, c, 'no-netns-given')));
  assert.deepEqual(podLinks(p2), ['lo']);
  // Interface removed by hand.
  const p3 = makeNetns('cptp-pod');
  ok(cni('ADD', attach(host, p3, c, 'gone-iface')));
  p3.exec('ip', ['link', 'del', 'eth0']);
  ok(cni('DEL', attach(host, p3, c, 'gone-iface')));
  // Repeated.
  ok(cni('DEL', attach(host, p3, c, 'gone-iface')));
  ok(cni('DEL', attach(host, p3, c, 'gone-iface')));
  assert.deepEqual(hostVeths(host), []);
  assert.ok(!routeLines(host).some((l) => l.startsWith('10.78.6.')));
  assert.deepEqual(leases(c.ipam as Record<string, unknown>), []);
  // Another pod's attachment is never touched by a DEL naming a different one.
  const [p4, p5] = [makeNetns('cptp-pod'), makeNetns('cptp-pod')];
  ok(cni('ADD', attach(host, p4, c, 'mine')));
  ok(cni('ADD', attach(host, p5, c, 'theirs')));
  ok(cni('DEL', attach(host, p5, c, 'mine')));
  assert.ok(podLinks(p5).includes('eth0'));
  assert.equal(hostVeths(host).length, 1);
  ok(cni('DEL', attach(host, p5, c, 'theirs')));
  assert.deepEqual(hostVeths(host), []);
  for (const ns of [host, p2, p3, p4, p5]) ns.destroy();
});

test('injected failures leave no link, route or lease behind', () => {
  const host = makeHost();
  const pod = makeNetns('cptp-pod');
  const nothingLeft = (ipam?: Record<string, unknown>) => {
    assert.deepEqual(hostVeths(host), []);
    assert.deepEqual(podLinks(pod), ['lo']);
    assert.deepEqual(routeLines(pod), []);
    if (ipam) assert.deepEqual(leases(ipam), []);
  };
  // IPAM error: the IPAM plugin does not exist.
  const r1 = cni('ADD', attach(host, pod, conf({ ipam: { type: 'no-such-ipam' } }), 'fail-ipam'));
  assert.equal(r1.code, 1);
  assert.match((r1.json as { msg: string }).msg, /failed to find plugin "no-such-ipam"/);
  nothingLeft();
  // Host route that cannot be added: the pod address is already routed out of another interface.
  const one = hostLocal(['10.78.7.0/24'], { ranges: [[{ subnet: '10.78.7.0/24', rangeStart: '10.78.7.9', rangeEnd: '10.78.7.9' }]] });
  host.exec('ip', ['route', 'add', '10.78.7.9/32', 'dev', 'up0']);
  const r2 = cni('ADD', attach(host, pod, conf({ ipam: one }), 'fail-host-route'));
  assert.equal(r2.code, 1, r2.stdout);
  assert.match((r2.json as { msg: string }).msg, /host route to 10\.78\.7\.9\/32 already exists via up0/);
  nothingLeft(one);
  assert.ok(routeLines(host).includes('10.78.7.9 dev up0 scope link'), 'the foreign route is left alone');
  // Container route that cannot be added (the kernel rejects host bits in the destination).
  const badRoute = hostLocal(['10.78.8.0/24'], { routes: [{ dst: '10.200.0.1/16' }] });
  const r3 = cni('ADD', attach(host, pod, conf({ ipam: badRoute }), 'fail-pod-route'));
  assert.equal(r3.code, 1, r3.stdout);
  assert.match((r3.json as { msg: string }).msg, /10\.200\.0\.1\/16/);
  nothingLeft(badRoute);
  assert.ok(!routeLines(host).some((l) => l.startsWith('10.78.8.')));
  host.destroy();
  pod.destroy();
});

test('a host link with our name is replaced only when its mark names the same attachment', () => {
  const host = makeHost();
  const pod = makeNetns('cptp-pod');
  const c = conf({ ipam: hostLocal(['10.78.9.0/24']) });
  // Someone else's link (no mark) under the name this attachment would use: an error, the link untouched.
  const name = hashedVethName('cptp', { containerId: 'clash', ifname: 'eth0' });
  host.exec('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', 'clashpeer']);
  const r = cni('ADD', attach(host, pod, c, 'clash'));
  assert.equal(r.code, 1);
  assert.match((r.json as { msg: string }).msg, new RegExp(`host interface ${name} already exists and is not this attachment's`));
  assert.ok(hostVeths(host).includes(name));
  assert.deepEqual(podLinks(pod), ['lo']);
  assert.deepEqual(leases(c.ipam as Record<string, unknown>), []);
  // A leftover of this very attachment (e.g. after a crash) is removed and the ADD goes on.
  host.exec('ip', ['link', 'set', name, 'alias', markOf('cattle-ptp', 'clash', 'ptpnet')]);
  const oldIndex = links(host).find((l) => l.ifname === name)!.ifindex;
  ok(cni('ADD', attach(host, pod, c, 'clash')));
  const now = links(host).find((l) => l.ifname === name)!;
  assert.notEqual(now.ifindex, oldIndex);
  assert.ok(ping(pod, HOST_ADDR));
  ok(cni('DEL', attach(host, pod, c, 'clash')));
  assert.deepEqual(hostVeths(host), []);
  host.destroy();
  pod.destroy();
});

test('CHECK passes on a fresh attachment and fails clearly when the wiring is broken', () => {
  const host = makeHost();
  const pod = makeNetns('cptp-pod');
  const c = conf({ ipam: hostLocal(['10.78.10.0/24']) });
  const r = cni('ADD', attach(host, pod, c, 'check'));
  ok(r);
  const withPrev = { ...c, prevResult: r.json };
  ok(cni('CHECK', attach(host, pod, withPrev, 'check')));
  const ip = addrOf(r);
  const hv = (r.json as PtpResult).interfaces[0]!.name;
  host.exec('ip', ['route', 'del', `${ip}/32`, 'dev', hv]);
  const bad1 = cni('CHECK', attach(host, pod, withPrev, 'check'));
  assert.equal(bad1.code, 1);
  assert.match((bad1.json as { msg: string }).msg, new RegExp(`host route ${ip.replace(/\./g, '\\.')}/32 dev ${hv} missing`));
  host.exec('ip', ['route', 'add', `${ip}/32`, 'dev', hv, 'scope', 'link']);
  pod.exec('ip', ['route', 'del', 'default']);
  const bad2 = cni('CHECK', attach(host, pod, withPrev, 'check'));
  assert.equal(bad2.code, 1);
  assert.match((bad2.json as { msg: string }).msg, /route 0\.0\.0\.0\/0 via 169\.254\.1\.1 missing/);
  ok(cni('DEL', attach(host, pod, c, 'check')));
  host.destroy();
  pod.destroy();
});

test('GC removes this network\'s veths whose attachment is not valid any more; STATUS reports', () => {
  const host = makeHost();
  const [p1, p2, p3] = [makeNetns('cptp-pod'), makeNetns('cptp-pod'), makeNetns('cptp-pod')];
  // GC is 1.1.0: our IPAM (CNI_ARGS fast path) speaks it, Debian's host-local does not.
  const c = conf({ ipam: { type: 'cattle-ipam', subnetPrefixSize: '/24' } }, '1.1.0');
  const other = { ...c, name: 'otherptp' };
  ok(cni('ADD', attach(host, p1, c, 'keep', { args: 'IPAddress=10.78.11.5/24' })));
  ok(cni('ADD', attach(host, p2, c, 'drop', { args: 'IPAddress=10.78.11.6/24' })));
  ok(cni('ADD', attach(host, p3, other, 'elsewhere', { args: 'IPAddress=10.78.12.7/24' })));
  const gcConf = { ...c, 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] };
  ok(cni('GC', attach(host, undefined, gcConf, 'gc')));
  const marks = links(host).filter((l) => l.ifalias?.startsWith('cattle-cni')).map((l) => l.ifalias).sort();
  assert.deepEqual(marks, [markOf('cattle-ptp', 'elsewhere', 'otherptp'), markOf('cattle-ptp', 'keep', 'ptpnet')].sort());
  assert.ok(!routeLines(host).some((l) => l.startsWith('10.78.11.6 ')));
  ok(cni('STATUS', attach(host, undefined, { ...c, capabilities: { ips: true } }, 'status')));
  ok(cni('DEL', attach(host, p1, c, 'keep', { args: 'IPAddress=10.78.11.5/24' })));
  ok(cni('DEL', attach(host, p3, other, 'elsewhere', { args: 'IPAddress=10.78.12.7/24' })));
  assert.deepEqual(hostVeths(host), []);
  for (const ns of [host, p1, p2, p3]) ns.destroy();
});

test('bad configurations are code-7 errors naming the field', () => {
  const host = makeHost();
  const pod = makeNetns('cptp-pod');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ mtu: 'big' }, /"mtu"/],
    [{ hostVethPrefix: 'muchtoolongprefix' }, /"hostVethPrefix"/],
    [{ hostVethPrefix: 'a/b' }, /"hostVethPrefix"/],
    [{ hostVethMac: 'nope' }, /"hostVethMac"/],
    [{ hostVethMac: '01:00:5e:00:00:01' }, /"hostVethMac"/],
    [{ allowIPForwarding: 'maybe' }, /"allowIPForwarding"/],
    [{ ipam: undefined }, /"ipam"/],
    [{ ipam: {} }, /"ipam"/],
  ];
  for (const [over, re] of cases) {
    const r = cni('ADD', attach(host, pod, conf(over), 'bad-conf'));
    assert.equal(r.code, 1, JSON.stringify(over));
    const err = r.json as { code: number; msg: string };
    assert.equal(err.code, 7, JSON.stringify(err));
    assert.match(err.msg, re);
  }
  assert.deepEqual(hostVeths(host), []);
  assert.deepEqual(podLinks(pod), ['lo']);
  host.destroy();
  pod.destroy();
});

test('20 ADDs at once, then 20 DELs: all succeed, every pod reachable, nothing left', async () => {
  const host = makeHost();
  const pods = Array.from({ length: 20 }, () => makeNetns('cptp-storm'));
  const c = conf({ ipam: hostLocal(['10.78.64.0/24']) });
  const adds = await Promise.all(pods.map((p, i) => cniAsync('ADD', attach(host, p, c, `storm-${i}`))));
  for (const r of adds) ok(r);
  const ips = adds.map((r) => addrOf(r));
  assert.equal(new Set(ips).size, 20);
  assert.equal(hostVeths(host).length, 20);
  assert.ok(ping(pods[0]!, ips[19]!), 'first pod reaches the last');
  const dels = await Promise.all(pods.map((p, i) => cniAsync('DEL', attach(host, p, c, `storm-${i}`))));
  for (const r of dels) ok(r);
  assert.deepEqual(hostVeths(host), []);
  assert.deepEqual(leases(c.ipam as Record<string, unknown>), []);
  for (const ns of [host, ...pods]) ns.destroy();
});

test('conf-examples: each ptp example works', () => {
  const dir = path.join(ROOT, 'conf-examples');
  const host = makeHost();
  for (const file of ['30-cattle-ptp.conflist', '31-cattle-ptp-host-local.conflist']) {
    const raw = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
    const logFile = path.join(dataDir, `${file}.log`);
    const p = { ...raw.plugins[0], name: raw.name, cniVersion: raw.cniVersion } as Record<string, unknown>;
    if (p.logToFile) p.logToFile = logFile;
    const ipam = { ...(p.ipam as Record<string, unknown>) };
    if (ipam.type === 'host-local') ipam.dataDir = path.join(dataDir, `ex-${file}`);
    p.ipam = ipam;
    const pods = [makeNetns('cptp-pod'), makeNetns('cptp-pod')];
    const ours = ipam.type === 'cattle-ipam';
    const argsOf = (i: number) => (ours ? `IgnoreUnknown=1;IPAddress=10.42.7.${10 + i}` : undefined);
    const id = (i: number) => `ex-${file.replace(/[^a-z0-9]/g, '')}-${i}`;
    const results = pods.map((pod, i) => {
      const r = cni('ADD', { plugin: String(p.type), host, conf: p, containerId: id(i), netns: pod.path, args: argsOf(i) });
      ok(r);
      return r;
    });
    assert.ok(ping(pods[0]!, addrOf(results[1]!)), `${file}: pod to pod`);
    assert.ok(ping(pods[0]!, HOST_ADDR), `${file}: pod to host`);
    if (ours) {
      assert.equal((results[0]!.json as PtpResult).ips[0]!.address, '10.42.7.10/32');
      assert.ok(routeLines(pods[0]!).includes(`${METADATA} via 169.254.1.1 dev eth0`));
      assert.ok(fs.readFileSync(logFile, 'utf8').includes('"outcome":"ok"'));
    } else {
      assert.ok(ping(pods[0]!, addrOf(results[1]!, 6)), `${file}: pod to pod over IPv6`);
    }
    pods.forEach((pod, i) => ok(cni('DEL', { plugin: String(p.type), host, conf: p, containerId: id(i), netns: pod.path, args: argsOf(i) })));
    for (const pod of pods) pod.destroy();
  }
  assert.deepEqual(hostVeths(host), []);
  host.destroy();
});

function nftTables(ns: TestNetns): string[] {
  const out = JSON.parse(ns.exec('nft', ['-j', 'list', 'tables']).stdout) as { nftables: { table?: { family: string; name: string } }[] };
  return out.nftables.flatMap((o) => (o.table ? [`${o.table.family} ${o.table.name}`] : []));
}

test('ipMasq (iptables and nftables backends): the pod reaches an upstream that has no route back; DEL and GC leave nothing', () => {
  const UPSTREAM = '192.168.252.2';
  for (const backend of ['nftables', 'iptables'] as const) {
    const host = makeHost();
    // Replies come back in on the uplink: it forwards, as on any routed host (ptp turns forwarding on only on its veths).
    host.exec('sysctl', ['-qw', 'net.ipv4.conf.up0.forwarding=1']);
    const [p1, p2, p3] = [makeNetns('cptp-pod'), makeNetns('cptp-pod'), makeNetns('cptp-pod')];
    const plain = conf({ ipam: { type: 'cattle-ipam', subnetPrefixSize: '/24' } }, '1.1.0');
    const masq = { ...plain, ipMasq: true, ipMasqBackend: backend };
    ok(cni('ADD', attach(host, p1, plain, `nomasq-${backend}`, { args: 'IPAddress=10.78.40.4/24' })));
    assert.ok(!ping(p1, UPSTREAM), 'without ipMasq the upstream cannot answer');
    const r2 = cni('ADD', attach(host, p2, masq, `masq-a-${backend}`, { args: 'IPAddress=10.78.40.5/24' }));
    ok(r2);
    ok(cni('ADD', attach(host, p3, masq, `masq-b-${backend}`, { args: 'IPAddress=10.78.40.6/24' })));
    assert.ok(ping(p2, UPSTREAM), `${backend}: masqueraded`);
    assert.ok(ping(p3, UPSTREAM), `${backend}: masqueraded`);
    assert.ok(ping(p2, '10.78.40.6'), 'pod to pod is not masqueraded and still works');
    ok(cni('CHECK', attach(host, p2, { ...masq, prevResult: r2.json }, `masq-a-${backend}`, { args: 'IPAddress=10.78.40.5/24' })));
    if (backend === 'nftables') {
      const table = JSON.parse(host.exec('nft', ['-j', 'list', 'set', 'inet', 'cattle_cni_masq', 'pods4']).stdout) as { nftables: { set?: { elem?: { elem: { val: string } }[] } }[] };
      const elems = table.nftables.find((o) => o.set)!.set!.elem!.map((e) => e.elem.val).sort();
      assert.deepEqual(elems, ['10.78.40.5', '10.78.40.6'], 'one table, a set of pod addresses');
      assert.doesNotMatch(host.exec('iptables', ['-t', 'nat', '-S']).stdout, /CCNI-/);
    } else {
      assert.deepEqual(nftTables(host).filter((t) => t.includes('cattle')), []);
    }
    // GC: masq-b is not valid any more; masq-a (and the unmasqueraded pod) stay.
    const valid = [`nomasq-${backend}`, `masq-a-${backend}`].map((id) => ({ containerID: id, ifname: 'eth0' }));
    ok(cni('GC', attach(host, undefined, { ...masq, 'cni.dev/valid-attachments': valid }, 'gc')));
    assert.ok(ping(p2, UPSTREAM), 'GC kept the valid pod\'s masquerade');
    ok(cni('DEL', attach(host, p2, masq, `masq-a-${backend}`, { args: 'IPAddress=10.78.40.5/24' })));
    ok(cni('DEL', attach(host, p1, plain, `nomasq-${backend}`, { args: 'IPAddress=10.78.40.4/24' })));
    assert.deepEqual(nftTables(host).filter((t) => t.includes('cattle')), [], 'the table went with its last pod');
    assert.doesNotMatch(host.exec('iptables', ['-t', 'nat', '-S']).stdout, /CCNI-/);
    assert.deepEqual(hostVeths(host), []);
    for (const ns of [host, p1, p2, p3]) ns.destroy();
  }
});

test('DNS precedence, route attributes (CNI 1.1) and MTU from the default-route interface, as for the bridge', () => {
  const host = makeHost();
  host.exec('ip', ['link', 'set', 'up0', 'mtu', '1420']);
  const pod = makeNetns('cptp-pod');
  const routes = [{ dst: '10.210.0.0/16', mtu: 1300, advmss: 1200, priority: 9 }, { dst: '10.211.0.0/16', table: 4321 }];
  const c = conf({ dns: { nameservers: ['10.78.41.99'] }, ipam: { type: 'cattle-ipam', subnetPrefixSize: '/24', routes } }, '1.1.0');
  const args = 'IPAddress=10.78.41.5/24';
  const r = cni('ADD', attach(host, pod, c, 'ptp-attrs', { args }));
  ok(r);
  const res = r.json as PtpResult & { dns?: object };
  assert.deepEqual(res.dns, { nameservers: ['10.78.41.99'] });
  assert.deepEqual(res.routes.slice(1), [
    { dst: '10.210.0.0/16', gw: '169.254.1.1', mtu: 1300, advmss: 1200, priority: 9 },
    { dst: '10.211.0.0/16', gw: '169.254.1.1', table: 4321 },
  ]);
  assert.equal(links(pod).find((l) => l.ifname === 'eth0')!.mtu, 1420);
  assert.equal(res.interfaces[1]!.mtu, 1420);
  const r1 = pod.ipJson<{ dst: string; metric?: number; metrics?: object[] }[]>('-4', 'route', 'show').find((x) => x.dst === '10.210.0.0/16')!;
  assert.deepEqual([r1.metric, r1.metrics], [9, [{ mtu: 1300, advmss: 1200 }]]);
  assert.equal(pod.ipJson<{ dst: string }[]>('-4', 'route', 'show', 'table', '4321')[0]!.dst, '10.211.0.0/16');
  ok(cni('CHECK', attach(host, pod, { ...c, prevResult: r.json }, 'ptp-attrs', { args })));
  pod.exec('ip', ['route', 'del', '10.211.0.0/16', 'table', '4321']);
  const bad = cni('CHECK', attach(host, pod, { ...c, prevResult: r.json }, 'ptp-attrs', { args }));
  assert.match((bad.json as { msg: string }).msg, /route 10\.211\.0\.0\/16 via 169\.254\.1\.1 table 4321 missing/);
  ok(cni('DEL', attach(host, pod, c, 'ptp-attrs', { args })));
  host.destroy();
  pod.destroy();
});

test('left nothing behind in the root namespace', () => {
  cleanupAll(); // namespaces of failed tests; what the plugin made in the root netns stays visible
  assert.deepEqual(rootLinkNames(), linksBefore);
  // Other test files may be running at the same time with their own namespaces: judge only ours.
  const ours = (n: string) => n.startsWith('cptp-');
  assert.deepEqual(netnsNames().filter(ours), nsBefore.filter(ours));
});
