// The fast path: plugin executables hand their request to a cattle-net agent
// in the same netns, which runs the same plugin code warm. Every agent here
// has its metadata unreachable and no filter: the fast path does not depend
// on the overlay. Agents are started and stopped by PID (test/helpers).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { assertOk, type Attach, cni, CNI_PATH, cniAsync, hostLocalIpam, tempDir, vethNames } from '../helpers/cni.ts';
import { startAgent, stopAgent } from '../helpers/fastpath-agents.ts';
import { BIN, makeNetns, runExe, sh, type TestNetns, trackPid, untrackPid } from '../helpers/harness.ts';

let dataDir: string;
let work: string;
before(() => {
  dataDir = tempDir('ccni-fp-hostlocal-');
  work = tempDir('ccni-fp-');
});
after(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

const hostLocal = hostLocalIpam(() => dataDir);

function bridgeConf(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion: '1.0.0', name: 'fpnet', type: 'cattle-bridge', bridge: 'cfp0', isGateway: true, ipam: hostLocal(['10.78.0.0/24']), ...over };
}

function ptpConf(): Record<string, unknown> {
  return { cniVersion: '1.0.0', name: 'fpptp', type: 'cattle-ptp', ipam: hostLocal(['10.78.1.0/24']) };
}

function via(socket: string, a: Attach): Attach {
  return { ...a, extraEnv: { ...a.extraEnv, CATTLE_CNI_AGENT_SOCKET: socket } };
}

function attach(plugin: string, host: TestNetns, pod: TestNetns | undefined, conf: object, id: string): Attach {
  return { plugin, host, conf, containerId: id, netns: pod?.path };
}

/** Links, addresses and routes of a netns, without what the kernel picks at random (ifindex, MACs, fe80::). */
function kernelState(ns: TestNetns): unknown {
  type L = { ifname: string; link?: string; master?: string; mtu: number; operstate: string; flags: string[]; ifalias?: string; linkinfo?: { info_kind?: string } };
  type A = { ifname: string; addr_info: { local: string; prefixlen: number; family: string }[] };
  const links = ns.ipJson<L[]>('-d', 'link', 'show').map((l) => ({
    ifname: l.ifname, kind: l.linkinfo?.info_kind, master: l.master, mtu: l.mtu, operstate: l.operstate, flags: l.flags, alias: l.ifalias,
  }));
  const addrs = ns.ipJson<A[]>('addr', 'show').map((a) => ({ ifname: a.ifname, addrs: a.addr_info.filter((i) => !i.local.startsWith('fe80')).map((i) => `${i.local}/${i.prefixlen}`) }));
  const routes = ns.exec('ip', ['route', 'show', 'table', 'all']).stdout.split('\n').filter((l) => l && !l.includes('fe80')).sort();
  const byName = (x: { ifname: string }, y: { ifname: string }) => x.ifname.localeCompare(y.ifname);
  return { links: links.sort(byName), addrs: addrs.sort(byName), routes };
}

function maskVethMacs(stdout: string, veths: string[]): string {
  let out = stdout;
  for (const v of veths) out = out.replace(new RegExp(`("name":"${v}","mac":")[0-9a-f:]{17}`), '$1<kernel>');
  return out;
}

test('equivalence: the agent path and the in-process path print the same bytes and leave the same kernel state', (t) => {
  const host = makeNetns('cfp-host');
  const pod = makeNetns('cfp-pod');
  const agent = startAgent(BIN, host.name);
  t.after(() => stopAgent(agent));
  const runs = { agent: agent.socket, inProcess: 'none' };
  const seen: Record<string, { add: string; check: string; del: string; bad: string; state: unknown; ptp: string; ptpState: unknown }> = {};
  for (const [mode, socket] of Object.entries(runs)) {
    const conf = bridgeConf(); // a data dir of its own: the same address both times
    host.exec('ip', ['link', 'add', 'cfp0', 'address', '0a:58:0a:4e:00:01', 'type', 'bridge']); // the same bridge MAC both times
    const a = via(socket, attach('cattle-bridge', host, pod, conf, 'eq-1'));
    const add = cni('ADD', { ...a, args: 'IgnoreUnknown=1;MAC=0a:58:0a:4e:00:63' });
    assertOk(add);
    const state = { host: kernelState(host), pod: kernelState(pod) };
    const check = cni('CHECK', { ...a, conf: { ...conf, prevResult: add.json } });
    assertOk(check);
    const del = cni('DEL', a);
    assertOk(del);
    const bad = cni('ADD', { ...a, conf: bridgeConf({ mtu: 'big' }) });
    assert.equal(bad.code, 1);
    host.exec('ip', ['link', 'del', 'cfp0']); // the bridge stays after DEL; its carrier settles at its own pace
    const p = via(socket, attach('cattle-ptp', host, pod, ptpConf(), 'eq-2'));
    const ptpAdd = cni('ADD', { ...p, args: 'IgnoreUnknown=1;MAC=0a:58:0a:4e:01:63' });
    assertOk(ptpAdd);
    const ptpState = { host: kernelState(host), pod: kernelState(pod) };
    assertOk(cni('DEL', p));
    const veths = [...new Set([...JSON.stringify(add.json).matchAll(/"name":"(veth[0-9a-f]+)"/g), ...JSON.stringify(ptpAdd.json).matchAll(/"name":"(veth[0-9a-f]+)"/g)].map((m) => m[1]!))];
    seen[mode] = { add: maskVethMacs(add.stdout, veths), check: check.stdout, del: del.stdout, bad: bad.stdout, state, ptp: maskVethMacs(ptpAdd.stdout, veths), ptpState };
    assert.deepEqual(vethNames(host), [], `${mode}: DEL left veths`);
  }
  assert.equal(seen.agent!.add, seen.inProcess!.add, 'ADD output');
  assert.equal(seen.agent!.check, seen.inProcess!.check);
  assert.equal(seen.agent!.del, seen.inProcess!.del);
  assert.equal(seen.agent!.bad, seen.inProcess!.bad, 'an invalid config gets the same error');
  assert.equal(seen.agent!.ptp, seen.inProcess!.ptp, 'ptp ADD output');
  assert.deepEqual(seen.agent!.state, seen.inProcess!.state, 'bridge kernel state');
  assert.deepEqual(seen.agent!.ptpState, seen.inProcess!.ptpState, 'ptp kernel state');
  const log = stopAgent(agent);
  assert.match(log, /fast path: served 6 requests/, 'every agent-mode request went through the agent');
});

test('fallback: no socket, a stale socket, another netns, --socket none: the executable does the work itself', (t) => {
  const host = makeNetns('cfp-host');
  const other = makeNetns('cfp-host');
  const pod = makeNetns('cfp-pod');
  // A stale socket: its agent was SIGKILLed (nobody listens; connection refused).
  const stale = startAgent(BIN, host.name);
  process.kill(stale.pid, 'SIGKILL');
  while (fs.existsSync(`/proc/${stale.pid}/stat`) && !/ Z /.test(fs.readFileSync(`/proc/${stale.pid}/stat`, 'utf8'))) sh('sleep', ['0.01']);
  assert.ok(fs.lstatSync(stale.socket).isSocket(), 'the killed agent left its socket');
  t.after(() => stopAgent(stale));
  // An agent in another netns: its socket is reachable through the shared /tmp, but it serves only its own netns.
  const foreign = startAgent(BIN, other.name);
  t.after(() => stopAgent(foreign));
  const cases = [['missing', path.join(work, 'no-such.sock')], ['stale', stale.socket], ['other netns', foreign.socket], ['none', 'none']] as const;
  for (const [label, socket] of cases) {
    const a = via(socket, attach('cattle-bridge', host, pod, bridgeConf(), `fb-${label.replace(' ', '-')}`));
    const r = cni('ADD', { ...a, ifname: `e${cases.findIndex((c) => c[0] === label)}` });
    assertOk(r);
    assert.equal(vethNames(other).length, 0, `${label}: nothing in the other netns`);
    assertOk(cni('DEL', { ...a, ifname: `e${cases.findIndex((c) => c[0] === label)}` }));
  }
  assert.deepEqual(vethNames(host), []);
  assert.match(stopAgent(foreign), /fast path: served 0 requests/);
  // The agent with --socket none makes no socket at all.
  const quiet = startAgent(BIN, host.name, ['--socket', 'none']);
  t.after(() => stopAgent(quiet));
  assert.equal(fs.existsSync(quiet.socket), false);
});

test('an agent that accepts and then says nothing: code 11, not run a second time; the retry succeeds', (t) => {
  const host = makeNetns('cfp-host');
  const pod = makeNetns('cfp-pod');
  const agent = startAgent(BIN, host.name);
  t.after(() => {
    try {
      process.kill(agent.pid, 'SIGCONT');
    } catch {
      // gone
    }
    stopAgent(agent);
  });
  const a = via(agent.socket, attach('cattle-bridge', host, pod, bridgeConf(), 'stalled'));
  process.kill(agent.pid, 'SIGSTOP');
  const r = cni('ADD', { ...a, extraEnv: { ...a.extraEnv, CATTLE_CNI_AGENT_SILENCE_MS: '300' } });
  process.kill(agent.pid, 'SIGCONT');
  assert.equal(r.code, 1);
  const err = r.json as { code: number; msg: string };
  assert.equal(err.code, 11);
  assert.match(err.msg, /said nothing for 300 ms/);
  // Served in order: once a later request is answered the stalled one has been seen, and declined.
  assertOk(cni('DEL', { ...a, containerId: 'nothing-here' }));
  assert.deepEqual(vethNames(host), [], 'the request the client gave up on was not run');
  assertOk(cni('ADD', a));
  assertOk(cni('DEL', a));
  assert.deepEqual(vethNames(host), []);
  assert.match(stopAgent(agent), /fast path: served 3 requests/);
});

test('agent SIGKILLed during an ADD: code 11, DEL removes what is there, a restarted agent serves again', async (t) => {
  const host = makeNetns('cfp-host');
  const pod = makeNetns('cfp-pod');
  // An IPAM that hangs while the hang file exists (and says where it is), else host-local.
  const bin = path.join(work, 'ipam-bin');
  fs.mkdirSync(bin, { recursive: true });
  const started = path.join(work, 'ipam-started');
  const hang = path.join(work, 'ipam-hang');
  fs.writeFileSync(path.join(bin, 'hang-ipam'), `#!/bin/sh\nif [ -e ${hang} ]; then echo $$ > ${started}.tmp; mv ${started}.tmp ${started}; exec sleep 600; fi\nexec /usr/lib/cni/host-local\n`, { mode: 0o755 });
  fs.writeFileSync(hang, '');
  const conf = bridgeConf({ ipam: { ...hostLocal(['10.78.2.0/24']), type: 'hang-ipam' } });
  const first = startAgent(BIN, host.name);
  let agent = first;
  t.after(() => {
    stopAgent(first); // killed below: this removes its directory
    if (agent !== first) stopAgent(agent);
  });
  const a: Attach = { ...via(agent.socket, attach('cattle-bridge', host, pod, conf, 'killed')), extraEnv: { CATTLE_CNI_AGENT_SOCKET: agent.socket, CNI_PATH: `${bin}:${CNI_PATH}` } };
  const pending = cniAsync('ADD', { ...a, extraEnv: { ...a.extraEnv } });
  await waitFor(() => fs.existsSync(started), 'the IPAM delegate to start');
  const ipamPid = Number(fs.readFileSync(started, 'utf8'));
  process.kill(agent.pid, 'SIGKILL');
  const r = await pending;
  try {
    process.kill(ipamPid, 'SIGKILL'); // the orphaned delegate the test's IPAM started
  } catch {
    // gone
  }
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal((r.json as { code: number }).code, 11);
  assert.match((r.json as { msg: string }).msg, /closed the connection/);
  fs.rmSync(hang);
  // No agent now: DEL runs in-process and removes whatever the killed ADD made.
  assertOk(cni('DEL', { ...a, extraEnv: { ...a.extraEnv } }));
  assert.deepEqual(vethNames(host), []);
  agent = startAgent(BIN, host.name);
  const b: Attach = { ...a, extraEnv: { CATTLE_CNI_AGENT_SOCKET: agent.socket, CNI_PATH: `${bin}:${CNI_PATH}` } };
  assertOk(cni('ADD', b));
  assertOk(cni('DEL', b));
  assert.deepEqual(vethNames(host), []);
  assert.match(stopAgent(agent), /fast path: served 2 requests/);
});

test('bad requests on the socket and a non-root peer never crash the agent', async (t) => {
  const host = makeNetns('cfp-host');
  const pod = makeNetns('cfp-pod');
  const agent = startAgent(BIN, host.name);
  t.after(() => stopAgent(agent));
  const send = (data: string | Buffer, end = true): Promise<string> => new Promise((resolve) => {
    const s = net.createConnection(agent.socket);
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('error', () => resolve(out));
    s.on('close', () => resolve(out));
    s.write(data);
    if (end) s.end();
  });
  assert.match(await send('not json\n'), /"error":"bad request: not JSON"/);
  assert.match(await send('[1,2]\n'), /not an object/);
  assert.match(await send('{"v":1}\n'), /must be a string/);
  assert.match(await send(`${JSON.stringify({ v: 1, program: 'cattle-bridge', netns: 'x', exe: 'y', stdin: '!!', notAfter: 0, env: {} })}\n`), /base64/);
  assert.match(await send(`${JSON.stringify({ v: 1, program: 'cattle-net', netns: 'x', exe: 'y', stdin: '', notAfter: 0, env: {} })}\n`), /"declined":"the agent does not run cattle-net"/);
  assert.match(await send('{"half": '), /"error":"request larger than/); // ended without a newline
  assert.match(await send(Buffer.alloc(5 * 1024 * 1024, 0x61)), /"error":"request larger than/);
  // A non-root peer (the socket opened up for this test only): refused by SO_PEERCRED.
  fs.chmodSync(path.dirname(agent.socket), 0o755);
  fs.chmodSync(agent.socket, 0o666);
  const client = spawn(process.execPath, ['-e', `const s=require('net').createConnection(${JSON.stringify(agent.socket)});let o='';s.on('data',d=>o+=d);s.on('close',()=>{process.stdout.write(o)});s.write('{}\\n')`],
    { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
  trackPid(client.pid);
  let out = '';
  client.stdout.on('data', (d) => (out += d));
  await new Promise((resolve) => client.on('close', resolve));
  untrackPid(client.pid);
  assert.match(out, /"error":"refused: only root/);
  fs.chmodSync(agent.socket, 0o600);
  // Still the same agent, still serving.
  const a = via(agent.socket, attach('cattle-bridge', host, pod, bridgeConf(), 'after-garbage'));
  assertOk(cni('ADD', a));
  assertOk(cni('DEL', a));
  const log = stopAgent(agent);
  assert.match(log, /refused a peer with uid 65534/);
  assert.match(log, /fast path: served 2 requests/);
});

test('50 ADDs + 50 DELs ×3 rounds through the agent: 0 failures, 0 leftovers, no descriptor growth, one attachment never interleaves', async (t) => {
  const host = makeNetns('cfp-host');
  const pods = Array.from({ length: 50 }, () => makeNetns('cfp-pod'));
  const agent = startAgent(BIN, host.name);
  t.after(() => stopAgent(agent));
  const log = path.join(work, 'storm.log');
  const conf = bridgeConf({ bridge: 'cfps0', ipam: hostLocal(['10.78.8.0/22']), logToFile: log });
  const fds = () => fs.readdirSync(`/proc/${agent.pid}/fd`).length;
  // DEL answers once a veth is gone; the kernel goes on freeing it for ~20 ms, each on a netlink socket of
  // its own that closes then. So the count is taken once those have closed: a leaked descriptor never does.
  const idleFds = fds();
  const settled = (what: string) => waitFor(() => fds() <= idleFds, `${what}: the agent's descriptors back to ${idleFds} (now ${fds()})`);
  for (let round = 0; round < 3; round++) {
    const as = pods.map((p, i) => via(agent.socket, attach('cattle-bridge', host, p, conf, `storm-${i}`)));
    const adds = await Promise.all(as.map((a) => cniAsync('ADD', a)));
    adds.forEach((r, i) => assert.equal(r.code, 0, `round ${round} ADD ${i}: ${r.stdout}${r.stderr}`));
    assert.equal(vethNames(host).length, 50);
    const dels = await Promise.all(as.map((a) => cniAsync('DEL', a)));
    dels.forEach((r, i) => assert.equal(r.code, 0, `round ${round} DEL ${i}: ${r.stdout}${r.stderr}`));
    assert.deepEqual(vethNames(host), [], `round ${round}: leftovers`);
    await settled(`round ${round}`);
  }
  // ADD, DEL, ADD of one attachment at once, five times: each runs alone, in arrival order's turn.
  const one = via(agent.socket, attach('cattle-bridge', host, pods[0], conf, 'same-one'));
  for (let i = 0; i < 5; i++) {
    const rs = await Promise.all([cniAsync('ADD', one), cniAsync('DEL', one), cniAsync('ADD', one)]);
    rs.forEach((r) => assert.equal(r.code, 0, r.stdout + r.stderr));
  }
  assertOk(cni('DEL', one));
  assert.deepEqual(vethNames(host), []);
  const done = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { step: string; containerId: string; time: string; durationMs: number })
    .filter((r) => r.step === 'done' && r.containerId === 'same-one')
    .map((r) => ({ end: Date.parse(r.time), start: Date.parse(r.time) - r.durationMs }))
    .sort((x, y) => x.start - y.start);
  assert.equal(done.length, 16);
  for (let i = 1; i < done.length; i++) assert.ok(done[i]!.start >= done[i - 1]!.end - 1, `requests ${i - 1} and ${i} of one attachment overlapped`);
  assert.match(stopAgent(agent), /fast path: served 316 requests/);
});

async function waitFor(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('runExe without an agent socket in the environment does the work in-process (the default socket is absent here)', () => {
  // The default /run/cattle-cni/agent.sock must not exist on a test machine: every other suite relies on it.
  assert.equal(fs.existsSync('/run/cattle-cni/agent.sock'), false);
  const r = runExe('cattle-bridge', { env: { CNI_COMMAND: 'VERSION' } });
  assertOk(r);
});
