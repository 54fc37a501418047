// Defects that once wedged a pod or leaked host state (issue: crash-safe ADD),
// each shown fixed through the built executables in fresh namespaces.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { assertCniError, assertOk, type Attach, cni, links, markOf, ping, tempDir, vethNames } from '../helpers/cni.ts';
import { makeNetns, type TestNetns } from '../helpers/harness.ts';

const dirs = tempDir('ccni-crash-');
after(() => fs.rmSync(dirs, { recursive: true, force: true }));
const stateDir = path.join(dirs, 'state');
const lockDir = path.join(dirs, 'locks');
const env = { CATTLE_CNI_STATE_DIR: stateDir, CATTLE_CNI_LOCK_DIR: lockDir };

const PLUGINS = ['cattle-bridge', 'cattle-ptp'] as const;
type Plugin = (typeof PLUGINS)[number];

function conf(plugin: Plugin, over: Record<string, unknown> = {}): Record<string, unknown> {
  const base = plugin === 'cattle-bridge' ? { bridge: 'cbr0', isGateway: true } : {};
  return { cniVersion: '1.0.0', name: 'crashnet', type: plugin, ...base, ipam: { type: 'cattle-ipam' }, ...over };
}

function attach(plugin: Plugin, host: TestNetns, pod: TestNetns | undefined, c: object, id: string, ip = '10.79.0.5/24'): Attach {
  return { plugin, host, conf: c, containerId: id, netns: pod?.path, args: `IgnoreUnknown=1;IPAddress=${ip}`, extraEnv: env };
}

const ok = assertOk;
const cniError = assertCniError;
const veths = (ns: TestNetns) => vethNames(ns);

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

for (const plugin of PLUGINS) {
  test(`${plugin}: container ids of any length (240 and 5000 characters) ADD, DEL and re-ADD`, () => {
    const host = makeNetns('ccr-host');
    const pod = makeNetns('ccr-pod');
    for (const len of [240, 5000]) {
      const id = 'a'.repeat(len);
      const a = attach(plugin, host, pod, conf(plugin), id);
      ok(cni('ADD', a));
      const hv = links(host).find((l) => l.linkinfo?.info_kind === 'veth')!;
      assert.equal(hv.ifalias, markOf(plugin, id, 'crashnet'));
      assert.ok(Buffer.byteLength(hv.ifalias!) <= 255);
      ok(cni('DEL', a));
      assert.deepEqual(veths(host), []);
      assert.deepEqual(veths(pod), []);
      ok(cni('ADD', a));
      ok(cni('DEL', a));
    }
    assert.deepEqual(filesUnder(path.join(stateDir, plugin)), []);
    host.destroy();
    pod.destroy();
  });

  test(`${plugin}: our main plugins as IPAM, or delegation too deep, fail at once with code 7`, () => {
    const host = makeNetns('ccr-host');
    const pod = makeNetns('ccr-pod');
    for (const type of ['cattle-bridge', 'rancher-bridge', 'cattle-ptp', 'cattle-metadata', 'cniglue', 'cattle-cni']) {
      const r = cni('ADD', attach(plugin, host, pod, conf(plugin, { ipam: { type } }), 'loop'));
      cniError(r, 7, /ipam\.type/);
    }
    const deep = { ...attach(plugin, host, pod, conf(plugin, { ipam: { type: 'host-local', subnet: '10.79.1.0/24' } }), 'deep') };
    deep.extraEnv = { ...env, CATTLE_CNI_DELEGATION_DEPTH: '3' };
    cniError(cni('ADD', deep), 7, /ipam\.type.*delegate number 4/);
    assert.deepEqual(veths(host), []);
    assert.deepEqual(veths(pod), []);
    host.destroy();
    pod.destroy();
  });

  test(`${plugin}: logToFile must be an absolute path; the log never follows a symlink`, () => {
    const host = makeNetns('ccr-host');
    const pod = makeNetns('ccr-pod');
    for (const logToFile of ['relative.log', 7, './x']) {
      cniError(cni('ADD', attach(plugin, host, pod, conf(plugin, { logToFile }), 'log')), 7, /logToFile/);
    }
    const target = path.join(dirs, `elsewhere-${plugin}`);
    fs.writeFileSync(target, '');
    const link = path.join(dirs, `log-${plugin}`);
    fs.symlinkSync(target, link);
    const a = attach(plugin, host, pod, conf(plugin, { logToFile: link, isDebugLevel: true }), 'log');
    ok(cni('ADD', a));
    ok(cni('DEL', a));
    assert.equal(fs.readFileSync(target, 'utf8'), '', 'nothing written through the symlink');
    const real = path.join(dirs, `real-${plugin}.log`);
    const b = attach(plugin, host, pod, conf(plugin, { logToFile: real, isDebugLevel: true }), 'log');
    ok(cni('ADD', b));
    ok(cni('DEL', b));
    const lines = fs.readFileSync(real, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: string });
    assert.ok(lines.some((l) => l.step === 'record the attachment'));
    host.destroy();
    pod.destroy();
  });

  test(`${plugin}: CHECK fails when the pod's routes are flushed`, () => {
    const host = makeNetns('ccr-host');
    const pod = makeNetns('ccr-pod');
    const c = conf(plugin);
    const a = attach(plugin, host, pod, c, 'check');
    const r = cni('ADD', a);
    ok(r);
    ok(cni('CHECK', { ...a, conf: { ...c, prevResult: r.json } }));
    pod.exec('ip', ['route', 'flush', 'dev', 'eth0']);
    pod.exec('ip', ['-6', 'route', 'flush', 'dev', 'eth0'], { allowFail: true });
    const failed = cni('CHECK', { ...a, conf: { ...c, prevResult: r.json } });
    cniError(failed, 999, /route .* missing in the container/);
    ok(cni('DEL', a));
    host.destroy();
    pod.destroy();
  });

  test(`${plugin}: GC collects what outlived its netns (veth, state, masquerade), keeps the valid, reports errors at the end`, () => {
    const host = makeNetns('ccr-host');
    const [keep, gone] = [makeNetns('ccr-pod'), makeNetns('ccr-pod')];
    // ptp has no ipMasq yet: its extras are host routes, gone with the veth.
    const masq = plugin === 'cattle-bridge';
    const c = conf(plugin, { cniVersion: '1.1.0', ...(masq ? { ipMasq: true } : {}) });
    ok(cni('ADD', attach(plugin, host, keep, c, 'keep', '10.79.2.5/24')));
    ok(cni('ADD', attach(plugin, host, gone, c, 'gone', '10.79.2.6/24')));
    // The pod's netns dies without DEL: its veth goes with it, the rest stays.
    gone.destroy();
    const nat = () => host.exec('iptables-save', ['-t', 'nat']).stdout;
    const records = () => filesUnder(path.join(stateDir, plugin)).filter((f) => f.endsWith('.json'));
    assert.equal(records().length, 2);
    const gcConf = { ...c, 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] };
    ok(cni('GC', attach(plugin, host, undefined, gcConf, 'gc')));
    assert.equal(records().length, 1);
    assert.equal(veths(host).length, 1);
    assert.ok(!nat().includes('id: \\"gone\\"'), nat());
    if (masq) assert.ok(nat().includes('id: \\"keep\\"'), 'the valid attachment keeps its masquerade');
    if (masq) assert.ok(ping(keep, '10.79.2.1'), 'the valid pod still reaches its gateway');
    // GC with nothing valid removes the rest and leaves no files.
    ok(cni('GC', attach(plugin, host, undefined, { ...c, 'cni.dev/valid-attachments': [] }, 'gc')));
    assert.deepEqual(veths(host), []);
    assert.deepEqual(filesUnder(path.join(stateDir, plugin)), []);
    assert.ok(!nat().includes('cattle-cni name: \\"crashnet\\"'), nat());
    host.destroy();
    keep.destroy();
  });
}

test('cattle-bridge: GC touches only veths of its own network, and removes lock files of bridges that are gone', () => {
  const host = makeNetns('ccr-host');
  const [p1, p2] = [makeNetns('ccr-pod'), makeNetns('ccr-pod')];
  const mine = conf('cattle-bridge', { cniVersion: '1.1.0' });
  const theirs = { ...mine, name: 'othernet' };
  ok(cni('ADD', attach('cattle-bridge', host, p1, mine, 'one', '10.79.3.5/24')));
  ok(cni('ADD', attach('cattle-bridge', host, p2, theirs, 'two', '10.79.3.6/24')));
  fs.mkdirSync(lockDir, { recursive: true });
  fs.writeFileSync(path.join(lockDir, 'bridge-vanished0'), '');
  ok(cni('GC', attach('cattle-bridge', host, undefined, { ...mine, 'cni.dev/valid-attachments': [] }, 'gc')));
  assert.deepEqual(links(host).filter((l) => l.ifalias?.startsWith('cattle-cni')).map((l) => l.ifalias), [markOf('cattle-bridge', 'two', 'othernet')]);
  assert.ok(!fs.existsSync(path.join(lockDir, 'bridge-vanished0')));
  ok(cni('DEL', attach('cattle-bridge', host, p2, theirs, 'two', '10.79.3.6/24')));
  for (const ns of [host, p1, p2]) ns.destroy();
});

test('cattle-bridge: the bridge MAC never moves while 100 pods come and go; a long-lived pod loses no ping', async () => {
  const host = makeNetns('ccr-host');
  const steady = makeNetns('ccr-pod');
  const c = conf('cattle-bridge', { bridge: 'cbrmac' });
  ok(cni('ADD', attach('cattle-bridge', host, steady, c, 'steady', '10.79.4.2/24')));
  const bridgeMac = () => links(host).find((l) => l.ifname === 'cbrmac')!.address;
  const mac = bridgeMac();
  assert.equal(host.exec('cat', ['/sys/class/net/cbrmac/addr_assign_type']).stdout.trim(), '3', 'MAC set explicitly');
  assert.equal(parseInt(mac.slice(0, 2), 16) & 0x03, 0x02, 'locally administered unicast');
  // The steady pod pings the gateway throughout; its ARP entry must stay right.
  const { spawn } = await import('node:child_process');
  const pinger = spawn('ip', ['netns', 'exec', steady.name, 'ping', '-i', '0.05', '-W', '1', '10.79.4.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  pinger.stdout.on('data', (d) => { out += d; });
  try {
    const pod = makeNetns('ccr-pod');
    for (let i = 0; i < 100; i++) {
      const a = attach('cattle-bridge', host, pod, c, `churn-${i}`, `10.79.4.${10 + (i % 200)}/24`);
      ok(cni('ADD', a));
      ok(cni('DEL', a));
      assert.equal(bridgeMac(), mac, `bridge MAC after pod ${i}`);
    }
    pod.destroy();
  } finally {
    pinger.kill('SIGINT');
    await new Promise((r) => pinger.on('close', r));
  }
  const stats = /(\d+) packets transmitted, (\d+) received/.exec(out);
  assert.ok(stats, out);
  assert.ok(Number(stats[1]) > 0);
  assert.equal(stats[1], stats[2], `lost pings: ${out.split('\n').slice(-3).join(' ')}`);
  ok(cni('DEL', attach('cattle-bridge', host, steady, c, 'steady', '10.79.4.2/24')));
  host.destroy();
  steady.destroy();
});

test('cattle-bridge: an existing bridge whose MAC the kernel chose gets it pinned (unchanged)', () => {
  const host = makeNetns('ccr-host');
  const pod = makeNetns('ccr-pod');
  host.exec('ip', ['link', 'add', 'cbrold', 'type', 'bridge']);
  host.exec('ip', ['link', 'set', 'cbrold', 'up']);
  assert.notEqual(host.exec('cat', ['/sys/class/net/cbrold/addr_assign_type']).stdout.trim(), '3');
  const before = links(host).find((l) => l.ifname === 'cbrold')!.address;
  const c = conf('cattle-bridge', { bridge: 'cbrold' });
  const a = attach('cattle-bridge', host, pod, c, 'pin', '10.79.5.2/24');
  ok(cni('ADD', a));
  assert.equal(host.exec('cat', ['/sys/class/net/cbrold/addr_assign_type']).stdout.trim(), '3');
  assert.equal(links(host).find((l) => l.ifname === 'cbrold')!.address, before, 'pods that know the old MAC keep working');
  ok(cni('DEL', a));
  host.destroy();
  pod.destroy();
});
