// `cattle-cni add|check|del|gc|status` (the built executable) driving Debian's
// reference plugins from /usr/lib/cni, the way cnitool would: each test's "host"
// is a netns it made, configs and the result cache live in temp dirs
// (NETCONFPATH, CNI_CACHE_DIR), addresses are test ranges inside those namespaces.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { makeNetns, netnsNames, rootLinkNames, runExe, type RunResult, type TestNetns } from '../helpers/harness.ts';

const REFERENCE_PLUGINS = '/usr/lib/cni';
const BRIDGE = 'ccrt-br0';
const haveReferencePlugins = ['bridge', 'host-local', 'tuning', 'portmap'].every((p) => fs.existsSync(path.join(REFERENCE_PLUGINS, p)));
const skipNoPlugins = haveReferencePlugins ? false : `Debian containernetworking-plugins missing in ${REFERENCE_PLUGINS} (scripts/ensure-deps.sh installs it)`;

const tempDirs: string[] = [];
after(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Iface { name: string; mac?: string; sandbox?: string }
interface AddResult { cniVersion: string; interfaces: Iface[]; ips: { interface?: number; address: string; gateway?: string; version?: string }[] }

/** One test's world: a host netns, a config dir, a cache dir, a host-local data dir. */
class World {
  readonly host: TestNetns;
  readonly root: string;
  readonly confDir: string;
  readonly cacheDir: string;
  readonly ipamDir: string;

  constructor() {
    this.host = makeNetns('ccrt-host');
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'ccrt-'));
    tempDirs.push(this.root);
    this.confDir = path.join(this.root, 'net.d');
    this.cacheDir = path.join(this.root, 'cache');
    this.ipamDir = path.join(this.root, 'ipam');
    fs.mkdirSync(this.confDir);
  }

  /** Writes a config file; objects as pretty JSON (the exact bytes are what the cache must hold). */
  writeConf(file: string, conf: object): Buffer {
    const bytes = Buffer.from(`${JSON.stringify(conf, null, 2)}\n`);
    fs.writeFileSync(path.join(this.confDir, file), bytes);
    return bytes;
  }

  bridgePlugin(subnet: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      type: 'bridge',
      bridge: BRIDGE,
      isGateway: true,
      ipam: { type: 'host-local', dataDir: this.ipamDir, ranges: [[{ subnet }]] },
      ...extra,
    };
  }

  cni(command: string, net: string, netns: string, env: Record<string, string> = {}): RunResult {
    return runExe('cattle-cni', {
      args: [command, net, netns],
      netns: this.host,
      env: { NETCONFPATH: this.confDir, CNI_PATH: REFERENCE_PLUGINS, CNI_CACHE_DIR: this.cacheDir, ...env },
    });
  }

  cacheFile(net: string, pod: TestNetns, ifname = 'eth0'): string {
    return path.join(this.cacheDir, 'results', `${net}-${containerIdOf(pod)}-${ifname}`);
  }

  /** host-local lease files (one per IP) of a network. */
  leases(net: string): string[] {
    const dir = path.join(this.ipamDir, net);
    return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
  }

  hostVeths(): string[] {
    return this.host.ipJson<{ ifname: string }[]>('link', 'show', 'type', 'veth').map((l) => l.ifname);
  }

  destroy(): void {
    this.host.destroy();
  }
}

function containerIdOf(pod: TestNetns): string {
  return `cnitool-${createHash('sha512').update(pod.path).digest().subarray(0, 10).toString('hex')}`;
}

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r;
}

function podAddrs(pod: TestNetns, ifname = 'eth0'): string[] {
  const links = pod.ipJson<{ ifname: string; addr_info: { family: string; local: string; prefixlen: number }[] }[]>('-4', 'addr', 'show');
  return links.filter((l) => l.ifname === ifname).flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
}

function podLinks(pod: TestNetns): string[] {
  return pod.ipJson<{ ifname: string }[]>('link', 'show').map((l) => l.ifname).sort();
}

describe('cattle-cni with the reference plugins', { skip: skipNoPlugins }, () => {
  it('add, check, status, del: bridge + host-local, with the result cached as libcni does', () => {
    const w = new World();
    const pod = makeNetns('ccrt-pod');
    const confBytes = w.writeConf('10-rt.conflist', { cniVersion: '1.0.0', name: 'rtnet', plugins: [w.bridgePlugin('198.18.60.0/24')] });

    const add = ok(w.cni('add', 'rtnet', pod.path), 'add');
    const result = add.json as AddResult;
    assert.equal(result.cniVersion, '1.0.0');
    assert.deepEqual(result.interfaces.map((i) => i.name === BRIDGE || i.name === 'eth0' || /^veth/.test(i.name)), [true, true, true]);
    assert.equal(result.interfaces[2]!.sandbox, pod.path);
    assert.deepEqual(result.ips, [{ interface: 2, address: '198.18.60.2/24', gateway: '198.18.60.1' }]);
    assert.deepEqual(podAddrs(pod), ['198.18.60.2/24']);
    pod.exec('ping', ['-c', '1', '-W', '2', '198.18.60.1']);

    // The cache entry: libcni's path, modes and cniCacheV1 fields.
    const file = w.cacheFile('rtnet', pod);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const cached = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(Object.keys(cached), ['kind', 'containerId', 'config', 'ifName', 'networkName', 'netns', 'result']);
    assert.equal(cached.kind, 'cniCacheV1');
    assert.equal(cached.containerId, containerIdOf(pod));
    assert.deepEqual(Buffer.from(cached.config, 'base64'), confBytes);
    assert.equal(cached.ifName, 'eth0');
    assert.equal(cached.networkName, 'rtnet');
    assert.equal(cached.netns, pod.path);
    assert.deepEqual(cached.result, result);
    assert.deepEqual(w.leases('rtnet'), ['198.18.60.2']);

    const check = ok(w.cni('check', 'rtnet', pod.path), 'check');
    assert.equal(check.stdout, '');
    ok(w.cni('status', 'rtnet', pod.path), 'status'); // 1.0.0: nothing to ask

    const del = ok(w.cni('del', 'rtnet', pod.path), 'del');
    assert.equal(del.stdout, '');
    assert.deepEqual(podLinks(pod), ['lo']);
    assert.deepEqual(w.hostVeths(), []);
    assert.equal(fs.existsSync(file), false);
    assert.deepEqual(w.leases('rtnet'), []);
    ok(w.cni('del', 'rtnet', pod.path), 'second del');
    pod.destroy();
    w.destroy();
  });

  it('chained bridge + tuning: tuning gets the bridge result as prevResult and the mac capability', () => {
    const w = new World();
    const pod = makeNetns('ccrt-pod');
    w.writeConf('10-chain.conflist', {
      cniVersion: '1.0.0',
      name: 'chain',
      plugins: [
        w.bridgePlugin('198.18.61.0/24'),
        { type: 'tuning', capabilities: { mac: true }, sysctl: { 'net.ipv4.conf.eth0.arp_announce': '2' } },
      ],
    });
    const env = { CAP_ARGS: JSON.stringify({ mac: '0a:58:c6:12:3d:02', portMappings: [] }) };
    const result = ok(w.cni('add', 'chain', pod.path, env), 'add').json as AddResult;
    // tuning could only report the bridge's interfaces and IPs from prevResult; it changed the MAC.
    assert.deepEqual(result.interfaces.map((i) => i.name)[0], BRIDGE);
    assert.equal(result.interfaces[2]!.name, 'eth0');
    assert.equal(result.interfaces[2]!.mac, '0a:58:c6:12:3d:02');
    assert.deepEqual(result.ips, [{ interface: 2, address: '198.18.61.2/24', gateway: '198.18.61.1' }]);
    const link = pod.ipJson<{ address: string }[]>('link', 'show', 'eth0')[0]!;
    assert.equal(link.address, '0a:58:c6:12:3d:02');
    assert.equal(pod.exec('sysctl', ['-n', 'net.ipv4.conf.eth0.arp_announce']).stdout.trim(), '2');

    ok(w.cni('check', 'chain', pod.path, env), 'check');
    // CHECK compares with the cached result: a changed sysctl is found by tuning.
    pod.exec('sysctl', ['-q', '-w', 'net.ipv4.conf.eth0.arp_announce=0']);
    const bad = w.cni('check', 'chain', pod.path, env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^cattle-cni check: plugin type="tuning" failed \(check\): .*arp_announce/m);

    ok(w.cni('del', 'chain', pod.path, env), 'del');
    assert.deepEqual(podLinks(pod), ['lo']);
    assert.deepEqual(w.leases('chain'), []);
    pod.destroy();
    w.destroy();
  });

  it('chained bridge + portmap: portMappings reach portmap, which maps to the IP from prevResult', () => {
    const w = new World();
    const pod = makeNetns('ccrt-pod');
    w.writeConf('10-pm.conflist', {
      cniVersion: '1.0.0',
      name: 'pm',
      plugins: [w.bridgePlugin('198.18.62.0/24'), { type: 'portmap', capabilities: { portMappings: true } }],
    });
    const env = { CAP_ARGS: JSON.stringify({ portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] }) };
    const result = ok(w.cni('add', 'pm', pod.path, env), 'add').json as AddResult;
    assert.equal(result.ips[0]!.address, '198.18.62.2/24');
    const cached = JSON.parse(fs.readFileSync(w.cacheFile('pm', pod), 'utf8'));
    assert.deepEqual(cached.capabilityArgs, JSON.parse(env.CAP_ARGS));
    const nat = () => w.host.exec('iptables', ['-t', 'nat', '-S']).stdout;
    assert.match(nat(), /--dport 18080 -j DNAT --to-destination 198\.18\.62\.2:80/);
    ok(w.cni('del', 'pm', pod.path, env), 'del');
    assert.doesNotMatch(nat(), /--to-destination 198\.18\.62\.2/);
    assert.deepEqual(podLinks(pod), ['lo']);
    pod.destroy();
    w.destroy();
  });

  it('gc: DELs every cached attachment of the network (cnitool semantics) and leaves other networks', () => {
    const w = new World();
    const [p1, p2, p3] = [makeNetns('ccrt-pod'), makeNetns('ccrt-pod'), makeNetns('ccrt-pod')];
    w.writeConf('10-gc.conflist', { cniVersion: '1.0.0', name: 'gcnet', plugins: [w.bridgePlugin('198.18.63.0/24')] });
    w.writeConf('20-keep.conflist', {
      cniVersion: '1.0.0',
      name: 'keep',
      plugins: [w.bridgePlugin('198.18.64.0/24', { bridge: 'ccrt-br1' })],
    });
    ok(w.cni('add', 'gcnet', p1.path), 'add p1');
    ok(w.cni('add', 'gcnet', p2.path), 'add p2');
    ok(w.cni('add', 'keep', p3.path), 'add p3');
    assert.equal(w.hostVeths().length, 3);
    assert.equal(w.leases('gcnet').length, 2);

    const gc = ok(w.cni('gc', 'gcnet', p1.path), 'gc');
    assert.equal(gc.stdout, '');
    assert.deepEqual(podLinks(p1), ['lo']);
    assert.deepEqual(podLinks(p2), ['lo']);
    assert.deepEqual(w.leases('gcnet'), []);
    assert.deepEqual(fs.readdirSync(path.join(w.cacheDir, 'results')), [path.basename(w.cacheFile('keep', p3))]);
    assert.deepEqual(podAddrs(p3), ['198.18.64.2/24']);
    ok(w.cni('del', 'keep', p3.path), 'del p3');
    for (const p of [p1, p2, p3]) p.destroy();
    w.destroy();
  });

  it('a single-plugin .conf (0.3.1) is wrapped as a list; CHECK is refused below 0.4.0', () => {
    const w = new World();
    const pod = makeNetns('ccrt-pod');
    const conf = { cniVersion: '0.3.1', name: 'single', ...w.bridgePlugin('198.18.65.0/24') };
    w.writeConf('10-single.conf', conf);
    const result = ok(w.cni('add', 'single', pod.path), 'add').json as AddResult;
    assert.equal(result.cniVersion, '0.3.1');
    assert.deepEqual(result.ips, [{ version: '4', interface: 2, address: '198.18.65.2/24', gateway: '198.18.65.1' }]);
    const cached = JSON.parse(fs.readFileSync(w.cacheFile('single', pod), 'utf8'));
    assert.deepEqual(JSON.parse(Buffer.from(cached.config, 'base64').toString()), { cniVersion: '0.3.1', name: 'single', plugins: [conf] });

    const check = w.cni('check', 'single', pod.path);
    assert.equal(check.code, 1);
    assert.match(check.stderr, /configuration version "0\.3\.1" does not support the CHECK command/);
    ok(w.cni('del', 'single', pod.path), 'del');
    assert.deepEqual(podLinks(pod), ['lo']);
    assert.equal(fs.existsSync(w.cacheFile('single', pod)), false);
    pod.destroy();
    w.destroy();
  });

  it('failures: clear messages on stderr, non-zero exit, nothing cached; DEL then cleans up', () => {
    const w = new World();
    const pod = makeNetns('ccrt-pod');
    w.writeConf('10-bad.conflist', { cniVersion: '1.0.0', name: 'bad', plugins: [w.bridgePlugin('198.18.66.0/24')] });
    w.writeConf('20-missing.conflist', { cniVersion: '1.0.0', name: 'missing', plugins: [{ type: 'nosuch-plugin' }] });

    const unknown = w.cni('add', 'nope', pod.path);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, `cattle-cni add: no net configuration with name "nope" in ${w.confDir}\n`);
    assert.equal(unknown.stdout, '');

    const missing = w.cni('add', 'missing', pod.path);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /plugin type="nosuch-plugin" failed \(add\): failed to find plugin "nosuch-plugin" in path \[\/usr\/lib\/cni\]/);

    // The reference bridge refuses a non-bridge link of the bridge's name: its error JSON is read.
    w.host.exec('ip', ['link', 'add', BRIDGE, 'type', 'veth', 'peer', 'name', 'ccrt-peer']);
    const refused = w.cni('add', 'bad', pod.path);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`plugin type="bridge" failed \\(add\\): .*"${BRIDGE}" already exists but is not a bridge`));
    assert.equal(fs.existsSync(w.cacheFile('bad', pod)), false);
    ok(w.cni('del', 'bad', pod.path), 'del after failed add');
    assert.deepEqual(w.leases('bad'), []);

    const usage = runExe('cattle-cni', { args: ['add', 'only-one-arg'], netns: w.host });
    assert.equal(usage.code, 2, 'a usage error exits 2');
    assert.match(usage.stderr, /usage: cattle-cni add\|check\|del\|gc\|status <net> <netns-path>/);

    const badArgs = w.cni('add', 'bad', pod.path, { CNI_ARGS: 'IgnoreUnknown' });
    assert.equal(badArgs.code, 1);
    assert.match(badArgs.stderr, /invalid CNI_ARGS pair "IgnoreUnknown"/);
    pod.destroy();
    w.destroy();
  });

  it('interop with the real cnitool (add with one, del with the other)', (t) => {
    const cnitool = spawnSync('sh', ['-c', 'command -v cnitool'], { encoding: 'utf8' }).stdout.trim();
    if (!cnitool) {
      t.skip('no cnitool on this machine: Debian has no package for it (only Go sources in golang-github-appc-cni-dev)');
      return;
    }
    // cnitool always uses libcni's cache in /var/lib/cni, so ours must too here.
    const w = new World();
    const pod = makeNetns('ccrt-pod');
    w.writeConf('10-io.conflist', { cniVersion: '1.0.0', name: 'ccrt-interop', plugins: [w.bridgePlugin('198.18.67.0/24')] });
    const env = { NETCONFPATH: w.confDir, CNI_PATH: REFERENCE_PLUGINS, CNI_CACHE_DIR: '/var/lib/cni' };
    const tool = (cmd: string) => w.host.exec('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), cnitool, cmd, 'ccrt-interop', pod.path]);
    ok(w.cni('add', 'ccrt-interop', pod.path, env), 'cattle-cni add');
    tool('del');
    assert.deepEqual(podLinks(pod), ['lo']);
    tool('add');
    ok(w.cni('del', 'ccrt-interop', pod.path, env), 'cattle-cni del');
    assert.deepEqual(podLinks(pod), ['lo']);
    assert.deepEqual(w.leases('ccrt-interop'), []);
    pod.destroy();
    w.destroy();
  });
});

describe('cleanup', () => {
  it('left no namespace of ours and no bridge in the root namespace', () => {
    assert.deepEqual(netnsNames().filter((n) => n.startsWith(`ccrt-host-${process.pid}-`) || n.startsWith(`ccrt-pod-${process.pid}-`)), []);
    assert.deepEqual(rootLinkNames().filter((n) => n.startsWith('ccrt-')), []);
  });
});
