// containerd end to end: Debian's containerd (1.6) and `ctr run --cni` drive
// the built cattle-bridge, with Debian's host-local as its IPAM, on a conflist
// written here. Everything is private to this file:
//  * a containerd of its own (test/helpers/containerd.ts): root, state, socket,
//    config and log in a temp dir, CRI off, the native snapshotter, started as a
//    child process and stopped by its PID; runc's state (`--runc-root`), the IO
//    FIFOs and the image live in the temp dir too, and every container gets
//    `--cgroup ""` (a cgroup named after it, which runc removes with it; the
//    default "/<namespace>/<id>" would leave "/<namespace>" behind);
//  * the image is an OCI archive the test writes (test/helpers/oci-image.ts): one
//    layer with Debian's static busybox and its applets, imported with
//    `ctr images import`;
//  * `ctr run --cni` (go-cni's defaults; containerd 1.6's ctr has no flag for
//    them) reads the first conflist of /etc/cni/net.d and looks for plugins in
//    /opt/cni/bin, then /usr/lib/cni (Debian's addition). ctr itself runs the
//    plugins, for ADD and for DEL, so each `ctr run` is started in a private
//    mount namespace (`unshare --mount`, private propagation) where the test's
//    conf dir and plugin dir are bind-mounted over those paths, and inside a
//    "host" netns made here (`nsenter --net`): the bridge and the host veths live
//    there. Nothing under /etc, /opt or /usr/lib is changed for anyone else;
//    the plugins' state and lock dirs (CATTLE_CNI_STATE_DIR/LOCK_DIR) are in the
//    temp dir too, since the same ctr process runs ADD and DEL with its own
//    environment;
//  * ctr runs DEL only in the foreground: `ctr run -d` never removes the network.
//    So each container is a foreground `ctr run --rm --cni` child of the test,
//    ended by `ctr task kill -s SIGKILL`, after which ctr runs DEL (with an empty
//    CNI_NETNS: the netns died with the task), deletes the task and removes the
//    container and its snapshot, and exits: that exit is the event the test waits
//    for. libcni's result cache (/var/lib/cni/results/<net>-<ns>-<id>-eth0) is
//    the one shared path written to, under names that only this file uses;
//  * after (pass or fail): remaining tasks killed, the ctr children awaited (or
//    killed by PID), containers removed, containerd stopped by PID, shims and
//    container processes that outlived it killed by PID (and start time),
//    mounts under the temp dir unmounted, libcni cache entries, cgroups named
//    after our containers, the netns and the temp dir removed.
// containerd is installed when missing (apt-get install containerd …). The tests
// are skipped only when containerd cannot run containers on the machine, and
// never when CI is set.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { type Containerd, startContainerd } from '../helpers/containerd.ts';
import { baseEnv, BIN, makeNetns, rootLinkNames, type TestNetns, trackPid, untrackPid } from '../helpers/harness.ts';
import { diffSnapshots, formatDiff, isClean, snapshot } from '../helpers/leftovers.ts';
import { busyboxLayer, ociImage } from '../helpers/oci-image.ts';
import { isStaticElf, which } from '../helpers/system.ts';

const NS = 'cattle-test';
const IMAGE = `localhost/cattle-cni-test-busybox:${process.pid}`;
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'sleep', 'ping', 'ip', 'cat', 'true'];
const DEPS = ['containerd', 'runc', 'busybox-static', 'containernetworking-plugins', 'util-linux'];
const NET = 'cattle-ctrd';
const BRIDGE = 'cctrd0';
const SUBNET = '10.85.0.0/24';
const GATEWAY = '10.85.0.1';
/** Debian's reference IPAM, copied into the test's plugin dir (the dir it lives in is shadowed there). */
const HOST_LOCAL = '/usr/lib/cni/host-local';
/** What `ctr run --cni` reads: go-cni's default conf dir and plugin dirs (in lookup order). */
const CNI_CONF_DIR = '/etc/cni/net.d';
const CNI_BIN_DIRS = ['/opt/cni/bin', '/usr/lib/cni'];
const LIBCNI_CACHE = '/var/lib/cni/results';
/** Generous: two cores shared with whatever else runs. */
const START_DEADLINE_MS = 90_000;
const EXIT_DEADLINE_MS = 60_000;
const IN_CI = !!process.env.CI;

/** Binds the test's conf and plugin dirs over ctr's, in the mount namespace `unshare` made, then runs the command. */
const MOUNT_SCRIPT = [
  'set -e',
  'conf=$1; bin=$2; shift 2',
  `mount --bind "$conf" ${CNI_CONF_DIR}`,
  `for d in ${CNI_BIN_DIRS.join(' ')}; do if [ -d "$d" ]; then mount --bind "$bin" "$d"; fi; done`,
  'exec "$@"',
].join('\n');

let skipReason: string | undefined;
let tmp: string | undefined;
let cd: Containerd | undefined;
/** Directories this file had to create (removed again when empty). */
const createdDirs: string[] = [];
let execCounter = 0;

interface Container {
  id: string;
  /** What ctr hands to CNI as the container ID: "<namespace>-<id>". */
  fullId: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: string;
  /** The task's init process, with its start time. */
  pid?: number;
  pidStart?: string;
  /** "net:[inode]" of the task's netns. */
  netns?: string;
  shimPid?: number;
  shimStart?: string;
  ip?: string;
}
const containers = new Map<string, Container>();

function haveDeps(): string | undefined {
  const missing: string[] = [];
  for (const cmd of ['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc']) if (!which(cmd)) missing.push(cmd);
  if (!fs.existsSync(BUSYBOX) || !isStaticElf(BUSYBOX)) missing.push(`a static ${BUSYBOX} (busybox-static)`);
  if (!fs.existsSync(HOST_LOCAL)) missing.push(`${HOST_LOCAL} (containernetworking-plugins)`);
  for (const cmd of ['nsenter', 'unshare', 'mount', 'findmnt']) if (!which(cmd)) missing.push(`${cmd} (util-linux)`);
  return missing.length ? missing.join(', ') : undefined;
}

/** Installs what is missing (scripts/ensure-deps.sh should have done it first). */
function installDeps(): void {
  if (!haveDeps() || !which('apt-get') || process.getuid?.() !== 0) return;
  const env = { ...baseEnv(), DEBIAN_FRONTEND: 'noninteractive' };
  const apt = ['-o', 'DPkg::Lock::Timeout=120', '-q'];
  const install = () => spawnSync('apt-get', [...apt, 'install', '-y', '--no-install-recommends', ...DEPS], { env, encoding: 'utf8', timeout: 300_000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', [...apt, 'update'], { env, stdio: 'ignore', timeout: 180_000 });
    r = install();
  }
  if (r.status !== 0) process.stderr.write(`containerd.test: apt-get install ${DEPS.join(' ')} failed: ${r.stderr}\n`);
}

/** A process's start time (field 22 of /proc/PID/stat), to tell it from a later process with the same PID. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function killIfSame(pid: number | undefined, started: string | undefined): void {
  if (pid === undefined || started === undefined || startTime(pid) !== started) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

/** Resolves true when cond() holds, false when the deadline passes first. */
async function waitFor(cond: () => boolean, deadlineMs: number, stepMs = 200): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(stepMs);
  }
}

function ctr(args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): SpawnSyncReturns<string> {
  assert.ok(cd, 'containerd used before setup');
  return cd.ctr(args, opts);
}

/** The plugin's log tail, for failure messages. */
function pluginLog(): string {
  const f = tmp && path.join(tmp, 'logs', 'cattle-bridge.log');
  if (!f || !fs.existsSync(f)) return '';
  return `--- cattle-bridge log (tail) ---\n${fs.readFileSync(f, 'utf8').trim().split('\n').slice(-15).join('\n')}\n`;
}

function conflist(): string {
  return `${JSON.stringify({
    cniVersion: '1.0.0',
    name: NET,
    plugins: [{
      type: 'cattle-bridge',
      bridge: BRIDGE,
      isGateway: true,
      logToFile: path.join(tmp!, 'logs', 'cattle-bridge.log'),
      isDebugLevel: true,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: SUBNET, gateway: GATEWAY }]],
        routes: [{ dst: '0.0.0.0/0' }],
        dataDir: path.join(tmp!, 'ipam'),
      },
    }],
  }, null, 2)}\n`;
}

/** `ctr task ls`: id → [pid, status]. */
function tasks(): Map<string, { pid: number; status: string }> {
  const m = new Map<string, { pid: number; status: string }>();
  for (const line of ctr(['tasks', 'ls']).stdout.trim().split('\n').slice(1)) {
    const [id, pid, status] = line.trim().split(/\s+/);
    if (id) m.set(id, { pid: Number(pid), status: status ?? '' });
  }
  return m;
}

/**
 * `ctr run --rm --cni` in the foreground, as a child of the test, in the host netns and a
 * private mount namespace; resolves once the task runs (ctr starts it only after CNI ADD).
 */
async function runContainer(id: string, cmd: string[]): Promise<Container> {
  assert.ok(tmp && cd);
  const ctrArgs = ['ctr', '-a', cd.socket, '-n', NS, 'run', '--rm', '--cni', '--null-io', '--cgroup', '',
    '--snapshotter', 'native', '--runc-root', path.join(tmp, 'runc'), '--fifo-dir', path.join(tmp, 'fifo'), IMAGE, id, ...cmd];
  const child = spawn('nsenter', [`--net=${host.path}`, '--', 'unshare', '--mount', '--propagation', 'private', '--',
    'sh', '-c', MOUNT_SCRIPT, 'sh', path.join(tmp, 'net.d'), path.join(tmp, 'cni-bin'), ...ctrArgs], {
    env: {
      ...baseEnv(),
      CATTLE_CNI_STATE_DIR: path.join(tmp, 'cni-state'),
      CATTLE_CNI_LOCK_DIR: path.join(tmp, 'cni-lock'),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  trackPid(child.pid);
  const c: Container = {
    id,
    fullId: `${NS}-${id}`,
    child,
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => { untrackPid(child.pid); resolve({ code, signal }); })),
  };
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { c.stderr += d; });
  child.on('error', (err) => { c.stderr += `spawn: ${err.message}\n`; });
  containers.set(id, c);
  const running = await waitFor(() => child.exitCode !== null || child.signalCode !== null || tasks().get(id)?.status === 'RUNNING', START_DEADLINE_MS);
  if (child.exitCode !== null || child.signalCode !== null) {
    assert.fail(`ctr run ${id} exited (${child.exitCode ?? child.signalCode}) before its task ran: ${c.stderr.trim()}\n${pluginLog()}`);
  }
  assert.ok(running, `task ${id} not RUNNING within ${START_DEADLINE_MS} ms: ${c.stderr.trim()}\n${pluginLog()}`);
  c.pid = tasks().get(id)!.pid;
  c.pidStart = startTime(c.pid);
  c.netns = fs.readlinkSync(`/proc/${c.pid}/ns/net`);
  const shimPidFile = path.join(cd.state, 'io.containerd.runtime.v2.task', NS, id, 'shim.pid');
  if (fs.existsSync(shimPidFile)) {
    c.shimPid = Number(fs.readFileSync(shimPidFile, 'utf8').trim());
    c.shimStart = startTime(c.shimPid);
  }
  return c;
}

function exec(c: Container, cmd: string[], allowFail = false): SpawnSyncReturns<string> {
  return ctr(['tasks', 'exec', '--exec-id', `e${++execCounter}`, '--fifo-dir', path.join(tmp!, 'fifo'), c.id, ...cmd], { allowFail });
}

/** A ping answered, allowing two more tries (the first packet may wait on ARP; none of this is timed). */
function pingOk(from: Container, ip: string): boolean {
  for (let i = 0; i < 3; i++) if (exec(from, ['ping', '-c', '1', '-W', '2', ip], true).status === 0) return true;
  return false;
}

/** eth0's IPv4 addresses and the routes inside the container. */
function containerNet(c: Container): { addrs: string[]; routes: string[] } {
  const [addr, route] = exec(c, ['sh', '-c', 'ip -4 -o addr show dev eth0 && echo --- && ip -4 route show']).stdout.split('---\n') as [string, string];
  return {
    addrs: [...addr.matchAll(/inet (\S+)/g)].map((m) => m[1]!),
    routes: route.trim().split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter(Boolean),
  };
}

/** Kills the task; ctr (in the foreground) then runs DEL, deletes the task and removes the container. */
async function removeContainer(c: Container): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (c.child.exitCode === null && c.child.signalCode === null) ctr(['tasks', 'kill', '--signal', 'SIGKILL', c.id], { allowFail: true });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), EXIT_DEADLINE_MS); });
  const r = await Promise.race([c.exited, late]);
  clearTimeout(timer);
  if (r !== 'late') return r;
  // Not reaped yet, so the PID is still this child's.
  c.child.kill('SIGKILL');
  await c.exited;
  return { code: null, signal: 'SIGKILL' };
}

function hostVeths(): { ifname: string; master?: string; ifalias?: string }[] {
  return host.ipJson<{ ifname: string; master?: string; ifalias?: string }[]>('link', 'show', 'type', 'veth');
}

/** host-local's leases: files named by an address in its data dir. */
function leases(): string[] {
  const dir = path.join(tmp!, 'ipam', NET);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
}

/** Processes whose netns is `ns` ("net:[inode]"). */
function holdersOf(ns: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readlinkSync(`/proc/${p}/ns/net`) === ns) pids.push(Number(p));
    } catch {
      // gone, or a kernel thread
    }
  }
  return pids;
}

/** cgroup directories named after a container, where runc makes them for `--cgroup ""` (below this process's cgroups). */
function cgroupDirs(id: string): string[] {
  const root = '/sys/fs/cgroup';
  const rels = new Set(fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n').map((l) => l.split(':').slice(2).join(':')));
  const hierarchies = [root, ...fs.readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => path.join(root, d.name))];
  const found: string[] = [];
  for (const h of hierarchies) {
    for (const rel of rels) {
      const d = path.join(h, rel, id);
      try {
        if (fs.statSync(d).isDirectory()) found.push(d);
      } catch {
        // not there
      }
    }
  }
  return [...new Set(found)];
}

/** Mounts below dir, deepest first. */
function mountsUnder(dir: string): string[] {
  return spawnSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).stdout.split('\n')
    .filter((m) => m.startsWith(`${dir}/`)).sort().reverse();
}

const host: TestNetns = makeNetns('cctrd-host');

/** Skips when containerd cannot run containers here. */
function skipped(t: TestContext): boolean {
  if (!skipReason) return false;
  t.skip(skipReason);
  return true;
}

function fail(reason: string): void {
  skipReason = reason;
  if (IN_CI) throw new Error(`${reason}; CI must run the containerd test`);
}

async function setUp(): Promise<void> {
  installDeps();
  const missing = haveDeps();
  if (missing) return fail(`containerd cannot run here: missing ${missing} (apt-get install ${DEPS.join(' ')}; scripts/ensure-deps.sh)`);
  assert.ok(fs.existsSync(path.join(BIN, 'cattle-bridge')), `${path.join(BIN, 'cattle-bridge')} missing: build first (CATTLE_CNI_BIN points at the bin dir)`);
  if (!CNI_BIN_DIRS.some((d) => fs.existsSync(d))) return fail(`none of ${CNI_BIN_DIRS.join(', ')} exists to bind the test's plugin dir over`);
  // The mount point for the conf dir (Debian's podman and containernetworking-plugins ship it; created when missing).
  for (const d of ['/etc/cni', CNI_CONF_DIR]) {
    if (!fs.existsSync(d)) {
      fs.mkdirSync(d, { mode: 0o755 });
      createdDirs.unshift(d);
    }
  }

  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cattle-containerd-'));
  for (const d of ['net.d', 'cni-bin', 'cni-state', 'cni-lock', 'ipam', 'logs', 'runc', 'fifo', 'containerd']) fs.mkdirSync(path.join(tmp, d));
  fs.writeFileSync(path.join(tmp, 'net.d', `10-${NET}.conflist`), conflist());
  fs.symlinkSync(path.resolve(BIN, 'cattle-bridge'), path.join(tmp, 'cni-bin', 'cattle-bridge'));
  fs.copyFileSync(HOST_LOCAL, path.join(tmp, 'cni-bin', 'host-local'));
  fs.chmodSync(path.join(tmp, 'cni-bin', 'host-local'), 0o755);

  try {
    cd = await startContainerd(path.join(tmp, 'containerd'), { namespace: NS });
  } catch (err) {
    return fail(`containerd does not start on this machine: ${(err as Error).message}`);
  }
  const image = ociImage({ name: IMAGE, layer: busyboxLayer(BUSYBOX, APPLETS), cmd: ['sh'] });
  const archive = path.join(tmp, 'image.tar');
  fs.writeFileSync(archive, image.archive);
  ctr(['images', 'import', '--snapshotter', 'native', archive], { timeoutMs: 120_000 });

  // Can this containerd start a container here at all (no network involved)?
  const probe = ctr(['run', '--rm', '--null-io', '--cgroup', '', '--snapshotter', 'native', '--runc-root', path.join(tmp, 'runc'),
    '--fifo-dir', path.join(tmp, 'fifo'), IMAGE, `ccni-probe-${process.pid}`, 'true'], { allowFail: true, timeoutMs: 90_000 });
  if (probe.status !== 0) fail(`containerd cannot run containers on this machine: ${(probe.stderr || probe.stdout).trim()}\n${cd.logTail(10)}`);
}

async function tearDown(): Promise<void> {
  if (cd) {
    // Tasks still running: killed, so that their ctr runs DEL and removes the container.
    await Promise.all([...containers.values()].map((c) => removeContainer(c)));
    // Whatever containerd still has (a run that failed half-way).
    for (const id of ctr(['containers', 'ls', '-q'], { allowFail: true }).stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
      ctr(['tasks', 'kill', '--signal', 'SIGKILL', id], { allowFail: true });
      ctr(['tasks', 'rm', '--force', id], { allowFail: true });
      ctr(['containers', 'rm', id], { allowFail: true });
    }
    await cd.stop();
  }
  for (const c of containers.values()) {
    // Only a shim or container process that outlived containerd, never a later process with its PID.
    killIfSame(c.shimPid, c.shimStart);
    killIfSame(c.pid, c.pidStart);
    fs.rmSync(path.join(LIBCNI_CACHE, `${NET}-${c.fullId}-eth0`), { force: true });
    for (const d of cgroupDirs(c.id)) {
      try {
        fs.rmdirSync(d);
      } catch {
        // still busy or gone
      }
    }
  }
  if (tmp) {
    for (const m of mountsUnder(tmp)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  for (const d of createdDirs) {
    try {
      fs.rmdirSync(d);
    } catch {
      // not empty (someone else's now) or gone
    }
  }
  host.destroy();
}

describe('containerd (ctr run --cni) with cattle-bridge', () => {
  // Suite hooks: they run before the harness's file-level cleanup, which would
  // otherwise kill the ctr children before they could run DEL.
  before(setUp);
  after(tearDown);

  it('containerd serves the imported busybox image', (t) => {
    if (skipped(t)) return;
    const images = ctr(['images', 'ls', '-q']).stdout.trim().split('\n');
    assert.ok(images.includes(IMAGE), images.join(', '));
    assert.deepEqual(ctr(['containers', 'ls', '-q']).stdout.trim(), '', 'the probe container was removed');
  });

  it('two containers on cattle-bridge + host-local reach each other; kill + ctr run --rm leaves nothing', async (t) => {
    if (skipped(t)) return;
    const dirs = { state: path.join(tmp!, 'cni-state'), lock: path.join(tmp!, 'cni-lock'), ipam: path.join(tmp!, 'ipam') };
    const base = await snapshot(host, { dirs });

    const c1 = await runContainer(`ccni-${process.pid}-a`, ['sleep', '600']);
    const c2 = await runContainer(`ccni-${process.pid}-b`, ['sleep', '600']);
    for (const c of [c1, c2]) {
      const net = containerNet(c);
      assert.equal(net.addrs.length, 1, `${c.id}: ${JSON.stringify(net)}`);
      const [ip, prefix] = net.addrs[0]!.split('/') as [string, string];
      assert.match(ip, /^10\.85\.0\.\d+$/, `${c.id} got an address of ${SUBNET}`);
      assert.equal(prefix, '24');
      assert.deepEqual(net.routes, [`default via ${GATEWAY} dev eth0`, `10.85.0.0/24 dev eth0 scope link src ${ip}`]);
      c.ip = ip;
      // host-local leased exactly this address to this container; libcni cached the result.
      assert.match(fs.readFileSync(path.join(tmp!, 'ipam', NET, ip), 'utf8'), new RegExp(`^${c.fullId}\\s+eth0`));
      assert.ok(fs.existsSync(path.join(LIBCNI_CACHE, `${NET}-${c.fullId}-eth0`)), `libcni cache entry of ${c.id}`);
    }
    assert.notEqual(c1.ip, c2.ip);
    assert.deepEqual(leases().sort(), [c1.ip!, c2.ip!].sort());

    // Host side, in the host netns only: the bridge with the gateway address, both host veths on it,
    // each marked with its attachment.
    const veths = hostVeths();
    assert.equal(veths.length, 2, JSON.stringify(veths));
    for (const v of veths) assert.equal(v.master, BRIDGE);
    for (const c of [c1, c2]) assert.equal(veths.filter((v) => v.ifalias?.startsWith(`cattle-cni cattle-bridge ${c.fullId} eth0 `)).length, 1, `${c.id}'s veth alias`);
    const brAddrs = host.ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>('-4', 'addr', 'show', 'dev', BRIDGE)[0]!.addr_info;
    assert.deepEqual(brAddrs.map((a) => `${a.local}/${a.prefixlen}`), [`${GATEWAY}/24`]);
    assert.deepEqual(rootLinkNames().filter((l) => l === BRIDGE || veths.some((v) => v.ifname === l)), [], 'nothing in the root netns');

    assert.ok(pingOk(c1, c2.ip!), `container one pings container two (${c2.ip})`);
    assert.ok(pingOk(c2, c1.ip!), `container two pings container one (${c1.ip})`);
    assert.ok(pingOk(c1, GATEWAY), 'and the gateway on the bridge');

    for (const c of [c1, c2]) {
      const r = await removeContainer(c);
      // ctr returns the task's status: 128 + SIGKILL.
      assert.deepEqual(r, { code: 137, signal: null }, `ctr run ${c.id}: ${c.stderr.trim()}`);
      // ctr only logs a failed DEL ("network review") and goes on: its stderr must have none.
      assert.doesNotMatch(c.stderr, /network review|level=error/, `ctr run ${c.id}: ${c.stderr.trim()}\n${pluginLog()}`);
    }

    // containerd forgot them: no task, no container, no container snapshot.
    assert.deepEqual([...tasks().keys()], [], 'no task left');
    assert.equal(ctr(['containers', 'ls', '-q']).stdout.trim(), '', 'no container left');
    const snaps = ctr(['snapshots', '--snapshotter', 'native', 'ls']).stdout;
    for (const c of [c1, c2]) assert.ok(!snaps.includes(c.id), `snapshot of ${c.id} removed: ${snaps}`);

    // The network: no veth, no lease, no state or lock file of an attachment, no libcni cache entry;
    // only the bridge (with its address and route), its lock and host-local's own files stay.
    assert.deepEqual(hostVeths(), [], 'no veth left');
    assert.deepEqual(leases(), [], 'host-local ranges free');
    const now = await snapshot(host, { dirs });
    const diff = diffSnapshots(base, now, {
      kinds: ['bridge'],
      files: [new RegExp(`^lock:bridge-${BRIDGE}$`), new RegExp(`^ipam:${NET}/(lock|last_reserved_ip\\.0)$`)],
    });
    assert.ok(isClean(diff), `left behind in the host netns or the plugin dirs:\n${formatDiff(diff)}`);
    for (const c of [c1, c2]) {
      assert.equal(fs.existsSync(path.join(LIBCNI_CACHE, `${NET}-${c.fullId}-eth0`)), false, `libcni cache entry of ${c.id} removed`);
      // The netns died with the task: no process is in it any more (nothing bind-mounts it).
      assert.ok(await waitFor(() => holdersOf(c.netns!).length === 0, EXIT_DEADLINE_MS), `${c.netns} of ${c.id} still held by ${holdersOf(c.netns!).join(', ')}`);
      assert.notEqual(startTime(c.pid!), c.pidStart, `task process ${c.pid} gone`);
      // The shim goes once the container is deleted; runc then has removed its state and cgroup.
      if (c.shimPid !== undefined) assert.ok(await waitFor(() => startTime(c.shimPid!) !== c.shimStart, EXIT_DEADLINE_MS), `shim ${c.shimPid} of ${c.id} exited`);
      assert.equal(fs.existsSync(path.join(tmp!, 'runc', NS, c.id)), false, `runc state of ${c.id} removed`);
      assert.deepEqual(cgroupDirs(c.id), [], `cgroups of ${c.id} removed`);
      assert.deepEqual(mountsUnder(tmp!).filter((m) => m.includes(c.id)), [], `rootfs of ${c.id} unmounted`);
    }

    const log = fs.readFileSync(path.join(tmp!, 'logs', 'cattle-bridge.log'), 'utf8');
    for (const c of [c1, c2]) {
      assert.match(log, new RegExp(`"command":"ADD","containerId":"${c.fullId}".*"step":"done","outcome":"ok"`));
      assert.match(log, new RegExp(`"command":"DEL","containerId":"${c.fullId}".*"step":"done","outcome":"ok"`));
    }
  });
});
