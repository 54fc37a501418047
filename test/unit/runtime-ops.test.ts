// ADD/CHECK/DEL/GC/STATUS of the runtime driving recording fake plugins.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import type { CniError } from '../../lib/cni/errors.ts';
import { cacheFilePath, readCacheEntry, writeCacheEntry } from '../../lib/runtime/cache.ts';
import type { NetworkList } from '../../lib/runtime/conf.ts';
import { networkListFromBytes } from '../../lib/runtime/conf.ts';
import type { RuntimeConf } from '../../lib/runtime/runtime.ts';
import {
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  gcNetworkList,
  getCachedResult,
  pluginStdin,
  statusNetworkList,
} from '../../lib/runtime/runtime.ts';
import { FakePlugins } from './runtime-fakes.ts';

function makeList(conf: Record<string, unknown>): NetworkList {
  return networkListFromBytes(Buffer.from(JSON.stringify(conf)), 'test.conflist');
}

const CHAIN = {
  cniVersion: '1.0.0',
  name: 'net',
  plugins: [
    { type: 'main', bridge: 'br0', capabilities: { portMappings: true, mac: false } },
    { type: 'meta', runtimeConfig: { literal: true } },
  ],
};

const RT: RuntimeConf = {
  containerId: 'ctr1',
  netns: '/var/run/netns/p1',
  ifname: 'eth0',
  args: [['K8S_POD_NAME', 'web'], ['IgnoreUnknown', '1']],
  capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], mac: '0a:58:00:00:00:09', bandwidth: {} },
};

// main answers in 0.4.0 (converted to the list's 1.0.0 for meta); meta leaves cniVersion out.
const MAIN_RESULT = {
  cniVersion: '0.4.0',
  interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/p1' }],
  ips: [{ version: '4', interface: 0, address: '10.1.0.2/24', gateway: '10.1.0.1' }],
  dns: {},
};
const MAIN_AS_1_0 = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/p1' }],
  ips: [{ interface: 0, address: '10.1.0.2/24', gateway: '10.1.0.1' }],
};
const META_RESULT = {
  interfaces: [{ name: 'eth0', mac: '0a:58:00:00:00:09', sandbox: '/var/run/netns/p1' }],
  ips: [{ interface: 0, address: '10.1.0.2/24', gateway: '10.1.0.1' }],
};
const FINAL = { cniVersion: '1.0.0', ...META_RESULT };

function chain(): FakePlugins {
  return new FakePlugins().add('main').add('meta').answer('main', 'ADD', MAIN_RESULT).answer('meta', 'ADD', META_RESULT);
}

function added(f: FakePlugins, list = makeList(CHAIN), rt = RT): NetworkList {
  addNetworkList(list, rt, f.opts());
  f.clearCalls();
  return list;
}

const order = (f: FakePlugins) => f.calls().map((c) => `${c.plugin} ${c.command}`);

describe('pluginStdin', () => {
  it('adds name, cniVersion, prevResult and only declared, enabled capabilities', () => {
    const list = makeList(CHAIN);
    const conf = pluginStdin(list, list.plugins[0]!, { cniVersion: '1.0.0' }, RT.capabilityArgs);
    assert.deepEqual(conf, {
      type: 'main',
      bridge: 'br0',
      capabilities: { portMappings: true, mac: false },
      name: 'net',
      cniVersion: '1.0.0',
      prevResult: { cniVersion: '1.0.0' },
      runtimeConfig: { portMappings: RT.capabilityArgs!.portMappings },
    });
  });

  it('keeps a literal runtimeConfig when no capability applies; plugin cniVersion/name are overridden', () => {
    const list = makeList({ ...CHAIN, plugins: [{ type: 'x', name: 'own', cniVersion: '0.3.1', runtimeConfig: { a: 1 } }] });
    assert.deepEqual(pluginStdin(list, list.plugins[0]!, undefined, RT.capabilityArgs), {
      type: 'x', name: 'net', cniVersion: '1.0.0', runtimeConfig: { a: 1 },
    });
  });
});

describe('addNetworkList', () => {
  it('runs plugins in order, feeding each result to the next as prevResult in the list version', () => {
    const f = chain();
    const result = addNetworkList(makeList(CHAIN), RT, f.opts());
    assert.deepEqual(result, FINAL);
    const [main, meta] = f.calls();
    assert.deepEqual(order(f), ['main ADD', 'meta ADD']);
    assert.equal(main!.stdin.prevResult, undefined);
    assert.deepEqual(main!.stdin.runtimeConfig, { portMappings: RT.capabilityArgs!.portMappings });
    assert.deepEqual(meta!.stdin.prevResult, MAIN_AS_1_0);
    assert.deepEqual(meta!.stdin.runtimeConfig, { literal: true });
    assert.deepEqual(main!.env, {
      CNI_ARGS: 'K8S_POD_NAME=web;IgnoreUnknown=1',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'ctr1',
      CNI_IFNAME: 'eth0',
      CNI_NETNS: '/var/run/netns/p1',
      CNI_PATH: f.binDir,
    });
  });

  it('caches the final result with config, netns, args and capability args', () => {
    const f = chain();
    const list = makeList(CHAIN);
    addNetworkList(list, RT, f.opts());
    const file = cacheFilePath(f.cacheDir, { network: 'net', containerId: 'ctr1', ifname: 'eth0' });
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    const entry = readCacheEntry(f.cacheDir, { network: 'net', containerId: 'ctr1', ifname: 'eth0' })!;
    assert.deepEqual(entry.config, list.bytes);
    assert.equal(entry.netns, RT.netns);
    assert.deepEqual(entry.cniArgs, RT.args);
    assert.deepEqual(entry.capabilityArgs, RT.capabilityArgs);
    assert.deepEqual(entry.result, FINAL);
    assert.deepEqual(getCachedResult(list, RT, f.opts()), FINAL);
  });

  it('stops at the first failure, keeps its code, names the plugin and caches nothing', () => {
    const f = chain().answer('main', 'ADD', { code: 7, msg: 'bad bridge', details: 'br0 is not a bridge' }, 1);
    assert.throws(
      () => addNetworkList(makeList(CHAIN), RT, f.opts()),
      (e: CniError) => e.code === 7 && e.message === 'plugin type="main" failed (add): bad bridge: br0 is not a bridge',
    );
    assert.deepEqual(order(f), ['main ADD']);
    assert.equal(fs.existsSync(path.join(f.cacheDir, 'results')), false);
  });

  it('a missing plugin and a plugin printing nothing are errors', () => {
    const f = chain();
    const list = makeList({ ...CHAIN, plugins: [...CHAIN.plugins, { type: 'absent', name: 'x' }] });
    assert.throws(() => addNetworkList(list, RT, f.opts()), /plugin type="absent" name="x" failed \(add\): failed to find plugin "absent"/);
    const silent = new FakePlugins().add('quiet');
    assert.throws(() => addNetworkList(makeList({ ...CHAIN, plugins: [{ type: 'quiet' }] }), RT, silent.opts()), /printed no result/);
  });

  it('validates container ID, network name and interface name first', () => {
    const f = chain();
    assert.throws(() => addNetworkList(makeList(CHAIN), { ...RT, containerId: '' }, f.opts()), (e: CniError) => e.code === 3);
    assert.throws(() => addNetworkList(makeList(CHAIN), { ...RT, containerId: '-x' }, f.opts()), (e: CniError) => e.code === 4);
    assert.throws(() => addNetworkList(makeList(CHAIN), { ...RT, ifname: 'a/b' }, f.opts()), (e: CniError) => e.code === 4);
    assert.throws(() => addNetworkList(makeList({ ...CHAIN, name: 'bad name' }), RT, f.opts()), (e: CniError) => e.code === 7);
    assert.deepEqual(f.calls(), []);
  });
});

describe('delNetworkList', () => {
  it('runs plugins in reverse with the cached result as prevResult, then removes the cache entry', () => {
    const f = chain();
    const list = added(f);
    delNetworkList(list, RT, f.opts());
    assert.deepEqual(order(f), ['meta DEL', 'main DEL']);
    for (const c of f.calls()) {
      assert.deepEqual(c.stdin.prevResult, FINAL);
      assert.equal(c.env.CNI_COMMAND, 'DEL');
      assert.equal(c.env.CNI_NETNS, '/var/run/netns/p1');
    }
    assert.equal(fs.existsSync(cacheFilePath(f.cacheDir, { network: 'net', containerId: 'ctr1', ifname: 'eth0' })), false);
  });

  it('goes on past a failing plugin, reports the first failure and keeps the cache entry', () => {
    const f = chain().answer('meta', 'DEL', { code: 11, msg: 'busy' }, 1).answer('main', 'DEL', { code: 5, msg: 'io' }, 1);
    const list = added(f);
    assert.throws(() => delNetworkList(list, RT, f.opts()), (e: CniError) => e.code === 11 && /plugin type="meta" failed \(delete\): busy/.test(e.message));
    assert.deepEqual(order(f), ['meta DEL', 'main DEL']);
    assert.ok(readCacheEntry(f.cacheDir, { network: 'net', containerId: 'ctr1', ifname: 'eth0' }));
  });

  it('without a cache entry DEL still runs, without prevResult; repeating it is fine', () => {
    const f = chain();
    delNetworkList(makeList(CHAIN), { ...RT, netns: '' }, f.opts());
    delNetworkList(makeList(CHAIN), { ...RT, netns: '' }, f.opts());
    assert.deepEqual(order(f), ['meta DEL', 'main DEL', 'meta DEL', 'main DEL']);
    assert.ok(f.calls().every((c) => c.stdin.prevResult === undefined && c.env.CNI_NETNS === ''));
  });

  it('an unreadable cache entry is dropped and DEL goes on without prevResult', () => {
    const f = chain();
    const key = { network: 'net', containerId: 'ctr1', ifname: 'eth0' };
    const list = added(f);
    fs.writeFileSync(cacheFilePath(f.cacheDir, key), '{"kind":"cniCacheV1","ifName":"eth0","result":{"cniVersion":"1.0.0","ips":[{"address":"nope"}]}}');
    delNetworkList(list, RT, f.opts());
    assert.ok(f.calls().every((c) => c.stdin.prevResult === undefined));
    assert.equal(fs.existsSync(cacheFilePath(f.cacheDir, key)), false);
  });

  it('below 0.4.0 sends no prevResult but still removes the cache entry', () => {
    const f = chain();
    const list = added(f, makeList({ ...CHAIN, cniVersion: '0.3.1' }));
    delNetworkList(list, RT, f.opts());
    assert.ok(f.calls().every((c) => c.stdin.prevResult === undefined && c.stdin.cniVersion === '0.3.1'));
    assert.equal(readCacheEntry(f.cacheDir, { network: 'net', containerId: 'ctr1', ifname: 'eth0' }), undefined);
  });

  it('reads entries written by libcni (cnitool), converting the result to the list version', () => {
    const f = chain();
    const list = makeList(CHAIN);
    const key = { network: 'net', containerId: 'cnitool-00112233445566778899', ifname: 'eth0' };
    fs.mkdirSync(path.join(f.cacheDir, 'results'), { recursive: true });
    fs.writeFileSync(
      cacheFilePath(f.cacheDir, key),
      `{"kind":"cniCacheV1","containerId":"${key.containerId}","config":"${list.bytes.toString('base64')}","ifName":"eth0",` +
        `"networkName":"net","netns":"/var/run/netns/p1","result":${JSON.stringify(MAIN_RESULT)}}`,
    );
    delNetworkList(list, { containerId: key.containerId, netns: '/var/run/netns/p1', ifname: 'eth0' }, f.opts());
    assert.deepEqual(f.calls()[0]!.stdin.prevResult, MAIN_AS_1_0);
    assert.equal(fs.existsSync(cacheFilePath(f.cacheDir, key)), false);
  });
});

describe('checkNetworkList', () => {
  it('runs plugins in order with the cached result as prevResult', () => {
    const f = chain();
    const list = added(f);
    checkNetworkList(list, RT, f.opts());
    assert.deepEqual(order(f), ['main CHECK', 'meta CHECK']);
    assert.ok(f.calls().every((c) => JSON.stringify(c.stdin.prevResult) === JSON.stringify(FINAL)));
  });

  it('the first failure is the answer', () => {
    const f = chain().answer('main', 'CHECK', { code: 999, msg: 'interface eth0 has wrong MAC' }, 1);
    const list = added(f);
    assert.throws(() => checkNetworkList(list, RT, f.opts()), /plugin type="main" failed \(check\): interface eth0 has wrong MAC/);
    assert.deepEqual(order(f), ['main CHECK']);
  });

  it('does nothing with disableCheck; refuses lists older than 0.4.0', () => {
    const f = chain();
    checkNetworkList(makeList({ ...CHAIN, disableCheck: true }), RT, f.opts());
    assert.deepEqual(f.calls(), []);
    assert.throws(
      () => checkNetworkList(makeList({ ...CHAIN, cniVersion: '0.3.1' }), RT, f.opts()),
      (e: CniError) => e.code === 1 && e.message === 'configuration version "0.3.1" does not support the CHECK command',
    );
  });
});

describe('gcNetworkList', () => {
  const V11 = { ...CHAIN, cniVersion: '1.1.0' };

  function withAttachments(f: FakePlugins, list: NetworkList): void {
    for (const [containerId, ifname] of [['c1', 'eth0'], ['c2', 'eth0'], ['c2', 'net1']]) {
      addNetworkList(list, { containerId, ifname, netns: `/var/run/netns/${containerId}`, args: [['X', containerId!]] }, f.opts());
    }
    addNetworkList(makeList({ ...V11, name: 'other' }), { containerId: 'c3', ifname: 'eth0', netns: '/n' }, f.opts());
    f.clearCalls();
  }

  it('DELs cached attachments of this network that are not valid, then GCs every plugin', () => {
    const f = chain();
    const list = makeList(V11);
    withAttachments(f, list);
    const valid = [{ containerID: 'c2', ifname: 'eth0' }];
    gcNetworkList(list, valid, f.opts());
    assert.deepEqual(order(f), ['meta DEL', 'main DEL', 'meta DEL', 'main DEL', 'main GC', 'meta GC']);
    const dels = f.calls().filter((c) => c.command === 'DEL');
    assert.deepEqual(dels.map((c) => `${c.env.CNI_CONTAINERID}/${c.env.CNI_IFNAME}/${c.env.CNI_NETNS}/${c.env.CNI_ARGS}`), [
      'c1/eth0//var/run/netns/c1/X=c1', 'c1/eth0//var/run/netns/c1/X=c1',
      'c2/net1//var/run/netns/c2/X=c2', 'c2/net1//var/run/netns/c2/X=c2',
    ]);
    for (const gc of f.calls().filter((c) => c.command === 'GC')) {
      assert.deepEqual(gc.stdin['cni.dev/valid-attachments'], valid);
      assert.deepEqual(gc.stdin['cni.dev/attachments'], valid);
      assert.equal(gc.stdin.name, 'net');
      assert.equal(gc.stdin.cniVersion, '1.1.0');
      assert.deepEqual([gc.env.CNI_CONTAINERID, gc.env.CNI_NETNS, gc.env.CNI_IFNAME], ['', '', '']);
    }
    const left = fs.readdirSync(path.join(f.cacheDir, 'results')).sort();
    assert.deepEqual(left, ['net-c2-eth0', 'other-c3-eth0']);
  });

  it('without valid attachments (cnitool gc) removes every attachment of the network and sends no list', () => {
    const f = chain();
    const list = makeList(V11);
    withAttachments(f, list);
    gcNetworkList(list, undefined, f.opts());
    assert.equal(f.calls().filter((c) => c.command === 'DEL').length, 6);
    for (const gc of f.calls().filter((c) => c.command === 'GC')) {
      assert.equal('cni.dev/valid-attachments' in gc.stdin, false);
    }
    assert.deepEqual(fs.readdirSync(path.join(f.cacheDir, 'results')), ['other-c3-eth0']);
  });

  it('below 1.1.0 only the stale DELs happen; disableGC does nothing at all', () => {
    const f = chain();
    const list = makeList(CHAIN);
    addNetworkList(list, RT, f.opts());
    f.clearCalls();
    gcNetworkList(makeList({ ...CHAIN, disableGC: true }), undefined, f.opts());
    assert.deepEqual(f.calls(), []);
    gcNetworkList(list, undefined, f.opts());
    assert.deepEqual(order(f), ['meta DEL', 'main DEL']);
  });

  it('goes on past failures and reports them all', () => {
    const f = chain().answer('main', 'GC', { code: 5, msg: 'store locked' }, 1).answer('meta', 'DEL', { code: 11, msg: 'busy' }, 1);
    const list = makeList(V11);
    addNetworkList(list, RT, f.opts());
    f.clearCalls();
    assert.throws(
      () => gcNetworkList(list, [], f.opts()),
      (e: CniError) => e.code === 11 &&
        /failed to delete stale attachment ctr1 eth0: plugin type="meta" failed \(delete\): busy/.test(e.message) &&
        /plugin type="main" failed \(gc\): store locked/.test(e.message),
    );
    assert.deepEqual(order(f), ['meta DEL', 'main DEL', 'main GC', 'meta GC']);
  });

  it('a missing cache directory means nothing is stale, and plugins still get GC', () => {
    const f = chain();
    gcNetworkList(makeList(V11), [], f.opts());
    assert.deepEqual(order(f), ['main GC', 'meta GC']);
  });
});

describe('statusNetworkList', () => {
  it('asks every plugin (1.1.0+) with an empty container environment', () => {
    const f = chain();
    statusNetworkList(makeList({ ...CHAIN, cniVersion: '1.1.0' }), f.opts());
    assert.deepEqual(order(f), ['main STATUS', 'meta STATUS']);
    assert.equal(f.calls()[0]!.env.CNI_CONTAINERID, '');
    assert.equal(f.calls()[0]!.stdin.name, 'net');
  });

  it('the first failure is the answer, with its code', () => {
    const f = chain().answer('main', 'STATUS', { code: 50, msg: 'no IPs left' }, 1);
    assert.throws(() => statusNetworkList(makeList({ ...CHAIN, cniVersion: '1.1.0' }), f.opts()), (e: CniError) => e.code === 50);
    assert.deepEqual(order(f), ['main STATUS']);
  });

  it('below 1.1.0 there is nothing to ask', () => {
    const f = chain();
    statusNetworkList(makeList(CHAIN), f.opts());
    assert.deepEqual(f.calls(), []);
  });
});

describe('cache written by one list version, read by another', () => {
  it('converts the cached result to the list version for prevResult', () => {
    const f = chain();
    writeCacheEntry(f.cacheDir, {
      network: 'net', containerId: 'ctr1', ifname: 'eth0', config: Buffer.from('{}'), netns: '', cniArgs: [], capabilityArgs: {},
      result: { cniVersion: '0.2.0', ip4: { ip: '10.1.0.2/24', gateway: '10.1.0.1' }, dns: {} },
    });
    assert.deepEqual(getCachedResult(makeList(CHAIN), RT, f.opts()), {
      cniVersion: '1.0.0', ips: [{ address: '10.1.0.2/24', gateway: '10.1.0.1' }],
    });
  });
});
