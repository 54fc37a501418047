// cniglue against a REAL Docker daemon (Debian's docker.io) and the built
// executable. The daemon is private to this file: its own socket, data root and
// exec root under a temp dir, no bridge, no iptables; it is stopped (by PID)
// after the containers are removed. The watcher and the hooks run inside a
// test-made "host" netns (`ip netns exec`), so the cattle bridge and the host
// veths live there, never in the machine's root netns; /proc/<pid>/ns/net of
// the containers works from there as from anywhere.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { RECORD_FILE } from '../../cniglue/state.ts';
import { links } from '../helpers/cni.ts';
import { baseEnv, BIN, makeNetns, ROOT, rootLinkNames, runExe, type TestNetns, trackPid, untrackPid } from '../helpers/harness.ts';

const BRIDGE = 'cglue0';
const IMAGE = 'cglue-busybox:test';
const NETWORK = 'managed';
const MTU = 1500;
const OVERHEAD = 98;
/** `-p`: conf-examples/docker-cni/published.d (cattle-bridge + the reference portmap) on its own test bridge. */
const PORTS_NET = 'published';
const PORTS_BRIDGE = 'cglue1';
/** The bridge's address: a host address in the test host netns, where the published ports are reached. */
const PORTS_GW = '10.44.0.1';
const PORT = 18080;
const PAGE = 'hello from cniglue -p\n';
/** Our plugins first; Debian's reference plugins (portmap) last. Plugins get it as PATH too (iptables). */
const CNI_PATH = `${BIN}:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/cni`;

let tmp = '';
let sock = '';
let dockerCli = 'docker';
let dockerd: ChildProcess | undefined;
let linksBefore: string[] = [];
const dirs = { conf: '', state: '', cache: '', pluginState: '', locks: '' };

// ---- small helpers ------------------------------------------------------------

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; allowFail?: boolean; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, input: opts.input, timeout: opts.timeoutMs ?? 60_000 });
  if (!opts.allowFail && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}${r.error ? ` ${r.error.message}` : ''}`);
  return r;
}

function dockerEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: tmp, DOCKER_HOST: `unix://${sock}` };
}

function docker(...args: string[]): string {
  return run(dockerCli, args, { env: dockerEnv() }).stdout.trim();
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `cond` until it returns a value (not undefined/false) or the deadline passes. */
async function waitFor<T>(what: string, cond: () => T | undefined | false, ms = 30_000, every = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}\n--- watcher log ---\n${watcherLog.join('\n')}`);
    await sleepMs(every);
  }
}

function onPath(cmd: string): boolean {
  return run('sh', ['-c', `command -v ${cmd}`], { allowFail: true }).status === 0;
}

function aptInstall(...pkgs: string[]): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env, allowFail: true, timeoutMs: 300_000 });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { env, timeoutMs: 600_000 });
}

function isStatic(file: string): boolean {
  const r = run('ldd', [file], { allowFail: true });
  return /not a dynamic executable|statically linked/.test(`${r.stdout}${r.stderr}`);
}

interface Inspect { id: string; pid: number; startedAt: string; running: boolean }

function inspect(id: string): Inspect {
  const [pid, startedAt, running, full] = docker('inspect', '-f', '{{.State.Pid}} {{.State.StartedAt}} {{.State.Running}} {{.Id}}', id).split(' ');
  return { id: full!, pid: Number(pid), startedAt: startedAt!, running: running === 'true' };
}

/** IPv4 addresses and MTU of eth0 in a process's netns, or undefined when it has no eth0. */
function eth0Of(pid: number): { addrs: string[]; mtu: number; mac: string } | undefined {
  const r = run('nsenter', ['-t', String(pid), '-n', 'ip', '-j', 'addr', 'show', 'dev', 'eth0'], { allowFail: true });
  if (r.status !== 0 || !r.stdout.trim()) return undefined;
  const [l] = JSON.parse(r.stdout) as { mtu: number; address: string; addr_info: { family: string; local: string; prefixlen: number }[] }[];
  if (!l) return undefined;
  return { addrs: l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), mtu: l.mtu, mac: l.address };
}

/** eth0 once it has its IPv4 address (the plugin creates the link before it addresses it). */
function addressedEth0(pid: number): { addrs: string[]; mtu: number; mac: string } | undefined {
  const e = eth0Of(pid);
  return e && e.addrs.length > 0 ? e : undefined;
}

function pingFrom(pid: number, ip: string): boolean {
  return run('nsenter', ['-t', String(pid), '-n', 'ping', '-c', '1', '-W', '2', ip], { allowFail: true }).status === 0;
}

function hostVeth(id: string): string {
  return `vethr${id.slice(0, 10)}`;
}

function hostLink(name: string) {
  return links(host).find((l) => l.ifname === name);
}

function runContainer(ip: string | undefined, extra: string[] = []): string {
  const labels = ['--label', `io.rancher.cni.network=${NETWORK}`, ...(ip ? ['--label', `io.rancher.container.ip=${ip}`] : [])];
  return docker('run', '-d', '--network', 'none', ...labels, ...extra, IMAGE, 'sleep', '600');
}

function runContainerAsync(ip: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(dockerCli, ['run', '-d', '--network', 'none', '--label', `io.rancher.cni.network=${NETWORK}`, '--label', `io.rancher.container.ip=${ip}`, IMAGE, 'sleep', '600'],
      { env: dockerEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    c.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`docker run ${ip}: ${err}`))));
  });
}

/** The nat table of the test host netns (where the watcher, the hooks and so portmap run). */
function natRules(): string {
  return host.exec('iptables-save', ['-t', 'nat']).stdout;
}

/** portmap's per-container chains (`CNI-DN-<hash>`) in the host netns. */
function portmapChains(): string[] {
  return [...natRules().matchAll(/^:(CNI-DN-\S+)/gm)].map((m) => m[1]!);
}

/** The page behind http://addr:port/ fetched from the test host netns, or undefined when nothing answers. */
function fetchPage(addr: string, port: number): string | undefined {
  const r = host.exec('timeout', ['10', 'busybox', 'wget', '-q', '-O', '-', `http://${addr}:${port}/`], { allowFail: true });
  return r.status === 0 ? r.stdout : undefined;
}

/** Nothing of portmap's for this container is left: no chain, no rule naming its ID or address. */
function portmapLeftovers(id: string, ip: string): string[] {
  const rules = natRules();
  return [
    ...portmapChains().map((c) => `chain ${c}`),
    ...rules.split('\n').filter((l) => l.includes(id) || l.includes(`${ip}:`)).map((l) => `rule ${l}`),
  ];
}

/** Wait until portmap has nothing left for the container; on timeout, say what is. */
async function portmapGone(id: string, ip: string): Promise<void> {
  try {
    await waitFor(`portmap rules of ${id} gone`, () => portmapLeftovers(id, ip).length === 0);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- left ---\n${portmapLeftovers(id, ip).join('\n')}`, { cause: e });
  }
}

function stateFile(i: Inspect): string {
  return path.join(dirs.state, i.id, i.startedAt);
}

// ---- the watcher ----------------------------------------------------------------

let watcher: ChildProcess | undefined;
const watcherLog: string[] = [];

function startWatcher(): void {
  const child = spawn('ip', ['netns', 'exec', host.name, path.join(BIN, 'cniglue'), 'watch',
    '--docker-host', `unix://${sock}`,
    '--conf-root', dirs.conf,
    '--cni-path', CNI_PATH,
    '--state-dir', dirs.state,
    '--cache-dir', dirs.cache,
    '--retries', '1', '--retry-interval', '500',
  ], {
    // The plugins inherit this environment: their own state and locks stay in the temp dir.
    env: { ...baseEnv(), CATTLE_CNI_STATE_DIR: dirs.pluginState, CATTLE_CNI_LOCK_DIR: dirs.locks },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  trackPid(child.pid);
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    watcherLog.push(...lines);
  });
  watcher = child;
}

async function stopWatcher(): Promise<void> {
  const w = watcher;
  if (!w || w.exitCode !== null || w.signalCode !== null) return;
  const exited = new Promise<void>((r) => w.once('exit', () => r()));
  w.kill('SIGTERM');
  const t = setTimeout(() => w.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
  untrackPid(w.pid);
  watcher = undefined;
}

/** As a crash would: the watcher gets no chance to finish or tidy anything. */
async function killWatcher(): Promise<void> {
  const w = watcher!;
  assert.ok(w.exitCode === null && w.signalCode === null, 'the watcher is running');
  const exited = new Promise<void>((r) => w.once('exit', () => r()));
  w.kill('SIGKILL');
  await exited;
  untrackPid(w.pid);
  watcher = undefined;
}

function filesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir).map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}

/**
 * What is left anywhere of a container's attachment: its watcher state folder,
 * libcni cache entries, our plugins' state records, its host veth.
 */
function leftovers(id: string): string[] {
  const out: string[] = [];
  if (fs.existsSync(path.join(dirs.state, id))) out.push(`state folder ${id}`);
  out.push(...filesIn(path.join(dirs.cache, 'results')).filter((f) => path.basename(f).includes(id)).map((f) => `cache entry ${f}`));
  for (const plugin of filesIn(dirs.pluginState)) {
    for (const f of filesIn(plugin).filter((n) => n.endsWith('.json'))) {
      const text = fs.readFileSync(f, 'utf8');
      if (text.includes(id) || text.includes(hostVeth(id))) out.push(`plugin state ${f}`);
    }
  }
  if (hostLink(hostVeth(id))) out.push(`host veth ${hostVeth(id)}`);
  return out;
}

/** Wait until nothing is left of a container; on timeout, say what is. */
async function nothingLeftOf(id: string): Promise<void> {
  try {
    await waitFor(`nothing left of ${id}`, () => leftovers(id).length === 0);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- left ---\n${leftovers(id).join('\n')}`, { cause: e });
  }
}

function logLinesFor(id: string, action: string): string[] {
  return watcherLog.filter((l) => l.includes(` ${action} id=${id.slice(0, 12)}`));
}

// ---- daemon lifecycle ------------------------------------------------------------

function startDockerd(): ChildProcess {
  const logFd = fs.openSync(path.join(tmp, 'dockerd.log'), 'a');
  const d = spawn('dockerd', [
    '--bridge=none', '--iptables=false', '--ip-masq=false', '--ip-forward=false',
    '--config-file', path.join(tmp, 'daemon.json'),
    '--data-root', path.join(tmp, 'data'),
    '--exec-root', path.join(tmp, 'exec'),
    '--pidfile', path.join(tmp, 'docker.pid'),
    '-H', `unix://${sock}`,
  ], { stdio: ['ignore', logFd, logFd], env: { PATH: process.env.PATH } });
  fs.closeSync(logFd);
  return d;
}

async function waitForDockerd(d: ChildProcess): Promise<void> {
  await waitFor('dockerd to answer', () => {
    if (d.exitCode !== null) throw new Error(`dockerd exited (${d.exitCode}): ${fs.readFileSync(path.join(tmp, 'dockerd.log'), 'utf8').slice(-2000)}`);
    return run(dockerCli, ['version', '--format', '{{.Server.Version}}'], { env: dockerEnv(), allowFail: true }).status === 0;
  }, 60_000, 200);
}

async function stopDockerd(): Promise<void> {
  const d = dockerd;
  if (!d) return;
  dockerd = undefined;
  if (d.exitCode === null && d.signalCode === null) {
    const exited = new Promise<void>((r) => d.once('exit', () => r()));
    d.kill('SIGTERM');
    const t = setTimeout(() => d.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(t);
  }
  untrackPid(d.pid);
}

function removeAllContainers(): void {
  const ids = run(dockerCli, ['ps', '-aq'], { env: dockerEnv(), allowFail: true }).stdout.split('\n').filter(Boolean);
  if (ids.length) run(dockerCli, ['rm', '-f', ...ids], { env: dockerEnv(), allowFail: true, timeoutMs: 120_000 });
}

/**
 * A container shim can outlive its dockerd (a removal that timed out): find
 * the shims of this test's daemon by its unique directory in their command
 * line, and stop them and what runs under them, by PID.
 */
function killOutlivers(dir: string): void {
  const procs = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => {
    try {
      const cmdline = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const ppid = Number(fs.readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
      return { pid: Number(p), ppid, cmdline };
    } catch {
      return undefined; // gone meanwhile
    }
  }).filter((p) => p !== undefined);
  const shims = procs.filter((p) => p.pid !== process.pid && p.cmdline.includes(dir)).map((p) => p.pid);
  const victims = [...procs.filter((p) => shims.includes(p.ppid)).map((p) => p.pid), ...shims];
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (victims.length) console.log(`cniglue test: stopped ${victims.length} process(es) its dockerd left behind: ${victims.join(' ')}`);
}

// ---- setup / teardown ------------------------------------------------------------

before(async () => {
  // Debian's docker.io when missing (CI); busybox-static for the image.
  if (!onPath('dockerd')) aptInstall('docker.io');
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((f) => fs.existsSync(f) && isStatic(f));
  if (!busybox) aptInstall('busybox-static');
  for (const tool of ['dockerd', 'nsenter', 'tar', 'ping', 'iptables-save', 'timeout']) assert.ok(onPath(tool), `${tool} is needed for this test`);
  assert.ok(fs.existsSync('/usr/lib/cni/portmap') || onPath('portmap'), 'the reference portmap plugin (containernetworking-plugins) is needed for this test');
  dockerCli = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker'; // the CLI that came with the daemon
  assert.ok(fs.existsSync(path.join(BIN, 'cniglue')), `${BIN}/cniglue missing: build first`);

  linksBefore = rootLinkNames();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cglue-it-'));
  sock = path.join(tmp, 'docker.sock');
  fs.writeFileSync(path.join(tmp, 'daemon.json'), '{}\n');
  for (const k of Object.keys(dirs) as (keyof typeof dirs)[]) {
    dirs[k] = path.join(tmp, k);
    fs.mkdirSync(dirs[k]);
  }

  // The managed network: the shipped example, on a test bridge, without host NAT or log files.
  const example = JSON.parse(fs.readFileSync(path.join(ROOT, 'conf-examples', 'docker-cni', 'managed.d', '10-rancher.conf'), 'utf8')) as Record<string, unknown>;
  delete example.$schema;
  delete example.logToFile;
  delete (example.ipam as Record<string, unknown>).logToFile;
  const conf = { ...example, bridge: BRIDGE, hostNat: false };
  fs.mkdirSync(path.join(dirs.conf, `${NETWORK}.d`));
  fs.writeFileSync(path.join(dirs.conf, `${NETWORK}.d`, '10-rancher.conf'), JSON.stringify(conf, null, 2));
  // The -p network: the shipped example (cattle-bridge + portmap with the portMappings capability) on its own test bridge.
  const portsFile = '10-cattle-bridge-portmap.conflist';
  const ports = JSON.parse(fs.readFileSync(path.join(ROOT, 'conf-examples', 'docker-cni', `${PORTS_NET}.d`, portsFile), 'utf8')) as { $schema?: string; plugins: Record<string, unknown>[] };
  delete ports.$schema;
  assert.equal(ports.plugins[1]!.type, 'portmap');
  assert.deepEqual(ports.plugins[1]!.capabilities, { portMappings: true });
  Object.assign(ports.plugins[0]!, { bridge: PORTS_BRIDGE, bridgeSubnet: '10.44.0.0/16', hostNat: false });
  fs.mkdirSync(path.join(dirs.conf, `${PORTS_NET}.d`));
  fs.writeFileSync(path.join(dirs.conf, `${PORTS_NET}.d`, portsFile), JSON.stringify(ports, null, 2));

  dockerd = startDockerd();
  trackPid(dockerd.pid);
  await waitForDockerd(dockerd);

  // An image without network access: busybox-static in a tarball.
  const rootfs = path.join(tmp, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.copyFileSync(['/bin/busybox', '/usr/bin/busybox'].find((f) => fs.existsSync(f) && isStatic(f))!, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const l of ['sh', 'sleep', 'ip', 'ping', 'httpd']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', l));
  fs.mkdirSync(path.join(rootfs, 'www'));
  fs.writeFileSync(path.join(rootfs, 'www', 'index.html'), PAGE);
  run('tar', ['-C', rootfs, '-cf', path.join(tmp, 'rootfs.tar'), '.']);
  docker('import', path.join(tmp, 'rootfs.tar'), IMAGE);

  startWatcher();
  await waitFor('watcher to connect', () => watcherLog.some((l) => / connected /.test(l)));
});

after(async () => {
  try {
    await stopWatcher();
    if (dockerd) {
      removeAllContainers();
      await stopDockerd();
    }
  } finally {
    if (tmp) killOutlivers(tmp);
    // CNIGLUE_IT_LOG=<file> keeps the watcher's log (one line per action) for a look afterwards.
    if (process.env.CNIGLUE_IT_LOG) fs.writeFileSync(process.env.CNIGLUE_IT_LOG, `${watcherLog.join('\n')}\n`);
    // Nothing of the daemon may stay mounted before its directories go.
    if (tmp) {
      const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && m.startsWith(tmp));
      for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m]);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
});

// The test "host" netns. Made at load time, after the after() above, so the
// harness registers its own cleanup (SIGKILL of tracked PIDs, netns removal)
// as a root hook that runs after ours (graceful stops) and not earlier.
const host: TestNetns = makeNetns('cglue-host');

// ---- watcher mode --------------------------------------------------------------------

describe('cniglue watch (real dockerd)', () => {
  let c1: Inspect;
  let c2: Inspect;

  it('a labelled container gets eth0 with its address on the cattle bridge and reaches a second one', async () => {
    c1 = inspect(runContainer('10.42.0.11/16'));
    c2 = inspect(runContainer('10.42.0.12/16'));
    const e1 = await waitFor('eth0 in container 1', () => addressedEth0(c1.pid));
    const e2 = await waitFor('eth0 in container 2', () => addressedEth0(c2.pid));
    assert.deepEqual(e1.addrs, ['10.42.0.11/16']);
    assert.deepEqual(e2.addrs, ['10.42.0.12/16']);
    assert.equal(e1.mtu, MTU - OVERHEAD, 'eth0 MTU = mtu - linkMTUOverhead');
    const br = hostLink(BRIDGE);
    assert.ok(br, 'the cattle bridge is in the test host netns');
    assert.ok(!rootLinkNames().includes(BRIDGE), 'and not in the root netns');
    for (const c of [c1, c2]) assert.equal(hostLink(hostVeth(c.id))?.master, BRIDGE, `${hostVeth(c.id)} on ${BRIDGE}`);
    assert.ok(pingFrom(c1.pid, '10.42.0.12'), 'container 1 reaches container 2');
    assert.ok(pingFrom(c2.pid, '10.42.0.11'), 'and back');
    const [line] = await waitFor('ADD logged', () => logLinesFor(c1.id, 'add').length > 0 && logLinesFor(c1.id, 'add'));
    assert.match(line!, /network=managed result=ok ip=10\.42\.0\.11\/16/);
  });

  it('writes the state file <state>/<id>/<StartedAt> with the result', async () => {
    const text = await waitFor('state file', () => fs.existsSync(stateFile(c1)) && fs.readFileSync(stateFile(c1), 'utf8'));
    const result = JSON.parse(text) as { ip4?: { ip: string; gateway?: string } };
    assert.equal(result.ip4?.ip, '10.42.0.11/16');
    assert.equal(result.ip4?.gateway, '10.42.0.1');
    assert.deepEqual(fs.readdirSync(path.join(dirs.state, c1.id)).sort(), [RECORD_FILE, c1.startedAt].sort(), 'its record next to it, no temp files left');
  });

  it('docker stop removes its veth and its state file', async () => {
    docker('stop', '-t', '0', c1.id);
    await waitFor('host veth gone', () => !hostLink(hostVeth(c1.id)));
    await waitFor('DEL logged', () => logLinesFor(c1.id, 'del').length === 1);
    await waitFor('state file gone', () => !fs.existsSync(stateFile(c1)));
    assert.match(logLinesFor(c1.id, 'del')[0]!, /reason=stopped result=ok/);
    assert.ok(hostLink(hostVeth(c2.id)), 'the other container keeps its veth');
  });

  it('a labelled network without configurations gets an error state file', async () => {
    const id = docker('run', '-d', '--network', 'none', '--label', 'io.rancher.cni.network=nowhere', '--label', 'io.rancher.container.ip=10.42.0.99/16', IMAGE, 'sleep', '600');
    const c = inspect(id);
    const text = await waitFor('error state file', () => fs.existsSync(stateFile(c)) && fs.readFileSync(stateFile(c), 'utf8'));
    const doc = JSON.parse(text) as { error?: string };
    assert.match(doc.error ?? '', /^Couldn't bring up network: .*couldn't find any CNI network configurations for network "nowhere"/);
    assert.equal(eth0Of(c.pid), undefined);
    docker('rm', '-f', id);
  });

  it('after a watcher restart, a container started while it was down is networked and running ones are left alone', async () => {
    await stopWatcher();
    const c3 = inspect(runContainer('10.42.0.13/16'));
    assert.equal(eth0Of(c3.pid), undefined, 'nobody networked it yet');
    startWatcher();
    const e3 = await waitFor('eth0 in container 3', () => addressedEth0(c3.pid));
    assert.deepEqual(e3.addrs, ['10.42.0.13/16']);
    await waitFor('c2 adopted', () => logLinesFor(c2.id, 'adopt').length === 1);
    assert.equal(logLinesFor(c2.id, 'add').length, 1, 'container 2 was not ADDed a second time');
    assert.ok(pingFrom(c3.pid, '10.42.0.12'));
    await waitFor('state file of container 3', () => fs.existsSync(stateFile(c3)));
  });

  it('after a SIGKILL, containers removed or stopped while it was down are DELed at restart: nothing of them is left', async () => {
    const gone = inspect(runContainer('10.42.0.16/16'));
    const stopped = inspect(runContainer('10.42.0.17/16'));
    const adopted = inspect(runContainer('10.42.0.18/16'));
    for (const c of [gone, stopped, adopted]) {
      await waitFor(`eth0 of ${c.id}`, () => addressedEth0(c.pid));
      await waitFor(`state file of ${c.id}`, () => fs.existsSync(stateFile(c)));
    }
    for (const c of [gone, stopped]) {
      const what = leftovers(c.id).join('\n');
      for (const kind of ['state folder', 'cache entry', 'plugin state', 'host veth']) assert.match(what, new RegExp(kind), `before: ${kind} of ${c.id}`);
    }
    await killWatcher();
    docker('rm', '-f', gone.id);
    docker('stop', '-t', '0', stopped.id);
    // And one that keeps running loses its state folder: the restarted watcher writes it again.
    fs.rmSync(path.join(dirs.state, adopted.id), { recursive: true });
    startWatcher();
    for (const c of [gone, stopped]) await nothingLeftOf(c.id);
    assert.match(logLinesFor(gone.id, 'del').at(-1)!, /reason=removed result=ok/);
    assert.match(logLinesFor(stopped.id, 'del').at(-1)!, /reason=stopped result=ok/);
    const text = await waitFor('state file of the adopted one', () => fs.existsSync(stateFile(adopted)) && fs.readFileSync(stateFile(adopted), 'utf8'));
    assert.equal((JSON.parse(text) as { ip4?: { ip: string } }).ip4?.ip, '10.42.0.18/16', 'the result, from the libcni cache');
    assert.ok(fs.existsSync(path.join(dirs.state, adopted.id, RECORD_FILE)));
    assert.equal(logLinesFor(adopted.id, 'adopt').length, 1);
    assert.equal(logLinesFor(adopted.id, 'add').length, 1, 'not ADDed a second time');
    assert.deepEqual(addressedEth0(adopted.pid)?.addrs, ['10.42.0.18/16']);
    // Removed while the watcher runs again: cleaned up from what it wrote for the adopted one.
    docker('rm', '-f', adopted.id, stopped.id);
    await nothingLeftOf(adopted.id);
  });

  it('20 containers started at once all get the right address', async () => {
    const ips = Array.from({ length: 20 }, (_, i) => `10.42.1.${i + 1}/16`);
    const ids = await Promise.all(ips.map((ip) => runContainerAsync(ip)));
    const cs = ids.map((id) => inspect(id));
    for (const [i, c] of cs.entries()) {
      const e = await waitFor(`eth0 of container ${i + 1}`, () => addressedEth0(c.pid), 120_000, 200);
      assert.deepEqual(e.addrs, [ips[i]], `container ${i + 1}`);
      assert.equal(hostLink(hostVeth(c.id))?.master, BRIDGE);
    }
    // Each once; no container got another's address or a second ADD.
    await waitFor('every ADD logged', () => cs.every((c) => logLinesFor(c.id, 'add').length > 0));
    for (const c of cs) assert.equal(logLinesFor(c.id, 'add').length, 1, logLinesFor(c.id, 'add').join('\n'));
    assert.ok(pingFrom(cs[0]!.pid, '10.42.1.20'));
    assert.ok(pingFrom(cs[19]!.pid, '10.42.1.1'));
    // They go as they came.
    run(dockerCli, ['rm', '-f', ...ids], { env: dockerEnv(), timeoutMs: 120_000 });
    await waitFor('all their veths gone', () => cs.every((c) => !hostLink(hostVeth(c.id))), 60_000, 200);
    await waitFor('their state dirs gone', () => cs.every((c) => !fs.existsSync(path.join(dirs.state, c.id))), 60_000, 200);
  });

  it('survives a Docker restart: reconnects, cleans up what died meanwhile, networks new containers', async () => {
    const before = inspect(runContainer('10.42.0.14/16'));
    await waitFor('eth0 before restart', () => addressedEth0(before.pid));
    removeAllContainers(); // quicker than letting dockerd stop them; their die events may or may not reach us
    await stopDockerd();
    await waitFor('watcher notices', () => watcherLog.some((l) => / docker-unavailable /.test(l)));
    dockerd = startDockerd();
    trackPid(dockerd.pid);
    await waitForDockerd(dockerd);
    await waitFor('watcher reconnects', () => watcherLog.some((l) => / reconnected /.test(l)), 30_000);
    const after = inspect(runContainer('10.42.0.15/16'));
    const e = await waitFor('eth0 after restart', () => addressedEth0(after.pid));
    assert.deepEqual(e.addrs, ['10.42.0.15/16']);
    await waitFor('old state dirs gone', () => !fs.existsSync(path.join(dirs.state, before.id)) && !fs.existsSync(path.join(dirs.state, c2.id)));
  });
});

// ---- -p: published ports through the chained portmap ----------------------------------

describe('cniglue watch: docker run -p (real dockerd, reference portmap)', () => {
  const run = (ip: string, ...publish: string[]) => docker('run', '-d', '--network', 'none',
    '--label', `io.rancher.cni.network=${PORTS_NET}`, '--label', `io.rancher.container.ip=${ip}/16`,
    ...publish.flatMap((p) => ['-p', p]), IMAGE, 'httpd', '-f', '-p', '80', '-h', '/www');

  it('HostConfig.PortBindings become portmap\'s DNAT rules: each protocol, a host IP, a range; the host port reaches the container', async () => {
    assert.deepEqual(portmapChains(), [], 'no portmap chain before');
    const c = inspect(run('10.44.0.21', `${PORT}:80`, `${PORTS_GW}:${PORT + 1}:80`, `${PORT + 10}-${PORT + 11}:80-81`, `${PORT + 20}:53/udp`));
    try {
      await waitFor('eth0 of the -p container', () => addressedEth0(c.pid));
      const [line] = await waitFor('ADD logged', () => logLinesFor(c.id, 'add').length > 0 && logLinesFor(c.id, 'add'));
      assert.match(line!, new RegExp(`result=ok ip=10\\.44\\.0\\.21/16 ports=\\S*${PORT}:80/tcp`));
      const rules = natRules();
      const dnat = (proto: string, hostPort: number, to: string, dst = '') =>
        new RegExp(`^-A CNI-DN-\\S+ ${dst ? `-d ${dst.replace(/\./g, '\\.')}/32 ` : ''}-p ${proto} -m ${proto} --dport ${hostPort} -j DNAT --to-destination ${to.replace(/\./g, '\\.')}$`, 'm');
      assert.match(rules, dnat('tcp', PORT, '10.44.0.21:80'));
      assert.match(rules, dnat('tcp', PORT + 1, '10.44.0.21:80', PORTS_GW), 'hostIP kept');
      assert.match(rules, dnat('tcp', PORT + 10, '10.44.0.21:80'), 'range expanded');
      assert.match(rules, dnat('tcp', PORT + 11, '10.44.0.21:81'), 'range expanded');
      assert.match(rules, dnat('udp', PORT + 20, '10.44.0.21:53'), 'udp');
      assert.equal(portmapChains().length, 1, 'one chain for the one container');
      // Real traffic, from the test host netns to its own address (the bridge's): nothing listens
      // there, so an answer can only come from the container, through portmap's DNAT.
      for (const port of [PORT, PORT + 1, PORT + 10]) {
        await waitFor(`http://${PORTS_GW}:${port}/ answers`, () => fetchPage(PORTS_GW, port) === PAGE, 60_000, 250);
      }
      assert.equal(fetchPage(PORTS_GW, PORT + 2), undefined, 'a port that was not published does not answer');
    } finally {
      docker('rm', '-f', c.id);
    }
    await nothingLeftOf(c.id);
    await portmapGone(c.id, '10.44.0.21');
    assert.match(logLinesFor(c.id, 'del').at(-1)!, /result=ok/);
    assert.equal(fetchPage(PORTS_GW, PORT), undefined, 'the host port is closed again');
  });

  it('after a SIGKILL, a -p container removed meanwhile: the restarted watcher\'s DEL removes its port mapping too', async () => {
    const c = inspect(run('10.44.0.22', `${PORT + 30}:80`));
    try {
      await waitFor('eth0', () => addressedEth0(c.pid));
      await waitFor('state file', () => fs.existsSync(stateFile(c)));
      await waitFor(`http://${PORTS_GW}:${PORT + 30}/ answers`, () => fetchPage(PORTS_GW, PORT + 30) === PAGE, 60_000, 250);
      await killWatcher();
    } finally {
      docker('rm', '-f', c.id);
      if (!watcher) startWatcher();
    }
    await nothingLeftOf(c.id);
    await portmapGone(c.id, '10.44.0.22');
    assert.match(logLinesFor(c.id, 'del').at(-1)!, /reason=removed result=ok/);
  });
});

// ---- hook mode ---------------------------------------------------------------------

describe('cniglue prestart/poststop (hook mode, synthetic state)', () => {
  const id = randomBytes(32).toString('hex');
  let pod: TestNetns;
  let pid = 0;
  let sleeper: ChildProcess | undefined;
  let env: Record<string, string>;

  const flags = () => ['--conf-root', dirs.conf, '--cni-path', CNI_PATH, '--cache-dir', dirs.cache];
  const hook = (phase: string, stdin: string) => runExe('cniglue', {
    args: [phase, ...flags()], netns: host, stdin,
    env: { ...env, CATTLE_CNI_STATE_DIR: dirs.pluginState, CATTLE_CNI_LOCK_DIR: dirs.locks },
  });
  const ociState = (status: string) => JSON.stringify({ ociVersion: '1.0.2', id, status, pid, bundle: path.join(tmp, 'bundle') });

  before(async () => {
    pod = makeNetns('cglue-pod');
    // The "container": a process inside that netns; `ip netns exec` execs it with the same PID.
    sleeper = spawn('ip', ['netns', 'exec', pod.name, 'sleep', '600'], { stdio: 'ignore' });
    trackPid(sleeper.pid);
    pid = sleeper.pid!;
    await waitFor('sleeper in its netns', () => {
      try {
        return fs.statSync(`/proc/${pid}/ns/net`).ino === fs.statSync(pod.path).ino;
      } catch {
        return false;
      }
    });
    const files = path.join(tmp, 'hook');
    fs.mkdirSync(files, { recursive: true });
    fs.writeFileSync(path.join(files, 'hostconfig.json'), JSON.stringify({ NetworkMode: 'none', Privileged: false }));
    fs.writeFileSync(path.join(files, 'config.v2.json'), JSON.stringify({
      ID: id,
      Config: { Labels: { 'io.rancher.cni.network': NETWORK, 'io.rancher.container.ip': '10.42.5.5/16', 'io.rancher.container.mac_address': '02:42:0a:2a:05:05' } },
    }));
    env = { DOCKER_HOST_CONFIG: path.join(files, 'hostconfig.json'), DOCKER_CONFIG: path.join(files, 'config.v2.json') };
  });

  after(() => {
    if (sleeper?.pid) {
      sleeper.kill('SIGKILL');
      untrackPid(sleeper.pid);
    }
  });

  it('malformed state changes nothing and says why', () => {
    const linksThen = links(host).map((l) => l.ifname).sort();
    const r = hook('prestart', '{"id": 12');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /OCI state on stdin is not valid JSON.*nothing was changed/);
    const missing = runExe('cniglue', { args: ['prestart', ...flags()], netns: host, stdin: ociState('creating') });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /DOCKER_HOST_CONFIG is not set/);
    assert.deepEqual(links(host).map((l) => l.ifname).sort(), linksThen);
    assert.deepEqual(pod.ipJson<{ ifname: string }[]>('link', 'show').map((l) => l.ifname), ['lo']);
  });

  it('prestart ADDs eth0 with the labelled address and MAC, on the cattle bridge', () => {
    const r = hook('prestart', ociState('creating'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal((r.json as { ip4?: { ip: string } }).ip4?.ip, '10.42.5.5/16');
    const e = eth0Of(pid)!;
    assert.deepEqual(e.addrs, ['10.42.5.5/16']);
    assert.equal(e.mac, '02:42:0a:2a:05:05');
    assert.equal(hostLink(hostVeth(id))?.master, BRIDGE);
    // The hooked "container" and a watcher-networked Docker container share the bridge.
    const peer = docker('ps', '-q', '--filter', 'label=io.rancher.container.ip=10.42.0.15/16');
    if (peer) assert.ok(pingFrom(pid, '10.42.0.15'), 'reaches the Docker container on the same network');
  });

  it('poststop DELs (host veth gone) and exits 0, also when there is nothing left to delete', () => {
    const r = hook('poststop', ociState('stopped'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hostLink(hostVeth(id)), undefined);
    assert.equal(eth0Of(pid), undefined);
    const again = hook('poststop', ociState('stopped'));
    assert.equal(again.code, 0, again.stderr);
    const broken = hook('poststop', 'not json');
    assert.equal(broken.code, 0);
  });
});

describe('cniglue prestart/poststop with -p (hook mode: hostconfig.json PortBindings, reference portmap)', () => {
  const id = randomBytes(32).toString('hex');
  const ip = '10.44.5.5';
  const hostPort = PORT + 40;
  let pod: TestNetns;
  let pid = 0;
  let server: ChildProcess | undefined;
  let env: Record<string, string>;

  const hook = (phase: string, stdin: string) => runExe('cniglue', {
    args: [phase, '--conf-root', dirs.conf, '--cni-path', CNI_PATH, '--cache-dir', dirs.cache], netns: host, stdin,
    env: { ...env, CATTLE_CNI_STATE_DIR: dirs.pluginState, CATTLE_CNI_LOCK_DIR: dirs.locks },
  });
  const ociState = (status: string) => JSON.stringify({ ociVersion: '1.0.2', id, status, pid });

  before(async () => {
    pod = makeNetns('cglue-pport');
    const files = path.join(tmp, 'hook-ports');
    fs.mkdirSync(path.join(files, 'www'), { recursive: true });
    fs.writeFileSync(path.join(files, 'www', 'index.html'), PAGE);
    // The "container": busybox httpd inside that netns (`ip netns exec` execs it with the same PID).
    server = spawn('ip', ['netns', 'exec', pod.name, 'busybox', 'httpd', '-f', '-p', '80', '-h', path.join(files, 'www')], { stdio: 'ignore' });
    trackPid(server.pid);
    pid = server.pid!;
    await waitFor('httpd in its netns', () => {
      try {
        return fs.statSync(`/proc/${pid}/ns/net`).ino === fs.statSync(pod.path).ino;
      } catch {
        return false;
      }
    });
    fs.writeFileSync(path.join(files, 'hostconfig.json'), JSON.stringify({
      NetworkMode: 'none',
      PortBindings: { '80/tcp': [{ HostIp: '', HostPort: String(hostPort) }], '80/udp': [{ HostIp: PORTS_GW, HostPort: String(hostPort) }] },
    }));
    fs.writeFileSync(path.join(files, 'config.v2.json'), JSON.stringify({
      ID: id, Config: { Labels: { 'io.rancher.cni.network': PORTS_NET, 'io.rancher.container.ip': `${ip}/16` } },
    }));
    env = { DOCKER_HOST_CONFIG: path.join(files, 'hostconfig.json'), DOCKER_CONFIG: path.join(files, 'config.v2.json') };
  });

  after(() => {
    if (server?.pid) {
      server.kill('SIGKILL');
      untrackPid(server.pid);
    }
    // Should a test fail half-way: DEL what the prestart may have made (its rules live in the host netns).
    if (env) hook('poststop', ociState('stopped'));
    pod?.destroy();
  });

  it('prestart: eth0 plus portmap\'s rules for the published ports; the host port reaches the server', async () => {
    const r = hook('prestart', ociState('creating'));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(addressedEth0(pid)?.addrs, [`${ip}/16`]);
    const rules = natRules();
    assert.match(rules, new RegExp(`-p tcp -m tcp --dport ${hostPort} -j DNAT --to-destination ${ip.replace(/\./g, '\\.')}:80$`, 'm'));
    assert.match(rules, new RegExp(`-d ${PORTS_GW.replace(/\./g, '\\.')}/32 -p udp -m udp --dport ${hostPort} -j DNAT --to-destination ${ip.replace(/\./g, '\\.')}:80$`, 'm'));
    await waitFor(`http://${PORTS_GW}:${hostPort}/ answers`, () => fetchPage(PORTS_GW, hostPort) === PAGE, 60_000, 250);
  });

  it('poststop: the same mappings go to portmap\'s DEL: nothing of them is left', async () => {
    const r = hook('poststop', ociState('stopped'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hostLink(hostVeth(id)), undefined);
    await portmapGone(id, ip);
    assert.equal(fetchPage(PORTS_GW, hostPort), undefined, 'the host port is closed again');
  });
});

describe('cleanup', () => {
  it('leaves nothing in the root netns', () => {
    const extra = rootLinkNames().filter((n) => !linksBefore.includes(n) && (n === BRIDGE || n.startsWith('vethr')));
    assert.deepEqual(extra, []);
  });
});
