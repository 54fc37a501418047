// cattle-net under faults, on three simulated hosts (a netns each on one
// underlay bridge): A and B run cattle-metadata and cattle-net; R is a host
// programmed exactly as rancher/vxlan programs its kernel (iproute2 commands
// from /work/shared/reference/rancher-vxlan.md), running no cattle-net. A reads
// its metadata through a small fault proxy (down, slow, garbage, wrong shapes,
// flapping). Also: a host vanishing and returning, the VTEP deleted or altered
// by hand (repaired on the link event), a TCP stream across an agent restart,
// and a SIGKILL in the middle of a large reconcile. Everything is asserted on
// events (log lines, netlink monitor lines, stdout of the test's processes) and
// stopped by PID and removed, also on failure.
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
const PROXY_PORT = 8080;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-mhfaults-'));
after(cleanupAll);

interface Host {
  key: 'a' | 'b' | 'r';
  uuid: string;
  agentIp: string;
  vtepMac: string;
  ns: TestNetns;
  dir: string;
  answers: string;
  metadata?: Proc;
  agent?: Proc;
}

interface Pod {
  name: string;
  host: Host;
  ns: TestNetns;
  ip: string;
  plugin: 'cattle-bridge' | 'cattle-ptp';
  id: string;
}

interface Proc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  /** Resolves with the first match of re in stdout+stderr after the mark `from` (0: from the start). */
  waitFor(re: RegExp, what: string, timeoutMs?: number, from?: number): Promise<string>;
  /** Current length of stdout+stderr: a mark for waitFor. */
  mark(): number;
  /** stdout and stderr as they came. */
  output(): string;
}

function spawnIn(ns: TestNetns, cmd: string, args: string[], env: Record<string, string> = {}, stdin: 'ignore' | 'pipe' = 'ignore'): Proc {
  const child = spawn('ip', ['netns', 'exec', ns.name, cmd, ...args], { env: { ...baseEnv(), ...env }, stdio: [stdin, 'pipe', 'pipe'] });
  trackPid(child.pid);
  let out = '';
  let err = '';
  let all = '';
  const waiters = new Set<() => void>();
  const changed = (): void => {
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    all += c.toString();
    changed();
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
    all += c.toString();
    changed();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    untrackPid(child.pid);
    resolve(code);
    changed();
  }));
  const waitFor = (re: RegExp, what: string, timeoutMs = 20_000, from = 0): Promise<string> => new Promise((resolve, reject) => {
    const check = (): void => {
      const m = re.exec(all.slice(from));
      if (m) {
        done();
        resolve(m[0]);
      } else if (child.exitCode !== null || child.signalCode !== null) {
        done();
        reject(new Error(`${cmd} exited (${child.exitCode ?? child.signalCode}) before ${what}:\n${all.slice(-3000)}`));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out waiting for ${what}:\n${all.slice(from).slice(-3000)}`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    waiters.add(check);
    check();
  });
  return { child, stdout: () => out, stderr: () => err, exited, waitFor, mark: () => all.length, output: () => all };
}

/** The first stdout line (the ready line of cattle-net, the listening line of cattle-metadata). */
async function stdoutLine(p: Proc): Promise<string> {
  // Every chunk of output wakes waitFor: wait until stdout itself has a line.
  await p.waitFor(/[\s\S]/, 'output', 20_000);
  while (!p.stdout().includes('\n')) await p.waitFor(/[\s\S]/, 'a stdout line', 20_000, p.mark());
  return p.stdout().split('\n')[0]!;
}

async function stop(p: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (!p) return null;
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  return p.exited;
}

const hosts: Host[] = [];
const pods: Pod[] = [];
const present = new Set<string>();
/** Extra container records (no pod behind them) on host B: IP list. */
let phantoms: string[] = [];

const hostEnv = (h: Host): Record<string, string> => ({
  CATTLE_CNI_STATE_DIR: path.join(h.dir, 'state'), CATTLE_CNI_LOCK_DIR: path.join(h.dir, 'locks'), CATTLE_CNI_AGENT_DIR: path.join(h.dir, 'run'),
});

const BRIDGE_CONF = {
  cniVersion: '0.3.1', name: 'rancher-cni-network', type: 'rancher-bridge', bridge: 'docker0', bridgeSubnet: '10.42.0.0/16', isDefaultGateway: true,
  hairpinMode: false, mtu: 1500, linkMTUOverhead: 50, ipam: { type: 'rancher-cni-ipam', subnetPrefixSize: '/16' },
};
const PTP_CONF = { cniVersion: '0.3.1', name: 'rancher-cni-ptp', type: 'cattle-ptp', mtu: 1450, ipam: { type: 'rancher-cni-ipam', subnetPrefixSize: '/16' } };

function publish(): void {
  const b = hosts[1]!;
  const containers = pods.filter((p) => present.has(p.host.uuid)).map((p) => ({
    uuid: `uuid-${p.name}`, name: p.name, external_id: p.id, host_uuid: p.host.uuid, network_uuid: NETWORK_UUID, primary_ip: p.ip, state: 'running', network_from_container_uuid: '',
  }));
  if (present.has(b.uuid)) {
    for (const ip of phantoms) containers.push({ uuid: `uuid-ph-${ip}`, name: `ph-${ip}`, external_id: `ph-${ip}`, host_uuid: b.uuid, network_uuid: NETWORK_UUID, primary_ip: ip, state: 'running', network_from_container_uuid: '' });
  }
  const env = {
    hosts: hosts.filter((h) => present.has(h.uuid)).map((h) => ({ uuid: h.uuid, name: `host-${h.key}`, hostname: `host-${h.key}`, agent_ip: h.agentIp })),
    networks: [{ uuid: NETWORK_UUID, name: 'managed', metadata: { cniConfig: { '10-rancher-vxlan.conf': BRIDGE_CONF } } }],
    containers,
  };
  for (const h of hosts.filter((x) => x.key !== 'r')) {
    const self = { host: { uuid: h.uuid, name: `host-${h.key}`, agent_ip: h.agentIp } };
    fs.writeFileSync(`${h.answers}.tmp`, JSON.stringify({ '2016-07-29': { default: { ...env, self } } }));
    fs.renameSync(`${h.answers}.tmp`, h.answers);
  }
}

function addPod(h: Host, n: number, plugin: Pod['plugin'] = 'cattle-bridge'): Pod {
  const ip = `10.42.${hosts.indexOf(h) + 1}.${n}`;
  const name = `${h.key}${n}`;
  const pod: Pod = { name, host: h, ns: makeNetns(`ccni-mf-${name}`), ip, plugin, id: `mf${process.pid}${name}`.padEnd(24, '0') };
  assertOk(runExe(plugin, {
    netns: h.ns,
    env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod.id, CNI_NETNS: pod.ns.path, CNI_IFNAME: 'eth0', CNI_PATH: BIN, CNI_ARGS: `IgnoreUnknown=1;IPAddress=${ip}`, ...hostEnv(h) },
    stdin: plugin === 'cattle-bridge' ? BRIDGE_CONF : PTP_CONF,
  }));
  pods.push(pod);
  return pod;
}

const pod = (name: string): Pod => pods.find((p) => p.name === name)!;

function startAgent(h: Host): Proc {
  const args = ['--underlay-iface', 'eth0', '--poll-wait', '5'];
  if (h.key === 'a') args.push('--metadata-address', `127.0.0.1:${PROXY_PORT}`);
  return spawnIn(h.ns, path.join(BIN, 'cattle-net'), args, hostEnv(h));
}

interface FdbEntry { mac: string; dst?: string; flags?: string[]; state?: string }
interface NeighEntry { dst: string; lladdr?: string; state?: string[] }
const fdbOf = (h: Host): FdbEntry[] => (JSON.parse(h.ns.exec('bridge', ['-j', 'fdb', 'show', 'dev', VTEP]).stdout || '[]') as FdbEntry[]).filter((e) => e.dst !== undefined);
const neighOf = (h: Host): NeighEntry[] => h.ns.ipJson<NeighEntry[]>('neigh', 'show', 'dev', VTEP);
const fdbLines = (h: Host): string[] => fdbOf(h).map((e) => `${e.mac} ${e.dst}`).sort();
const neighLines = (h: Host): string[] => neighOf(h).map((n) => `${n.dst} ${n.lladdr} ${(n.state ?? []).join(',')}`).sort();

/** What A should have: one FDB entry per peer, one permanent neighbour per remote container. */
function wantedOn(h: Host): { fdb: string[]; neigh: string[] } {
  const peers = hosts.filter((p) => p !== h && present.has(p.uuid));
  const remote = pods.filter((p) => p.host !== h && present.has(p.host.uuid)).map((p) => `${p.ip} ${p.host.vtepMac} PERMANENT`);
  if (h.key !== 'b' && present.has(hosts[1]!.uuid)) remote.push(...phantoms.map((ip) => `${ip} ${hosts[1]!.vtepMac} PERMANENT`));
  return { fdb: peers.map((p) => `${p.vtepMac} ${p.agentIp}`).sort(), neigh: remote.sort() };
}

/** `ip monitor <what> dev VTEP` in h, started now; lines() so far; stop() ends it. */
function monitor(h: Host, what: 'neigh' | 'link'): Proc {
  return spawnIn(h.ns, 'ip', ['monitor', what, ...(what === 'neigh' ? ['dev', VTEP] : [])]);
}

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// The fault proxy in A: forwards to A's cattle-metadata; a mode per line on its stdin
// (ok, down, slow, hang: never answers, garbage, shapes); a mode other than ok/slow also cuts
// open connections.
const PROXY = `
const http = require('http');
let mode = 'ok';
const socks = new Set();
const json = (res, body) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(body); };
const s = http.createServer((req, res) => {
  if (mode === 'down') { req.socket.destroy(); return; }
  if (mode === 'hang') return;
  const go = () => {
    if (mode === 'garbage') return json(res, '<html><body>502 Bad Gateway</body></html>');
    if (mode === 'shapes' && !/\\/version/.test(req.url)) {
      const u = req.url;
      return json(res, /self\\/host/.test(u) ? '[1,2,3]' : /\\/hosts/.test(u) ? '{"uuid":"not a list"}' : /\\/containers/.test(u) ? '"containers"' : '[1,"x",null]');
    }
    const up = http.request({ host: '169.254.169.250', port: 80, path: req.url, method: req.method, headers: req.headers }, (ur) => { res.writeHead(ur.statusCode, ur.headers); ur.pipe(res); });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  };
  if (mode === 'slow') setTimeout(go, 1500); else go();
});
s.on('connection', (c) => { socks.add(c); c.on('close', () => socks.delete(c)); });
s.listen(${PROXY_PORT}, '127.0.0.1', () => console.log('proxy up'));
process.stdin.on('data', (d) => {
  for (const l of String(d).split('\\n').map((x) => x.trim()).filter(Boolean)) {
    mode = l;
    if (mode !== 'ok' && mode !== 'slow') for (const c of socks) c.destroy();
    console.log('mode ' + mode);
  }
});
`;
let proxy: Proc;
async function setMode(mode: 'ok' | 'down' | 'slow' | 'hang' | 'garbage' | 'shapes'): Promise<void> {
  const m = proxy.mark();
  proxy.child.stdin!.write(`${mode}\n`);
  await proxy.waitFor(new RegExp(`mode ${mode}\\n`), `proxy mode ${mode}`, 5000, m);
}

const underlay = makeNetns('ccni-mf-ul');

describe('cattle-net under faults, next to a rancher/vxlan host', { timeout: 240_000 }, () => {
  before(async () => {
    underlay.exec('ip', ['link', 'add', 'ul0', 'type', 'bridge']);
    underlay.exec('ip', ['link', 'set', 'ul0', 'up']);
    for (const key of ['a', 'b', 'r'] as const) {
      const i = hosts.length + 1;
      const ns = makeNetns(`ccni-mf-${key}`);
      const dir = path.join(tmp, key);
      fs.mkdirSync(dir);
      const h: Host = { key, uuid: `host-uuid-${key}`, agentIp: `192.168.100.${10 + i}`, vtepMac: `0e:00:c0:a8:64:${(10 + i).toString(16).padStart(2, '0')}`, ns, dir, answers: path.join(dir, 'answers.json') };
      underlay.exec('ip', ['link', 'add', `ul-${key}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
      underlay.exec('ip', ['link', 'set', `ul-${key}`, 'master', 'ul0', 'up']);
      ns.exec('ip', ['addr', 'add', `${h.agentIp}/24`, 'dev', 'eth0']);
      ns.exec('ip', ['link', 'set', 'eth0', 'up']);
      ns.exec('ip', ['route', 'add', 'default', 'dev', 'eth0']);
      ns.exec('ip', ['addr', 'add', '169.254.169.250/32', 'dev', 'lo']);
      hosts.push(h);
      present.add(h.uuid);
    }
    const [a, b, r] = hosts as [Host, Host, Host];
    addPod(a, 10);
    addPod(a, 30, 'cattle-ptp');
    addPod(b, 10);
    addPod(b, 30, 'cattle-ptp');
    addPod(r, 10);
    publish();
    for (const h of [a, b]) h.metadata = spawnIn(h.ns, path.join(BIN, 'cattle-metadata'), ['serve', '--answers', h.answers]);
    await Promise.all([a, b].map((h) => stdoutLine(h.metadata!)));
    proxy = spawnIn(a.ns, process.execPath, ['-e', PROXY], {}, 'pipe');
    await proxy.waitFor(/proxy up\n/, 'the proxy');
    for (const h of [a, b]) h.agent = startAgent(h);
    for (const h of [a, b]) assert.equal((JSON.parse(await stdoutLine(h.agent!)) as { ready: boolean }).ready, true);
  });

  after(async () => {
    await Promise.all(hosts.flatMap((h) => [stop(h.agent), stop(h.metadata)]));
    await stop(proxy);
    for (const h of hosts.filter((x) => x.key !== 'r')) runExe('cattle-net', { netns: h.ns, env: hostEnv(h), args: ['teardown'] });
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('wire compatible with rancher/vxlan: pods on a host programmed as rancher/vxlan does reach pods on cattle-net hosts, both ways', async () => {
    const [a, b, r] = hosts as [Host, Host, Host];
    // Exactly what rancher/vxlan programs on R (the reference sheet), by iproute2; no cattle-net on R.
    const ip = (...args: string[]): void => void r.ns.exec('ip', args);
    ip('link', 'add', VTEP, 'type', 'vxlan', 'id', String(VNI), 'dstport', '4789', 'nolearning', 'proxy', 'rsc', 'l2miss', 'l3miss', 'ttl', 'auto');
    ip('link', 'set', VTEP, 'address', r.vtepMac);
    ip('link', 'set', VTEP, 'mtu', '1500');
    ip('link', 'set', VTEP, 'master', 'docker0');
    ip('link', 'set', VTEP, 'up');
    for (const peer of [a, b]) r.ns.exec('bridge', ['fdb', 'append', peer.vtepMac, 'dev', VTEP, 'dst', peer.agentIp, 'self', 'permanent']);
    for (const p of pods.filter((x) => x.host !== r)) ip('neigh', 'add', p.ip, 'lladdr', p.host.vtepMac, 'dev', VTEP, 'nud', 'permanent');
    for (const k of ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.default.send_redirects=0', 'net.ipv4.conf.docker0.send_redirects=0']) r.ns.exec('sysctl', ['-qw', k]);
    // cattle-net on A and B has R as a peer and R's pod as a remote container.
    for (const h of [a, b]) {
      assert.ok(fdbLines(h).includes(`${r.vtepMac} ${r.agentIp}`), `${h.key}: FDB entry for R`);
      assert.ok(neighLines(h).includes(`${pod('r10').ip} ${r.vtepMac} PERMANENT`), `${h.key}: neighbour for r10`);
    }
    const failed: string[] = [];
    for (const [from, to] of [['r10', 'a10'], ['a10', 'r10'], ['r10', 'b10'], ['b10', 'r10'], ['r10', 'a30'], ['a30', 'r10'], ['b30', 'r10']] as const) {
      if (!ping(pod(from).ns, pod(to).ip)) failed.push(`${from}→${to}`);
    }
    assert.deepEqual(failed, []);
    // And TCP both ways (a node echo in r10, connected to from a10; and from r10 to b10).
    const server = spawnIn(pod('r10').ns, process.execPath, ['-e', `require('net').createServer((c)=>c.pipe(c)).listen(5002,'${pod('r10').ip}',()=>console.log('up'))`]);
    try {
      await server.waitFor(/up\n/, 'the echo server');
      const c = pod('a10').ns.exec(process.execPath, ['-e', `const c=require('net').connect(5002,'${pod('r10').ip}',()=>c.end('hello rancher'));let r='';c.on('data',(d)=>r+=d);c.on('end',()=>console.log(r));c.setTimeout(10000,()=>process.exit(1))`]);
      assert.equal(c.stdout.trim(), 'hello rancher');
    } finally {
      await stop(server, 'SIGKILL');
    }
  });

  it('metadata down, slow, hanging, garbage, wrong shapes and flapping: the data plane stays, each is logged once, and the change published meanwhile lands', async (t) => {
    const [a] = hosts as [Host, Host, Host];
    // A failure here must not leave the proxy broken for the tests after it.
    t.after(() => setMode('ok'));
    const before = { fdb: fdbLines(a), neigh: neighLines(a) };
    assert.deepEqual(before, wantedOn(a));
    const cases: [mode: 'down' | 'hang' | 'garbage' | 'shapes', log: RegExp][] = [
      ['down', /metadata unreachable, keeping the last applied state \(version \d+\), retrying: [^\n]+/],
      // Accepted but never answered: the agent's request timeout (10 s) ends the wait.
      ['hang', /metadata unreachable, keeping the last applied state \(version \d+\), retrying: no answer from [^\n]+ within \d+ ms/],
      ['garbage', /metadata unreachable, keeping the last applied state \(version \d+\), retrying: [^\n]*(JSON|json)[^\n]*/],
      ['shapes', /metadata unreachable, keeping the last applied state \(version \d+\), retrying: (?![^\n]*connection closed)[^\n]+/],
    ];
    for (const [mode, re] of cases) {
      const m = a.agent!.mark();
      await setMode(mode);
      // A change published while metadata is bad (a new version: the agent must read everything):
      // nothing of it, nor any removal, reaches A's kernel.
      phantoms = ['10.42.2.200'];
      publish();
      const line = await a.agent!.waitFor(re, `the ${mode} log line`, 20_000, m);
      console.log(`# ${mode}: ${line}`);
      const m1 = a.agent!.mark();
      assert.deepEqual({ fdb: fdbLines(a), neigh: neighLines(a) }, before, `${mode}: A's entries unchanged`);
      const st = runExe('cattle-net', { netns: a.ns, env: hostEnv(a), args: ['status', '--json'] }).json as { state: string; metadata: { reachable: boolean } };
      assert.deepEqual([st.state, st.metadata.reachable], ['metadata-unreachable', false]);
      const m2 = a.agent!.mark();
      const ev = monitor(a, 'neigh');
      await new Promise((r) => setTimeout(r, 150));
      await setMode('ok');
      await a.agent!.waitFor(/metadata reachable again/, `${mode}: recovery`, 20_000, m2);
      assert.ok(!a.agent!.output().slice(m1).includes(line), `${mode}: the same problem is logged once, not at every retry`);
      await ev.waitFor(/^10\.42\.2\.200 lladdr 0e:00:c0:a8:64:0c PERMANENT/m, `${mode}: the neighbour published meanwhile`);
      await stop(ev);
      phantoms = [];
      publish();
      await until(`${mode}: back to the pods only`, () => !neighLines(a).some((l) => l.startsWith('10.42.2.200 ')));
      assert.equal(a.agent!.child.exitCode, null, 'still running');
      assert.equal(a.agent!.stderr().split('\n').filter((l) => l.startsWith('cattle-net: started')).length, 1, 'never restarted');
    }
    // Slow: every answer 1.5 s late; the change still lands and nothing is reported unreachable.
    {
      const m = a.agent!.mark();
      await setMode('slow');
      const ev = monitor(a, 'neigh');
      await new Promise((r) => setTimeout(r, 150));
      phantoms = ['10.42.2.201'];
      publish();
      await ev.waitFor(/^10\.42\.2\.201 lladdr 0e:00:c0:a8:64:0c PERMANENT/m, 'slow: the neighbour');
      await stop(ev);
      await setMode('ok');
      assert.doesNotMatch(a.agent!.stderr().slice(m), /metadata unreachable/);
      phantoms = [];
      publish();
      await until('slow: back to the pods only', () => !neighLines(a).some((l) => l.startsWith('10.42.2.201 ')));
    }
    // Flapping: down and up five times; one line each way each time, no restart, entries kept.
    for (let i = 0; i < 5; i++) {
      const m = a.agent!.mark();
      await setMode('down');
      await a.agent!.waitFor(/metadata unreachable, keeping the last applied state/, `flap ${i}: down`, 20_000, m);
      await setMode('ok');
      await a.agent!.waitFor(/metadata reachable again/, `flap ${i}: up`, 20_000, m);
      assert.deepEqual({ fdb: fdbLines(a), neigh: neighLines(a) }, wantedOn(a));
    }
    assert.equal(a.agent!.child.exitCode, null);
    assert.ok(ping(pod('a10').ns, pod('b10').ip));
  });

  it('a host that vanishes from metadata loses its entries on the others, and gets them back when it returns', async () => {
    const [a, b, r] = hosts as [Host, Host, Host];
    const ev = monitor(a, 'neigh');
    await new Promise((res) => setTimeout(res, 150));
    const m = a.agent!.mark();
    present.delete(b.uuid);
    publish();
    await ev.waitFor(new RegExp(`^Deleted ${pod('b10').ip.replace(/\./g, '\\.')} `, 'm'), 'b10 neighbour deleted on A');
    await until('B gone from A', () => !fdbLines(a).some((l) => l.endsWith(` ${b.agentIp}`)) && !neighLines(a).some((l) => l.startsWith('10.42.2.')));
    assert.deepEqual({ fdb: fdbLines(a), neigh: neighLines(a) }, wantedOn(a));
    assert.ok(!ping(pod('a10').ns, pod('b10').ip), 'a10 → b10 fails while B is gone');
    await a.agent!.waitFor(/version \d+: fdb \+0 -1, neighbours \+0 -2/, 'the removal logged', 10_000, m);
    present.add(b.uuid);
    publish();
    await ev.waitFor(new RegExp(`^${pod('b10').ip.replace(/\./g, '\\.')} lladdr ${b.vtepMac} PERMANENT`, 'm'), 'b10 neighbour back on A');
    await stop(ev);
    await until('B back on A', () => fdbLines(a).length === 2 && neighLines(a).length === wantedOn(a).neigh.length);
    assert.deepEqual({ fdb: fdbLines(a), neigh: neighLines(a) }, wantedOn(a));
    assert.ok(ping(pod('a10').ns, pod('b10').ip));
    assert.ok(ping(pod('b30').ns, pod('a30').ip));
    assert.ok(fdbLines(a).includes(`${r.vtepMac} ${r.agentIp}`));
  });

  it('the VTEP altered or deleted by hand is repaired on the link event (no resync needed: --resync is 60 s)', async () => {
    const [a] = hosts as [Host, Host, Host];
    const ifindex = (): number => a.ns.ipJson<{ ifindex: number }[]>('link', 'show', VTEP)[0]!.ifindex;
    const vtep = (): { mtu: number; address: string; master?: string; linkinfo: { info_data: { id: number } } } => a.ns.ipJson<never[]>('-d', 'link', 'show', VTEP)[0]!;
    const tamper = async (what: string, batch: string, log: RegExp, paused = false): Promise<string> => {
      const m = a.agent!.mark();
      // A swap of several steps is made while the agent is stopped: it would otherwise repair between them.
      if (paused) process.kill(a.agent!.child.pid!, 'SIGSTOP');
      try {
        a.ns.exec('ip', ['-batch', '-'], { input: batch });
      } finally {
        if (paused) process.kill(a.agent!.child.pid!, 'SIGCONT');
      }
      const line = await a.agent!.waitFor(log, what, 10_000, m);
      console.log(`# ${what}: ${line}`);
      const v = vtep();
      assert.deepEqual([v.mtu, v.address, v.master, v.linkinfo.info_data.id], [1500, a.vtepMac, 'docker0', VNI], `${what}: repaired`);
      await until(`${what}: entries back`, () => fdbLines(a).length === wantedOn(a).fdb.length && neighLines(a).length === wantedOn(a).neigh.length);
      assert.deepEqual({ fdb: fdbLines(a), neigh: neighLines(a) }, wantedOn(a), `${what}: entries`);
      return line;
    };
    const index0 = ifindex();
    await tamper('MTU', `link set ${VTEP} mtu 1400\n`, /link event \((vtep1042|docker0) [a-z]+\): [^\n]*MTU 1400 → 1500/);
    await tamper('MAC', `link set ${VTEP} address 0e:00:00:00:00:01\n`, /link event \((vtep1042|docker0) [a-z]+\): [^\n]*MAC 0e:00:00:00:00:01 → 0e:00:c0:a8:64:0b/);
    await tamper('master', `link set ${VTEP} nomaster\n`, /link event \((vtep1042|docker0) [a-z]+\): [^\n]*master → docker0/);
    assert.equal(ifindex(), index0, 'MTU, MAC and master set in place');
    await tamper('deleted', `link del ${VTEP}\n`, /link event \((vtep1042|docker0) [a-z]+\): [^\n]*fdb \+2 -0, neighbours \+\d+ -0[^\n]*vtep1042: missing: created/);
    await tamper('VNI', `link del ${VTEP}\nlink add ${VTEP} type vxlan id 77 dstport 4789\n`, /link event \((vtep1042|docker0) [a-z]+\): [^\n]*taken over \(a vxlan device not made by cattle-net: VNI 77[^\n]*VNI 77: re-created/, true);
    const failed: string[] = [];
    for (const [from, to] of [['a10', 'b10'], ['b10', 'a10'], ['a30', 'b30'], ['b30', 'a10']] as const) if (!ping(pod(from).ns, pod(to).ip)) failed.push(`${from}→${to}`);
    assert.deepEqual(failed, []);
    assert.equal(a.agent!.child.exitCode, null);
  });

  it('a TCP stream between pods on A and B keeps flowing while cattle-net on A is stopped (SIGTERM) and started again', async () => {
    const [a] = hosts as [Host, Host, Host];
    const dst = pod('b10');
    // Receiver in b10: prints "conn", then the running byte count, and "end"/"error" if the stream ever breaks.
    const receiver = spawnIn(dst.ns, process.execPath, ['-e', `let n=0,c=0;require('net').createServer((s)=>{c++;console.log('conn '+c);s.on('data',(d)=>{n+=d.length});s.on('end',()=>console.log('end'));s.on('error',(e)=>console.log('error '+e.message))}).listen(5003,'${dst.ip}',()=>console.log('up'));setInterval(()=>console.log('bytes '+n),100)`]);
    let sender: Proc | undefined;
    const startSender = (): Proc => spawnIn(pod('a10').ns, process.execPath, ['-e', `const s=require('net').connect(5003,'${dst.ip}',()=>{console.log('connected');const b=Buffer.alloc(16384,1);const tick=()=>{if(s.write(b))setTimeout(tick,5);else s.once('drain',tick)};tick()});s.on('error',(e)=>{console.log('error '+e.message);process.exit(1)});s.on('close',()=>{console.log('closed');process.exit(1)})`]);
    const bytes = (): number => Number(/bytes (\d+)\n(?![\s\S]*bytes )/.exec(receiver.stdout())?.[1] ?? 0);
    try {
      await receiver.waitFor(/up\n/, 'the receiver');
      // Sender in a10, once the receiver listens: a steady stream, 16 KiB every 5 ms, with backpressure; reports errors.
      sender = startSender();
      await sender.waitFor(/connected\n/, 'the sender connected');
      await until('bytes flowing', () => bytes() > 1 << 20);
      const neigh = monitor(a, 'neigh');
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(await stop(a.agent), 0);
      const atStop = bytes();
      a.agent = startAgent(a);
      assert.equal((JSON.parse(await stdoutLine(a.agent)) as { ready: boolean }).ready, true);
      const atReady = bytes();
      await until('the stream still flowing after the restart', () => bytes() > atReady + (1 << 20));
      await stop(neigh);
      assert.doesNotMatch(neigh.stdout(), /^Deleted /m, 'no neighbour entry was removed across the restart');
      assert.doesNotMatch(sender.stdout(), /error|closed/);
      assert.equal(sender.child.exitCode, null, 'the sender is still sending');
      assert.doesNotMatch(receiver.stdout(), /^(end|error)/m);
      assert.equal(receiver.stdout().match(/^conn /gm)?.length, 1, 'one connection throughout');
      console.log(`# bytes: ${atStop} at SIGTERM, ${atReady} at ready, ${bytes()} after`);
      assert.match(a.agent.stderr(), /cattle-net: started/);
    } finally {
      await stop(sender, 'SIGKILL');
      await stop(receiver, 'SIGKILL');
    }
  });

  it('SIGKILL in the middle of a large reconcile: the restarted agent adopts its VTEP and leaves exactly the desired entries', async () => {
    const [a] = hosts as [Host, Host, Host];
    const index0 = a.ns.ipJson<{ ifindex: number }[]>('link', 'show', VTEP)[0]!.ifindex;
    const N = 5000;
    const ipOf = (i: number): string => `10.44.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    const ev = monitor(a, 'neigh');
    await new Promise((r) => setTimeout(r, 150));
    phantoms = Array.from({ length: N }, (_, i) => ipOf(i));
    publish();
    // The first neighbour of the batch appears: kill A's agent at once (no SIGTERM handling).
    await ev.waitFor(/^10\.44\.\d+\.\d+ lladdr/m, 'the first neighbour of the batch', 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\nagent: ${a.agent!.stderr().slice(-2000)}`);
    });
    a.agent!.child.kill('SIGKILL');
    await a.agent!.exited;
    await stop(ev);
    const partial = neighLines(a).filter((l) => l.startsWith('10.44.')).length;
    console.log(`# killed with ${partial} of ${N} neighbours put`);
    assert.ok(partial > 0, 'some were put');
    // Meanwhile the environment changes: half of the batch goes away.
    phantoms = phantoms.slice(0, N / 2);
    publish();
    a.agent = startAgent(a);
    assert.equal((JSON.parse(await stdoutLine(a.agent)) as { ready: boolean }).ready, true);
    await a.agent.waitFor(/version \d+: fdb \+\d+ -\d+, neighbours \+\d+ -\d+/, 'the first reconcile line', 10_000);
    assert.equal(a.ns.ipJson<{ ifindex: number }[]>('link', 'show', VTEP)[0]!.ifindex, index0, 'the VTEP is the same device (adopted, not re-created)');
    const want = wantedOn(a);
    assert.deepEqual(fdbLines(a), want.fdb, 'one FDB entry per peer, no duplicate');
    const have = neighLines(a);
    assert.equal(have.length, want.neigh.length);
    assert.deepEqual(have, want.neigh, 'exactly the desired neighbours: nothing stale');
    if (partial < N) assert.match(a.agent.stderr(), /kernel entries on vtep1042 not recorded \(adopted\)/);
    // Back to the pods only.
    phantoms = [];
    publish();
    await until('the batch removed', () => neighLines(a).length === wantedOn(a).neigh.length, 30_000);
    assert.ok(ping(pod('a10').ns, pod('b10').ip));
  });
});
