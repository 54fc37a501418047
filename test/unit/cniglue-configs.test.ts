// cniglue configuration discovery (a directory per network, .conf/.conflist/.json,
// all of them in name order) and the ADD/DEL sequencing over them, with
// recording fake plugins.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';

import { DEFAULT_CNI_PATH, loadNetworkConfigs, netconfDir, networkConfFiles, parseCniPath } from '../../cniglue/configs.ts';
import { glueAdd, glueDel, type GlueSettings } from '../../cniglue/glue.ts';
import { FakePlugins, tempDir } from './runtime-fakes.ts';

const ID = 'a'.repeat(64);

function root(files: Record<string, unknown>): string {
  const dir = tempDir('cglue-conf-');
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

describe('configuration discovery', () => {
  it('reads <root>/<network>.d: .conf, .conflist and .json, sorted by name, other files ignored', () => {
    const r = root({
      'managed.d/20-b.conflist': { cniVersion: '0.4.0', name: 'b', plugins: [{ type: 'p2' }, { type: 'p3' }] },
      'managed.d/10-a.conf': { name: 'a', type: 'p1' },
      'managed.d/30-c.json': { name: 'c', type: 'p4' },
      'managed.d/README.md': 'not a config',
      'managed.d/99-backup.conf.bak': { name: 'z', type: 'zz' },
      'managed.d/50-dir.conf/x': 'a directory with a config-like name is skipped',
      'other.d/10.conf': { name: 'o', type: 'o' },
    });
    assert.equal(netconfDir(r, 'managed'), path.join(r, 'managed.d'));
    assert.deepEqual(networkConfFiles(r, 'managed').map((f) => path.basename(f)), ['10-a.conf', '20-b.conflist', '30-c.json']);
    const lists = loadNetworkConfigs(r, 'managed');
    assert.deepEqual(lists.map((l) => [l.name, l.cniVersion, l.plugins.map((p) => p.type)]), [
      ['a', '0.1.0', ['p1']],
      ['b', '0.4.0', ['p2', 'p3']],
      ['c', '0.1.0', ['p4']],
    ]);
  });

  it('names the directory when a network has no configuration at all', () => {
    const r = root({ 'managed.d/notes.txt': 'x' });
    assert.throws(() => loadNetworkConfigs(r, 'managed'), (e: Error) => /couldn't find any CNI network configurations for network "managed"/.test(e.message)
      && e.message.includes(path.join(r, 'managed.d')));
    assert.throws(() => loadNetworkConfigs(r, 'missing'), /couldn't find any CNI network configurations for network "missing"/);
  });

  it('names the file that is broken', () => {
    const r = root({ 'managed.d/10-ok.conf': { name: 'ok', type: 'x' }, 'managed.d/20-bad.conf': '{"name": "bad", ' });
    assert.throws(() => loadNetworkConfigs(r, 'managed'), (e: Error) => e.message.includes('20-bad.conf'));
    const noType = root({ 'managed.d/10.conf': { name: 'n' } });
    assert.throws(() => loadNetworkConfigs(noType, 'managed'), /missing 'type'/);
  });

  it('gives a nameless configuration the network name; reads a list kept in a .json file as a list', () => {
    const r = root({
      'managed.d/10.conf': { type: 'rancher-bridge' },
      'managed.d/20.json': { cniVersion: '1.0.0', name: 'chain', plugins: [{ type: 'a' }, { type: 'b' }] },
    });
    const lists = loadNetworkConfigs(r, 'managed');
    assert.equal(lists[0]!.name, 'managed');
    assert.deepEqual(lists[1]!.plugins.map((p) => p.type), ['a', 'b']);
  });

  it('refuses network names that would leave the root', () => {
    assert.throws(() => netconfDir('/etc/docker/cni', '../x'), /invalid network name/);
    assert.throws(() => netconfDir('/etc/docker/cni', '..'), /invalid network name/);
  });

  it('parses plugin paths; the default is cniglue\'s', () => {
    assert.deepEqual(parseCniPath('/a::/b: '), ['/a', '/b']);
    assert.equal(DEFAULT_CNI_PATH.join(':'), '/opt/cni/bin:/var/lib/cni/bin:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin');
  });
});

describe('glueAdd / glueDel over every configuration', () => {
  let fakes: FakePlugins;
  let settings: GlueSettings;
  const result = (ip: string) => ({ cniVersion: '0.2.0', ip4: { ip } });

  before(() => {
    fakes = new FakePlugins().add('first').add('second').add('third');
    process.env.FAKE_LOG = fakes.logDir;
    const r = root({
      'net.d/10-first.conf': { name: 'one', type: 'first' },
      'net.d/20-second.conf': { name: 'two', type: 'second' },
      // A newer chain whose result carries no address (interfaces only).
      'net.d/30-third.conflist': { cniVersion: '1.0.0', name: 'three', plugins: [{ type: 'third' }] },
    });
    // The plugins get the plugin path as PATH, as under cniglue: the fakes need the shell tools too.
    settings = { confRoot: r, cniPath: [fakes.binDir, '/usr/bin', '/bin'], cacheDir: fakes.cacheDir, pluginTimeoutMs: 10_000 };
  });

  const attachment = () => ({ network: 'net', containerId: ID, netns: '/proc/1/ns/net', args: [['IgnoreUnknown', '1'], ['DOCKER', 'true'], ['IPAddress', '10.42.0.5/16']] as [string, string][] });

  it('ADDs in file order with the container\'s CNI_* and answers the last result that has an address', () => {
    fakes.clearCalls();
    fakes.answer('first', 'ADD', result('10.1.0.1/16')).answer('second', 'ADD', result('10.2.0.2/16')).answer('third', 'ADD', { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }] });
    const r = glueAdd(attachment(), settings);
    assert.deepEqual((r.ip4 as { ip: string }).ip, '10.2.0.2/16');
    const calls = fakes.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ['first ADD', 'second ADD', 'third ADD']);
    for (const c of calls) {
      assert.equal(c.env.CNI_CONTAINERID, ID);
      assert.equal(c.env.CNI_NETNS, '/proc/1/ns/net');
      assert.equal(c.env.CNI_IFNAME, 'eth0');
      assert.equal(c.env.CNI_ARGS, 'IgnoreUnknown=1;DOCKER=true;IPAddress=10.42.0.5/16');
    }
  });

  it('stops at the first failing ADD, rolls back what ran (in reverse) and names the file', () => {
    fakes.clearCalls();
    fakes.answer('first', 'ADD', result('10.1.0.1/16')).answer('second', 'ADD', { code: 11, msg: 'metadata not ready' }, 1);
    fakes.answer('first', 'DEL', '').answer('second', 'DEL', '');
    assert.throws(() => glueAdd(attachment(), settings), (e: Error) => /20-second\.conf/.test(e.message) && /metadata not ready/.test(e.message));
    assert.deepEqual(fakes.calls().map((c) => `${c.plugin} ${c.command}`), ['first ADD', 'second ADD', 'second DEL', 'first DEL']);
  });

  it('DELs in reverse file order without a netns, going on past failures and reporting the last', () => {
    fakes.clearCalls();
    fakes.answer('first', 'DEL', { code: 999, msg: 'first broke' }, 1).answer('second', 'DEL', '').answer('third', 'DEL', { code: 999, msg: 'third broke' }, 1);
    assert.throws(() => glueDel({ ...attachment(), netns: '' }, settings), /first broke/);
    const calls = fakes.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ['third DEL', 'second DEL', 'first DEL']);
    assert.ok(calls.every((c) => c.env.CNI_NETNS === ''));
  });

  it('skips a plugin-path entry that is a directory, and says where it looked', () => {
    const dirs = tempDir('cglue-path-');
    fs.mkdirSync(path.join(dirs, 'first')); // a directory named like the plugin (Rancher #9324)
    fakes.clearCalls();
    fakes.answer('first', 'ADD', result('10.1.0.1/16')).answer('second', 'ADD', result('10.2.0.2/16')).answer('third', 'ADD', { cniVersion: '1.0.0', ips: [{ address: '10.3.0.3/16' }] });
    const r = glueAdd(attachment(), { ...settings, cniPath: [dirs, ...settings.cniPath] });
    assert.deepEqual(r.ips, [{ address: '10.3.0.3/16' }]);
    assert.throws(() => glueAdd(attachment(), { ...settings, cniPath: [dirs] }), (e: Error) => /failed to find plugin "first"/.test(e.message) && e.message.includes(dirs));
  });
});
