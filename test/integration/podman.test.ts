// podman end to end: Debian's podman (CNI network backend, runc) drives the
// built executable through libcni, with the example configs of
// conf-examples/podman (plugin dir, netconf dir, IPAM data dir and logs
// pointed at a temp dir). Everything is private to this file:
//  * podman's configuration (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), its
//    storage (--root/--runroot, vfs), its tmp dir, file locks and event log
//    live in a temp dir; the image is a busybox-static tarball imported there;
//  * podman runs in a "host" netns made here, entered with `nsenter --net`
//    (not `ip netns exec`, whose fresh /sys has no cgroup mounts for runc and
//    whose private mount namespace would hide podman's netns bind mounts from
//    the next podman command), so the bridge, host veths, routes and iptables
//    rules all live in that netns, and traffic stays inside namespaces made here;
//  * our plugins keep their state and locks where they always do (under
//    /run/cattle-cni): the DEL run by conmon's cleanup process does not get the
//    environment of the podman command that started the container, so a
//    CATTLE_CNI_STATE_DIR set here would reach ADD but not that DEL. The test
//    checks, and removes, the files of exactly its own attachments there;
//  * after(): `podman rm -af`, leftover processes killed by PID, mounts under
//    the temp dir unmounted, our attachments' state files, namespaces and temp
//    dir removed, also on failure.
// podman is installed when missing (apt-get install podman runc busybox-static).
// The tests are skipped only when podman cannot run containers on the machine,
// and never when CI is set.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';

import { hashHex } from '../../lib/hash.ts';
import { baseEnv, BIN, makeNetns, ROOT, rootLinkNames, type TestNetns } from '../helpers/harness.ts';
import { isStaticElf, which } from '../helpers/system.ts';

const EXAMPLES = path.join(ROOT, 'conf-examples', 'podman');
const IMAGE = `localhost/cattle-cni-test-busybox:${process.pid}`;
const BUSYBOX = '/bin/busybox';
const DEPS = ['podman', 'runc', 'busybox-static'];
/** The host netns's own address, on its uplink. */
const HOST_ADDR = '198.18.70.1';
const UPLINK_ADDR = '198.18.70.2';
const HOST_PORT = 18080;
const LIBCNI_CACHE = '/var/lib/cni/results';
/** lib/state.ts's default: the plugins podman runs are never told another one. */
const PLUGIN_STATE_DIR = '/run/cattle-cni/state';
const IN_CI = !!process.env.CI;

interface Net {
  name: string;
  file: string;
  plugin: string;
}
const BRIDGE_NET: Net = { name: 'cattle-bridge', file: '87-cattle-bridge.conflist', plugin: 'cattle-bridge' };
const PTP_NET: Net = { name: 'cattle-ptp', file: '88-cattle-ptp.conflist', plugin: 'cattle-ptp' };

/** Why the tests cannot run here (podman missing and not installable, or unable to start a container). */
let skipReason: string | undefined;
let tmp: string | undefined;
let podmanEnv: Record<string, string> = {};
let ulimits: string[] = [];
/** Every container this file created, by full ID, with what cleanup may need. */
interface Tracked {
  /** The container's netns path (podman's SandboxKey). */
  sandbox?: string;
  /** PID → start time of its process and its conmon. */
  pids: Map<number, string>;
}
const containers = new Map<string, Tracked>();

/**
 * The files an attachment of ours has in the plugins' state dir, named as lib/state.ts names
 * them: its record, the record's temporary twin, its lock.
 */
function attachmentFiles(net: Net, containerId: string): { record: string; all: string[] } {
  const stem = path.join(PLUGIN_STATE_DIR, net.plugin, hashHex(`${net.name}\0${containerId}\0eth0`, 32));
  return { record: `${stem}.json`, all: [`${stem}.json`, `${stem}.json.tmp`, `${stem}.lock`] };
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

function haveDeps(): string | undefined {
  const missing: string[] = [];
  if (!which('podman')) missing.push('podman');
  if (!which('runc')) missing.push('runc');
  if (!fs.existsSync(BUSYBOX) || !isStaticElf(BUSYBOX)) missing.push(`a static ${BUSYBOX} (busybox-static)`);
  if (!which('nsenter')) missing.push('nsenter (util-linux)');
  return missing.length ? missing.join(', ') : undefined;
}

/** Installs podman, runc and busybox-static when missing (scripts/ensure-deps.sh should do it first). */
function installDeps(): void {
  if (!haveDeps() || !which('apt-get') || process.getuid?.() !== 0) return;
  const env = { ...baseEnv(), DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...DEPS], { env, encoding: 'utf8', timeout: 300_000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 180_000 });
    r = install();
  }
  if (r.status !== 0) process.stderr.write(`podman.test: apt-get install ${DEPS.join(' ')} failed: ${r.stderr}\n`);
}

/** Hard limit of a resource of this process ("unlimited" → undefined). */
function hardLimit(name: string): number | undefined {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  const hard = line?.slice(name.length).trim().split(/\s+/)[1];
  return hard && /^\d+$/.test(hard) ? Number(hard) : undefined;
}

/**
 * `--ulimit` values runc can apply. Podman 4.3 asks for nofile=nproc=1048576 by
 * default and also with `--ulimit host`; without CAP_SYS_RESOURCE (as on these
 * machines) runc cannot raise a hard limit, so ask for what podman itself holds:
 * the inherited nofile, and nproc as podman sets it for itself (32768, or less).
 */
function ulimitArgs(): string[] {
  const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim()) || 32768;
  const nofile = Math.min(hardLimit('Max open files') ?? 1048576, 1048576);
  const nproc = Math.min(hardLimit('Max processes') ?? 32768, 32768, pidMax);
  return ['--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`];
}

function podman(args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): SpawnSyncReturns<string> {
  assert.ok(tmp, 'podman used before setup');
  const global = ['--root', path.join(tmp, 'root'), '--runroot', path.join(tmp, 'runroot'), '--tmpdir', path.join(tmp, 'libpod'),
    '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc'];
  const r = spawnSync('nsenter', [`--net=${host.path}`, 'podman', ...global, ...args], {
    env: podmanEnv, encoding: 'utf8', timeout: opts.timeoutMs ?? 90_000,
  });
  if (!opts.allowFail && r.status !== 0) {
    throw new Error(`podman ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}${r.error ? ` ${r.error.message}` : ''}\n${pluginLogs()}`);
  }
  return r;
}

/** The tail of our plugins' logs, for failure messages. */
function pluginLogs(): string {
  if (!tmp) return '';
  return [BRIDGE_NET, PTP_NET].map((n) => {
    const f = path.join(tmp!, 'logs', `${n.name}.log`);
    if (!fs.existsSync(f)) return '';
    return `--- ${n.plugin} log (tail) ---\n${fs.readFileSync(f, 'utf8').trim().split('\n').slice(-15).join('\n')}\n`;
  }).join('');
}

/** An example conflist as the test uses it: IPAM data and plugin logs in the temp dir. */
function testConflist(net: Net): string {
  const conf = JSON.parse(fs.readFileSync(path.join(EXAMPLES, net.file), 'utf8')) as { name: string; plugins: Record<string, unknown>[] };
  assert.equal(conf.name, net.name);
  const ours = conf.plugins[0]!;
  assert.equal(ours.type, net.plugin);
  ours.logToFile = path.join(tmp!, 'logs', `${net.name}.log`);
  ours.isDebugLevel = true;
  (ours.ipam as Record<string, unknown>).dataDir = path.join(tmp!, 'ipam');
  return `${JSON.stringify(conf, null, 2)}\n`;
}

/** conf-examples/podman/containers.conf.example with the test's plugin and config dirs, plus private locks and events. */
function testContainersConf(): string {
  let text = fs.readFileSync(path.join(EXAMPLES, 'containers.conf.example'), 'utf8');
  const dirs = text.match(/^cni_plugin_dirs = \[(.*)\]$/m);
  assert.ok(dirs, 'containers.conf example sets cni_plugin_dirs');
  assert.match(dirs[1]!, /"\/opt\/cni\/bin"/);
  text = text.replace(dirs[0], `cni_plugin_dirs = [${dirs[1]!.replace('"/opt/cni/bin"', JSON.stringify(path.resolve(BIN)))}]`);
  text = text.replace(/^network_config_dir = .*$/m, `network_config_dir = ${JSON.stringify(path.join(tmp!, 'net.d'))}`);
  assert.match(text, /^network_backend = "cni"$/m);
  assert.match(text, /^runtime = "runc"$/m);
  return text.replace(/^\[engine\]$/m, [
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    'lock_type = "file"',
    `tmp_dir = ${JSON.stringify(path.join(tmp!, 'libpod'))}`,
  ].join('\n'));
}

function makeImage(): void {
  const rootfs = path.join(tmp!, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'www'));
  fs.copyFileSync(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'sleep', 'ping', 'ip', 'cat', 'httpd', 'true']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  fs.writeFileSync(path.join(rootfs, 'www', 'index.html'), 'hello from cattle-bridge\n');
  const tar = path.join(tmp!, 'busybox.tar');
  const r = spawnSync('tar', ['-C', rootfs, '-cf', tar, '.'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  podman(['import', '--quiet', tar, IMAGE], { timeoutMs: 120_000 });
}

// Registered before the namespaces are made, so that it runs before the
// harness's own cleanup deletes them: podman must tear down in the host netns.
after(() => {
  if (tmp && fs.existsSync(host.path)) {
    for (const line of podman(['ps', '-a', '--no-trunc', '--format', '{{.ID}}'], { allowFail: true }).stdout.split('\n')) {
      if (line.trim() && !containers.has(line.trim())) containers.set(line.trim(), { pids: new Map() });
    }
    podman(['rm', '--all', '--force', '--time', '0'], { allowFail: true });
    podman(['rmi', '--all', '--force'], { allowFail: true });
  }
  for (const [id, c] of containers) {
    // Only a container process or conmon that podman failed to stop, never a later process with its PID.
    for (const [pid, started] of c.pids) {
      if (startTime(pid) !== started) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (c.sandbox && fs.existsSync(c.sandbox)) spawnSync('ip', ['netns', 'del', path.basename(c.sandbox)], { stdio: 'ignore' });
    for (const net of [BRIDGE_NET, PTP_NET]) {
      fs.rmSync(path.join(LIBCNI_CACHE, `${net.name}-${id}-eth0`), { force: true });
      for (const f of attachmentFiles(net, id).all) fs.rmSync(f, { force: true });
    }
  }
  if (tmp) {
    const mounts = spawnSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).stdout.split('\n')
      .filter((m) => m.startsWith(`${tmp}/`)).sort().reverse();
    for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  host.destroy();
  uplink.destroy();
});

const host: TestNetns = makeNetns('cpod-host');
const uplink: TestNetns = makeNetns('cpod-up');

before(() => {
  installDeps();
  const missing = haveDeps();
  if (missing) {
    skipReason = `podman cannot run here: missing ${missing} (apt-get install ${DEPS.join(' ')}; scripts/ensure-deps.sh)`;
    if (IN_CI) throw new Error(`${skipReason}; CI must run the podman test`);
    return;
  }
  for (const name of ['cattle-cni', BRIDGE_NET.plugin, PTP_NET.plugin]) {
    assert.ok(fs.existsSync(path.join(BIN, name)), `${path.join(BIN, name)} missing: build first (CATTLE_CNI_BIN points at the bin dir)`);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cattle-podman-'));
  for (const d of ['net.d', 'logs', 'ipam', 'root', 'runroot', 'libpod', 'tmp']) fs.mkdirSync(path.join(tmp, d));
  fs.writeFileSync(path.join(tmp, 'containers.conf'), testContainersConf());
  fs.writeFileSync(path.join(tmp, 'storage.conf'), [
    '[storage]',
    'driver = "vfs"',
    `graphroot = ${JSON.stringify(path.join(tmp, 'root'))}`,
    `runroot = ${JSON.stringify(path.join(tmp, 'runroot'))}`,
    '',
  ].join('\n'));
  for (const net of [BRIDGE_NET, PTP_NET]) fs.writeFileSync(path.join(tmp, 'net.d', net.file), testConflist(net));
  podmanEnv = {
    ...baseEnv(),
    HOME: tmp,
    TMPDIR: path.join(tmp, 'tmp'),
    CONTAINERS_CONF: path.join(tmp, 'containers.conf'),
    CONTAINERS_STORAGE_CONF: path.join(tmp, 'storage.conf'),
    CONTAINERS_REGISTRIES_CONF: path.join(tmp, 'registries.conf'),
  };
  fs.writeFileSync(podmanEnv.CONTAINERS_REGISTRIES_CONF!, 'unqualified-search-registries = []\n');
  ulimits = ulimitArgs();

  // The "host", with an uplink (a veth to a netns standing for the network) that
  // carries the host's address and default route: proxy ARP (cattle-ptp) answers
  // only for addresses the host routes out of another interface.
  host.exec('ip', ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1', 'netns', uplink.name]);
  host.exec('ip', ['addr', 'add', `${HOST_ADDR}/24`, 'dev', 'up0']);
  host.exec('ip', ['link', 'set', 'up0', 'up']);
  uplink.exec('ip', ['addr', 'add', `${UPLINK_ADDR}/24`, 'dev', 'up1']);
  uplink.exec('ip', ['link', 'set', 'up1', 'up']);
  host.exec('ip', ['route', 'add', 'default', 'via', UPLINK_ADDR, 'dev', 'up0']);

  makeImage();
  // Can podman start a container here at all (no network involved)?
  const probe = podman(['run', '--rm', '--network', 'none', ...ulimits, IMAGE, 'true'], { allowFail: true, timeoutMs: 60_000 });
  if (probe.status !== 0) {
    skipReason = `podman cannot run containers on this machine: ${(probe.stderr || probe.stdout).trim()}`;
    if (IN_CI) throw new Error(`${skipReason}; CI must run the podman test`);
  }
});

interface Ctr {
  id: string;
  name: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  sandbox: string;
}

function inspect(name: string, net: Net): Ctr {
  const out = podman(['container', 'inspect', name]).stdout;
  const [j] = JSON.parse(out) as {
    Id: string;
    State: { Pid: number; ConmonPid: number };
    NetworkSettings: { SandboxKey: string; Networks: Record<string, { IPAddress: string; IPPrefixLen: number; Gateway: string; MacAddress: string }> };
  }[];
  assert.ok(j, `podman inspect ${name}: ${out}`);
  const n = j.NetworkSettings.Networks[net.name];
  assert.ok(n, `${name} is not on ${net.name}: ${JSON.stringify(j.NetworkSettings)}`);
  const c: Tracked = containers.get(j.Id) ?? { pids: new Map() };
  c.sandbox = j.NetworkSettings.SandboxKey;
  for (const pid of [j.State.Pid, j.State.ConmonPid]) {
    const started = pid > 0 ? startTime(pid) : undefined;
    if (started) c.pids.set(pid, started);
  }
  containers.set(j.Id, c);
  return { id: j.Id, name, ip: n.IPAddress, prefixLen: n.IPPrefixLen, gateway: n.Gateway, mac: n.MacAddress, sandbox: j.NetworkSettings.SandboxKey };
}

function run(name: string, net: Net, extra: string[], cmd: string[]): Ctr {
  const r = podman(['run', '--detach', '--name', name, '--network', net.name, ...ulimits, ...extra, IMAGE, ...cmd]);
  const id = r.stdout.trim().split('\n').pop()!;
  containers.set(id, { pids: new Map() });
  const c = inspect(name, net);
  // Where the test looks for leftovers is where the plugins really keep the attachment.
  assert.ok(fs.existsSync(attachmentFiles(net, c.id).record), `${name}: state record ${attachmentFiles(net, c.id).record}`);
  return c;
}

function exec(c: Ctr, cmd: string[], allowFail = false): SpawnSyncReturns<string> {
  return podman(['exec', c.name, ...cmd], { allowFail });
}

function pingOk(from: Ctr, ip: string): boolean {
  return exec(from, ['ping', '-c', '1', '-W', '2', ip], true).status === 0;
}

function hostVeths(): string[] {
  return host.ipJson<{ ifname: string }[]>('link', 'show', 'type', 'veth').map((l) => l.ifname).filter((n) => n !== 'up0').sort();
}

function hostLinks(): { ifname: string; master?: string; address: string }[] {
  return host.ipJson('link', 'show');
}

function natRules(): string {
  return host.exec('iptables', ['-t', 'nat', '-S']).stdout;
}

function leases(): string[] {
  const dirs = fs.readdirSync(path.join(tmp!, 'ipam'));
  return dirs.flatMap((d) => fs.readdirSync(path.join(tmp!, 'ipam', d)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).map((f) => `${d}/${f}`));
}

/** Links in the container's netns: eth0 with its addresses, and its routes. */
function containerNet(c: Ctr): { addrs: string[]; routes: string[] } {
  const [addr, route] = exec(c, ['sh', '-c', 'ip -4 -o addr show dev eth0 && echo --- && ip -4 route show']).stdout.split('---\n') as [string, string];
  const addrs = [...addr.matchAll(/inet (\S+)/g)].map((m) => m[1]!);
  const routes = route.trim().split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter(Boolean);
  return { addrs, routes };
}

/** After `podman rm`: no veth, no lease, no libcni cache entry, no netns, no state, nothing in the root netns. */
function assertNothingLeft(ctrs: Ctr[], net: Net): void {
  assert.deepEqual(hostVeths(), [], 'podman rm leaves no veth behind');
  assert.deepEqual(leases(), [], 'host-local leases released');
  for (const c of ctrs) {
    assert.equal(fs.existsSync(path.join(LIBCNI_CACHE, `${net.name}-${c.id}-eth0`)), false, `libcni cache entry of ${c.name} removed`);
    assert.equal(fs.existsSync(c.sandbox), false, `netns ${c.sandbox} of ${c.name} removed`);
    assert.deepEqual(rootLinkNames().filter((l) => l.includes(c.id.slice(0, 9))), [], 'nothing of ours in the root netns');
  }
  const leftState = ctrs.flatMap((c) => attachmentFiles(net, c.id).all).filter((f) => fs.existsSync(f));
  assert.deepEqual(leftState, [], 'no plugin state left');
}

/** Skips when podman cannot run; otherwise removes the named containers after the test, pass or fail. */
function skipped(t: TestContext, names: string[] = []): boolean {
  if (skipReason) {
    t.skip(skipReason);
    return true;
  }
  if (names.length) t.after(() => { podman(['rm', '--force', '--ignore', '--time', '0', ...names], { allowFail: true }); });
  return false;
}

describe('podman (CNI backend) with cattle-cni plugins', () => {
  it('podman lists the networks of conf-examples/podman', (t) => {
    if (skipped(t)) return;
    const r = podman(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']);
    const nets = r.stdout.trim().split('\n');
    assert.ok(nets.includes('cattle-bridge cattle-bridge'), r.stdout);
    assert.ok(nets.includes('cattle-ptp cattle-ptp'), r.stdout);
  });

  it('cattle-bridge: two containers get addresses and ping each other; -p publishes through portmap; podman rm leaves nothing', (t) => {
    if (skipped(t, ['cpod-br1', 'cpod-br2'])) return;
    const c1 = run('cpod-br1', BRIDGE_NET, ['--publish', `${HOST_PORT}:80`], ['httpd', '-f', '-p', '80', '-h', '/www']);
    const c2 = run('cpod-br2', BRIDGE_NET, [], ['sleep', '600']);
    for (const c of [c1, c2]) {
      assert.match(c.ip, /^10\.87\.0\.\d+$/, `${c.name} got an address of 10.87.0.0/24`);
      assert.equal(c.prefixLen, 24);
      assert.equal(c.gateway, '10.87.0.1');
      assert.deepEqual(containerNet(c), { addrs: [`${c.ip}/24`], routes: ['default via 10.87.0.1 dev eth0', `10.87.0.0/24 dev eth0 scope link src ${c.ip}`] });
    }
    assert.notEqual(c1.ip, c2.ip);

    // Host side, in the host netns only: the bridge with the gateway address and both host veths on it.
    const links = hostLinks();
    const veths = hostVeths();
    assert.equal(veths.length, 2, JSON.stringify(links));
    for (const v of veths) assert.equal(links.find((l) => l.ifname === v)!.master, 'cattle0');
    const brAddrs = host.ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>('-4', 'addr', 'show', 'dev', 'cattle0')[0]!.addr_info;
    assert.deepEqual(brAddrs.map((a) => `${a.local}/${a.prefixlen}`), ['10.87.0.1/24']);
    assert.deepEqual(rootLinkNames().filter((l) => l === 'cattle0' || veths.includes(l)), [], 'nothing in the root netns');

    assert.ok(pingOk(c1, c2.ip), 'container one pings container two');
    assert.ok(pingOk(c2, c1.ip), 'container two pings container one');
    assert.ok(pingOk(c2, '10.87.0.1'), 'and the gateway');

    // ipMasq: one chain per attachment; portmap (chained after cattle-bridge, fed its
    // prevResult by libcni) maps the host port to c1's address.
    const nat = natRules();
    assert.equal([...nat.matchAll(/^-A POSTROUTING -s (10\.87\.0\.\d+)\/32 .*-j CCNI-/gm)].length, 2, nat);
    assert.match(nat, new RegExp(`--dport ${HOST_PORT} -j DNAT --to-destination ${c1.ip.replace(/\./g, '\\.')}:80`));
    // (No `-T`: Debian's static busybox 1.35 wget crashes with it; sh() has its own timeout.)
    const page = host.exec('busybox', ['wget', '-q', '-O', '-', `http://${HOST_ADDR}:${HOST_PORT}/`], { allowFail: true });
    assert.equal(page.stdout, 'hello from cattle-bridge\n', `published port answers: ${page.stderr}`);

    // A restart is a DEL (with the cached result) and a new ADD.
    podman(['restart', '--time', '0', c2.name]);
    const c2b = inspect(c2.name, BRIDGE_NET);
    assert.equal(hostVeths().length, 2);
    assert.ok(pingOk(c1, c2b.ip), 'container one pings container two after its restart');

    podman(['rm', '--force', '--time', '0', c1.name, c2.name]);
    assertNothingLeft([c1, c2b], BRIDGE_NET);
    assert.doesNotMatch(natRules(), /CCNI-|10\.87\.0\./, 'masquerade and port mapping rules removed');
    const log = fs.readFileSync(path.join(tmp!, 'logs', 'cattle-bridge.log'), 'utf8');
    for (const c of [c1, c2]) {
      assert.match(log, new RegExp(`"command":"ADD","containerId":"${c.id}".*"step":"done","outcome":"ok"`));
      assert.match(log, new RegExp(`"command":"DEL","containerId":"${c.id}".*"step":"done","outcome":"ok"`));
    }
  });

  it('cattle-ptp: two containers get /32 addresses and ping each other through the host; podman rm leaves nothing', (t) => {
    if (skipped(t, ['cpod-ptp1', 'cpod-ptp2'])) return;
    const c1 = run('cpod-ptp1', PTP_NET, [], ['sleep', '600']);
    const c2 = run('cpod-ptp2', PTP_NET, [], ['sleep', '600']);
    for (const c of [c1, c2]) {
      assert.match(c.ip, /^10\.86\.0\.\d+$/, `${c.name} got an address of 10.86.0.0/24`);
      assert.equal(c.prefixLen, 32);
      assert.deepEqual(containerNet(c), { addrs: [`${c.ip}/32`], routes: ['default via 169.254.1.1 dev eth0', '169.254.1.1 dev eth0 scope link'] });
    }
    const veths = hostVeths();
    assert.equal(veths.length, 2);
    const links = hostLinks();
    for (const v of veths) {
      assert.match(v, /^cptp/);
      assert.equal(links.find((l) => l.ifname === v)!.address, 'ee:ee:ee:ee:ee:ee');
    }
    const routes = host.exec('ip', ['-4', 'route', 'show']).stdout;
    for (const c of [c1, c2]) assert.match(routes, new RegExp(`^${c.ip.replace(/\./g, '\\.')} dev cptp\\w+ scope link`, 'm'));

    assert.ok(pingOk(c1, c2.ip), 'container one pings container two');
    assert.ok(pingOk(c2, c1.ip), 'container two pings container one');
    assert.ok(pingOk(c1, HOST_ADDR), 'and the host');

    podman(['rm', '--force', '--time', '0', c1.name, c2.name]);
    assertNothingLeft([c1, c2], PTP_NET);
    assert.doesNotMatch(host.exec('ip', ['-4', 'route', 'show']).stdout, /10\.86\.0\./, 'host routes removed');
  });
});
