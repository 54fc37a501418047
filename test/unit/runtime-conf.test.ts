import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { CniError } from '../../lib/cni/errors.ts';
import {
  confFiles,
  loadNetworkList,
  networkListFromBytes,
  networkListFromConf,
  pickVersion,
} from '../../lib/runtime/conf.ts';
import { tempDir } from './runtime-fakes.ts';

function confDir(files: Record<string, unknown>): string {
  const dir = tempDir('ccni-conf-');
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

const list = (name: string, extra: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name,
  plugins: [{ type: 'bridge' }],
  ...extra,
});

describe('pickVersion', () => {
  it('takes cniVersion as written, and 0.1.0 when there is none', () => {
    assert.equal(pickVersion('0.4.0', undefined), '0.4.0');
    assert.equal(pickVersion(undefined, undefined), '0.1.0');
    assert.equal(pickVersion('', undefined), '0.1.0');
  });

  it('with cniVersions takes the highest version we support, counting cniVersion too', () => {
    assert.equal(pickVersion(undefined, ['0.3.1', '1.1.0', '1.0.0']), '1.1.0');
    assert.equal(pickVersion('1.0.0', ['0.4.0', '2.0.0', '1.5.0']), '1.0.0');
    assert.equal(pickVersion('9.9.9', ['0.4.0']), '0.4.0');
  });

  it('refuses lists with nothing usable, and malformed versions', () => {
    assert.throws(() => pickVersion(undefined, ['2.0.0']), (e: CniError) => e.code === 1 && /2\.0\.0/.test(e.message));
    assert.throws(() => pickVersion('7.0.0', undefined), (e: CniError) => e.code === 1);
    assert.throws(() => pickVersion(undefined, ['1.0']), /invalid cniVersions\[0\] "1\.0"/);
    assert.throws(() => pickVersion(undefined, '1.0.0'), /cniVersions must be a list/);
    assert.throws(() => pickVersion(1, undefined), /invalid cniVersion type number/);
  });
});

describe('networkListFromBytes', () => {
  it('reads name, version, flags (booleans or "true"/"false" strings) and keeps plugin keys', () => {
    const bytes = Buffer.from(JSON.stringify(list('net', {
      disableCheck: 'TRUE',
      disableGC: false,
      plugins: [{ type: 'bridge', bridge: 'br0', capabilities: { portMappings: true } }, { type: 'tuning' }],
    })));
    const l = networkListFromBytes(bytes, 'x.conflist');
    assert.equal(l.name, 'net');
    assert.equal(l.cniVersion, '1.0.0');
    assert.equal(l.disableCheck, true);
    assert.equal(l.disableGC, false);
    assert.equal(l.loadOnlyInlinedPlugins, false);
    assert.deepEqual(l.plugins, [{ type: 'bridge', bridge: 'br0', capabilities: { portMappings: true } }, { type: 'tuning' }]);
    assert.equal(l.bytes, bytes);
    assert.equal(l.source, 'x.conflist');
  });

  it('names what is wrong', () => {
    const bad = (o: unknown) => () => networkListFromBytes(Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)), 'f');
    assert.throws(bad('{'), /error parsing configuration f/);
    assert.throws(bad([]), /not a JSON object/);
    assert.throws(bad({ plugins: [{ type: 'x' }] }), /no name/);
    assert.throws(bad({ name: 3, plugins: [] }), /invalid name type/);
    assert.throws(bad(list('n', { plugins: [] })), /no plugins in list/);
    assert.throws(bad(list('n', { plugins: {} })), /invalid 'plugins' type/);
    assert.throws(bad(list('n', { plugins: [{ bridge: 'x' }] })), /plugin 0.*missing 'type'/);
    assert.throws(bad(list('n', { plugins: [{ type: '../sbin/x' }] })), /not a plain file name/);
    assert.throws(bad(list('n', { plugins: [{ type: 'x', capabilities: { mac: 'yes' } }] })), /capabilities must map/);
    assert.throws(bad(list('n', { disableCheck: 'maybe' })), /invalid value "maybe" for disableCheck/);
    assert.throws(bad({ name: 'n', loadOnlyInlinedPlugins: true }), /loadOnlyInlinedPlugins is true, and no 'plugins' key/);
  });

  it('every error is a CNI config error (code 7) unless it is about versions (code 1)', () => {
    assert.throws(() => networkListFromBytes(Buffer.from('{'), 'f'), (e: CniError) => e.code === 7);
    assert.throws(() => networkListFromBytes(Buffer.from(JSON.stringify(list('n', { cniVersion: '3.0.0' }))), 'f'), (e: CniError) => e.code === 1);
  });
});

describe('networkListFromConf', () => {
  it('wraps a single plugin config as a one-plugin list with its name and version', () => {
    const conf = { cniVersion: '0.3.1', name: 'single', type: 'bridge', bridge: 'br1', ipam: { type: 'host-local' } };
    const l = networkListFromConf(Buffer.from(JSON.stringify(conf)), '10-single.conf');
    assert.equal(l.name, 'single');
    assert.equal(l.cniVersion, '0.3.1');
    assert.deepEqual(l.plugins, [conf]);
    assert.deepEqual(JSON.parse(l.bytes.toString()), { cniVersion: '0.3.1', name: 'single', plugins: [conf] });
  });

  it('a conf without cniVersion is 0.1.0; a conf needs a type', () => {
    assert.equal(networkListFromConf(Buffer.from('{"name":"n","type":"x"}')).cniVersion, '0.1.0');
    assert.throws(() => networkListFromConf(Buffer.from('{"name":"n"}'), 'f.conf'), /f\.conf.*missing 'type'/);
  });
});

describe('confFiles', () => {
  it('lists matching non-directories sorted by name; a missing dir is empty', () => {
    const dir = confDir({ 'b.conf': '{}', 'a.conf': '{}', 'c.json': '{}', 'x.conflist': '{}', '.conf': '{}', 'z.conf.bak': '{}' });
    fs.mkdirSync(path.join(dir, 'd.conf'));
    assert.deepEqual(confFiles(dir, ['.conf', '.json']).map((f) => path.basename(f)), ['.conf', 'a.conf', 'b.conf', 'c.json']);
    assert.deepEqual(confFiles(path.join(dir, 'nope'), ['.conf']), []);
  });
});

describe('loadNetworkList', () => {
  it('takes the first conflist by file name with that name', () => {
    const dir = confDir({
      '20-a.conflist': list('net', { plugins: [{ type: 'second' }] }),
      '10-b.conflist': list('net', { plugins: [{ type: 'first' }] }),
      '05-other.conflist': list('other'),
    });
    const l = loadNetworkList(dir, 'net');
    assert.equal(l.plugins[0]!.type, 'first');
    assert.equal(l.source, path.join(dir, '10-b.conflist'));
    assert.deepEqual(l.bytes, fs.readFileSync(path.join(dir, '10-b.conflist')));
  });

  it('conflists win over .conf/.json of the same name, whatever the file names', () => {
    const dir = confDir({
      '00-net.conf': { cniVersion: '1.0.0', name: 'net', type: 'from-conf' },
      '99-net.conflist': list('net', { plugins: [{ type: 'from-conflist' }] }),
    });
    assert.equal(loadNetworkList(dir, 'net').plugins[0]!.type, 'from-conflist');
  });

  it('falls back to .conf and .json files, sorted, wrapped as a list', () => {
    const dir = confDir({
      '20-net.json': { cniVersion: '0.4.0', name: 'net', type: 'from-json' },
      '10-x.conflist': list('x'),
      '30-net.conf': { cniVersion: '0.4.0', name: 'net', type: 'from-conf' },
    });
    const l = loadNetworkList(dir, 'net');
    assert.equal(l.plugins[0]!.type, 'from-json');
    assert.equal(l.cniVersion, '0.4.0');
  });

  it('adds plugin objects from <dir>/<name>/*.conf unless loadOnlyInlinedPlugins', () => {
    const dir = confDir({
      '10-net.conflist': list('net'),
      'net/20-tuning.conf': { type: 'tuning' },
      'net/10-portmap.conf': { type: 'portmap' },
      'net/ignored.json': { type: 'nope' },
      '11-only.conflist': list('only', { loadOnlyInlinedPlugins: true }),
      'only/x.conf': { type: 'nope' },
      '12-bare.conflist': { cniVersion: '1.0.0', name: 'bare' },
      'bare/a.conf': { type: 'from-dir' },
    });
    assert.deepEqual(loadNetworkList(dir, 'net').plugins.map((p) => p.type), ['bridge', 'portmap', 'tuning']);
    assert.deepEqual(loadNetworkList(dir, 'only').plugins.map((p) => p.type), ['bridge']);
    assert.deepEqual(loadNetworkList(dir, 'bare').plugins.map((p) => p.type), ['from-dir']);
  });

  it('a conflist with no plugins at all is an error', () => {
    const dir = confDir({ '10-empty.conflist': { cniVersion: '1.0.0', name: 'empty' } });
    assert.throws(() => loadNetworkList(dir, 'empty'), /no plugin configs found/);
  });

  it('says whether nothing was found at all or just not that name', () => {
    const empty = tempDir('ccni-conf-');
    assert.throws(() => loadNetworkList(empty, 'net'), new RegExp(`no net configurations found in ${empty}`));
    assert.throws(() => loadNetworkList(path.join(empty, 'missing'), 'net'), /no net configurations found/);
    const dir = confDir({ '10-x.conflist': list('x'), '20-y.conf': { name: 'y', type: 'b' } });
    assert.throws(() => loadNetworkList(dir, 'net'), (e: CniError) => e.code === 7 && e.message === `no net configuration with name "net" in ${dir}`);
  });

  it('a broken file met before the match is an error naming it (as libcni)', () => {
    const dir = confDir({ '01-broken.conflist': '{"name":', '10-net.conflist': list('net') });
    assert.throws(() => loadNetworkList(dir, 'net'), new RegExp(`error parsing configuration ${path.join(dir, '01-broken.conflist')}`));
  });
});
