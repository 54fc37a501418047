// The operator's first steps, as a first-time user takes them:
// scripts/ensure-deps.sh (only what a command needs), scripts/install.sh into
// a temporary directory (atomic, a link per name, optional config, every
// argument checked before anything is written), `npm run demo` end to end, its
// --keep / --clean, the cattle-cni command's exit codes and messages, and
// CNI_DEBUG_STACK stacks that name the TypeScript sources.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { baseEnv, BIN, makeNetns, netnsNames, ROOT, rootLinkNames, runExe } from '../helpers/harness.ts';

const INSTALL = path.join(ROOT, 'scripts', 'install.sh');

function install(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync('bash', [INSTALL, ...args], { cwd: ROOT, env: { ...baseEnv(), CATTLE_CNI_BIN: BIN, ...env }, encoding: 'utf8' });
}

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

test('install.sh copies the executable and links every plugin name, replacing an older install', () => {
  const dir = tempDir('ccni-install-');
  try {
    const bin = path.join(dir, 'bin');
    const conf = path.join(dir, 'net.d');
    // An older install: a plain file where a link goes, and a stale executable.
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'cattle-bridge'), 'old');
    fs.writeFileSync(path.join(bin, 'cattle-cni'), 'old');
    const r = install(['--bin-dir', bin, '--conf', '10-cattle-bridge.conflist', '--conf', 'podman/87-cattle-bridge.conflist', '--conf-dir', conf]);
    assert.equal(r.status, 0, r.stderr);
    const names = spawnSync(path.join(BIN, 'cattle-cni'), ['names'], { encoding: 'utf8' }).stdout.trim().split('\n');
    for (const name of names) {
      const p = path.join(bin, name);
      if (name !== 'cattle-cni') assert.equal(fs.readlinkSync(p), 'cattle-cni', name);
      const v = spawnSync(p, [], { env: { ...baseEnv(), CNI_COMMAND: 'VERSION' }, encoding: 'utf8' });
      if (name !== 'cattle-cni' && name !== 'cattle-metadata' && name !== 'cniglue' && name !== 'cattle-net') assert.match(v.stdout, /"supportedVersions"/, name);
    }
    assert.equal(fs.statSync(path.join(bin, 'cattle-cni')).size, fs.statSync(path.join(BIN, 'cattle-cni')).size);
    assert.deepEqual(fs.readdirSync(bin).filter((f) => f.startsWith('.')), [], 'no temporary files left');
    assert.deepEqual(fs.readdirSync(conf).sort(), ['10-cattle-bridge.conflist', '87-cattle-bridge.conflist']);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(conf, '10-cattle-bridge.conflist'), 'utf8')).name, 'cattle-bridge');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('install.sh --help is a usage text; bad arguments are clear errors and install nothing', () => {
  const dir = tempDir('ccni-install-args-');
  try {
    const help = install(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^usage: scripts\/install\.sh \[--bin-dir DIR\] \[--conf FILE\]\.\.\. \[--conf-dir DIR\]/);
    assert.match(help.stdout, /--conf-dir DIR +where --conf files go \(default \/etc\/cni\/net\.d\)/);
    assert.doesNotMatch(help.stdout, /set -euo|^#/m);

    const bin = path.join(dir, 'bin');
    const confDir = path.join(dir, 'net.d');
    const badJson = path.join(dir, 'bad.conflist');
    fs.writeFileSync(badJson, '{"name": ');
    const noName = path.join(dir, 'noname.conflist');
    fs.writeFileSync(noName, '{"cniVersion": "1.0.0", "plugins": []}');
    const notADir = path.join(dir, 'file');
    fs.writeFileSync(notADir, '');
    const cases: [string[], number, RegExp][] = [
      [['--bin-dir'], 2, /^install\.sh: --bin-dir needs a directory, e.g\. --bin-dir \/opt\/cni\/bin$/m],
      [['--bin-dir', '--conf', 'x'], 2, /--bin-dir needs a directory/],
      [['--conf'], 2, /--conf needs a file, e\.g\. --conf 10-cattle-bridge\.conflist/],
      [['--bin-dir', bin, '--conf-dir'], 2, /--conf-dir needs a directory/],
      [['--bogus'], 2, /unknown argument "--bogus"/],
      [['--bin-dir', bin, '--conf-dir', confDir], 2, /--conf-dir without --conf/],
      [['--bin-dir', bin, '--conf', 'nope.conflist'], 1, /no such configuration "nope\.conflist" \(tried nope\.conflist and conf-examples\/nope\.conflist\); the examples in conf-examples\/: .*podman\/87-cattle-bridge\.conflist/],
      [['--bin-dir', bin, '--conf', badJson, '--conf-dir', confDir], 1, /bad\.conflist is not a network configuration: not JSON/],
      [['--bin-dir', bin, '--conf', noName, '--conf-dir', confDir], 1, /noname\.conflist is not a network configuration: no network "name"/],
      [['--bin-dir', bin, '--conf', '10-cattle-bridge.conflist', '--conf', path.join(ROOT, 'conf-examples', '10-cattle-bridge.conflist')], 2, /would both install 10-cattle-bridge\.conflist/],
      [['--bin-dir', notADir], 1, /--bin-dir .*file is not a directory/],
      [['--bin-dir', path.join(notADir, 'sub')], 1, /is not a directory/],
    ];
    for (const [args, status, message] of cases) {
      const r = install(args);
      const what = `install.sh ${args.join(' ')}: exit ${r.status}\n${r.stderr}`;
      assert.equal(r.status, status, what);
      assert.match(r.stderr, message, what);
      assert.doesNotMatch(r.stderr, /unbound variable|line \d+:/, what);
      assert.equal(r.stdout, '', what);
      assert.equal(fs.existsSync(bin), false, `${what}\n: nothing may be installed`);
      assert.equal(fs.existsSync(confDir), false, what);
    }
    // Missing build: said before anything is written.
    const noBuild = install(['--bin-dir', bin], { CATTLE_CNI_BIN: path.join(dir, 'nothing') });
    assert.equal(noBuild.status, 1);
    assert.match(noBuild.stderr, /nothing\/cattle-cni missing: run npm run build first/);
    assert.equal(fs.existsSync(bin), false);
    // --opt=value works like --opt value.
    const eq = install([`--bin-dir=${bin}`, '--conf=podman/87-cattle-bridge.conflist', `--conf-dir=${confDir}`]);
    assert.equal(eq.status, 0, eq.stderr);
    assert.deepEqual(fs.readdirSync(confDir), ['87-cattle-bridge.conflist']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * ensure-deps.sh with a PATH that has none of the tools, a fake apt-get and a fake node: which
 * packages each profile asks for, with which options, and the progress lines. Nothing is installed.
 */
function ensureDeps(profile: string[]): { status: number | null; stdout: string; stderr: string; apt: string[]; node: string[] } {
  const dir = tempDir('ccni-deps-');
  try {
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    for (const tool of ['dirname', 'mktemp', 'rm', 'tail', 'find', 'sed', 'cat']) {
      const real = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      fs.symlinkSync(real, path.join(bin, tool));
    }
    const log = (name: string) => `#!/bin/sh\necho "$*" >> ${path.join(dir, `${name}.log`)}\n`;
    fs.writeFileSync(path.join(bin, 'apt-get'), log('apt'), { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'node'), log('node'), { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'dpkg'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const r = spawnSync('/bin/bash', [path.join(ROOT, 'scripts', 'ensure-deps.sh'), ...profile], {
      cwd: ROOT, encoding: 'utf8', env: { PATH: bin },
    });
    const read = (name: string) => (fs.existsSync(path.join(dir, `${name}.log`)) ? fs.readFileSync(path.join(dir, `${name}.log`), 'utf8').trim().split('\n') : []);
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, apt: read('apt'), node: read('node') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('ensure-deps.sh: the demo profile installs only what the demo needs (no podman: nothing under /etc/cni), one line per step', () => {
  const demo = ensureDeps(['demo']);
  assert.equal(demo.status, 0, demo.stderr);
  assert.equal(demo.apt.length, 2, demo.apt.join('\n'));
  assert.match(demo.apt[0]!, /^-o DPkg::Lock::Timeout=120 -q update$/);
  assert.match(demo.apt[1]!, /^-o DPkg::Lock::Timeout=120 -q install -y --no-install-recommends iproute2 make gcc python3 binutils iputils-ping$/);
  const lines = demo.stdout.trim().split('\n');
  assert.ok(lines.every((l) => l.startsWith('ensure-deps (demo): ')), demo.stdout);
  assert.equal(lines.length, 4, demo.stdout);
  assert.equal(lines[0], 'ensure-deps (demo): node modules: present');
  assert.equal(lines[1], 'ensure-deps (demo): apt-get update (waits up to 120 s for the dpkg lock)');
  assert.equal(lines[2], 'ensure-deps (demo): apt-get install iproute2 make gcc python3 binutils iputils-ping');
  // The build check is the one rule shared with bench.sh: here it either rebuilt (fake node) or found dist current.
  assert.match(lines[3]!, /build: (dist\/bin\/cattle-cni is up to date|.* node scripts\/build\.mjs)$/);
  assert.equal(demo.node.length, lines[3]!.endsWith('build.mjs') ? 1 : 0);

  const bench = ensureDeps(['bench']);
  assert.equal(bench.status, 0, bench.stderr);
  const benchPkgs = bench.apt[1]!.split(' ').slice(6);
  assert.ok(benchPkgs.includes('make') && !benchPkgs.includes('podman') && !benchPkgs.includes('iputils-ping'), bench.apt[1]);

  // The test profile (also the default, as scripts/test.sh calls it) keeps everything the tests use, and never builds.
  for (const args of [['test'], []]) {
    const t = ensureDeps(args);
    assert.equal(t.status, 0, t.stderr);
    const pkgs = t.apt[1]!.split(' ').slice(6);
    for (const p of ['iproute2', 'python3', 'util-linux', 'iptables', 'nftables', 'strace', 'podman', 'runc', 'docker.io', 'busybox-static']) {
      assert.ok(pkgs.includes(p), `${p} in ${t.apt[1]}`);
    }
    assert.doesNotMatch(t.stdout, /build:/);
    assert.deepEqual(t.node, []);
  }
});

function demo(args: string[], demoDir: string): SpawnSyncReturns<string> {
  return spawnSync('node_modules/.bin/node', ['scripts/demo.ts', ...args], {
    cwd: ROOT, encoding: 'utf8', timeout: 180_000, env: { ...baseEnv(), CATTLE_CNI_BIN: BIN, CATTLE_CNI_DEMO_DIR: demoDir },
  });
}

function demoNetns(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith('ccni-demo-'));
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

test('npm run demo: all pods reach each other, the gateway and the metadata service; nothing left behind', () => {
  const demoDir = path.join(tempDir('ccni-demo-test-'), 'demos');
  try {
    const linksBefore = rootLinkNames();
    const netnsBefore = demoNetns();
    const r = demo([], demoDir);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\[1\/9\]/);
    assert.match(r.stdout, /reachability: all ok/);
    assert.match(r.stdout, /plugin state files left: 0/);
    assert.match(r.stdout, /leftovers: none/);
    assert.match(r.stdout, /demo: ok/);
    // Every cell of the reachability table is ok (or the diagonal).
    const lines = r.stdout.split('\n');
    const header = lines.findIndex((l) => l.includes('from \\ to'));
    const table = lines.slice(header + 1, header + 5);
    assert.equal(table.length, 4, r.stdout);
    for (const row of table) assert.deepEqual(row.trim().split(/\s+/).slice(1).filter((c) => c !== 'ok' && c !== '-'), [], row);
    assert.deepEqual(rootLinkNames(), linksBefore);
    assert.deepEqual(demoNetns(), netnsBefore);
    assert.deepEqual(netnsNames(), []);
    assert.equal(fs.existsSync(demoDir), false, 'the demo directory is gone');
  } finally {
    fs.rmSync(path.dirname(demoDir), { recursive: true, force: true });
  }
});

test('npm run demo -- --keep returns at once and leaves the demo running; --clean removes all of it', () => {
  const demoDir = path.join(tempDir('ccni-demo-keep-'), 'demos');
  let state: { tag: string; host: string; world: string; metadataPid: number; pods: { netns: string; ip: string }[]; dir: string } | undefined;
  const linksBefore = rootLinkNames();
  const netnsBefore = demoNetns();
  try {
    const t0 = performance.now();
    const kept = demo(['--keep'], demoDir);
    assert.equal(kept.status, 0, kept.stdout + kept.stderr);
    assert.ok(performance.now() - t0 < 90_000, 'returned');
    assert.match(kept.stdout, /\[7\/7\] kept running \(--keep\)/);
    assert.match(kept.stdout, /clean up: npm run demo -- --clean/);
    assert.match(kept.stdout, /demo: ok\n$/);

    // Running: recorded state, the detached server, namespaces, pods that reach each other and the metadata service.
    const dirs = fs.readdirSync(demoDir);
    assert.equal(dirs.length, 1, dirs.join(' '));
    state = JSON.parse(fs.readFileSync(path.join(demoDir, dirs[0]!, 'state.json'), 'utf8'));
    const st = state!;
    assert.ok(alive(st.metadataPid), 'cattle-metadata runs');
    assert.match(fs.readFileSync(`/proc/${st.metadataPid}/cmdline`, 'utf8'), /cattle-metadata\0serve\0/);
    assert.ok(fs.readFileSync(path.join(st.dir, 'metadata.out'), 'utf8').includes('"listening":"169.254.169.250:80"'));
    for (const ns of [st.host, st.world, ...st.pods.map((p) => p.netns)]) assert.ok(demoNetns().includes(ns), ns);
    const ping = spawnSync('ip', ['netns', 'exec', st.pods[0]!.netns, 'ping', '-c1', '-W2', st.pods[2]!.ip], { encoding: 'utf8' });
    assert.equal(ping.status, 0, ping.stdout + ping.stderr);
    const http = spawnSync('ip', ['netns', 'exec', st.pods[3]!.netns, process.execPath, '-e',
      "require('http').get('http://169.254.169.250/2015-12-19/containers',{timeout:3000},(r)=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]);
    assert.equal(http.status, 0, 'a pod asks the metadata service');
    const stateFiles = fs.readdirSync(path.join(st.dir, 'state'), { recursive: true }).filter((f) => String(f).endsWith('.json'));
    assert.equal(stateFiles.length, 4, 'one plugin state file per pod, in the demo directory');

    const cleaned = demo(['--clean'], demoDir);
    assert.equal(cleaned.status, 0, cleaned.stdout + cleaned.stderr);
    assert.match(cleaned.stdout, new RegExp(`demo --clean: ${st.tag} \\(kept\\)`));
    for (const pod of ['web-1', 'web-2', 'db-1', 'db-2']) assert.match(cleaned.stdout, new RegExp(`DEL ${pod}: ok`));
    assert.match(cleaned.stdout, new RegExp(`cattle-metadata \\(pid ${st.metadataPid}\\) stopped`));
    assert.match(cleaned.stdout, /left: nothing/);

    // Nothing left: no server, no namespaces, no files; and a second --clean finds nothing.
    assert.equal(alive(st.metadataPid), false);
    assert.deepEqual(demoNetns(), netnsBefore);
    assert.equal(fs.existsSync(demoDir), false);
    assert.deepEqual(rootLinkNames(), linksBefore);
    const again = demo(['--clean'], demoDir);
    assert.equal(again.status, 0);
    assert.match(again.stdout, /no kept demo to remove/);
  } finally {
    // On failure: what the demo recorded, removed by its PID and names.
    if (fs.existsSync(demoDir)) demo(['--clean'], demoDir);
    if (state) {
      if (alive(state.metadataPid) && fs.readFileSync(`/proc/${state.metadataPid}/cmdline`, 'utf8').includes(state.dir)) process.kill(state.metadataPid, 'SIGKILL');
      for (const ns of [state.host, state.world, ...state.pods.map((p) => p.netns)]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    }
    fs.rmSync(path.dirname(demoDir), { recursive: true, force: true });
  }
});

test('npm run demo: unknown arguments are usage errors', () => {
  const r = demo(['--kep'], '/nonexistent-demo-dir');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /demo: unknown argument "--kep"\nusage: npm run demo \[-- --keep \| --clean\]/);
  const both = demo(['--keep', '--clean'], '/nonexistent-demo-dir');
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--keep and --clean exclude each other/);
});

test('cattle-cni: usage errors exit 2, failures 1, and the messages say what to do', () => {
  const usage: [string[], RegExp][] = [
    [[], /^Usage: cattle-cni <command> \[args\]/],
    [['frob'], /^cattle-cni: unknown command "frob"\nRun "cattle-cni help" for the commands and their arguments\.\n$/],
    [['version', 'extra'], /^cattle-cni: "version" takes no arguments, got "extra"\n/],
    [['names', 'x'], /"names" takes no arguments/],
    [['add'], /^cattle-cni add: needs a network name and a netns path, got 0 arguments\nusage: cattle-cni add\|check\|del\|gc\|status <net> <netns-path>\n/],
    [['check', 'net'], /^cattle-cni check: needs a network name and a netns path, got 1 argument\n/],
    [['del', 'net', '/x', 'extra'], /^cattle-cni del: needs a network name and a netns path, got 3 arguments\n/],
    [['add', 'net', ''], /got an empty argument/],
    [['netlink-selftest'], /^usage: cattle-cni netlink-selftest <netns-path>\ne\.g\.: ip netns add selftest/],
  ];
  for (const [args, message] of usage) {
    const r = runExe('cattle-cni', { args });
    assert.equal(r.code, 2, `cattle-cni ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    assert.match(r.stderr, message, args.join(' '));
  }
  for (const args of [['help'], ['--help'], ['version'], ['names']]) assert.equal(runExe('cattle-cni', { args }).code, 0, args.join(' '));
  assert.match(runExe('cattle-cni', { args: ['help'] }).stdout, /Exit status: 0 done, 1 the command failed \(the reason on stderr\), 2 usage error\./);

  const dir = tempDir('ccni-cli-');
  try {
    fs.writeFileSync(path.join(dir, '10-net.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'net', plugins: [{ type: 'nosuch-plugin' }] }));
    const env = { NETCONFPATH: dir, CNI_PATH: path.join(dir, 'plugins'), CNI_CACHE_DIR: path.join(dir, 'cache') };
    // A missing netns: said once, with what to do (DEL does not need it).
    const missing = runExe('cattle-cni', { args: ['add', 'net', '/var/run/netns/ccni-no-such-ns'], env });
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'cattle-cni add: network namespace /var/run/netns/ccni-no-such-ns does not exist: create it first '
      + '(ip netns add ccni-no-such-ns), or give the path of an existing one (e.g. /proc/<pid>/ns/net)\n');
    assert.equal(missing.stderr.split('/var/run/netns/ccni-no-such-ns').length, 2, 'the path appears once');
    const plugin = runExe('cattle-cni', { args: ['add', 'net', '/proc/self/ns/net'], env });
    assert.equal(plugin.code, 1);
    assert.match(plugin.stderr, /failed to find plugin "nosuch-plugin" in path \[.*\] \(CNI_PATH is .*plugins; set it to the plugin directories, e\.g\. CNI_PATH=\/opt\/cni\/bin:\/usr\/lib\/cni\)\n$/);
    const noConf = runExe('cattle-cni', { args: ['add', 'other', '/proc/self/ns/net'], env });
    assert.equal(noConf.code, 1);
    assert.match(noConf.stderr, /no net configuration with name "other"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cattle-cni check after del says nothing was added (not "CHECK needs prevResult")', () => {
  const machine = makeNetns('ccni-cli-host');
  const pod = makeNetns('ccni-cli-pod');
  const dir = tempDir('ccni-cli-check-');
  try {
    fs.writeFileSync(path.join(dir, '10-clinet.conflist'), JSON.stringify({
      cniVersion: '1.0.0', name: 'clinet',
      plugins: [{ type: 'cattle-bridge', bridge: 'ccli0', isGateway: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: '198.18.90.0/24' }]], dataDir: path.join(dir, 'leases') } }],
    }));
    const env = {
      NETCONFPATH: dir, CNI_PATH: `${BIN}:/usr/lib/cni`, CNI_CACHE_DIR: path.join(dir, 'cache'),
      CATTLE_CNI_STATE_DIR: path.join(dir, 'state'), CATTLE_CNI_LOCK_DIR: path.join(dir, 'lock'),
    };
    const run = (cmd: string) => runExe('cattle-cni', { args: [cmd, 'clinet', pod.path], env, netns: machine });
    const never = run('check');
    assert.equal(never.code, 1);
    assert.match(never.stderr, /^cattle-cni check: nothing was added for this container on network "clinet" \(no cached result .*cache\/results\/clinet-cnitool-[0-9a-f]{20}-eth0\): run "cattle-cni add clinet \/var\/run\/netns\/ccni-cli-pod-\d+-\d+" first\n$/);
    for (const cmd of ['add', 'check', 'del']) {
      const r = run(cmd);
      assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
    }
    const after = run('check');
    assert.equal(after.code, 1);
    assert.match(after.stderr, /nothing was added for this container on network "clinet"/);
    assert.doesNotMatch(after.stderr, /prevResult/);
  } finally {
    pod.destroy();
    machine.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('CNI_DEBUG_STACK=1: a failing plugin prints a stack that names the TypeScript files; without it no stack', () => {
  const conf = { cniVersion: '1.0.0', name: 'dbg', type: 'cattle-bridge', ipam: { type: 'cattle-ipam' } };
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'dbg', CNI_NETNS: '/var/run/netns/ccni-no-such-ns', CNI_IFNAME: 'eth0', CNI_PATH: BIN };
  const plain = runExe('cattle-bridge', { env, stdin: conf });
  assert.equal(plain.code, 1);
  assert.equal(plain.stderr, '');
  const debug = runExe('cattle-bridge', { env: { ...env, CNI_DEBUG_STACK: '1' }, stdin: conf });
  assert.equal(debug.code, 1);
  assert.equal(debug.stdout, plain.stdout, 'the error on stdout is the same');
  const frames = debug.stderr.split('\n').filter((l) => l.startsWith('    at '));
  assert.match(debug.stderr, /^CniError: invalid CNI_NETNS/);
  assert.ok(frames.length >= 3, debug.stderr);
  assert.match(frames[0]!, /^ {4}at \S+ \(\/.*\/plugins\/common\.ts:\d+:\d+\)$/, debug.stderr);
  assert.ok(frames.filter((f) => /\.ts:\d+:\d+\)?$/.test(f)).length >= 3, debug.stderr);
  assert.doesNotMatch(debug.stderr, /main\.cjs:/);
});
