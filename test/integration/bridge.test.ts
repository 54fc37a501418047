// cattle-bridge through the built executable, in fresh namespaces: a test
// "host" netns runs the plugin, "pod" netns are the containers.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { assertCurrentShape, assertOk, type Attach, cni, cniAsync, hostLocalIpam, links, markOf, ping, tempDir, vethNames } from '../helpers/cni.ts';
import { cleanupAll, makeNetns, netnsNames, ROOT, rootLinkNames, type TestNetns } from '../helpers/harness.ts';

let linksBefore: string[];
let nsBefore: string[];
let dataDir: string;

before(() => {
  linksBefore = rootLinkNames();
  nsBefore = netnsNames();
  dataDir = tempDir('ccni-hostlocal-');
});
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const hostLocalRanges = hostLocalIpam(() => dataDir);
function hostLocal(subnet = '10.77.0.0/24', extra: object = {}): object {
  return hostLocalRanges([subnet], extra);
}

// Debian's host-local (1.1.1) speaks up to 1.0.0.
function conf(over: Record<string, unknown> = {}, version = '1.0.0'): Record<string, unknown> {
  return { cniVersion: version, name: 'testnet', type: 'cattle-bridge', bridge: 'cbr0', isGateway: true, ipam: hostLocal(), ...over };
}

function attach(host: TestNetns, pod: TestNetns | undefined, c: object, id: string, more: Partial<Attach> = {}): Attach {
  return { plugin: 'cattle-bridge', host, conf: c, containerId: id, netns: pod?.path, ...more };
}

const ok = assertOk;
const hostVeths = (host: TestNetns) => vethNames(host);

test('two containers on one bridge reach each other and the gateway; MTU and MAC as configured', () => {
  const host = makeNetns('cbr-host');
  const [p1, p2] = [makeNetns('cbr-pod'), makeNetns('cbr-pod')];
  const c = conf({ mtu: 1400, linkMTUOverhead: 50, isDefaultGateway: true, ipam: hostLocal('10.77.1.0/24') });
  const r1 = cni('ADD', attach(host, p1, c, 'pod-one', { args: 'IgnoreUnknown=1;MAC=0a:58:0a:4d:01:63' }));
  ok(r1);
  const r2 = cni('ADD', attach(host, p2, c, 'pod-two'));
  ok(r2);
  const res1 = r1.json as { interfaces: { name: string; mac: string; mtu?: number; sandbox?: string }[]; ips: { address: string; gateway: string; interface: number }[]; routes: { dst: string; gw: string }[] };
  const res2 = r2.json as typeof res1;
  assert.equal(res1.interfaces.length, 3);
  assert.equal(res1.interfaces[0]!.name, 'cbr0');
  assert.equal(res1.interfaces[2]!.name, 'eth0');
  assert.equal(res1.interfaces[2]!.sandbox, p1.path);
  assert.equal(res1.interfaces[2]!.mac, '0a:58:0a:4d:01:63');
  assert.equal(res1.ips[0]!.interface, 2);
  assert.equal(res1.ips[0]!.gateway, '10.77.1.1');
  assert.deepEqual(res1.routes, [{ dst: '0.0.0.0/0', gw: '10.77.1.1' }]);

  const eth0 = links(p1).find((l) => l.ifname === 'eth0')!;
  assert.equal(eth0.mtu, 1350);
  assert.equal(eth0.address, '0a:58:0a:4d:01:63');
  const hostSide = links(host).find((l) => l.ifname === res1.interfaces[1]!.name)!;
  assert.equal(hostSide.mtu, 1400);
  assert.equal(hostSide.master, 'cbr0');
  assert.equal(hostSide.ifalias, markOf('cattle-bridge', 'pod-one', 'testnet'));
  const bridgeAddrs = host.ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>('addr', 'show', 'cbr0')[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
  assert.ok(bridgeAddrs.includes('10.77.1.1/24'), bridgeAddrs.join(','));

  const ip2 = res2.ips[0]!.address.split('/')[0]!;
  assert.ok(ping(p1, ip2), 'pod one pings pod two');
  assert.ok(ping(p2, res1.ips[0]!.address.split('/')[0]!), 'pod two pings pod one');
  assert.ok(ping(p1, '10.77.1.1'), 'pod pings the gateway');

  ok(cni('DEL', attach(host, p1, c, 'pod-one')));
  ok(cni('DEL', attach(host, p2, c, 'pod-two')));
  assert.deepEqual(hostVeths(host), []);
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('every cniVersion from 0.1.0 to 1.1.0 returns its own result shape', () => {
  const host = makeNetns('cbr-host');
  for (const version of ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    const pod = makeNetns('cbr-pod');
    // host-local 1.1.1 stops at 1.0.0: 1.1.0 goes through our IPAM (CNI_ARGS fast path).
    const ours = version === '1.1.0';
    const ipam = ours ? { type: 'cattle-ipam', subnetPrefixSize: '/24' } : hostLocal('10.77.2.0/24');
    const c = conf({ isDefaultGateway: true, ipam }, version);
    const args = ours ? 'IgnoreUnknown=1;IPAddress=10.77.2.200/24' : undefined;
    const r = cni('ADD', attach(host, pod, c, `v-${version}`, { args }));
    ok(r);
    const res = r.json as Record<string, unknown>;
    assert.equal(res.cniVersion, version);
    if (version === '0.1.0' || version === '0.2.0') {
      const ip4 = res.ip4 as { ip: string; gateway: string; routes: unknown[] };
      assert.match(ip4.ip, /^10\.77\.2\.\d+\/24$/);
      assert.equal(ip4.gateway, '10.77.2.1');
      assert.deepEqual(ip4.routes, [{ dst: '0.0.0.0/0', gw: '10.77.2.1' }]);
      assert.equal(res.interfaces, undefined);
      assert.deepEqual(res.dns, {});
    } else {
      assertCurrentShape(res, version, 2);
    }
    ok(cni('DEL', attach(host, pod, c, `v-${version}`, { args })));
    pod.destroy();
  }
  assert.deepEqual(hostVeths(host), []);
  host.destroy();
});

test('re-ADD of the same attachment returns the same result and changes nothing', () => {
  const host = makeNetns('cbr-host');
  const pod = makeNetns('cbr-pod');
  const c = conf({ ipam: hostLocal('10.77.3.0/24') });
  const a = attach(host, pod, c, 'again');
  const first = cni('ADD', a);
  ok(first);
  const linksAfterFirst = JSON.stringify(links(host).map((l) => [l.ifname, l.ifindex]));
  const second = cni('ADD', a);
  ok(second);
  assert.deepEqual(second.json, first.json);
  assert.equal(JSON.stringify(links(host).map((l) => [l.ifname, l.ifindex])), linksAfterFirst);
  ok(cni('DEL', a));
  host.destroy();
  pod.destroy();
});

test('hairpin, promisc and vlan show on the bridge and its port', (t) => {
  const host = makeNetns('cbr-host');
  const [p1, p2, p3] = [makeNetns('cbr-pod'), makeNetns('cbr-pod'), makeNetns('cbr-pod')];
  const hair = conf({ bridge: 'cbrh', hairpinMode: true, ipam: hostLocal('10.77.4.0/24') });
  const r1 = cni('ADD', attach(host, p1, hair, 'hairpin'));
  ok(r1);
  const port = links(host).find((l) => l.ifalias === markOf('cattle-bridge', 'hairpin', 'testnet'))!;
  assert.equal(port.linkinfo?.info_slave_data?.hairpin, true);

  const promisc = conf({ bridge: 'cbrp', promiscMode: true, ipam: hostLocal('10.77.5.0/24') });
  ok(cni('ADD', attach(host, p2, promisc, 'promisc')));
  assert.ok(links(host).find((l) => l.ifname === 'cbrp')!.flags.includes('PROMISC'));

  // A VLAN port has no gateway on the bridge (vlan + isGateway is refused: see below).
  const vlan = conf({ bridge: 'cbrv', vlan: 42, isGateway: false, ipam: hostLocal('10.77.6.0/24') });
  if (!kernelHasVlanFiltering()) {
    // Some kernels are built without CONFIG_BRIDGE_VLAN_FILTERING: then a clear code-7 error.
    const r = cni('ADD', attach(host, p3, vlan, 'vlan'));
    assert.equal(r.code, 1);
    assert.equal((r.json as { code: number }).code, 7);
    assert.match((r.json as { msg: string }).msg, /vlan 42 needs bridge VLAN filtering/);
    assert.deepEqual(hostVeths(host).length, 2, 'nothing left of the failed ADD');
    for (const [c, id, p] of [[hair, 'hairpin', p1], [promisc, 'promisc', p2]] as const) ok(cni('DEL', attach(host, p, c, id)));
    for (const ns of [host, p1, p2, p3]) ns.destroy();
    t.diagnostic('kernel without bridge VLAN filtering: checked the error path only');
    return;
  }
  ok(cni('ADD', attach(host, p3, vlan, 'vlan')));
  const vport = links(host).find((l) => l.ifalias === markOf('cattle-bridge', 'vlan', 'testnet'))!;
  const vlans = host.ipJson<{ ifname: string; vlans: { vlan: number; flags?: string[] }[] }[]>('-d', 'link', 'show', 'cbrv');
  assert.equal((vlans[0] as unknown as IpLinkBridge).linkinfo.info_data.vlan_filtering, 1);
  const portVlans = JSON.parse(host.exec('bridge', ['-j', 'vlan', 'show', 'dev', vport.ifname]).stdout) as { ifname: string; vlans: { vlan: number; flags?: string[] }[] }[];
  assert.deepEqual(portVlans[0]!.vlans.map((v) => [v.vlan, [...(v.flags ?? [])].sort()]), [[42, ['Egress Untagged', 'PVID']]]);

  for (const [c, id, p] of [[hair, 'hairpin', p1], [promisc, 'promisc', p2], [vlan, 'vlan', p3]] as const) ok(cni('DEL', attach(host, p, c, id)));
  for (const ns of [host, p1, p2, p3]) ns.destroy();
});
interface IpLinkBridge { linkinfo: { info_data: { vlan_filtering: number } } }

function kernelHasVlanFiltering(): boolean {
  const probe = makeNetns('cbr-probe');
  try {
    return probe.exec('ip', ['link', 'add', 'vfprobe', 'type', 'bridge', 'vlan_filtering', '1'], { allowFail: true }).status === 0;
  } finally {
    probe.destroy();
  }
}

test('ipMasq adds a masquerade chain for the pod and DEL removes it', () => {
  const host = makeNetns('cbr-host');
  const pod = makeNetns('cbr-pod');
  const c = conf({ ipMasq: true, ipam: hostLocal('10.77.7.0/24') });
  const r = cni('ADD', attach(host, pod, c, 'masq'));
  ok(r);
  const ip = (r.json as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
  const rules = host.exec('iptables', ['-t', 'nat', '-S']).stdout;
  assert.match(rules, new RegExp(`-A POSTROUTING -s ${ip.replace(/\./g, '\\.')}/32 .*-j CCNI-`));
  assert.match(rules, /-A CCNI-\w+ ! -d 224\.0\.0\.0\/4 .*-j MASQUERADE/);
  ok(cni('CHECK', attach(host, pod, { ...c, prevResult: r.json }, 'masq')));
  ok(cni('DEL', attach(host, pod, c, 'masq')));
  assert.doesNotMatch(host.exec('iptables', ['-t', 'nat', '-S']).stdout, /CCNI-/);
  host.destroy();
  pod.destroy();
});

test('DEL is idempotent: no netns, netns gone, interface gone, bridge gone, repeated', () => {
  const host = makeNetns('cbr-host');
  const c = conf({ ipam: hostLocal('10.77.8.0/24') });
  // Never added at all, no netns given.
  ok(cni('DEL', attach(host, undefined, c, 'never-added')));
  // Netns deleted before DEL.
  const p1 = makeNetns('cbr-pod');
  ok(cni('ADD', attach(host, p1, c, 'gone-netns')));
  const gonePath = p1.path;
  p1.destroy();
  ok(cni('DEL', attach(host, undefined, c, 'gone-netns', { netns: gonePath })));
  // Interface removed by hand.
  const p2 = makeNetns('cbr-pod');
  ok(cni('ADD', attach(host, p2, c, 'gone-iface')));
  p2.exec('ip', ['link', 'del', 'eth0']);
  ok(cni('DEL', attach(host, p2, c, 'gone-iface')));
  // Bridge removed by hand.
  const p3 = makeNetns('cbr-pod');
  ok(cni('ADD', attach(host, p3, c, 'gone-bridge')));
  host.exec('ip', ['link', 'del', 'cbr0']);
  ok(cni('DEL', attach(host, p3, c, 'gone-bridge')));
  // Repeated.
  ok(cni('DEL', attach(host, p3, c, 'gone-bridge')));
  ok(cni('DEL', attach(host, p3, c, 'gone-bridge')));
  assert.deepEqual(hostVeths(host), []);
  // host-local released every lease.
  const leases = fs.readdirSync((c.ipam as { dataDir: string }).dataDir + '/testnet').filter((f) => /^\d/.test(f));
  assert.deepEqual(leases, []);
  host.destroy();
  p2.destroy();
  p3.destroy();
});

test('DEL removes only its own interface, never another pod\'s', () => {
  const host = makeNetns('cbr-host');
  const [p1, p2] = [makeNetns('cbr-pod'), makeNetns('cbr-pod')];
  const c = conf({ ipam: hostLocal('10.77.9.0/24') });
  ok(cni('ADD', attach(host, p1, c, 'mine')));
  ok(cni('ADD', attach(host, p2, c, 'theirs')));
  // DEL for "mine" with the other pod's netns must not touch the other pod.
  ok(cni('DEL', attach(host, p2, c, 'mine')));
  assert.ok(links(p2).some((l) => l.ifname === 'eth0'));
  assert.equal(hostVeths(host).length, 1);
  ok(cni('DEL', attach(host, p2, c, 'theirs')));
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('CHECK passes on a fresh attachment and fails clearly after a route is removed by hand', () => {
  const host = makeNetns('cbr-host');
  const pod = makeNetns('cbr-pod');
  const c = conf({ isDefaultGateway: true, ipam: hostLocal('10.77.10.0/24') });
  const r = cni('ADD', attach(host, pod, c, 'check'));
  ok(r);
  const withPrev = { ...c, prevResult: r.json };
  ok(cni('CHECK', attach(host, pod, withPrev, 'check')));
  pod.exec('ip', ['route', 'del', 'default']);
  const bad = cni('CHECK', attach(host, pod, withPrev, 'check'));
  assert.equal(bad.code, 1);
  assert.match((bad.json as { msg: string }).msg, /route 0\.0\.0\.0\/0 via 10\.77\.10\.1 missing/);
  ok(cni('DEL', attach(host, pod, c, 'check')));
  host.destroy();
  pod.destroy();
});

test('injected failures leave no link, lease, route or rule behind', () => {
  const host = makeNetns('cbr-host');
  const pod = makeNetns('cbr-pod');
  // IPAM error: the IPAM plugin does not exist.
  const noIpam = conf({ ipam: { type: 'no-such-ipam' } });
  const r1 = cni('ADD', attach(host, pod, noIpam, 'fail-ipam'));
  assert.equal(r1.code, 1);
  assert.match((r1.json as { msg: string }).msg, /failed to find plugin "no-such-ipam"/);
  assert.deepEqual(hostVeths(host), []);
  // Route that cannot be added, after IPAM allocated and masquerade planned.
  const ipam = hostLocal('10.77.11.0/24', { routes: [{ dst: '10.200.0.0/16', gw: '192.0.2.77' }] });
  const badRoute = conf({ ipMasq: true, ipam });
  const r2 = cni('ADD', attach(host, pod, badRoute, 'fail-route'));
  assert.equal(r2.code, 1, r2.stdout);
  assert.deepEqual(hostVeths(host), []);
  assert.deepEqual(links(pod).map((l) => l.ifname), ['lo']);
  const leaseDir = path.join((ipam as { dataDir: string }).dataDir, 'testnet');
  assert.deepEqual(fs.existsSync(leaseDir) ? fs.readdirSync(leaseDir).filter((f) => /^\d/.test(f)) : [], []);
  assert.doesNotMatch(host.exec('iptables', ['-t', 'nat', '-S']).stdout, /CCNI-/);
  // Address already used: the bridge has another address in the pod subnet.
  host.exec('ip', ['link', 'add', 'cbrx', 'type', 'bridge']);
  host.exec('ip', ['addr', 'add', '10.77.12.254/24', 'dev', 'cbrx']);
  const clash = conf({ bridge: 'cbrx', ipam: hostLocal('10.77.12.0/24') });
  const r3 = cni('ADD', attach(host, pod, clash, 'fail-addr'));
  assert.equal(r3.code, 1);
  assert.match((r3.json as { msg: string }).msg, /already has an IP address different from 10\.77\.12\.1\/24/);
  assert.deepEqual(hostVeths(host), []);
  assert.deepEqual(links(pod).map((l) => l.ifname), ['lo']);
  host.destroy();
  pod.destroy();
});

test('a link of the bridge name that is not a bridge is a clear error', () => {
  const host = makeNetns('cbr-host');
  const pod = makeNetns('cbr-pod');
  host.exec('ip', ['link', 'add', 'cbr0', 'type', 'veth', 'peer', 'name', 'cbr0p']);
  const r = cni('ADD', attach(host, pod, conf(), 'not-bridge'));
  assert.equal(r.code, 1);
  assert.deepEqual(r.json, { cniVersion: '1.0.0', code: 7, msg: '"cbr0" already exists but is not a bridge', details: 'it is a veth link' });
  host.destroy();
  pod.destroy();
});

test('bad configurations are code-7 errors naming the field', () => {
  const host = makeNetns('cbr-host');
  const pod = makeNetns('cbr-pod');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ mtu: 'big' }, /"mtu"/],
    [{ vlan: 5000 }, /"vlan"/],
    [{ hairpinMode: true, promiscMode: true }, /hairpinMode and promiscMode/],
    [{ bridgeSubnet: 'nope' }, /"bridgeSubnet"/],
    // Settings without a type: a mistake, not an L2-only network (those are bridge-l2.test.ts's).
    [{ ipam: { subnet: '10.77.99.0/24' } }, /"ipam"/],
    [{ disableContainerInterface: true }, /IPAM cannot be used with disableContainerInterface/],
  ];
  for (const [over, re] of cases) {
    const r = cni('ADD', attach(host, pod, conf(over), 'bad-conf'));
    assert.equal(r.code, 1, JSON.stringify(over));
    const err = r.json as { code: number; msg: string };
    assert.equal(err.code, 7, JSON.stringify(err));
    assert.match(err.msg, re);
  }
  assert.deepEqual(hostVeths(host), []);
  host.destroy();
  pod.destroy();
});

test('GC removes veths whose attachment is not valid any more; STATUS reports', () => {
  const host = makeNetns('cbr-host');
  const [p1, p2] = [makeNetns('cbr-pod'), makeNetns('cbr-pod')];
  // GC is 1.1.0: our IPAM (CNI_ARGS fast path) speaks it, Debian's host-local does not.
  const c = conf({ ipam: { type: 'cattle-ipam', subnetPrefixSize: '/24' } }, '1.1.0');
  ok(cni('ADD', attach(host, p1, c, 'keep', { args: 'IPAddress=10.77.13.5/24' })));
  ok(cni('ADD', attach(host, p2, c, 'drop', { args: 'IPAddress=10.77.13.6/24' })));
  const gcConf = { ...c, 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] };
  ok(cni('GC', attach(host, undefined, gcConf, 'gc')));
  assert.deepEqual(links(host).filter((l) => l.ifalias?.startsWith('cattle-cni')).map((l) => l.ifalias), [markOf('cattle-bridge', 'keep', 'testnet')]);
  // STATUS asks IPAM too: cattle-ipam without a reachable metadata service cannot serve ADD.
  const st = cni('STATUS', attach(host, undefined, c, 'status'));
  assert.equal(st.code, 1);
  assert.equal((st.json as { code: number }).code, 50);
  // A non-bridge link under the bridge's name: STATUS says ADD would fail.
  host.exec('ip', ['link', 'add', 'cbrz', 'type', 'veth', 'peer', 'name', 'cbrzp']);
  const st2 = cni('STATUS', attach(host, undefined, { ...c, bridge: 'cbrz' }, 'status'));
  assert.deepEqual([(st2.json as { code: number }).code, (st2.json as { msg: string }).msg], [50, '"cbrz" exists but is not a bridge']);
  ok(cni('DEL', attach(host, p1, c, 'keep', { args: 'IPAddress=10.77.13.5/24' })));
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('50 ADDs at once on a host without the bridge, then 50 DELs: all succeed, nothing left', async () => {
  const host = makeNetns('cbr-host');
  const pods = Array.from({ length: 50 }, () => makeNetns('cbr-storm'));
  const c = conf({ bridge: 'cbrs', ipam: hostLocal('10.77.64.0/24') });
  const adds = await Promise.all(pods.map((p, i) => cniAsync('ADD', attach(host, p, c, `storm-${i}`))));
  for (const r of adds) ok(r);
  const ips = new Set(adds.map((r) => (r.json as { ips: { address: string }[] }).ips[0]!.address));
  const veths = new Set(adds.map((r) => (r.json as { interfaces: { name: string }[] }).interfaces[1]!.name));
  assert.equal(ips.size, 50);
  assert.equal(veths.size, 50);
  assert.equal(links(host).filter((l) => l.master === 'cbrs').length, 50);
  const dels = await Promise.all(pods.map((p, i) => cniAsync('DEL', attach(host, p, c, `storm-${i}`))));
  for (const r of dels) ok(r);
  assert.deepEqual(hostVeths(host), []);
  for (const ns of [host, ...pods]) ns.destroy();
});

test('conf-examples: each bridge example works', () => {
  const dir = path.join(ROOT, 'conf-examples');
  const host = makeNetns('cbr-host');
  for (const file of ['10-cattle-bridge.conflist', '20-cattle-bridge-gateway-masq.conflist', '21-cattle-bridge-dualstack-isolated.conflist', '10-rancher.conf']) {
    const raw = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;
    const isList = Array.isArray(raw.plugins);
    const plugin = isList
      ? { ...(raw.plugins as Record<string, unknown>[])[0], name: raw.name, cniVersion: raw.cniVersion }
      : raw;
    const pod = makeNetns('cbr-pod');
    const logFile = path.join(dataDir, `${file}.log`);
    const p = { ...plugin, logToFile: plugin.logToFile ? logFile : undefined } as Record<string, unknown>;
    const ipam = p.ipam as Record<string, unknown>;
    if (ipam.type === 'host-local') ipam.dataDir = path.join(dataDir, `ex-${file}`);
    const args = ipam.type === 'host-local' ? undefined : 'IgnoreUnknown=1;IPAddress=10.42.7.9';
    const r = cni('ADD', { plugin: String(p.type), host, conf: p, containerId: `ex-${file.replace(/[^a-z0-9]/g, '')}`, netns: pod.path, args });
    ok(r);
    if (file === '10-rancher.conf') {
      assert.deepEqual(r.json, { cniVersion: '0.1.0', ip4: { ip: '10.42.7.9/16', gateway: '10.42.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.42.0.1' }] }, dns: {} });
      assert.equal(links(pod).find((l) => l.ifname === 'eth0')!.mtu, 1500 - 98);
      assert.ok(ping(pod, '10.42.0.1'));
      assert.ok(fs.readFileSync(logFile, 'utf8').includes('"outcome":"ok"'));
    }
    if (file.startsWith('21-')) {
      assert.deepEqual((r.json as { dns?: object }).dns, { nameservers: ['10.91.0.1'], search: ['cluster.local'] });
      assert.deepEqual(nftTables(host).filter((t) => t.includes('cattle')).sort(), ['bridge cattle_cni_macspoof', 'inet cattle_cni_masq']);
    }
    ok(cni('DEL', { plugin: String(p.type), host, conf: p, containerId: `ex-${file.replace(/[^a-z0-9]/g, '')}`, netns: pod.path, args }));
    if (file.startsWith('21-')) assert.deepEqual(nftTables(host).filter((t) => t.includes('cattle')), [], 'DEL removed our nftables tables');
    pod.destroy();
  }
  assert.deepEqual(hostVeths(host), []);
  host.destroy();
});

test('logToFile: JSON lines per step; isDebugLevel adds every netlink request; errors carry their details', () => {
  const host = makeNetns('cbr-host');
  const pod = makeNetns('cbr-pod');
  const logFile = path.join(dataDir, 'debug.log');
  const c = conf({ logToFile: logFile, isDebugLevel: 'true', ipam: hostLocal('10.77.14.0/24') });
  ok(cni('ADD', attach(host, pod, c, 'logged')));
  const records = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const r of records) {
    for (const key of ['time', 'plugin', 'command', 'containerId', 'ifname', 'step']) assert.ok(key in r, `${key} in ${JSON.stringify(r)}`);
  }
  assert.ok(records.some((r) => r.step === 'create veth pair' && typeof r.durationMs === 'number'));
  assert.ok(records.some((r) => r.step === 'netlink' && /^create veth /.test(String(r.op))), 'netlink requests logged');
  const done = records.find((r) => r.step === 'done')!;
  assert.equal(done.outcome, 'ok');
  assert.equal(done.command, 'ADD');
  // A failing ADD (an IPv4 route that cannot be added) logs the error.
  fs.rmSync(logFile);
  const bad = conf({ logToFile: logFile, ipam: hostLocal('10.77.15.0/24', { routes: [{ dst: '10.201.0.0/16', gw: '192.0.2.99' }] }) });
  const r = cni('ADD', attach(host, pod, bad, 'logged-fail', { ifname: 'eth1' }));
  assert.equal(r.code, 1);
  const last = JSON.parse(fs.readFileSync(logFile, 'utf8').trim().split('\n').pop()!) as Record<string, unknown>;
  assert.equal(last.outcome, 'error');
  assert.equal(last.error, (r.json as { msg: string; details?: string }).details ? `${(r.json as { msg: string }).msg}: ${(r.json as { details: string }).details}` : (r.json as { msg: string }).msg);
  ok(cni('DEL', attach(host, pod, c, 'logged')));
  host.destroy();
  pod.destroy();
});

test('DNS: the netconf\'s dns wins when it sets anything, else IPAM\'s (as the reference)', () => {
  const host = makeNetns('cbr-host');
  const resolv = path.join(dataDir, 'resolv-bridge.conf');
  fs.writeFileSync(resolv, 'nameserver 10.77.30.53\nsearch ipam.example\n');
  const netconfDns = { nameservers: ['10.77.30.99'], search: ['conf.example'] };
  const cases: [string, Record<string, unknown>, object, object | undefined][] = [
    ['both', { dns: netconfDns }, { resolvConf: resolv }, netconfDns],
    ['empty-netconf', { dns: { nameservers: [] } }, { resolvConf: resolv }, { nameservers: ['10.77.30.53'], search: ['ipam.example'] }],
    ['netconf-only', { dns: netconfDns }, {}, netconfDns],
    ['none', {}, {}, undefined],
  ];
  for (const [id, over, ipamExtra, want] of cases) {
    const pod = makeNetns('cbr-pod');
    const c = conf({ ...over, ipam: hostLocal('10.77.30.0/24', ipamExtra) });
    const r = cni('ADD', attach(host, pod, c, `dns-${id}`));
    ok(r);
    assert.deepEqual((r.json as { dns?: object }).dns, want, id);
    ok(cni('DEL', attach(host, pod, c, `dns-${id}`)));
    pod.destroy();
  }
  host.destroy();
});

test('IPv6: the bridge gateway answers a ping within 200 ms right after ADD (dual-stack, isGateway, fresh bridge)', () => {
  for (let i = 0; i < 4; i++) {
    const host = makeNetns('cbr-host');
    const pod = makeNetns('cbr-pod');
    const c = conf({ bridge: 'cbr6', ipam: hostLocalRanges(['10.77.31.0/24', 'fd77:31::/64']) });
    const r = cni('ADD', attach(host, pod, c, `v6gw-${i}`));
    ok(r);
    const gw6 = (r.json as { ips: { address: string; gateway?: string }[] }).ips.find((ip) => ip.address.includes(':'))!.gateway!;
    assert.equal(gw6, 'fd77:31::1');
    // At once, one echo, 200 ms: neither the gateway nor the pod address may still be tentative.
    const p = pod.exec('ping', ['-6', '-c', '1', '-W', '0.2', gw6], { allowFail: true });
    assert.equal(p.status, 0, `ping -6 ${gw6} right after ADD (round ${i}): ${p.stdout}${p.stderr}`);
    const flags = host.ipJson<{ addr_info: { local: string; tentative?: boolean; nodad?: boolean }[] }[]>('-6', 'addr', 'show', 'dev', 'cbr6')[0]!.addr_info.find((a) => a.local === gw6)!;
    assert.equal(flags.tentative, undefined);
    ok(cni('DEL', attach(host, pod, c, `v6gw-${i}`)));
    host.destroy();
    pod.destroy();
  }
});

test('enabledad: the container\'s IPv6 address has settled (not tentative) when ADD returns', () => {
  const host = makeNetns('cbr-host');
  const pod = makeNetns('cbr-pod');
  const c = conf({ bridge: 'cbr6d', enabledad: true, ipam: hostLocalRanges(['fd77:32::/64']) });
  const r = cni('ADD', attach(host, pod, c, 'v6dad'));
  ok(r);
  const addr = pod.ipJson<{ addr_info: { local: string; scope: string; tentative?: boolean }[] }[]>('-6', 'addr', 'show', 'dev', 'eth0')[0]!.addr_info.find((a) => a.scope === 'global')!;
  assert.equal(addr.tentative, undefined, JSON.stringify(addr));
  const gw = (r.json as { ips: { gateway: string }[] }).ips[0]!.gateway;
  assert.equal(pod.exec('ping', ['-6', '-c', '1', '-W', '0.2', gw], { allowFail: true }).status, 0);
  ok(cni('DEL', attach(host, pod, c, 'v6dad')));
  host.destroy();
  pod.destroy();
});

test('route attributes (CNI 1.1): mtu, advmss, priority, table, scope applied; CHECK notices a changed one', () => {
  const host = makeNetns('cbr-host');
  const pod = makeNetns('cbr-pod');
  const routes = [
    { dst: '10.201.0.0/16', mtu: 1300, advmss: 1200, priority: 77 },
    { dst: '10.202.0.0/16', table: 1234 },
    { dst: '10.203.0.0/16', gw: '10.77.33.1', scope: 0, priority: 5 },
  ];
  // host-local (1.0.0) passes routes as they are; cattle-ipam's fast path gives only addresses: routes from its config.
  const c = conf({ ipam: { type: 'cattle-ipam', subnetPrefixSize: '/24', routes } }, '1.1.0');
  const args = 'IgnoreUnknown=1;IPAddress=10.77.33.7/24';
  const r = cni('ADD', attach(host, pod, c, 'routes', { args }));
  ok(r);
  const res = r.json as { routes: Record<string, unknown>[] };
  assert.deepEqual(res.routes, [
    { dst: '10.201.0.0/16', gw: '10.77.33.1', mtu: 1300, advmss: 1200, priority: 77 },
    { dst: '10.202.0.0/16', gw: '10.77.33.1', table: 1234 },
    { dst: '10.203.0.0/16', gw: '10.77.33.1', scope: 0, priority: 5 },
  ]);
  const main = pod.ipJson<{ dst: string; metric?: number; metrics?: { mtu?: number; advmss?: number }[] }[]>('-4', 'route', 'show');
  const r1 = main.find((x) => x.dst === '10.201.0.0/16')!;
  assert.equal(r1.metric, 77);
  assert.deepEqual(r1.metrics, [{ mtu: 1300, advmss: 1200 }]);
  assert.equal(main.find((x) => x.dst === '10.203.0.0/16')!.metric, 5);
  assert.ok(!main.some((x) => x.dst === '10.202.0.0/16'), 'the table route is not in main');
  const t = pod.ipJson<{ dst: string; gateway: string }[]>('-4', 'route', 'show', 'table', '1234');
  assert.deepEqual(t.map((x) => [x.dst, x.gateway]), [['10.202.0.0/16', '10.77.33.1']]);
  const withPrev = { ...c, prevResult: r.json };
  ok(cni('CHECK', attach(host, pod, withPrev, 'routes', { args })));
  pod.exec('ip', ['route', 'change', '10.201.0.0/16', 'via', '10.77.33.1', 'dev', 'eth0', 'metric', '77', 'mtu', '1400', 'advmss', '1200']);
  const bad = cni('CHECK', attach(host, pod, withPrev, 'routes', { args }));
  assert.equal(bad.code, 1);
  assert.match(`${(bad.json as { msg: string }).msg} ${(bad.json as { details?: string }).details}`, /route 10\.201\.0\.0\/16 via 10\.77\.33\.1 in the container differs.*mtu 1400, expected 1300/);
  pod.exec('ip', ['route', 'del', '10.202.0.0/16', 'table', '1234']);
  ok(cni('DEL', attach(host, pod, c, 'routes', { args })));
  host.destroy();
  pod.destroy();
});

test('portIsolation: isolated pods cannot reach each other but reach the gateway; CHECK sees the flag', () => {
  const host = makeNetns('cbr-host');
  const [p1, p2] = [makeNetns('cbr-pod'), makeNetns('cbr-pod')];
  const c = conf({ bridge: 'cbri', portIsolation: true, ipam: hostLocal('10.77.34.0/24') });
  const r1 = cni('ADD', attach(host, p1, c, 'iso-1'));
  const r2 = cni('ADD', attach(host, p2, c, 'iso-2'));
  ok(r1);
  ok(r2);
  const ipOf = (r: typeof r1) => (r.json as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
  for (const id of ['iso-1', 'iso-2']) {
    const port = links(host).find((l) => l.ifalias === markOf('cattle-bridge', id, 'testnet'))!;
    assert.equal(port.linkinfo?.info_slave_data?.isolated, true, id);
  }
  assert.ok(ping(p1, '10.77.34.1'), 'an isolated pod reaches the gateway');
  assert.ok(ping(p2, '10.77.34.1'), 'so does the other');
  assert.ok(!ping(p1, ipOf(r2)), 'isolated pods do not reach each other');
  ok(cni('CHECK', attach(host, p1, { ...c, prevResult: r1.json }, 'iso-1')));
  const port1 = links(host).find((l) => l.ifalias === markOf('cattle-bridge', 'iso-1', 'testnet'))!;
  host.exec('ip', ['link', 'set', 'dev', port1.ifname, 'type', 'bridge_slave', 'isolated', 'off']);
  const bad = cni('CHECK', attach(host, p1, { ...c, prevResult: r1.json }, 'iso-1'));
  assert.match((bad.json as { msg: string }).msg, /is not isolated/);
  for (const [id, p] of [['iso-1', p1], ['iso-2', p2]] as const) ok(cni('DEL', attach(host, p, c, id)));
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('vlan with isGateway is a clear code-7 refusal (no per-VLAN gateway); nothing is made', () => {
  const host = makeNetns('cbr-host');
  const pod = makeNetns('cbr-pod');
  for (const over of [{ vlan: 7 }, { vlan: 7, isGateway: false, isDefaultGateway: true }]) {
    const r = cni('ADD', attach(host, pod, conf({ bridge: 'cbrvg', ...over, ipam: hostLocal('10.77.35.0/24') }), 'vlan-gw'));
    assert.equal(r.code, 1);
    const e = r.json as { code: number; msg: string; details: string };
    assert.equal(e.code, 7);
    assert.equal(e.msg, 'vlan cannot be combined with isGateway or isDefaultGateway');
    assert.match(e.details, /cbrvg\.7/);
  }
  assert.deepEqual(links(host).map((l) => l.ifname), ['lo']);
  host.destroy();
  pod.destroy();
});

test('mtu absent: the MTU of the default-route interface (less linkMTUOverhead), 1500 without a default route', () => {
  const host = makeNetns('cbr-host');
  const [p1, p2] = [makeNetns('cbr-pod'), makeNetns('cbr-pod')];
  const c = conf({ bridge: 'cbrm', linkMTUOverhead: 50, ipam: hostLocal('10.77.36.0/24') });
  const r1 = cni('ADD', attach(host, p1, c, 'mtu-none'));
  ok(r1);
  assert.equal(links(p1).find((l) => l.ifname === 'eth0')!.mtu, 1450);
  ok(cni('DEL', attach(host, p1, c, 'mtu-none')));
  host.exec('ip', ['link', 'del', 'cbrm']);
  // A lower-metric IPv4 default wins over a higher one and over IPv6's.
  host.exec('ip', ['link', 'add', 'up9k', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'up9kp', 'mtu', '9000']);
  host.exec('ip', ['link', 'add', 'up4k', 'mtu', '4000', 'type', 'veth', 'peer', 'name', 'up4kp', 'mtu', '4000']);
  for (const d of ['up9k', 'up9kp', 'up4k', 'up4kp']) host.exec('ip', ['link', 'set', d, 'up']);
  host.exec('ip', ['route', 'add', 'default', 'dev', 'up9k', 'metric', '10']);
  host.exec('ip', ['route', 'add', 'default', 'dev', 'up4k', 'metric', '20']);
  host.exec('ip', ['-6', 'route', 'add', 'default', 'dev', 'up4k', 'metric', '1']);
  const r2 = cni('ADD', attach(host, p2, c, 'mtu-default'));
  ok(r2);
  const hv = (r2.json as { interfaces: { name: string }[] }).interfaces[1]!.name;
  assert.equal(links(p2).find((l) => l.ifname === 'eth0')!.mtu, 8950);
  assert.equal(links(host).find((l) => l.ifname === hv)!.mtu, 9000);
  assert.equal(links(host).find((l) => l.ifname === 'cbrm')!.mtu, 9000);
  assert.ok(ping(p2, '10.77.36.1'));
  ok(cni('DEL', attach(host, p2, c, 'mtu-default')));
  for (const ns of [host, p1, p2]) ns.destroy();
});

function nftTables(ns: TestNetns): string[] {
  const out = JSON.parse(ns.exec('nft', ['-j', 'list', 'tables']).stdout) as { nftables: { table?: { family: string; name: string } }[] };
  return out.nftables.flatMap((o) => (o.table ? [`${o.table.family} ${o.table.name}`] : []));
}

test('macspoofchk: a frame with another source MAC is dropped, the pod\'s own passes; DEL and GC remove exactly theirs', () => {
  const host = makeNetns('cbr-host');
  const [p1, p2] = [makeNetns('cbr-pod'), makeNetns('cbr-pod')];
  // GC is 1.1.0: cattle-ipam's CNI_ARGS fast path speaks it.
  const c = conf({ bridge: 'cbrsp', macspoofchk: true, ipam: { type: 'cattle-ipam', subnetPrefixSize: '/24' } }, '1.1.0');
  const a1 = attach(host, p1, c, 'spoof-1', { args: 'IPAddress=10.77.37.5/24' });
  const a2 = attach(host, p2, c, 'spoof-2', { args: 'IPAddress=10.77.37.6/24' });
  const r1 = cni('ADD', a1);
  ok(r1);
  ok(cni('ADD', a2));
  const mac1 = links(p1).find((l) => l.ifname === 'eth0')!.address;
  assert.ok(ping(p1, '10.77.37.1'), 'the pod\'s own MAC passes');
  ok(cni('CHECK', { ...a1, conf: { ...c, prevResult: r1.json } }));
  // Spoofed: the pod changes its MAC; the gateway must not hear it (fresh ARP on both sides).
  p1.exec('ip', ['link', 'set', 'eth0', 'address', '02:00:00:00:be:ef']);
  p1.exec('ip', ['neigh', 'flush', 'dev', 'eth0']);
  host.exec('ip', ['neigh', 'flush', 'dev', 'cbrsp']);
  assert.ok(!ping(p1, '10.77.37.1'), 'a spoofed source MAC is dropped');
  assert.ok(!ping(p1, '10.77.37.6'), 'also towards the other pod');
  p1.exec('ip', ['link', 'set', 'eth0', 'address', mac1]);
  p1.exec('ip', ['neigh', 'flush', 'dev', 'eth0']);
  assert.ok(ping(p1, '10.77.37.1'), 'the original MAC passes again');
  assert.ok(ping(p1, '10.77.37.6'));
  // GC of spoof-2 (not valid any more) leaves spoof-1's chain alone; DEL of the last removes the table.
  const chains = () => (JSON.parse(host.exec('nft', ['-j', 'list', 'table', 'bridge', 'cattle_cni_macspoof']).stdout) as { nftables: { chain?: { name: string } }[] })
    .nftables.flatMap((o) => (o.chain ? [o.chain.name] : [])).sort();
  assert.equal(chains().length, 3, chains().join(','));
  ok(cni('GC', attach(host, undefined, { ...c, 'cni.dev/valid-attachments': [{ containerID: 'spoof-1', ifname: 'eth0' }] }, 'gc')));
  assert.equal(chains().length, 2, chains().join(','));
  ok(cni('CHECK', { ...a1, conf: { ...c, prevResult: r1.json } }));
  ok(cni('DEL', a1));
  assert.deepEqual(nftTables(host), []);
  ok(cni('DEL', a1));
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('left nothing behind in the root namespace', () => {
  cleanupAll(); // namespaces of failed tests; what the plugin made in the root netns stays visible
  assert.deepEqual(rootLinkNames(), linksBefore);
  assert.deepEqual(netnsNames(), nsBefore);
});
