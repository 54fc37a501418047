// The demo's second part (scripts/demo.ts runs it after the single-host
// part): three simulated hosts (network namespaces on one underlay bridge),
// each with its own cattle-metadata serving the same environment (self = that
// host) and its own cattle-net, a cattle-bridge pod (10-rancher-vxlan.conf:
// docker0, 10.42.0.0/16, MTU 1450) and a cattle-ptp pod on each, and a
// cross-host reachability table from real pings through the VXLAN overlay.
// Everything is planned and recorded (the caller's state.json) before it is
// made; simDestroy() removes it, also for --clean.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import {
  agentArgs, buildHosts, filterAvailable, firstLine, hostEnv, hostOf, inNs, metadataArgs, planPod, podAdd, simDestroy, simPlan, type SimState,
  startIn, VTEP, writeEnvironment } from './sim-hosts.ts';

export type { SimState } from './sim-hosts.ts';

export interface MultihostContext {
  bin: string;
  /** The demo's directory: the part's files go into <dir>/multihost. */
  dir: string;
  tag: string;
  /** Records the plan (the caller writes its state file); called before anything new is made. */
  record(sim: SimState): void;
  /** Prints a step heading; throws when the demo was interrupted. */
  step(text: string): Promise<void>;
  printTable(header: string[], rows: string[][]): void;
}

const KEYS = ['a', 'b', 'c'];

function ping(ns: string, ip: string): boolean {
  return inNs(ns, 'ping', ['-c', '1', '-W', '2', ip]).ok;
}

export function multihostSteps(keep: boolean): number {
  return keep ? 6 : 7;
}

/** Runs the part; with `keep`, leaves it running. False when something failed (the caller removes it). */
export async function multihost(ctx: MultihostContext, keep: boolean): Promise<boolean> {
  const sim = simPlan({ bin: ctx.bin, dir: path.join(ctx.dir, 'multihost'), hostKeys: KEYS, names: (what) => `ccni-demo-mh-${what}-${ctx.tag}` });
  for (const [i, h] of sim.hosts.entries()) {
    planPod(sim, { name: `web-${h.key}`, host: h.key, netns: `ccni-demo-mh-web-${h.key}-${ctx.tag}`, ip: `10.42.${i + 1}.10`, plugin: 'cattle-bridge', id: `demo-mh-web-${h.key}` });
    planPod(sim, { name: `db-${h.key}`, host: h.key, netns: `ccni-demo-mh-db-${h.key}-${ctx.tag}`, ip: `10.42.${i + 1}.30`, plugin: 'cattle-ptp', id: `demo-mh-db-${h.key}` });
  }
  ctx.record(sim); // before the first namespace exists
  const record = (): void => ctx.record(sim);

  await ctx.step(`three simulated hosts: network namespaces on an underlay bridge (${sim.underlay})`);
  buildHosts(sim);
  for (const h of sim.hosts) console.log(`    ${h.name}  ${h.netns}  eth0 ${h.agentIp}/24  (VTEP MAC ${h.vtepMac}), ${'169.254.169.250'} on lo`);

  await ctx.step('one environment for all hosts; cattle-metadata on each (--self-host = that host)');
  writeEnvironment(sim);
  console.log(`    ${sim.environment}: ${sim.hosts.length} hosts, network "managed" (10-rancher-vxlan.conf: bridge docker0, 10.42.0.0/16, linkMTUOverhead 50), ${sim.pods.length} containers`);
  const servers = sim.hosts.map((h) => startIn(sim, h, 'cattle-metadata', metadataArgs(sim, h), record));
  for (const [i, s] of servers.entries()) console.log(`    ${sim.hosts[i]!.name}: cattle-metadata (pid ${s.pid}) ${firstLine(s, `cattle-metadata on ${sim.hosts[i]!.name}`)}`);

  const filter = filterAvailable();
  await ctx.step(`cattle-net on each host (${agentArgs(filter).join(' ')}): the VTEP ${VTEP}, one FDB entry per peer, a neighbour per remote container${filter ? ', the members-only filter' : ''}`);
  if (!filter) console.log('    (neither nft nor iptables here: --no-filter)');
  const agents = sim.hosts.map((h) => startIn(sim, h, 'cattle-net', agentArgs(filter), record));
  let ok = true;
  for (const [i, a] of agents.entries()) {
    const line = firstLine(a, `cattle-net on ${sim.hosts[i]!.name}`);
    ok &&= (JSON.parse(line) as { ready?: boolean }).ready === true;
    console.log(`    ${sim.hosts[i]!.name}: cattle-net (pid ${a.pid}) ${line}`);
  }
  if (!ok) return false;

  await ctx.step('CNI ADD on each host: web-* by cattle-bridge, db-* by cattle-ptp; cattle-ipam asks the host\'s metadata service');
  for (const p of sim.pods) {
    const r = podAdd(sim, p);
    ok &&= r.ok;
    const mtu = r.ok ? inNs(p.netns, 'cat', ['/sys/class/net/eth0/mtu']).out.trim() : '';
    console.log(`    ${p.name.padEnd(6)} on ${hostOf(sim, p.host).name}: ${r.ok ? `ok ${p.ip} mtu ${mtu}` : `FAILED ${r.raw}`}`);
  }
  if (!ok) return false;

  await ctx.step('cross-host reachability, by real pings from inside each pod (through the VXLAN overlay)');
  const header = ['from \\ to', ...sim.pods.map((p) => p.name)];
  const rows: string[][] = [];
  // Across hosts only (same host: the first part shows it; a bridge and a ptp pod share 10.42.0.0/16 here).
  for (const p of sim.pods) rows.push([p.name, ...sim.pods.map((q) => (p.host === q.host ? '-' : ping(p.netns, q.ip) ? 'ok' : 'FAIL'))]);
  ctx.printTable(header, rows);
  const reachable = rows.every((r) => r.slice(1).every((c) => c === 'ok' || c === '-'));
  const a = sim.hosts[0]!;
  const web = sim.pods.filter((p) => p.plugin === 'cattle-bridge');
  const df = inNs(web[0]!.netns, 'ping', ['-c', '1', '-W', '2', '-M', 'do', '-s', String(1450 - 28), web[1]!.ip]).ok;
  console.log(`    (-: same host) cross-host reachability: ${reachable ? 'all ok' : 'FAILURES'}; full-size frame (1450 bytes, DF) ${web[0]!.name} → ${web[1]!.name}: ${df ? 'ok' : 'FAIL'}`);
  const status = spawnSync('ip', ['netns', 'exec', a.netns, path.join(sim.bin, 'cattle-net'), 'status'], { env: hostEnv(sim, a), encoding: 'utf8' });
  console.log(`    cattle-net status on ${a.name}:`);
  for (const line of status.stdout.trim().split('\n')) console.log(`      ${line}`);
  if (filter && hasNft()) {
    const members = /elements = \{([^}]*)\}/.exec(inNs(a.netns, 'nft', ['list', 'set', 'inet', 'cattle_net', 'members']).out)?.[1]?.trim() ?? '(empty)';
    console.log(`    members-only filter on ${a.name} (nft table inet cattle_net): UDP 4789 accepted from ${members}, every other source dropped and counted`);
  }
  if (!reachable || !df) return false;

  if (keep) {
    await ctx.step('kept running (--keep): the hosts, their cattle-metadata and cattle-net, the pods stay until --clean');
    console.log(`    look:     ip netns exec ${a.netns} ip neigh show dev ${VTEP}; ip netns exec ${a.netns} bridge fdb show dev ${VTEP}`);
    console.log(`    status:   ip netns exec ${a.netns} env CATTLE_CNI_AGENT_DIR=${path.join(a.dir, 'run')} ${path.join(sim.bin, 'cattle-net')} status`);
    console.log(`    try:      ip netns exec ${sim.pods[0]!.netns} ping -c1 ${sim.pods[5]!.ip}`);
    return true;
  }

  await ctx.step('SIGTERM the agents (the data plane stays), cattle-net teardown, CNI DEL, remove the namespaces');
  const left = simDestroy(sim, (line) => console.log(`    ${line}`), { del: true, removeDir: false });
  console.log(`    leftovers: ${left.length ? `FOUND ${left.join(', ')}` : 'none'}`);
  return left.length === 0;
}

function hasNft(): boolean {
  return spawnSync('sh', ['-c', 'command -v nft'], { stdio: 'ignore' }).status === 0;
}

/** --clean and failures: remove the part, whatever state it got to. */
export function destroyMultihost(sim: SimState, say: (line: string) => void): string[] {
  return simDestroy(sim, say, { del: true });
}
