// Simulated hosts for the benchmark and the demo (not for the tests): each
// host is a network namespace with a veth ("eth0") into one underlay bridge in
// a namespace of its own, 169.254.169.250 on lo, its own cattle-metadata (the
// same environment file for every host, --self-host = that host) and its own
// cattle-net; pods are namespaces networked by cattle-bridge in the shape of
// Rancher's 10-rancher-vxlan.conf (bridge docker0, 10.42.0.0/16,
// linkMTUOverhead 50: pods get 1450) or by cattle-ptp.
//
// Everything is planned first (SimState: plain JSON) and recorded by the
// caller before it is made, so that a crash or a kept demo can be removed
// from the record alone: simDestroy() stops the recorded PIDs (only while
// their command line still names the sim directory), runs `cattle-net
// teardown` and DEL where it can, deletes the namespaces and the directory.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const METADATA_IP = '169.254.169.250';
export const VNI = 1042;
export const VTEP = `vtep${VNI}`;
export const NETWORK_UUID = 'net-managed';
export const UNDERLAY_PREFIX = '192.168.100';

/** Rancher's 10-rancher-vxlan.conf, as the network's metadata.cniConfig carries it. */
export const BRIDGE_CONF = {
  cniVersion: '0.3.1',
  name: 'rancher-cni-network',
  type: 'rancher-bridge',
  bridge: 'docker0',
  bridgeSubnet: '10.42.0.0/16',
  isDefaultGateway: true,
  hairpinMode: false,
  mtu: 1500,
  linkMTUOverhead: 50,
  ipam: { type: 'rancher-cni-ipam', subnetPrefixSize: '/16', metadataAddress: METADATA_IP, timeout: 10 },
};
export const PTP_CONF = {
  cniVersion: '0.3.1', name: 'rancher-cni-ptp', type: 'cattle-ptp', mtu: 1450,
  ipam: { type: 'rancher-cni-ipam', subnetPrefixSize: '/16', metadataAddress: METADATA_IP, timeout: 10 },
};

export interface SimHost {
  key: string;
  uuid: string;
  name: string;
  agentIp: string;
  vtepMac: string;
  netns: string;
  /** Per-host directory: plugin state and locks, the agent's run dir, process output. */
  dir: string;
}

export interface SimPod {
  name: string;
  host: string;
  netns: string;
  id: string;
  ip: string;
  plugin: 'cattle-bridge' | 'cattle-ptp';
}

export interface SimProc {
  pid: number;
  what: 'cattle-metadata' | 'cattle-net';
  host: string;
}

/** What a simulation made (or is about to make): enough to remove all of it. */
export interface SimState {
  bin: string;
  dir: string;
  underlay: string;
  /** The environment file every host's cattle-metadata serves. */
  environment: string;
  hosts: SimHost[];
  pods: SimPod[];
  procs: SimProc[];
  /** Extra container records (no pod behind them): the benchmark's synthetic ones. */
  extraContainers?: number;
}

export function vtepMacOf(ip: string): string {
  return ['0e', '00', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

export function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout || `exit ${r.status}`).trim()}`);
  return r.stdout;
}

export function inNs(ns: string, cmd: string, args: string[], timeoutMs = 10_000): { ok: boolean; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function netnsExists(name: string): boolean {
  return fs.existsSync(`/var/run/netns/${name}`);
}

/** Alive and not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** nft or iptables is there: cattle-net can run its members-only filter (else it runs with --no-filter). */
export function filterAvailable(): boolean {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  return ['nft', 'iptables'].some((t) => dirs.some((d) => d && fs.existsSync(path.join(d, t))));
}

/**
 * The plan: names only, nothing made. `names(kind, key)` names the namespaces (the demo puts its
 * tag in them); hosts get agent IPs 192.168.100.11, .12, … on the underlay.
 */
export function simPlan(opts: { bin: string; dir: string; hostKeys: string[]; names: (what: string) => string }): SimState {
  const hosts = opts.hostKeys.map((key, i): SimHost => {
    const agentIp = `${UNDERLAY_PREFIX}.${11 + i}`;
    return { key, uuid: `host-uuid-${key}`, name: `host-${key}`, agentIp, vtepMac: vtepMacOf(agentIp), netns: opts.names(`host-${key}`), dir: path.join(opts.dir, `host-${key}`) };
  });
  return { bin: opts.bin, dir: opts.dir, underlay: opts.names('underlay'), environment: path.join(opts.dir, 'environment.json'), hosts, pods: [], procs: [] };
}

export function hostOf(st: SimState, key: string): SimHost {
  const h = st.hosts.find((x) => x.key === key);
  if (!h) throw new Error(`no simulated host ${key}`);
  return h;
}

/** Plans a pod (the caller records the state, then calls podAdd). */
export function planPod(st: SimState, p: Omit<SimPod, 'id'> & { id?: string }): SimPod {
  const pod: SimPod = { id: `sim-${p.name}`, ...p };
  st.pods.push(pod);
  return pod;
}

/** The underlay namespace and bridge, and each host namespace wired into it. */
export function buildHosts(st: SimState): void {
  fs.mkdirSync(st.dir, { recursive: true, mode: 0o755 });
  sh('ip', ['netns', 'add', st.underlay]);
  sh('ip', ['-n', st.underlay, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', st.underlay, 'link', 'add', 'ul0', 'type', 'bridge']);
  sh('ip', ['-n', st.underlay, 'link', 'set', 'ul0', 'up']);
  for (const h of st.hosts) addHost(st, h);
}

/** One host namespace on the underlay (also for a host added later). */
export function addHost(st: SimState, h: SimHost): void {
  for (const sub of ['state', 'locks', 'run']) fs.mkdirSync(path.join(h.dir, sub), { recursive: true });
  sh('ip', ['netns', 'add', h.netns]);
  const ns = (args: string[]) => sh('ip', ['-n', h.netns, ...args]);
  ns(['link', 'set', 'lo', 'up']);
  sh('ip', ['-n', st.underlay, 'link', 'add', `ul-${h.key}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns]);
  sh('ip', ['-n', st.underlay, 'link', 'set', `ul-${h.key}`, 'master', 'ul0', 'up']);
  ns(['addr', 'add', `${h.agentIp}/24`, 'dev', 'eth0']);
  ns(['link', 'set', 'eth0', 'up']);
  ns(['route', 'add', 'default', 'dev', 'eth0']); // proxy ARP (ptp) answers only for routable destinations
  ns(['addr', 'add', `${METADATA_IP}/32`, 'dev', 'lo']);
}

export interface EnvironmentExtra {
  hosts?: object[];
  containers?: object[];
}

/** The environment every host serves: the hosts, the managed network, a record per pod (+ extra), written by rename. */
export function writeEnvironment(st: SimState, extra: EnvironmentExtra = {}): void {
  const env = {
    environment: { uuid: 'env-sim', name: 'sim' },
    hosts: [...st.hosts.map((h) => ({ uuid: h.uuid, name: h.name, hostname: h.name, agent_ip: h.agentIp })), ...(extra.hosts ?? [])],
    networks: [
      { uuid: NETWORK_UUID, name: 'managed', is_default: true, metadata: { cniConfig: { '10-rancher-vxlan.conf': BRIDGE_CONF } } },
      { uuid: 'net-host', name: 'host', metadata: {} },
    ],
    containers: [
      ...st.pods.map((p) => ({
        uuid: `uuid-${p.name}`, name: p.name, external_id: p.id, host_uuid: hostOf(st, p.host).uuid, network_uuid: NETWORK_UUID, primary_ip: p.ip, state: 'running',
      })),
      ...(extra.containers ?? []),
    ],
  };
  const tmp = `${st.environment}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(env));
  fs.renameSync(tmp, st.environment);
}

export function hostEnv(st: SimState, h: SimHost): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CATTLE_CNI_STATE_DIR: path.join(h.dir, 'state'), CATTLE_CNI_LOCK_DIR: path.join(h.dir, 'locks'), CATTLE_CNI_AGENT_DIR: path.join(h.dir, 'run'),
  };
}

export interface Started {
  pid: number;
  /** With pipe: the child, its stdout and stderr readable. */
  child?: ChildProcess;
  out: string;
  err: string;
}

/**
 * Starts one of the suite's executables in a host namespace. Detached with output to files in the
 * host directory (it outlives the caller: the demo's --keep), or piped (the benchmark reads it).
 * The PID goes into st.procs and `record` is called before the caller waits on anything.
 */
export function startIn(st: SimState, h: SimHost, what: SimProc['what'], args: string[], record: () => void, opts: { pipe?: boolean } = {}): Started {
  const out = path.join(h.dir, `${what}.out`);
  const err = path.join(h.dir, `${what}.err`);
  const argv = ['netns', 'exec', h.netns, path.join(st.bin, what), ...args];
  let child: ChildProcess;
  if (opts.pipe) {
    child = spawn('ip', argv, { env: hostEnv(st, h), stdio: ['ignore', 'pipe', 'pipe'] });
  } else {
    const outFd = fs.openSync(out, 'w');
    const errFd = fs.openSync(err, 'w');
    child = spawn('ip', argv, { env: hostEnv(st, h), stdio: ['ignore', outFd, errFd], detached: true });
    fs.closeSync(outFd);
    fs.closeSync(errFd);
    child.unref();
  }
  if (child.pid === undefined) throw new Error(`${what} could not be started`);
  // `ip netns exec` execs the program: this PID is the program's.
  st.procs.push({ pid: child.pid, what, host: h.key });
  record();
  return opts.pipe ? { pid: child.pid, child, out, err } : { pid: child.pid, out, err };
}

/** The first stdout line of a detached process, once it is there (or an error naming its stderr). */
export function firstLine(p: Started, what: string, timeoutMs = 20_000): string {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = fs.readFileSync(p.out, 'utf8');
    if (text.includes('\n')) return text.split('\n')[0]!;
    if (!processAlive(p.pid)) throw new Error(`${what} exited: ${fs.readFileSync(p.err, 'utf8').trim()}`);
    if (Date.now() > deadline) throw new Error(`${what} printed nothing within ${timeoutMs} ms`);
    sleepSync(20);
  }
}

/** The first stdout line of a piped process. */
export function firstLineOf(p: Started, what: string, timeoutMs = 20_000): Promise<string> {
  const child = p.child!;
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${what} printed nothing within ${timeoutMs} ms: ${err}`)), timeoutMs);
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${err.trim()}`));
    });
    const onData = (c: Buffer): void => {
      out += c.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(out.split('\n')[0]!);
      }
    };
    child.stdout!.on('data', onData);
  });
}

export function metadataArgs(st: SimState, h: SimHost): string[] {
  return ['serve', '--environment', st.environment, '--self-host', h.uuid, '--listen', `${METADATA_IP}:80`, '--reload-listen', 'none'];
}

export function agentArgs(filter = filterAvailable()): string[] {
  return ['--underlay-iface', 'eth0', '--poll-wait', '30', ...(filter ? [] : ['--no-filter'])];
}

export interface CniResult {
  ok: boolean;
  json: unknown;
  raw: string;
}

export function podCni(st: SimState, cmd: 'ADD' | 'DEL', pod: SimPod): CniResult {
  const h = hostOf(st, pod.host);
  const conf = pod.plugin === 'cattle-bridge' ? BRIDGE_CONF : PTP_CONF;
  const env = { ...hostEnv(st, h), CNI_COMMAND: cmd, CNI_CONTAINERID: pod.id, CNI_NETNS: `/var/run/netns/${pod.netns}`, CNI_IFNAME: 'eth0', CNI_PATH: st.bin };
  return runPluginIn(h.netns, path.join(st.bin, pod.plugin), env, conf);
}

/** A plugin run as a runtime runs it, inside a host netns: the outcome, its JSON, its output. */
export function runPluginIn(netns: string, exe: string, env: Record<string, string>, conf: object): CniResult {
  const r = spawnSync('ip', ['netns', 'exec', netns, exe], { env, input: JSON.stringify(conf), encoding: 'utf8', timeout: 30_000 });
  let json: unknown;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { ok: r.status === 0, json, raw: `${r.stdout}${r.stderr}`.trim() };
}

/** The pod's namespace, then CNI ADD. */
export function podAdd(st: SimState, pod: SimPod): CniResult {
  if (!netnsExists(pod.netns)) sh('ip', ['netns', 'add', pod.netns]);
  return podCni(st, 'ADD', pod);
}

/** SIGTERM, then SIGKILL after 3 s: only the recorded PID, and only while its command line names the sim directory. */
export function stopProc(st: SimState, p: SimProc): string {
  const label = `${p.what} on host-${p.host} (pid ${p.pid})`;
  if (!processAlive(p.pid)) return `${label}: not running`;
  let cmdline = '';
  try {
    cmdline = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
  } catch {
    return `${label}: not running`;
  }
  if (!cmdline.includes(p.what) || !cmdline.includes(st.dir)) {
    // The agent's command line has no path: check its environment instead (ours carries the host dir).
    let environ = '';
    try {
      environ = fs.readFileSync(`/proc/${p.pid}/environ`, 'utf8');
    } catch {
      // gone
    }
    if (!cmdline.includes(p.what) || !environ.includes(st.dir)) return `${label}: is another process now, left alone`;
  }
  process.kill(p.pid, 'SIGTERM');
  for (let i = 0; i < 60 && processAlive(p.pid); i++) sleepSync(50);
  if (processAlive(p.pid)) process.kill(p.pid, 'SIGKILL');
  for (let i = 0; i < 40 && processAlive(p.pid); i++) sleepSync(50);
  return processAlive(p.pid) ? `${label} did not stop` : `${label} stopped`;
}

/** Stops the recorded processes: agents first (SIGTERM leaves the data plane), then the metadata servers. */
export function stopAll(st: SimState, say: (line: string) => void = () => undefined): void {
  const order = [...st.procs.filter((p) => p.what === 'cattle-net'), ...st.procs.filter((p) => p.what !== 'cattle-net')];
  for (const p of order) say(stopProc(st, p));
}

/** `cattle-net teardown` on a host (its agent stopped): the VTEP, its entries, the filter, the run dir files. */
export function agentTeardown(st: SimState, h: SimHost): { ok: boolean; removed: string[]; raw: string } {
  const r = spawnSync('ip', ['netns', 'exec', h.netns, path.join(st.bin, 'cattle-net'), 'teardown'], { env: hostEnv(st, h), encoding: 'utf8', timeout: 30_000 });
  let removed: string[] = [];
  try {
    removed = (JSON.parse(r.stdout) as { removed: string[] }).removed;
  } catch {
    // not JSON: raw says why
  }
  return { ok: r.status === 0, removed, raw: `${r.stdout}${r.stderr}`.trim() };
}

export function simNamespaces(st: SimState): string[] {
  return [...st.pods.map((p) => p.netns), ...st.hosts.map((h) => h.netns), st.underlay];
}

/**
 * Removes a simulation, whatever state it got to: the processes (by recorded PID), cattle-net
 * teardown and CNI DEL where the host namespace is still there, the namespaces, the directory.
 * Returns what is still there (nothing, normally).
 */
export function simDestroy(st: SimState, say: (line: string) => void = () => undefined, opts: { del?: boolean; removeDir?: boolean } = {}): string[] {
  stopAll(st, say);
  const haveBin = fs.existsSync(path.join(st.bin, 'cattle-net'));
  if (opts.del !== false && haveBin) {
    for (const h of st.hosts) {
      if (!netnsExists(h.netns) || !st.procs.some((p) => p.what === 'cattle-net' && p.host === h.key)) continue;
      const t = agentTeardown(st, h);
      say(`cattle-net teardown on ${h.name}: ${t.ok ? `removed ${t.removed.filter((x) => !x.startsWith('/')).join(', ') || 'nothing'}` : `FAILED ${t.raw}`}`);
    }
    for (const p of st.pods) {
      if (!netnsExists(hostOf(st, p.host).netns)) continue;
      const r = podCni(st, 'DEL', p);
      say(`DEL ${p.name}: ${r.ok ? 'ok' : `FAILED ${r.raw}`}`);
    }
  }
  const removed = simNamespaces(st).filter(netnsExists);
  for (const ns of removed) spawnSync('ip', ['netns', 'del', ns]);
  say(`namespaces removed: ${removed.length ? removed.join(' ') : '(none left)'}`);
  if (opts.removeDir !== false) fs.rmSync(st.dir, { recursive: true, force: true });
  return [
    ...simNamespaces(st).filter(netnsExists).map((ns) => `netns ${ns}`),
    ...st.procs.filter((p) => processAlive(p.pid)).map((p) => `${p.what} pid ${p.pid}`),
    ...(opts.removeDir !== false && fs.existsSync(st.dir) ? [st.dir] : []),
  ];
}
