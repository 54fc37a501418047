// cattle-bridge on an L2-only network (no ipam type, as the reference bridge's
// `"ipam": {}`) and with disableContainerInterface, through the built
// executable in fresh namespaces: a test "host" netns runs the plugin, "pod"
// netns are the containers. The plugins keep their state and locks in a
// directory of this file's own, so "nothing left" covers those files too.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { assertCniError, assertOk, type Attach, cni, hostLocalIpam, links, markOf, ping, tempDir, vethNames } from '../helpers/cni.ts';
import { cleanupAll, makeNetns, netnsNames, ROOT, rootLinkNames, type TestNetns } from '../helpers/harness.ts';
import { diffSnapshots, formatDiff, isClean, type Snapshot, snapshot } from '../helpers/leftovers.ts';

let linksBefore: string[];
let nsBefore: string[];
const dir = tempDir('ccni-l2-');
const stateDir = path.join(dir, 'state');
const lockDir = path.join(dir, 'locks');
const ENV = { CATTLE_CNI_STATE_DIR: stateDir, CATTLE_CNI_LOCK_DIR: lockDir };

before(() => {
  linksBefore = rootLinkNames();
  nsBefore = netnsNames();
  fs.mkdirSync(stateDir);
  fs.mkdirSync(lockDir);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const hostLocal = hostLocalIpam(() => dir);

function conf(over: Record<string, unknown> = {}, version = '1.0.0'): Record<string, unknown> {
  return { cniVersion: version, name: 'l2net', type: 'cattle-bridge', bridge: 'cbl2', ...over };
}

function attach(host: TestNetns, pod: TestNetns | undefined, c: object, id: string, more: Partial<Attach> = {}): Attach {
  return { plugin: 'cattle-bridge', host, conf: c, containerId: id, netns: pod?.path, extraEnv: ENV, ...more };
}

interface L2Result { cniVersion: string; interfaces: { name: string; mac: string; mtu?: number; sandbox?: string }[]; ips?: unknown; routes?: unknown; dns?: unknown }

const snap = (host: TestNetns, pods: TestNetns[]) => snapshot(host, { pods, dirs: { state: stateDir, lock: lockDir } });

/** Only the bridge (and its lock file) may stay: DEL leaves a bridge in place, as every bridge plugin does. */
function assertNothingLeft(base: Snapshot, now: Snapshot, bridge = 'cbl2'): void {
  const d = diffSnapshots(base, now, { devs: [bridge], files: [new RegExp(`^lock:bridge-${bridge}$`)] });
  assert.ok(isClean(d), formatDiff(d));
}

/** Addresses of a link that are not the kernel's own IPv6 link-local one. */
function addressesOf(ns: TestNetns, dev: string): string[] {
  const info = ns.ipJson<{ addr_info: { local: string; prefixlen: number; scope: string }[] }[]>('addr', 'show', 'dev', dev)[0]!.addr_info;
  return info.filter((a) => !(a.scope === 'link' && a.local.startsWith('fe80:'))).map((a) => `${a.local}/${a.prefixlen}`);
}

function ipForward(host: TestNetns): string[] {
  return ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'].map((k) => host.exec('sysctl', ['-n', k]).stdout.trim());
}

test('L2 only (no ipam): an up veth on the bridge and no address anywhere; gateway and masquerade ignored as the reference does; CHECK passes; DEL leaves nothing', async () => {
  const host = makeNetns('cl2-host');
  const pod = makeNetns('cl2-pod');
  const base = await snap(host, [pod]);
  const forwardBefore = ipForward(host);
  // isGateway, isDefaultGateway and ipMasq act on addresses: on an L2-only network they do nothing (reference bridge).
  const c = conf({ mtu: 1400, isGateway: true, isDefaultGateway: true, ipMasq: true });
  const a = attach(host, pod, c, 'l2-one', { args: 'IgnoreUnknown=1;MAC=0a:58:0a:4c:02:0b' });
  const r = cni('ADD', a);
  assertOk(r);
  const res = r.json as L2Result;
  assert.deepEqual(Object.keys(res).sort(), ['cniVersion', 'interfaces'], JSON.stringify(res));
  assert.deepEqual(res.interfaces.map((i) => i.name), ['cbl2', res.interfaces[1]!.name, 'eth0']);
  assert.equal(res.interfaces[2]!.sandbox, pod.path);
  assert.equal(res.interfaces[2]!.mac, '0a:58:0a:4c:02:0b');

  const eth0 = links(pod).find((l) => l.ifname === 'eth0')!;
  assert.ok(eth0.flags.includes('UP'), eth0.flags.join(','));
  assert.equal(eth0.mtu, 1400);
  assert.equal(eth0.address, '0a:58:0a:4c:02:0b');
  assert.deepEqual(addressesOf(pod, 'eth0'), [], 'no address in the pod');
  assert.deepEqual(pod.ipJson('-4', 'route', 'show'), [], 'no IPv4 route in the pod');
  assert.ok(!pod.ipJson<{ dst: string }[]>('-6', 'route', 'show').some((x) => x.dst === 'default'), 'no default route');

  const port = links(host).find((l) => l.ifname === res.interfaces[1]!.name)!;
  assert.equal(port.master, 'cbl2');
  assert.equal(port.ifalias, markOf('cattle-bridge', 'l2-one', 'l2net'));
  assert.ok(port.flags.includes('UP') && port.flags.includes('LOWER_UP'), `the bridge port is up: ${port.flags.join(',')}`);
  assert.deepEqual(addressesOf(host, 'cbl2'), [], 'no (gateway) address on the bridge');
  assert.deepEqual(ipForward(host), forwardBefore, 'no forwarding sysctl');
  // No masquerade, no route, no rule: apart from the bridge, its port and their kernel link-local addresses, nothing new.
  const d = diffSnapshots(base, await snap(host, [pod]), { kinds: ['bridge', 'veth'], files: [/^state:cattle-bridge\//, /^lock:bridge-cbl2$/] });
  assert.deepEqual(Object.keys(d.added).filter((k) => !k.startsWith('pod ')), [], formatDiff(d));

  assertOk(cni('CHECK', { ...a, conf: { ...c, prevResult: r.json } }));
  // ADD left it up: a container interface taken down is what CHECK reports.
  pod.exec('ip', ['link', 'set', 'eth0', 'down']);
  assertCniError(cni('CHECK', { ...a, conf: { ...c, prevResult: r.json } }), 999, /eth0 in the container is down/);
  pod.exec('ip', ['link', 'set', 'eth0', 'up']);

  assertOk(cni('DEL', a));
  assertNothingLeft(base, await snap(host, [pod]));
  assertOk(cni('DEL', a));
  host.destroy();
  pod.destroy();
});

test('"ipam": {} is L2 only too: two pods on one bridge reach each other once the test gives them addresses by hand', () => {
  const host = makeNetns('cl2-host');
  const [p1, p2] = [makeNetns('cl2-pod'), makeNetns('cl2-pod')];
  const c = conf({ ipam: {} });
  const a1 = attach(host, p1, c, 'l2-pair-1');
  const a2 = attach(host, p2, c, 'l2-pair-2');
  const r1 = cni('ADD', a1);
  const r2 = cni('ADD', a2);
  assertOk(r1);
  assertOk(r2);
  for (const r of [r1, r2]) assert.equal((r.json as L2Result).ips, undefined);
  assert.equal(links(host).filter((l) => l.master === 'cbl2').length, 2);
  // The network is the pods' business: addresses made inside their namespaces, by hand.
  p1.exec('ip', ['addr', 'add', '198.51.100.11/24', 'dev', 'eth0']);
  p2.exec('ip', ['addr', 'add', '198.51.100.12/24', 'dev', 'eth0']);
  assert.ok(ping(p1, '198.51.100.12'), 'pod one pings pod two');
  assert.ok(ping(p2, '198.51.100.11'), 'pod two pings pod one');
  // An address the pod added itself is no concern of CHECK's.
  assertOk(cni('CHECK', { ...a1, conf: { ...c, prevResult: r1.json } }));
  assertOk(cni('CHECK', { ...a2, conf: { ...c, prevResult: r2.json } }));
  assertOk(cni('DEL', a1));
  assertOk(cni('DEL', a2));
  assert.deepEqual(vethNames(host), []);
  for (const p of [p1, p2]) assert.deepEqual(links(p).map((l) => l.ifname), ['lo']);
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('disableContainerInterface: the container end stays down after ADD; CHECK passes (down, or up when taken over); DEL leaves nothing', async () => {
  const host = makeNetns('cl2-host');
  const pod = makeNetns('cl2-pod');
  const base = await snap(host, [pod]);
  const c = conf({ disableContainerInterface: true });
  const a = attach(host, pod, c, 'l2-down');
  const r = cni('ADD', a);
  assertOk(r);
  const res = r.json as L2Result;
  assert.equal(res.ips, undefined);
  assert.equal(res.interfaces[2]!.name, 'eth0');
  const eth0 = links(pod).find((l) => l.ifname === 'eth0')!;
  assert.ok(!eth0.flags.includes('UP'), `eth0 is administratively down: ${eth0.flags.join(',')}`);
  assert.deepEqual(addressesOf(pod, 'eth0'), []);
  const port = links(host).find((l) => l.ifname === res.interfaces[1]!.name)!;
  assert.equal(port.master, 'cbl2');
  assert.ok(port.flags.includes('UP') && !port.flags.includes('LOWER_UP'), `the port is up, without carrier: ${port.flags.join(',')}`);
  const withPrev = { ...a, conf: { ...c, prevResult: r.json } };
  assertOk(cni('CHECK', withPrev));
  // Still checked: the interface exists and is the peer of this attachment's host veth.
  pod.exec('ip', ['link', 'set', 'eth0', 'name', 'eth9']);
  assertCniError(cni('CHECK', withPrev), 999, /eth0 in the container is not the peer/);
  pod.exec('ip', ['link', 'set', 'eth9', 'name', 'eth0']);
  // Whoever the interface was left for (a VM launcher) may bring it up: still this attachment.
  pod.exec('ip', ['link', 'set', 'eth0', 'up']);
  assertOk(cni('CHECK', withPrev));
  // Re-ADD: the same result, the interface left as it is.
  const again = cni('ADD', a);
  assertOk(again);
  assert.deepEqual(again.json, r.json);
  assertOk(cni('DEL', a));
  assertNothingLeft(base, await snap(host, [pod]));
  host.destroy();
  pod.destroy();
});

test('disableContainerInterface with an ipam type: exit 1, one code-7 error, nothing made and IPAM never run; DEL of it still succeeds', async () => {
  const host = makeNetns('cl2-host');
  const pod = makeNetns('cl2-pod');
  const base = await snap(host, [pod]);
  const ipam = hostLocal(['198.51.100.0/24']);
  const c = conf({ disableContainerInterface: true, ipam });
  const a = attach(host, pod, c, 'l2-down-ipam');
  const r = cni('ADD', a);
  assert.equal(r.code, 1, r.stdout);
  const e = r.json as { cniVersion: string; code: number; msg: string; details: string };
  assert.deepEqual([e.cniVersion, e.code, e.msg], ['1.0.0', 7, 'IPAM cannot be used with disableContainerInterface']);
  assert.match(e.details, /ipam\.type is "host-local"/);
  // Not even the bridge: the config is refused before anything is touched.
  assert.ok(isClean(diffSnapshots(base, await snap(host, [pod]))), formatDiff(diffSnapshots(base, await snap(host, [pod]))));
  assert.ok(!fs.existsSync(String(ipam.dataDir)), 'host-local never ran');
  // A runtime DELs after a failed ADD: that must not fail on the same config.
  assertOk(cni('DEL', a));
  assert.ok(isClean(diffSnapshots(base, await snap(host, [pod]))));
  host.destroy();
  pod.destroy();
});

test('L2 refusals are code-7 (or version) errors before anything is made', async () => {
  const host = makeNetns('cl2-host');
  const pod = makeNetns('cl2-pod');
  const base = await snap(host, [pod]);
  const cases: [Record<string, unknown>, string, number, RegExp][] = [
    [{ ipam: { subnet: '198.51.100.0/24' } }, '1.0.0', 7, /"ipam".*settings \(subnet\) but no type/],
    [{ bridgeSubnet: '10.42.0.0/16' }, '1.0.0', 7, /"bridgeSubnet".*L2-only network/],
    [{}, '0.2.0', 1, /L2-only network .* needs cniVersion 0\.3\.0 or later/],
  ];
  for (const [over, version, code, re] of cases) assertCniError(cni('ADD', attach(host, pod, conf(over, version), 'l2-bad')), code, re);
  assert.ok(isClean(diffSnapshots(base, await snap(host, [pod]))));
  host.destroy();
  pod.destroy();
});

test('macspoofchk on L2 (MAC only): a spoofed source MAC is dropped; CHECK sees the rule; DEL removes the table', () => {
  const host = makeNetns('cl2-host');
  const [p1, p2] = [makeNetns('cl2-pod'), makeNetns('cl2-pod')];
  const c = conf({ bridge: 'cbl2s', macspoofchk: true });
  const a1 = attach(host, p1, c, 'l2-spoof-1');
  const a2 = attach(host, p2, c, 'l2-spoof-2');
  const r1 = cni('ADD', a1);
  assertOk(r1);
  assertOk(cni('ADD', a2));
  p1.exec('ip', ['addr', 'add', '198.51.100.21/24', 'dev', 'eth0']);
  p2.exec('ip', ['addr', 'add', '198.51.100.22/24', 'dev', 'eth0']);
  assert.ok(ping(p1, '198.51.100.22'), 'the pod\'s own MAC passes');
  assertOk(cni('CHECK', { ...a1, conf: { ...c, prevResult: r1.json } }));
  const mac1 = links(p1).find((l) => l.ifname === 'eth0')!.address;
  p1.exec('ip', ['link', 'set', 'eth0', 'address', '02:00:00:00:be:ef']);
  for (const p of [p1, p2]) p.exec('ip', ['neigh', 'flush', 'dev', 'eth0']);
  assert.ok(!ping(p1, '198.51.100.22'), 'a spoofed source MAC is dropped');
  p1.exec('ip', ['link', 'set', 'eth0', 'address', mac1]);
  p1.exec('ip', ['neigh', 'flush', 'dev', 'eth0']);
  assert.ok(ping(p1, '198.51.100.22'), 'the original MAC passes again');
  assertOk(cni('DEL', a1));
  assertOk(cni('DEL', a2));
  assert.deepEqual(host.exec('nft', ['list', 'tables']).stdout.trim(), '');
  assert.deepEqual(vethNames(host), []);
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('GC and STATUS on an L2 network ask no IPAM: GC removes what is not valid; STATUS succeeds', () => {
  const host = makeNetns('cl2-host');
  const [p1, p2] = [makeNetns('cl2-pod'), makeNetns('cl2-pod')];
  const c = conf({}, '1.1.0');
  const keep = cni('ADD', attach(host, p1, c, 'l2-keep'));
  assertOk(keep);
  assert.ok((keep.json as L2Result).interfaces[2]!.mtu! > 0, '1.1.0 results carry the interface mtu');
  assertOk(cni('ADD', attach(host, p2, c, 'l2-drop')));
  assertOk(cni('GC', attach(host, undefined, { ...c, 'cni.dev/valid-attachments': [{ containerID: 'l2-keep', ifname: 'eth0' }] }, 'gc')));
  assert.deepEqual(links(host).filter((l) => l.ifalias?.startsWith('cattle-cni')).map((l) => l.ifalias), [markOf('cattle-bridge', 'l2-keep', 'l2net')]);
  assertOk(cni('STATUS', attach(host, undefined, c, 'status')));
  assertOk(cni('DEL', attach(host, p1, c, 'l2-keep')));
  assert.deepEqual(vethNames(host), []);
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('every cniVersion from 0.3.0 to 1.1.0 answers an L2 ADD with interfaces only', () => {
  const host = makeNetns('cl2-host');
  for (const version of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    const pod = makeNetns('cl2-pod');
    const c = conf({}, version);
    const r = cni('ADD', attach(host, pod, c, `l2-v-${version}`));
    assertOk(r);
    const res = r.json as L2Result;
    assert.equal(res.cniVersion, version);
    assert.equal(res.interfaces.length, 3);
    assert.equal(res.ips, undefined);
    // 0.x always prints dns, 1.x leaves an empty one out.
    assert.deepEqual(res.dns, version.startsWith('0.') ? {} : undefined);
    assertOk(cni('DEL', attach(host, pod, c, `l2-v-${version}`)));
    pod.destroy();
  }
  assert.deepEqual(vethNames(host), []);
  host.destroy();
});

test('conf-examples: the L2 examples work (22: ipam {} with macspoofchk; 23: disableContainerInterface)', () => {
  const host = makeNetns('cl2-host');
  for (const [file, up] of [['22-cattle-bridge-l2.conflist', true], ['23-cattle-bridge-l2-down.conflist', false]] as const) {
    const raw = JSON.parse(fs.readFileSync(path.join(ROOT, 'conf-examples', file), 'utf8')) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
    const c: Record<string, unknown> = { ...raw.plugins[0], name: raw.name, cniVersion: raw.cniVersion };
    const pod = makeNetns('cl2-pod');
    const a: Attach = { plugin: String(c.type), host, conf: c, containerId: `ex-${file.slice(0, 2)}`, netns: pod.path, extraEnv: ENV };
    const r = cni('ADD', a);
    assertOk(r);
    assert.equal((r.json as L2Result).ips, undefined);
    assert.equal(links(pod).find((l) => l.ifname === 'eth0')!.flags.includes('UP'), up, file);
    assertOk(cni('CHECK', { ...a, conf: { ...c, prevResult: r.json } }));
    assertOk(cni('DEL', a));
    pod.destroy();
  }
  assert.deepEqual(vethNames(host), []);
  assert.equal(host.exec('nft', ['list', 'tables']).stdout.trim(), '', 'macspoofchk\'s table went with its last port');
  host.destroy();
});

test('left nothing behind in the root namespace, nor in the state and lock directories', () => {
  cleanupAll();
  assert.deepEqual(rootLinkNames(), linksBefore);
  assert.deepEqual(netnsNames(), nsBefore);
  assert.deepEqual(fs.readdirSync(stateDir).flatMap((p) => fs.readdirSync(path.join(stateDir, p))), []);
  assert.deepEqual(fs.readdirSync(lockDir).filter((f) => !f.startsWith('bridge-')), []);
});
