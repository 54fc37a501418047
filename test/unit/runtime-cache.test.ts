import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import type { CacheEntry } from '../../lib/runtime/cache.ts';
import {
  cacheFilePath,
  decodeCacheEntry,
  encodeCacheEntry,
  listCacheEntries,
  readCachedResult,
  readCacheEntry,
  removeCacheEntry,
  writeCacheEntry,
} from '../../lib/runtime/cache.ts';
import { tempDir } from './runtime-fakes.ts';

const CONFIG = Buffer.from('{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"bridge"}]}\n');
const RESULT = { cniVersion: '1.0.0', ips: [{ address: '10.1.0.2/24', gateway: '10.1.0.1' }] };

function entry(over: Partial<CacheEntry> = {}): CacheEntry {
  return {
    network: 'net',
    containerId: 'c1',
    ifname: 'eth0',
    config: CONFIG,
    netns: '/var/run/netns/p1',
    cniArgs: [['K8S_POD_NAME', 'web']],
    capabilityArgs: { mac: '0a:58:00:00:00:01' },
    result: RESULT,
    ...over,
  };
}

// Written by hand the way Go's encoding/json writes libcni's cachedInfo.
const LIBCNI_FILE =
  '{"kind":"cniCacheV1","containerId":"cnitool-0123456789abcdef0123","config":"' +
  CONFIG.toString('base64') +
  '","ifName":"eth0","networkName":"net","netns":"/var/run/netns/p1","cniArgs":[["IgnoreUnknown","1"]],' +
  '"result":{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.0.7/24"}],"dns":{}}}';

describe('cache format (libcni cniCacheV1)', () => {
  it('encodes in Go field order with the config as base64', () => {
    assert.equal(
      encodeCacheEntry(entry()),
      '{"kind":"cniCacheV1","containerId":"c1","config":"' + CONFIG.toString('base64') + '","ifName":"eth0",' +
        '"networkName":"net","netns":"/var/run/netns/p1","cniArgs":[["K8S_POD_NAME","web"]],' +
        '"capabilityArgs":{"mac":"0a:58:00:00:00:01"},"result":' + JSON.stringify(RESULT) + '}',
    );
  });

  it('leaves out empty optional fields, as omitempty does', () => {
    const o = JSON.parse(encodeCacheEntry(entry({ netns: '', cniArgs: [], capabilityArgs: {}, result: undefined })));
    assert.deepEqual(Object.keys(o), ['kind', 'containerId', 'config', 'ifName', 'networkName']);
  });

  it('decodes what it encodes, and what libcni writes', () => {
    const e = entry();
    assert.deepEqual(decodeCacheEntry(encodeCacheEntry(e)), e);
    const fromGo = decodeCacheEntry(LIBCNI_FILE)!;
    assert.equal(fromGo.containerId, 'cnitool-0123456789abcdef0123');
    assert.equal(fromGo.network, 'net');
    assert.equal(fromGo.ifname, 'eth0');
    assert.deepEqual(fromGo.config, CONFIG);
    assert.deepEqual(fromGo.cniArgs, [['IgnoreUnknown', '1']]);
    assert.deepEqual(fromGo.capabilityArgs, {});
    assert.equal((fromGo.result as { cniVersion: string }).cniVersion, '0.4.0');
  });

  it('anything that is not a cniCacheV1 object decodes to undefined', () => {
    assert.equal(decodeCacheEntry('{'), undefined);
    assert.equal(decodeCacheEntry('[]'), undefined);
    assert.equal(decodeCacheEntry('{"kind":"cniCacheV2"}'), undefined);
    assert.equal(decodeCacheEntry(JSON.stringify(RESULT)), undefined);
  });
});

describe('cache files', () => {
  it('live at <cacheDir>/results/<network>-<containerID>-<ifname>; dir 0700, file 0600', () => {
    const dir = tempDir();
    const file = writeCacheEntry(dir, entry());
    assert.equal(file, path.join(dir, 'results', 'net-c1-eth0'));
    assert.equal(cacheFilePath(dir, { network: 'net', containerId: 'c1', ifname: 'eth0' }), file);
    assert.equal(fs.statSync(path.join(dir, 'results')).mode & 0o777, 0o700);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'results')), ['net-c1-eth0'], 'no temp file left');
    assert.deepEqual(readCacheEntry(dir, entry()), entry());
  });

  it('rewriting keeps 0600 and replaces the content', () => {
    const dir = tempDir();
    const file = writeCacheEntry(dir, entry());
    fs.chmodSync(file, 0o644);
    writeCacheEntry(dir, entry({ netns: '/var/run/netns/other' }));
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(readCacheEntry(dir, entry())!.netns, '/var/run/netns/other');
  });

  it('refuses names that would leave the directory', () => {
    assert.throws(() => cacheFilePath('/x', { network: 'n', containerId: '../../etc', ifname: 'eth0' }), /container ID is "\.\.\/\.\.\/etc"/);
    assert.throws(() => cacheFilePath('/x', { network: '', containerId: 'c', ifname: 'eth0' }), /network name is ""/);
  });

  it('readCachedResult: the entry result, a bare result from older libcni, or undefined', () => {
    const dir = tempDir();
    assert.equal(readCachedResult(dir, entry()), undefined);
    writeCacheEntry(dir, entry());
    assert.deepEqual(readCachedResult(dir, entry()), RESULT);
    fs.writeFileSync(cacheFilePath(dir, entry({ containerId: 'old' })), JSON.stringify(RESULT));
    assert.deepEqual(readCachedResult(dir, entry({ containerId: 'old' })), RESULT);
    fs.writeFileSync(cacheFilePath(dir, entry({ containerId: 'junk' })), 'not json');
    assert.throws(() => readCachedResult(dir, entry({ containerId: 'junk' })), /is not JSON/);
  });

  it('remove: gone afterwards, and removing twice is fine', () => {
    const dir = tempDir();
    const file = writeCacheEntry(dir, entry());
    removeCacheEntry(dir, entry());
    assert.equal(fs.existsSync(file), false);
    removeCacheEntry(dir, entry());
  });

  it('listCacheEntries: cniCacheV1 entries with network and ifname, optionally of one container', () => {
    const dir = tempDir();
    assert.deepEqual(listCacheEntries(dir), []);
    writeCacheEntry(dir, entry({ containerId: 'c2' }));
    writeCacheEntry(dir, entry({ containerId: 'c1' }));
    writeCacheEntry(dir, entry({ containerId: 'c1', ifname: 'net1', network: 'other' }));
    fs.writeFileSync(path.join(dir, 'results', 'net-c3-eth0'), JSON.stringify(RESULT)); // legacy: skipped
    fs.writeFileSync(path.join(dir, 'results', 'net-c4-eth0'), '{"kind":"cniCacheV1","containerId":"c4","networkName":"net"}');
    fs.writeFileSync(path.join(dir, 'results', 'fromgo-cnitool-0123456789abcdef0123-eth0'), LIBCNI_FILE);
    fs.mkdirSync(path.join(dir, 'results', 'a-directory'));
    assert.deepEqual(
      listCacheEntries(dir).map((e) => `${e.network}/${e.containerId}/${e.ifname}`),
      ['net/cnitool-0123456789abcdef0123/eth0', 'net/c1/eth0', 'net/c2/eth0', 'other/c1/net1'],
    );
    assert.deepEqual(listCacheEntries(dir, 'c1').map((e) => `${e.network}/${e.ifname}`), ['net/eth0', 'other/net1']);
  });
});
