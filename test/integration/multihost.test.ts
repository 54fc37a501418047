// cattle-net on three simulated hosts: a netns each, a veth into an underlay
// bridge in a fourth netns (agent IPs 192.168.100.11–13 on it), each host with
// its own cattle-metadata on 169.254.169.250 serving one shared environment
// file (`--environment`, `--self-host` = that host), its own cattle-net, two cattle-bridge pods in the shape of
// Rancher's 10-rancher-vxlan.conf and one cattle-ptp pod. Pods reach each other
// across hosts; changes made with `cattle-metadata add-container` and
// `remove-host` on the shared file reach the kernel; a VXLAN packet
// from an underlay address that is not a host is dropped; teardown and DEL
// leave nothing. Everything is stopped by PID and removed, also on failure.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { assertOk, ping } from '../helpers/cni.ts';
import { baseEnv, BIN, cleanupAll, makeNetns, runExe, type TestNetns, trackPid, untrackPid } from '../helpers/harness.ts';

const VNI = 1042;
const VTEP = `vtep${VNI}`;
const NETWORK_UUID = 'net-managed';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-multihost-'));
// At the top level: whatever a failed test left (processes by PID, namespaces) goes at the end of the file.
after(cleanupAll);

interface Pod {
  name: string;
  host: Host;
  ns: TestNetns;
  ip: string;
  plugin: 'cattle-bridge' | 'cattle-ptp';
  id: string;
}

interface Host {
  key: 'a' | 'b' | 'c';
  uuid: string;
  agentIp: string;
  vtepMac: string;
  ns: TestNetns;
  dir: string;
  metadata?: Proc;
  agent?: Proc;
}

interface Proc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The first stdout line, once it is there. */
  firstLine: Promise<string>;
  exited: Promise<number | null>;
}

function start(ns: TestNetns, exe: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn('ip', ['netns', 'exec', ns.name, path.join(BIN, exe), ...args], { env: { ...baseEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  trackPid(child.pid);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    untrackPid(child.pid);
    resolve(code);
  }));
  const firstLine = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${exe} printed no line within 20 s: ${err}`)), 20_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${exe} exited (${code}): ${err}`));
    });
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.split('\n')[0]!);
      }
    });
  });
  firstLine.catch(() => undefined);
  return { child, stdout: () => out, stderr: () => err, firstLine, exited };
}

async function stop(p: Proc | undefined): Promise<number | null> {
  if (!p) return null;
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  return p.exited;
}

const hosts: Host[] = [];
const pods: Pod[] = [];
/** The environment every host's cattle-metadata serves (each as itself: --self-host). */
const envFile = path.join(tmp, 'environment.json');

function hostEnv(h: Host): Record<string, string> {
  return { CATTLE_CNI_STATE_DIR: path.join(h.dir, 'state'), CATTLE_CNI_LOCK_DIR: path.join(h.dir, 'locks'), CATTLE_CNI_AGENT_DIR: path.join(h.dir, 'run') };
}

const BRIDGE_CONF = {
  cniVersion: '0.3.1',
  name: 'rancher-cni-network',
  type: 'rancher-bridge',
  bridge: 'docker0',
  bridgeSubnet: '10.42.0.0/16',
  isDefaultGateway: true,
  hairpinMode: false,
  mtu: 1500,
  linkMTUOverhead: 50,
  ipam: { type: 'rancher-cni-ipam', subnetPrefixSize: '/16' },
};
const PTP_CONF = { cniVersion: '0.3.1', name: 'rancher-cni-ptp', type: 'cattle-ptp', mtu: 1450, ipam: { type: 'rancher-cni-ipam', subnetPrefixSize: '/16' } };

/** The environment at the start: the three hosts, the managed network, the pods made so far. */
function writeEnvironment(): void {
  const env = {
    hosts: hosts.map((h) => ({ uuid: h.uuid, name: `host-${h.key}`, hostname: `host-${h.key}`, agent_ip: h.agentIp })),
    networks: [
      { uuid: NETWORK_UUID, name: 'managed', is_default: true, metadata: { cniConfig: { '10-rancher-vxlan.conf': BRIDGE_CONF } } },
      { uuid: 'net-host', name: 'host', metadata: {} },
    ],
    containers: pods.map((p) => ({ uuid: `uuid-${p.name}`, name: p.name, external_id: p.id, host_uuid: p.host.uuid, network_uuid: NETWORK_UUID, primary_ip: p.ip, state: 'running' })),
  };
  fs.writeFileSync(envFile, JSON.stringify(env, null, 1));
}

/** `cattle-metadata <command> --environment <the shared file> …`: every host's server reloads it. */
function editEnvironment(...args: string[]): void {
  const [command, ...rest] = args;
  const r = runExe('cattle-metadata', { args: [command!, '--environment', envFile, ...rest] });
  assert.equal(r.code, 0, `cattle-metadata ${args.join(' ')}: ${r.stderr}`);
}

function startMetadata(h: Host): Proc {
  return start(h.ns, 'cattle-metadata', ['serve', '--environment', envFile, '--self-host', h.uuid]);
}

function addPod(h: Host, n: number, plugin: Pod['plugin'] = 'cattle-bridge'): Pod {
  const ip = `10.42.${hosts.indexOf(h) + 1}.${n}`;
  const name = `${h.key}${n}`;
  const pod: Pod = { name, host: h, ns: makeNetns(`ccni-mh-${name}`), ip, plugin, id: `mh${process.pid}${name}`.padEnd(24, '0') };
  const r = runExe(plugin, {
    netns: h.ns,
    env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod.id, CNI_NETNS: pod.ns.path, CNI_IFNAME: 'eth0', CNI_PATH: BIN, CNI_ARGS: `IgnoreUnknown=1;IPAddress=${ip}`, ...hostEnv(h) },
    stdin: plugin === 'cattle-bridge' ? BRIDGE_CONF : PTP_CONF,
  });
  assertOk(r);
  pods.push(pod);
  return pod;
}

function delPod(p: Pod): void {
  const r = runExe(p.plugin, {
    netns: p.host.ns,
    env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: p.id, CNI_NETNS: p.ns.path, CNI_IFNAME: 'eth0', CNI_PATH: BIN, CNI_ARGS: `IgnoreUnknown=1;IPAddress=${p.ip}`, ...hostEnv(p.host) },
    stdin: p.plugin === 'cattle-bridge' ? BRIDGE_CONF : PTP_CONF,
  });
  assertOk(r);
}

function startAgent(h: Host): Proc {
  return start(h.ns, 'cattle-net', ['--underlay-iface', 'eth0', '--poll-wait', '5'], hostEnv(h));
}

interface FdbEntry { mac: string; dst?: string; flags?: string[]; state?: string }
interface NeighEntry { dst: string; lladdr?: string; state?: string[] }

const fdbOf = (h: Host): FdbEntry[] => JSON.parse(h.ns.exec('bridge', ['-j', 'fdb', 'show', 'dev', VTEP]).stdout || '[]') as FdbEntry[];
const neighOf = (h: Host): NeighEntry[] => h.ns.ipJson<NeighEntry[]>('neigh', 'show', 'dev', VTEP);

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return performance.now() - t0;
}

/** Wait for a line of `ip monitor neigh` naming ip on the VTEP (started before the change: an event, not polling). */
function neighbourEvent(h: Host, ip: string, timeoutMs = 10_000, match?: RegExp): { ready: Promise<void>; seen: Promise<string> } {
  const child = spawn('ip', ['-n', h.ns.name, 'monitor', 'neigh', 'dev', VTEP], { stdio: ['ignore', 'pipe', 'ignore'] });
  trackPid(child.pid);
  let out = '';
  const seen = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no neighbour event for ${ip} on ${h.key} within ${timeoutMs} ms`)), timeoutMs);
    function finish(e?: Error, line?: string): void {
      clearTimeout(timer);
      child.kill('SIGTERM');
      untrackPid(child.pid);
      if (e) reject(e);
      else resolve(line!);
    }
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith(`${ip} `) && (match === undefined || match.test(l)));
      if (line) finish(undefined, line);
    });
  });
  seen.catch(() => undefined);
  // ip monitor has subscribed once it runs; a short grace for the exec.
  const ready = new Promise<void>((r) => setTimeout(r, 150));
  return { ready, seen };
}

function droppedOn(h: Host): number {
  const out = h.ns.exec('nft', ['-j', 'list', 'counter', 'inet', 'cattle_net', 'vxlan_dropped']).stdout;
  const items = (JSON.parse(out) as { nftables: { counter?: { packets: number } }[] }).nftables;
  return items.find((i) => i.counter)!.counter!.packets;
}

// Made at the top level, so the harness registers its cleanup for the whole file (not for a hook).
const underlay = makeNetns('ccni-mh-ul');

describe('cattle-net on three hosts', { timeout: 180_000 }, () => {

  before(async () => {
    underlay.exec('ip', ['link', 'add', 'ul0', 'type', 'bridge']);
    underlay.exec('ip', ['link', 'set', 'ul0', 'up']);
    for (const key of ['a', 'b', 'c'] as const) {
      const i = hosts.length + 1;
      const ns = makeNetns(`ccni-mh-${key}`);
      const dir = path.join(tmp, key);
      fs.mkdirSync(dir);
      const h: Host = { key, uuid: `host-uuid-${key}`, agentIp: `192.168.100.${10 + i}`, vtepMac: `0e:00:c0:a8:64:${(10 + i).toString(16).padStart(2, '0')}`, ns, dir };
      underlay.exec('ip', ['link', 'add', `ul-${key}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
      underlay.exec('ip', ['link', 'set', `ul-${key}`, 'master', 'ul0', 'up']);
      ns.exec('ip', ['addr', 'add', `${h.agentIp}/24`, 'dev', 'eth0']);
      ns.exec('ip', ['link', 'set', 'eth0', 'up']);
      ns.exec('ip', ['route', 'add', 'default', 'dev', 'eth0']); // proxy ARP (ptp) answers only for routable destinations
      ns.exec('ip', ['addr', 'add', '169.254.169.250/32', 'dev', 'lo']);
      hosts.push(h);
    }
    for (const h of hosts) {
      addPod(h, 10);
      addPod(h, 11);
      addPod(h, 30, 'cattle-ptp');
    }
    writeEnvironment();
    for (const h of hosts) h.metadata = startMetadata(h);
    await Promise.all(hosts.map((h) => h.metadata!.firstLine));
    for (const h of hosts) h.agent = startAgent(h);
    const lines = await Promise.all(hosts.map((h) => h.agent!.firstLine));
    for (const line of lines) assert.equal((JSON.parse(line) as { ready: boolean }).ready, true, line);
  });

  after(async () => {
    await Promise.all(hosts.flatMap((h) => [stop(h.agent), stop(h.metadata)]));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('programs the VTEP as rancher/vxlan does, with one FDB entry per peer and one neighbour per remote container', () => {
    for (const h of hosts) {
      const [l] = h.ns.ipJson<{ address: string; mtu: number; master?: string; ifalias?: string; linkinfo: { info_kind: string; info_data: Record<string, unknown> } }[]>('-d', 'link', 'show', VTEP);
      assert.equal(l!.linkinfo.info_kind, 'vxlan');
      assert.equal(l!.linkinfo.info_data.id, VNI);
      assert.equal(l!.linkinfo.info_data.port, 4789);
      assert.equal(l!.linkinfo.info_data.learning, false);
      assert.equal(l!.linkinfo.info_data.proxy, true);
      assert.equal(l!.address, h.vtepMac);
      assert.equal(l!.mtu, 1500);
      assert.equal(l!.master, 'docker0');
      assert.equal(l!.ifalias, 'cattle-net vtep');
      const peers = hosts.filter((p) => p !== h);
      const fdb = fdbOf(h).filter((e) => e.dst !== undefined);
      assert.deepEqual(fdb.map((e) => `${e.mac} ${e.dst} ${(e.flags ?? []).join(',')} ${e.state}`).sort(),
        peers.map((p) => `${p.vtepMac} ${p.agentIp} self permanent`).sort());
      const remote = pods.filter((p) => p.host !== h);
      assert.deepEqual(neighOf(h).map((n) => `${n.dst} ${n.lladdr} ${(n.state ?? []).join(',')}`).sort(),
        remote.map((p) => `${p.ip} ${p.host.vtepMac} PERMANENT`).sort());
      assert.equal(h.ns.exec('sysctl', ['-n', 'net.ipv4.ip_forward']).stdout.trim(), '1');
      assert.equal(h.ns.exec('sysctl', ['-n', 'net.ipv4.conf.docker0.send_redirects']).stdout.trim(), '0');
      assert.equal(h.ns.exec('cat', ['/sys/class/net/docker0/addr_assign_type']).stdout.trim(), '3', 'the bridge MAC is pinned');
    }
  });

  it('refuses a second agent on the same host; status tells what was applied', () => {
    const a = hosts[0]!;
    const second = runExe('cattle-net', { netns: a.ns, env: hostEnv(a), timeoutMs: 10_000 });
    assert.equal(second.code, 1);
    assert.match(second.stderr, /another agent is already running on this host \(pid \d+/);
    const st = runExe('cattle-net', { netns: a.ns, env: hostEnv(a), args: ['status', '--json'] });
    assert.equal(st.code, 0, st.stderr);
    const s = st.json as { running: boolean; peers: { ip: string }[]; counts: { fdb: number; neighbours: number }; version: string; lastReconcile: { durationMs: number }; filter: { backend: string; members: number } };
    assert.equal(s.running, true);
    assert.deepEqual(s.peers.map((p) => p.ip), ['192.168.100.12', '192.168.100.13']);
    assert.deepEqual(s.counts, { fdb: 2, neighbours: 6 });
    assert.match(s.version, /^\d+$/);
    assert.equal(typeof s.lastReconcile.durationMs, 'number');
    assert.deepEqual([s.filter.backend, s.filter.members], ['nft', 2]);
    const text = runExe('cattle-net', { netns: a.ns, env: hostEnv(a), args: ['status'] });
    assert.match(text.stdout, /^cattle-net running \(pid \d+\)/);
    assert.match(text.stdout, /entries: 2 fdb, 6 neighbours/);
  });

  it('every pod pings every pod on the other hosts (bridge and ptp)', () => {
    const failed: string[] = [];
    for (const from of pods) for (const to of pods) if (from.host !== to.host && !ping(from.ns, to.ip)) failed.push(`${from.name}→${to.name}`);
    assert.deepEqual(failed, []);
  });

  it('full-size frames cross the overlay: DF ping at the pod MTU and a 4 MiB TCP transfer', async () => {
    const [a1, b1] = [pods.find((p) => p.name === 'a10')!, pods.find((p) => p.name === 'b10')!];
    assert.equal(a1.ns.exec('ping', ['-c', '1', '-W', '2', '-M', 'do', '-s', String(1450 - 28), b1.ip], { allowFail: true }).status, 0, 'DF ping of 1450 bytes');
    const server = spawn('ip', ['netns', 'exec', b1.ns.name, process.execPath, '-e',
      `const s=require('net').createServer((c)=>{let n=0;c.on('data',(d)=>{n+=d.length});c.on('end',()=>c.end(String(n)))});s.listen(5001,'${b1.ip}',()=>console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    trackPid(server.pid);
    try {
      await new Promise<void>((resolve) => server.stdout.once('data', () => resolve()));
      const client = a1.ns.exec(process.execPath, ['-e',
        `const c=require('net').connect(5001,'${b1.ip}',()=>c.end(Buffer.alloc(4<<20,7)));let r='';c.on('data',(d)=>r+=d);c.on('end',()=>console.log(r));c.setTimeout(20000,()=>{console.log('timeout');process.exit(1)})`]);
      assert.equal(client.stdout.trim(), String(4 << 20));
    } finally {
      server.kill('SIGKILL');
      untrackPid(server.pid);
    }
  });

  it('a container added on host B (cattle-metadata add-container) is reachable from A once A has its neighbour entry', async () => {
    const [a, b, c] = hosts as [Host, Host, Host];
    const pod = addPod(b, 12);
    const onA = neighbourEvent(a, pod.ip);
    const onC = neighbourEvent(c, pod.ip);
    await Promise.all([onA.ready, onC.ready]);
    const t0 = performance.now();
    editEnvironment('add-container', '--host-uuid', b.uuid, '--network-uuid', NETWORK_UUID, '--external-id', pod.id, '--ip', pod.ip, '--name', pod.name, '--uuid', `uuid-${pod.name}`);
    const line = await onA.seen;
    const ms = performance.now() - t0;
    assert.match(line, new RegExp(`^${pod.ip.replace(/\./g, '\\.')} lladdr ${b.vtepMac} PERMANENT`));
    await onC.seen;
    assert.ok(ping(pods.find((p) => p.name === 'a10')!.ns, pod.ip), 'a10 → b12');
    assert.ok(ping(pod.ns, pods.find((p) => p.name === 'c30')!.ip), 'b12 → c30 (ptp)');
    assert.ok(!neighOf(b).some((n) => n.dst === pod.ip), 'B has no neighbour for its own container');
    console.log(`# add-container → neighbour on A in ${ms.toFixed(0)} ms`);
  });

  it('metadata unreachable: the last applied state stays, status says so, and it recovers', async () => {
    const b = hosts[1]!;
    const status = (): { state: string; metadata: { reachable: boolean; lastError?: string }; counts: { neighbours: number } } =>
      runExe('cattle-net', { netns: b.ns, env: hostEnv(b), args: ['status', '--json'] }).json as never;
    const before = neighOf(b).length;
    await stop(b.metadata);
    try {
      await until('B reports metadata unreachable', () => status().state === 'metadata-unreachable');
      assert.equal(status().metadata.reachable, false);
      assert.match(status().metadata.lastError ?? '', /cannot reach|closed|ECONNREFUSED/);
      assert.equal(neighOf(b).length, before, 'entries kept');
      // The status file may be written before the log line reaches our pipe: wait for the line, as an event.
      await until('B logs that it keeps the last state', () => /metadata unreachable, keeping the last applied state/.test(b.agent!.stderr()));
    } finally {
      // Also when an assertion above failed: the later tests need B's metadata (a failure here once
      // made "host C removed" time out on B, which never saw the change).
      b.metadata = startMetadata(b);
      await b.metadata.firstLine;
    }
    await until('B reports metadata reachable again', () => status().state === 'running' && status().metadata.reachable, 40_000);
  });

  it('entries not made by cattle-net on vtep1042 are never touched; one of its own deleted by hand is put back at once (neighbour event)', async () => {
    const [a, b] = hosts as [Host, Host, Host];
    const FOREIGN_IP = '10.42.99.1';
    const FOREIGN_MAC = '0e:00:c0:a8:64:63';
    const FOREIGN_DST = '192.168.100.99';
    const foreignThere = (): boolean => neighOf(a).some((n) => n.dst === FOREIGN_IP && n.lladdr === FOREIGN_MAC)
      && fdbOf(a).some((e) => e.mac === FOREIGN_MAC && e.dst === FOREIGN_DST);
    a.ns.exec('ip', ['neigh', 'add', FOREIGN_IP, 'lladdr', FOREIGN_MAC, 'dev', VTEP, 'nud', 'permanent']);
    a.ns.exec('bridge', ['fdb', 'append', FOREIGN_MAC, 'dev', VTEP, 'dst', FOREIGN_DST, 'self', 'permanent']);
    // Ours carry the mark (NDA_PROTOCOL 0xce, which ip shows as "proto 206"); the hand-made one does not.
    const b10 = pods.find((p) => p.name === 'b10')!;
    assert.match(a.ns.exec('ip', ['neigh', 'show', b10.ip, 'dev', VTEP]).stdout, /proto (206|0xce)\b/);
    assert.doesNotMatch(a.ns.exec('ip', ['neigh', 'show', FOREIGN_IP, 'dev', VTEP]).stdout, /proto/);

    // Repair at once: one of A's neighbours and its FDB entry for B deleted by hand come back as events
    // (the resync is 60 s away; the deadline only bounds a failure).
    // (ip monitor first shows the deletion as "<ip> FAILED", then the entry put back.)
    const back = neighbourEvent(a, b10.ip, 30_000, /lladdr .* PERMANENT/);
    await back.ready;
    const m = a.agent!.stderr().length;
    a.ns.exec('ip', ['neigh', 'del', b10.ip, 'dev', VTEP]);
    a.ns.exec('bridge', ['fdb', 'del', b.vtepMac, 'dev', VTEP, 'dst', b.agentIp, 'self']);
    assert.match(await back.seen, new RegExp(`^${b10.ip.replace(/\./g, '\\.')} lladdr ${b.vtepMac} PERMANENT`));
    await until('A\'s FDB entry for B back', () => fdbOf(a).some((e) => e.mac === b.vtepMac && e.dst === b.agentIp), 30_000);
    await until('the repair logged', () => /neighbour event \((neighbour|fdb entry) [\d.]+ (deleted|changed)\): version \d+: fdb \+\d+ -0, neighbours \+\d+ -0/.test(a.agent!.stderr().slice(m)), 30_000);
    assert.ok(ping(pods.find((p) => p.name === 'a10')!.ns, b10.ip), 'a10 → b10 after the repair');
    assert.ok(foreignThere(), 'the hand-made entries are still there');

    // A full read of the kernel (a restarted agent reads it back): the hand-made entries stay, and are reported.
    assert.equal(await stop(a.agent), 0);
    a.agent = startAgent(a);
    assert.equal((JSON.parse(await a.agent.firstLine) as { ready: boolean }).ready, true);
    await until('A logs the entries not made by cattle-net', () => /1 fdb and 1 neighbour entries on vtep1042 not made by cattle-net: left as they are/.test(a.agent!.stderr()));
    assert.ok(foreignThere(), 'the hand-made entries survive a full reconcile');
    const st = runExe('cattle-net', { netns: a.ns, env: hostEnv(a), args: ['status', '--json'] }).json as { foreign: { fdb: number; neighbours: number }; counts: { fdb: number; neighbours: number } };
    assert.deepEqual(st.foreign, { fdb: 1, neighbours: 1 });
    assert.deepEqual(st.counts, { fdb: 2, neighbours: 7 });
  });

  it('host C removed (cattle-metadata remove-host): its FDB and neighbour entries vanish from A and B, and the filter drops its VXLAN', async () => {
    const [a, b, c] = hosts as [Host, Host, Host];
    // C's agent stops (its data plane stays: C still encapsulates toward A and B).
    assert.equal(await stop(c.agent), 0);
    assert.match(c.agent!.stderr(), /the data plane stays in place/);
    assert.ok(c.ns.ipJson<unknown[]>('link', 'show', VTEP).length === 1, 'C keeps its VTEP after SIGTERM');
    const droppedBefore = droppedOn(a);
    // C's agent is stopped: only A and B act on it.
    editEnvironment('remove-host', '--uuid', c.uuid, '--with-containers');
    for (const h of [a, b]) {
      await until(`C's entries gone on ${h.key}`, () => !fdbOf(h).some((e) => e.dst === c.agentIp) && !neighOf(h).some((n) => n.dst.startsWith('10.42.3.')), 30_000)
        .catch((e: Error) => {
          throw new Error(`${e.message}\nmetadata of ${h.key} running: ${h.metadata?.child.exitCode === null}\nagent of ${h.key}: ${h.agent!.stderr().slice(-1500)}`);
        });
      assert.equal(fdbOf(h).filter((e) => e.dst !== undefined && e.mac !== '0e:00:c0:a8:64:63').length, 1, 'one peer left (and on A the hand-made entry)');
    }
    await until('the member set without C', () => !a.ns.exec('nft', ['list', 'set', 'inet', 'cattle_net', 'members']).stdout.includes(c.agentIp));
    // A pod on C still sends VXLAN to A (C's FDB is unchanged): A drops it and counts it.
    assert.ok(!ping(pods.find((p) => p.name === 'c10')!.ns, pods.find((p) => p.name === 'a10')!.ip), 'C → A must fail');
    assert.ok(droppedOn(a) > droppedBefore, 'the filter counted the dropped VXLAN packets');
    // A and B still talk.
    assert.ok(ping(pods.find((p) => p.name === 'a11')!.ns, pods.find((p) => p.name === 'b11')!.ip));
  });

  it('SIGTERM leaves the data plane; teardown and DEL leave nothing', async () => {
    for (const h of hosts) {
      if (h.agent!.child.exitCode === null) assert.equal(await stop(h.agent), 0);
      assert.equal(h.ns.ipJson<unknown[]>('link', 'show', VTEP).length, 1);
      if (h.key === 'a') {
        // The hand-made entries on A's VTEP: teardown removes only its own entries and keeps the device with them.
        const kept = runExe('cattle-net', { netns: h.ns, env: hostEnv(h), args: ['teardown'] });
        assert.equal(kept.code, 0, kept.stderr);
        assert.match((kept.json as { kept: string[] }).kept.join('\n'), /^vtep1042: kept, with 2 entries not made by cattle-net/);
        assert.deepEqual(neighOf(h).map((n) => n.dst), ['10.42.99.1'], 'only the hand-made neighbour is left');
        assert.deepEqual(fdbOf(h).filter((e) => e.dst !== undefined).map((e) => `${e.mac} ${e.dst}`), ['0e:00:c0:a8:64:63 192.168.100.99'], 'only the hand-made FDB entry is left');
        h.ns.exec('ip', ['neigh', 'del', '10.42.99.1', 'dev', VTEP]);
        h.ns.exec('bridge', ['fdb', 'del', '0e:00:c0:a8:64:63', 'dev', VTEP, 'dst', '192.168.100.99', 'self']);
      }
      const r = runExe('cattle-net', { netns: h.ns, env: hostEnv(h), args: ['teardown'] });
      assert.equal(r.code, 0, r.stderr);
      assert.ok((r.json as { removed: string[] }).removed.includes(VTEP));
      assert.equal(h.ns.exec('ip', ['link', 'show', VTEP], { allowFail: true }).status, 1, 'no VTEP');
      assert.equal(h.ns.exec('nft', ['list', 'table', 'inet', 'cattle_net'], { allowFail: true }).status, 1, 'no nft table');
      assert.deepEqual(fs.readdirSync(path.join(h.dir, 'run')), [], 'nothing left in the run dir');
    }
    for (const p of [...pods]) delPod(p);
    for (const h of hosts) {
      const names = h.ns.ipJson<{ ifname: string }[]>('link', 'show').map((l) => l.ifname).sort();
      assert.deepEqual(names, ['docker0', 'eth0', 'lo'], `${h.key}: only the bridge (plugins never remove it), the uplink and lo`);
      assert.equal(h.ns.exec('nft', ['list', 'ruleset']).stdout.trim(), '');
    }
  });
});
