// The demo (run through scripts/demo.sh, as root): the whole suite on an
// embedded default, without a Rancher server. A "host" netns with a default
// route runs cattle-metadata on 169.254.169.250 with cattle-assigned IPs for
// four "pods"; two pods are networked by cattle-bridge, two by cattle-ptp,
// all through cattle-ipam asking the metadata service. Then real pings and
// HTTP requests fill a reachability table, and everything is deleted again.
// The second part (scripts/demo-multihost.ts) then does it across three
// simulated hosts with cattle-net's VXLAN overlay: netns on an underlay
// bridge, each with its own cattle-metadata (same environment, self = that
// host), cattle-net and pods, and a cross-host table from real pings.
//
//   demo.ts            run it and remove everything
//   demo.ts --keep     run it and leave it running (returns at once)
//   demo.ts --clean    remove every kept (or interrupted) demo
//
// Everything a demo makes is recorded before it is made, in
// <demo dir>/<tag>/state.json (demo dir: $CATTLE_CNI_DEMO_DIR, default
// /run/cattle-cni-demo): the namespaces, the pods, the metadata server's PID,
// and for the second part its simulated hosts, pods and the PIDs of their
// cattle-metadata and cattle-net (under <tag>/multihost, also the agents' run dirs).
// The same directory holds the answers file, the server's output and the
// plugins' state and lock files (CATTLE_CNI_STATE_DIR, CATTLE_CNI_LOCK_DIR),
// so nothing goes under /run/cattle-cni or /etc, and removing the namespaces,
// the server and that directory leaves nothing behind.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { destroyMultihost, multihost, multihostSteps, type SimState } from './demo-multihost.ts';
import { inNs, netnsExists, processAlive, runPluginIn, sh, sleepSync } from './sim-hosts.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const DEFAULT_BIN = process.env.CATTLE_CNI_BIN ?? path.join(ROOT, 'dist', 'bin');
const DEMO_ROOT = process.env.CATTLE_CNI_DEMO_DIR ?? '/run/cattle-cni-demo';
const METADATA_IP = '169.254.169.250';
const USAGE = `usage: npm run demo [-- --keep | --clean]
  (no option)  run the demo in fresh network namespaces, then remove everything
  --keep       leave the demo running for inspection (returns at once)
  --clean      remove every kept or interrupted demo (DEL of each pod, the metadata
               server, the namespaces, ${DEMO_ROOT}/<tag>)
`;

interface Pod {
  name: string;
  netns: string;
  id: string;
  plugin: 'cattle-bridge' | 'cattle-ptp';
  ip: string;
  mac?: string;
  gateway: string;
}

/** What a demo made (or is about to make): enough for --clean to remove all of it. */
interface DemoState {
  tag: string;
  /** PID of the demo.ts that made it; a running demo's state is left alone by --clean. */
  owner: number;
  phase: 'running' | 'kept';
  bin: string;
  dir: string;
  host: string;
  world: string;
  pods: Pod[];
  metadataPid?: number;
  /** The second part (scripts/demo-multihost.ts): simulated hosts with cattle-net, once planned. */
  multihost?: SimState;
  /** The single-host part is already removed (the second part runs after it). */
  singleDone?: boolean;
}

function usageError(message: string): never {
  process.stderr.write(`demo: ${message}\n${USAGE}`);
  process.exit(2);
}

function stateFile(st: DemoState): string {
  return path.join(st.dir, 'state.json');
}

function saveState(st: DemoState): void {
  const tmp = `${stateFile(st)}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(st, null, 2)}\n`);
  fs.renameSync(tmp, stateFile(st));
}

function bridgeConf(): object {
  return {
    cniVersion: '1.1.0', name: 'demo-bridge', type: 'cattle-bridge', bridge: 'cattle0', bridgeSubnet: '10.42.0.0/16',
    isDefaultGateway: true, mtu: 1500, linkMTUOverhead: 50,
    ipam: { type: 'cattle-ipam', subnetPrefixSize: '/16', metadataAddress: METADATA_IP, timeout: 10 },
  };
}

function ptpConf(): object {
  return {
    cniVersion: '1.1.0', name: 'demo-ptp', type: 'cattle-ptp', mtu: 1500,
    ipam: { type: 'cattle-ipam', subnetPrefixSize: '/32', metadataAddress: METADATA_IP, timeout: 10 },
  };
}

function cni(st: DemoState, cmd: 'ADD' | 'DEL', pod: Pod): { ok: boolean; json: unknown; raw: string } {
  const conf = pod.plugin === 'cattle-bridge' ? bridgeConf() : ptpConf();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: cmd, CNI_CONTAINERID: pod.id, CNI_NETNS: `/var/run/netns/${pod.netns}`, CNI_IFNAME: 'eth0', CNI_PATH: st.bin,
    CATTLE_CNI_STATE_DIR: path.join(st.dir, 'state'), CATTLE_CNI_LOCK_DIR: path.join(st.dir, 'lock'),
  };
  return runPluginIn(st.host, path.join(st.bin, pod.plugin), env, conf);
}

/**
 * cattle-metadata in the host netns, detached (own session, output to files in the demo
 * directory), so that it outlives `--keep`; its PID goes into the state before anything else.
 */
function startMetadata(st: DemoState): number {
  const out = path.join(st.dir, 'metadata.out');
  const err = path.join(st.dir, 'metadata.err');
  const outFd = fs.openSync(out, 'w');
  const errFd = fs.openSync(err, 'w');
  const child = spawn('ip', ['netns', 'exec', st.host, path.join(st.bin, 'cattle-metadata'), 'serve', '--answers', path.join(st.dir, 'answers.json'),
    '--listen', `${METADATA_IP}:80`, '--reload-listen', 'none'], { stdio: ['ignore', outFd, errFd], detached: true });
  fs.closeSync(outFd);
  fs.closeSync(errFd);
  child.unref();
  if (child.pid === undefined) throw new Error('cattle-metadata could not be started');
  st.metadataPid = child.pid; // `ip netns exec` execs the server: this is its PID
  saveState(st);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const line = fs.readFileSync(out, 'utf8').split('\n')[0]!;
    if (line.includes('"listening"')) {
      console.log(`    cattle-metadata (pid ${child.pid}) ${line}`);
      return child.pid;
    }
    if (!processAlive(child.pid)) throw new Error(`cattle-metadata exited: ${fs.readFileSync(err, 'utf8').trim()}`);
    if (Date.now() > deadline) throw new Error('cattle-metadata did not start within 10 s');
    sleepSync(50);
  }
}

/** SIGTERM, then SIGKILL after 3 s: only the recorded PID, and only while it is still our server. */
function stopMetadata(st: DemoState): string {
  const pid = st.metadataPid;
  if (pid === undefined || !processAlive(pid)) return 'cattle-metadata: not running';
  let cmdline = '';
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return 'cattle-metadata: not running';
  }
  // After a reboot (or a very long time) the PID may belong to someone else: leave that alone.
  if (!cmdline.includes('cattle-metadata') || !cmdline.includes(st.dir)) return `cattle-metadata: pid ${pid} is another process now, left alone`;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 60 && processAlive(pid); i++) sleepSync(50);
  if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 40 && processAlive(pid); i++) sleepSync(50);
  return processAlive(pid) ? `cattle-metadata (pid ${pid}) did not stop` : `cattle-metadata (pid ${pid}) stopped`;
}

function namespacesOf(st: DemoState): string[] {
  return [...st.pods.map((p) => p.netns), st.host, st.world];
}

/**
 * Removes one demo, whatever state it got to: DEL of every pod (with the pod's own netns
 * gone too: DEL does not need it), the metadata server, the namespaces, the directory.
 * Returns what is still there afterwards (nothing, normally).
 */
function teardown(st: DemoState, say: (line: string) => void, opts: { del: boolean }): string[] {
  const left = st.multihost ? destroyMultihost(st.multihost, say) : [];
  if (!st.singleDone) left.push(...teardownSingle(st, say, opts));
  fs.rmSync(st.dir, { recursive: true, force: true });
  try {
    fs.rmdirSync(DEMO_ROOT); // only when no other demo is there
  } catch {
    // not empty, or gone
  }
  say(`removed ${st.dir}`);
  if (fs.existsSync(st.dir)) left.push(st.dir);
  return left;
}

/** The single-host part: DEL of its pods, its metadata server, its namespaces (not the directory). */
function teardownSingle(st: DemoState, say: (line: string) => void, opts: { del: boolean }): string[] {
  if (opts.del) {
    if (!netnsExists(st.host)) say('DEL: skipped, host namespace gone (its veths went with it)');
    else if (!fs.existsSync(path.join(st.bin, 'cattle-bridge'))) say(`DEL: skipped, ${st.bin} has no plugins (the namespaces go anyway)`);
    else {
      for (const p of st.pods) {
        const r = cni(st, 'DEL', p);
        say(`DEL ${p.name}: ${r.ok ? 'ok' : `FAILED ${r.raw}`}`);
      }
    }
  }
  say(stopMetadata(st));
  const removed = namespacesOf(st).filter(netnsExists);
  for (const ns of removed) spawnSync('ip', ['netns', 'del', ns]);
  say(`namespaces removed: ${removed.length ? removed.join(' ') : '(none left)'}`);
  return [
    ...namespacesOf(st).filter(netnsExists).map((ns) => `netns ${ns}`),
    ...(st.metadataPid !== undefined && processAlive(st.metadataPid) ? [`cattle-metadata pid ${st.metadataPid}`] : []),
  ];
}

/** The second part, numbered on its own ("[multi-host n/N]"), after the single-host part. */
async function secondPart(st: DemoState, keep: boolean): Promise<boolean> {
  const steps = multihostSteps(keep);
  let stepNo = 0;
  console.log('\n== part 2: cattle-net, the per-host VXLAN agent, on three simulated hosts ==');
  return multihost({
    bin: st.bin, dir: st.dir, tag: st.tag, printTable,
    record(sim) {
      st.multihost = sim;
      saveState(st);
    },
    async step(text) {
      await new Promise((resolve) => setImmediate(resolve));
      if (interrupted) throw new Error('interrupted');
      stepNo += 1;
      console.log(`\n[multi-host ${stepNo}/${steps}] ${text}`);
    },
  }, keep);
}

function newDemo(bin: string): DemoState {
  const tag = `${process.pid}`;
  const dir = path.join(DEMO_ROOT, tag);
  fs.mkdirSync(DEMO_ROOT, { recursive: true, mode: 0o755 });
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { mode: 0o700 });
  const st: DemoState = {
    tag, owner: process.pid, phase: 'running', bin, dir,
    host: `ccni-demo-host-${tag}`,
    world: `ccni-demo-world-${tag}`,
    pods: [
      { name: 'web-1', netns: `ccni-demo-web1-${tag}`, id: 'demo-web-1', plugin: 'cattle-bridge', ip: '10.42.0.11', mac: '02:42:0a:2a:00:0b', gateway: '10.42.0.1' },
      { name: 'web-2', netns: `ccni-demo-web2-${tag}`, id: 'demo-web-2', plugin: 'cattle-bridge', ip: '10.42.0.12', mac: '02:42:0a:2a:00:0c', gateway: '10.42.0.1' },
      { name: 'db-1', netns: `ccni-demo-db1-${tag}`, id: 'demo-db-1', plugin: 'cattle-ptp', ip: '10.43.0.21', gateway: '169.254.1.1' },
      { name: 'db-2', netns: `ccni-demo-db2-${tag}`, id: 'demo-db-2', plugin: 'cattle-ptp', ip: '10.43.0.22', gateway: '169.254.1.1' },
    ],
  };
  saveState(st); // before the first namespace exists
  return st;
}

function httpFrom(ns: string, url: string): boolean {
  const node = process.execPath;
  const code = `require('http').get(${JSON.stringify(url)},{timeout:3000},(r)=>{process.exit(r.statusCode===200?0:1)}).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))`;
  return inNs(ns, node, ['-e', code]).ok;
}

function ping(ns: string, ip: string): boolean {
  return inNs(ns, 'ping', ['-c', '1', '-W', '2', ip]).ok;
}

function arpGateway(st: DemoState, p: Pod): boolean {
  ping(p.netns, st.pods.find((q) => q !== p && q.plugin === p.plugin)!.ip);
  const neigh = inNs(p.netns, 'ip', ['-j', 'neigh', 'show', '169.254.1.1']).out;
  try {
    const entries = JSON.parse(neigh) as { lladdr?: string }[];
    return entries.some((e) => e.lladdr === 'ee:ee:ee:ee:ee:ee');
  } catch {
    return false;
  }
}

function summarise(json: unknown): string {
  const r = json as { ips?: { address: string; gateway?: string }[]; interfaces?: { name: string; mac?: string; sandbox?: string }[] };
  const ip = r.ips?.[0];
  const iface = r.interfaces?.find((i) => i.sandbox);
  const host = r.interfaces?.find((i) => !i.sandbox && i.name !== 'cattle0');
  return `${ip?.address} gw ${ip?.gateway} ${iface?.name} ${iface?.mac} host side ${host?.name}`;
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `    ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`;
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

let interrupted = false;

/** Runs the demo; with `keep`, stops after the reachability table and leaves it running. */
async function demo(st: DemoState, keep: boolean): Promise<boolean> {
  const steps = keep ? 7 : 9;
  let stepNo = 0;
  const step = async (text: string): Promise<void> => {
    // Let a Ctrl-C in: the finally below removes what was made so far.
    await new Promise((resolve) => setImmediate(resolve));
    if (interrupted) throw new Error('interrupted');
    stepNo += 1;
    console.log(`\n[${stepNo}/${steps}] ${text}`);
  };
  const { host: HOST, world: WORLD, pods } = st;
  const answers = path.join(st.dir, 'answers.json');

  await step(`host network namespace ${HOST} with a default route (via ${WORLD}) and ${METADATA_IP} on lo`);
  sh('ip', ['netns', 'add', HOST]);
  sh('ip', ['netns', 'add', WORLD]);
  sh('ip', ['-n', HOST, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', HOST, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'uplink', 'netns', WORLD]);
  sh('ip', ['-n', HOST, 'addr', 'add', '198.18.0.1/30', 'dev', 'uplink']);
  sh('ip', ['-n', WORLD, 'addr', 'add', '198.18.0.2/30', 'dev', 'uplink']);
  sh('ip', ['-n', HOST, 'link', 'set', 'uplink', 'up']);
  sh('ip', ['-n', WORLD, 'link', 'set', 'uplink', 'up']);
  sh('ip', ['-n', HOST, 'route', 'add', 'default', 'via', '198.18.0.2']);
  sh('ip', ['-n', HOST, 'addr', 'add', `${METADATA_IP}/32`, 'dev', 'lo']);

  await step('cattle assigns addresses: four container records in the metadata answers file');
  fs.writeFileSync(answers, '{}\n');
  for (const p of pods) {
    const args = ['add-container', '--answers', answers, '--external-id', p.id, '--ip', p.ip, '--name', p.name];
    if (p.mac) args.push('--mac', p.mac);
    sh(path.join(st.bin, 'cattle-metadata'), args);
    console.log(`    ${p.name.padEnd(6)} ${p.id.padEnd(11)} ${p.ip}${p.mac ? `  mac ${p.mac}` : ''}  (${p.plugin})`);
  }

  await step(`cattle-metadata serving ${METADATA_IP}:80 inside ${HOST}`);
  startMetadata(st);

  await step('four pod network namespaces');
  for (const p of pods) sh('ip', ['netns', 'add', p.netns]);
  console.log(`    ${pods.map((p) => p.netns).join(' ')}`);

  await step('CNI ADD: web-* through cattle-bridge, db-* through cattle-ptp; cattle-ipam asks the metadata service');
  console.log(`    plugin state and locks in ${st.dir} (CATTLE_CNI_STATE_DIR, CATTLE_CNI_LOCK_DIR)`);
  let allOk = true;
  for (const p of pods) {
    const r = cni(st, 'ADD', p);
    allOk &&= r.ok;
    console.log(`    ${p.name}: ${r.ok ? 'ok' : 'FAILED'} ${r.ok ? summarise(r.json) : r.raw}`);
  }
  if (!allOk) return false;

  await step('reachability, by real pings and HTTP requests from inside each pod');
  const header = ['from \\ to', ...pods.map((p) => p.name), 'gateway', 'metadata'];
  const rows: string[][] = [];
  for (const p of pods) {
    const row = [p.name];
    for (const q of pods) row.push(p === q ? '-' : ping(p.netns, q.ip) ? 'ok' : 'FAIL');
    row.push(p.plugin === 'cattle-bridge' ? (ping(p.netns, p.gateway) ? 'ok' : 'FAIL') : arpGateway(st, p) ? 'ok' : 'FAIL');
    row.push(httpFrom(p.netns, `http://${METADATA_IP}/2015-12-19/containers`) ? 'ok' : 'FAIL');
    rows.push(row);
  }
  printTable(header, rows);
  const reachable = rows.every((r) => r.slice(1).every((c) => c === 'ok' || c === '-'));
  console.log(`    reachability: ${reachable ? 'all ok' : 'FAILURES'}`);
  console.log('    (gateway: ping 10.42.0.1 for bridge pods; for ptp pods 169.254.1.1 must resolve by proxy ARP to the host veth)');

  if (keep) {
    if (!reachable) return false;
    await step('kept running (--keep): the pods, cattle-metadata and the namespaces stay until --clean');
    st.phase = 'kept';
    saveState(st);
    console.log(`    cattle-metadata pid ${st.metadataPid}; state ${stateFile(st)}`);
    console.log(`    look:     ip netns exec ${pods[0]!.netns} ip addr; ip -n ${HOST} link show master cattle0; ip -n ${HOST} route`);
    console.log(`    try:      ip netns exec ${pods[0]!.netns} ping -c1 ${pods[2]!.ip}`);
    console.log('    clean up: npm run demo -- --clean   (DEL of every pod, stops cattle-metadata, removes the namespaces and the directory)');
    return true;
  }

  await step('CNI DEL for every pod');
  for (const p of pods) {
    const r = cni(st, 'DEL', p);
    console.log(`    ${p.name}: ${r.ok ? 'ok' : `FAILED ${r.raw}`}`);
    allOk &&= r.ok;
  }

  await step('nothing left behind');
  const veths = JSON.parse(sh('ip', ['-j', '-n', HOST, 'link', 'show', 'type', 'veth'])) as { ifname: string }[];
  const leftover = veths.filter((l) => l.ifname !== 'uplink').map((l) => l.ifname);
  const podIfaces = pods.map((p) => (JSON.parse(sh('ip', ['-j', '-n', p.netns, 'link', 'show'])) as { ifname: string }[]).filter((l) => l.ifname !== 'lo').length);
  const hostRoutes = sh('ip', ['-n', HOST, 'route']).split('\n').filter((l) => /10\.4[23]\.0\.\d+ dev/.test(l));
  const stateDir = path.join(st.dir, 'state');
  const stateLeft = fs.existsSync(stateDir) ? fs.readdirSync(stateDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length : 0;
  console.log(`    host veths left: ${leftover.length}; pod interfaces left: ${podIfaces.reduce((a, b) => a + b, 0)}; pod routes left on the host: ${hostRoutes.length}; plugin state files left: ${stateLeft}`);
  const clean = leftover.length === 0 && podIfaces.every((n) => n === 0) && hostRoutes.length === 0 && stateLeft === 0;
  console.log(`    leftovers: ${clean ? 'none' : 'FOUND'}`);

  await step(`stop cattle-metadata, remove the namespaces and ${st.dir}`);
  return allOk && reachable && clean;
}

/** `--clean`: every kept demo, and every demo whose demo.ts is gone (interrupted, killed). */
function cleanAll(): boolean {
  let dirs: string[] = [];
  try {
    dirs = fs.readdirSync(DEMO_ROOT).map((d) => path.join(DEMO_ROOT, d));
  } catch {
    // no demo was ever kept
  }
  let ok = true;
  let cleaned = 0;
  for (const dir of dirs) {
    let st: DemoState;
    try {
      st = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as DemoState;
    } catch {
      console.log(`demo --clean: ${dir} has no readable state.json; remove it by hand if it is not yours`);
      ok = false;
      continue;
    }
    if (st.phase === 'running' && st.owner !== process.pid && processAlive(st.owner)) {
      console.log(`demo --clean: ${st.tag} is still running (pid ${st.owner}); it removes itself when done`);
      continue;
    }
    console.log(`demo --clean: ${st.tag} (${st.phase === 'kept' ? 'kept' : 'interrupted'})`);
    const left = teardown(st, (line) => console.log(`    ${line}`), { del: true });
    console.log(`    left: ${left.length ? left.join(', ') : 'nothing'}`);
    ok &&= left.length === 0;
    cleaned += 1;
  }
  if (cleaned === 0 && ok) console.log('demo --clean: no kept demo to remove');
  return ok;
}

async function run(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('-h') || args.includes('--help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  for (const a of args) if (a !== '--keep' && a !== '--clean') usageError(`unknown argument ${JSON.stringify(a)}`);
  const keep = args.includes('--keep');
  if (keep && args.includes('--clean')) usageError('--keep and --clean exclude each other');
  if (args.includes('--clean')) return cleanAll() ? 0 : 1;

  const st = newDemo(DEFAULT_BIN);
  const onSignal = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // `npm run demo | head`: a closed stdout stops the demo the same way, and it still cleans up.
  process.stdout.on('error', onSignal);
  let ok = false;
  try {
    ok = await demo(st, keep);
    if (ok && !keep) {
      // The single-host part goes before the second part starts (its pods were deleted in its step 8).
      const left = teardownSingle(st, (line) => console.log(`    ${line}`), { del: false });
      st.singleDone = true;
      saveState(st);
      if (left.length) {
        console.log(`    still there: ${left.join(', ')}`);
        ok = false;
      }
    }
    if (ok) ok = await secondPart(st, keep);
  } catch (e) {
    console.error(interrupted ? 'demo: interrupted; removing what it made' : `demo failed: ${(e as Error).message}`);
  } finally {
    if (!keep || !ok) {
      // A failed --keep cleans up too: only a working demo is worth keeping.
      const left = teardown(st, (line) => console.log(`    ${line}`), { del: keep || !ok });
      if (left.length) {
        console.log(`    still there: ${left.join(', ')} (npm run demo -- --clean)`);
        ok = false;
      }
    }
  }
  console.log(ok ? '\ndemo: ok' : '\ndemo: FAILED');
  return ok ? 0 : 1;
}

process.exitCode = await run();
