// cattle-net's members-only filter on a real kernel, both backends: nftables
// (the default) and the iptables fallback used where nft is missing. A host
// netns with an underlay bridge, a member and a stranger sending VXLAN-port
// datagrams to it: the stranger's are dropped and counted, the member's pass;
// a membership update lets the stranger in; removal leaves nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

import { makeNetns, ROOT, type TestNetns, trackPid, untrackPid } from '../helpers/harness.ts';

const NODE = path.join(ROOT, 'node_modules', '.bin', 'node');
const FILTER = path.join(ROOT, 'agent', 'filter.ts');

/** Run filter code inside the host netns (from source), returning its JSON answer. */
function inHost(host: TestNetns, code: string): unknown {
  const script = `import * as f from ${JSON.stringify(FILTER)}; const out = await (async () => { ${code} })(); console.log(JSON.stringify(out ?? null));`;
  const r = host.exec(NODE, ['--input-type=module', '-e', script]);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** One UDP datagram to port 4789 from a netns (Node's dgram, inside that netns). */
function sendVxlan(from: TestNetns, to: string): void {
  from.exec(NODE, ['-e', `const s=require('dgram').createSocket('udp4');s.send(Buffer.alloc(8),4789,${JSON.stringify(to)},()=>s.close())`]);
}

/** A UDP listener on the host's 4789: the sources of what got through the filter. */
function listen(host: TestNetns): { seen: string[]; ready: Promise<void>; stop(): void } {
  const child = spawn('ip', ['netns', 'exec', host.name, NODE, '-e',
    `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>console.log(r.address));s.bind(4789,'10.9.0.1',()=>console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  trackPid(child.pid);
  const seen: string[] = [];
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    for (const l of d.split('\n').filter(Boolean)) {
      if (l === 'ready') onReady();
      else seen.push(l);
    }
  });
  return { seen, ready, stop: () => { child.kill('SIGKILL'); untrackPid(child.pid); } };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function underlay(): { host: TestNetns; member: TestNetns; stranger: TestNetns } {
  const host = makeNetns('cflt-host');
  const member = makeNetns('cflt-m');
  const stranger = makeNetns('cflt-s');
  host.exec('ip', ['link', 'add', 'ub0', 'type', 'bridge']);
  host.exec('ip', ['addr', 'add', '10.9.0.1/24', 'dev', 'ub0']);
  host.exec('ip', ['link', 'set', 'ub0', 'up']);
  for (const [ns, ip, n] of [[member, '10.9.0.2', 'm'], [stranger, '10.9.0.3', 's']] as const) {
    host.exec('ip', ['link', 'add', `u${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    host.exec('ip', ['link', 'set', `u${n}`, 'master', 'ub0', 'up']);
    ns.exec('ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    ns.exec('ip', ['link', 'set', 'eth0', 'up']);
  }
  return { host, member, stranger };
}

for (const backend of ['nft', 'iptables'] as const) {
  test(`members-only filter, ${backend} backend: strangers dropped and counted, members pass, removal leaves nothing`, async () => {
    const { host, member, stranger } = underlay();
    const created = inHost(host, `const m = new f.MembersFilter('ub0', '${backend}'); m.create(['10.9.0.2']); return { present: m.present(), state: m.state() };`) as { present: boolean; state: { backend: string; members: number } };
    assert.equal(created.present, true);
    assert.deepEqual({ backend: created.state.backend, members: created.state.members }, { backend, members: 1 });
    const listener = listen(host);
    try {
      await listener.ready;
      const dropped = () => (inHost(host, `return new f.MembersFilter('ub0', '${backend}').dropped();`) as number);
      sendVxlan(stranger, '10.9.0.1');
      sendVxlan(member, '10.9.0.1');
      // Only a non-member can hit the drop; the member's datagram reaches the listener.
      await until(() => dropped() === 1 && listener.seen.includes('10.9.0.2'), 'the stranger dropped and the member through');
      assert.deepEqual(listener.seen, ['10.9.0.2']);
      const rules = backend === 'nft' ? host.exec('nft', ['list', 'table', 'inet', 'cattle_net']).stdout : host.exec('iptables', ['-S', 'CATTLE-NET-VXLAN']).stdout;
      assert.match(rules, /10\.9\.0\.2/);
      assert.doesNotMatch(rules, /10\.9\.0\.3/);
      // A new member: its datagrams pass from now on.
      // (A fresh MembersFilter knows no members yet: it makes the filter anew, counter at 0.)
      assert.equal(inHost(host, `return new f.MembersFilter('ub0', '${backend}').update(['10.9.0.2', '10.9.0.3'], true);`), 'created');
      sendVxlan(stranger, '10.9.0.1');
      await until(() => listener.seen.includes('10.9.0.3'), 'the new member through');
      assert.equal(dropped(), 0);
    } finally {
      listener.stop();
    }
    const removed = inHost(host, 'return f.removeFilter();') as string[];
    assert.equal(removed.length, 1, removed.join(', '));
    assert.equal(host.exec('nft', ['list', 'table', 'inet', 'cattle_net'], { allowFail: true }).status === 0, false);
    assert.doesNotMatch(host.exec('iptables', ['-S']).stdout, /CATTLE-NET-VXLAN/);
  });
}
