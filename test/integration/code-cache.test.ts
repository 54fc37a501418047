// The built executable's code cache (lib/code-cache.ts, sea-main.ts): made by
// the first run of each program and command, used by the next ones, never
// trusted when malformed, refused by V8 or writable by others, and never the
// reason a plugin run fails.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { decodeCacheFile, encodeCacheFile } from '../../lib/code-cache.ts';
import { BIN, makeNetns, runExe, type RunResult } from '../helpers/harness.ts';

const VERSION_OUT = /"supportedVersions":\[/;

function cacheDir(t: { after(fn: () => void): void }): string {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-cc-')), 'cache');
  t.after(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));
  return dir;
}

function version(name: string, dir: string): RunResult {
  const r = runExe(name, { env: { CNI_COMMAND: 'VERSION', CATTLE_CNI_CODE_CACHE_DIR: dir, CATTLE_CNI_CODE_CACHE_DEBUG: '1', CATTLE_CNI_AGENT_SOCKET: 'none' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, VERSION_OUT);
  return r;
}

/** The one cache file in dir (named by the bundle's hash). */
function cacheFile(dir: string): string {
  const files = fs.readdirSync(dir);
  assert.equal(files.length, 1, `cache dir holds ${files.join(', ')}`);
  assert.match(files[0]!, /^main-[0-9a-f]{16}\.cache$/);
  return path.join(dir, files[0]!);
}

function covered(file: string): string[] {
  return decodeCacheFile(fs.readFileSync(file))?.covered ?? [];
}

test('the first run writes the cache, the next ones use it without writing again', (t) => {
  const dir = cacheDir(t);
  assert.match(version('cattle-bridge', dir).stderr, /code cache: build-time accepted/);
  const file = cacheFile(dir);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(covered(file), ['cattle-bridge VERSION']);
  const before = fs.statSync(file);
  assert.match(version('cattle-bridge', dir).stderr, new RegExp(`code cache: ${file} accepted`));
  const after = fs.statSync(file);
  assert.equal(after.ino, before.ino, 'not rewritten');
  assert.equal(after.mtimeMs, before.mtimeMs);
  // Another program (or command) adds its functions to the same file.
  assert.match(version('cattle-ptp', dir).stderr, /accepted/);
  assert.deepEqual(covered(cacheFile(dir)), ['cattle-bridge VERSION', 'cattle-ptp VERSION']);
});

test('ADD and DEL run from a warm cache, and the cache then holds both', (t) => {
  const dir = cacheDir(t);
  const host = makeNetns('cchost');
  const conf = { cniVersion: '1.0.0', name: 'ccnet', type: 'cattle-bridge', bridge: 'ccbr0', isGateway: true,
    ipam: { type: 'host-local', ranges: [[{ subnet: '10.231.0.0/24' }]], dataDir: path.join(path.dirname(dir), 'ipam') } };
  const results: unknown[] = [];
  for (const round of [1, 2]) {
    const pod = makeNetns('ccpod');
    const env = (cmd: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: `cc${round}`, CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: `${BIN}:/usr/lib/cni`,
      CATTLE_CNI_CODE_CACHE_DIR: dir, CATTLE_CNI_CODE_CACHE_DEBUG: '1' });
    const add = runExe('cattle-bridge', { netns: host, stdin: conf, env: env('ADD') });
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.match(add.stderr, round === 1 ? /build-time accepted/ : /\.cache accepted/);
    results.push(add.json);
    const del = runExe('cattle-bridge', { netns: host, stdin: conf, env: env('DEL') });
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.match(del.stderr, /\.cache accepted/);
    pod.destroy();
  }
  assert.deepEqual(covered(cacheFile(dir)), ['cattle-bridge ADD', 'cattle-bridge DEL']);
  // Same result cold and warm, but for what differs per pod: addresses, MACs, host veth name, netns.
  const perPod = new Set(['mac', 'address', 'gateway', 'sandbox']);
  const shape = (r: unknown) => JSON.stringify(r, (k, v: unknown) => (perPod.has(k) || (k === 'name' && /^veth/.test(String(v))) ? '*' : v));
  assert.equal(shape(results[0]), shape(results[1]));
});

test('a malformed, refused or foreign-writable cache is not used, and is replaced', (t) => {
  const dir = cacheDir(t);
  version('cattle-bridge', dir);
  const file = cacheFile(dir);
  const good = fs.readFileSync(file);
  const cases: { what: string; bytes: Buffer; mode: number; expect: RegExp }[] = [
    { what: 'garbage', bytes: Buffer.from('not a cache at all, not even close'), mode: 0o600, expect: /build-time accepted/ },
    { what: 'bytecode V8 refuses', bytes: encodeCacheFile({ covered: ['cattle-bridge VERSION'], data: Buffer.alloc(4096, 7) }), mode: 0o600, expect: /\.cache rejected/ },
    { what: 'writable by the group', bytes: good, mode: 0o660, expect: /build-time accepted/ },
  ];
  for (const c of cases) {
    fs.writeFileSync(file, c.bytes);
    fs.chmodSync(file, c.mode);
    assert.match(version('cattle-bridge', dir).stderr, c.expect, c.what);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, `${c.what}: replaced by our own`);
    assert.match(version('cattle-bridge', dir).stderr, /\.cache accepted/, `${c.what}: the replacement is used`);
  }
});

test('no cache directory, or one that cannot be made: the run is unaffected', (t) => {
  const dir = cacheDir(t);
  assert.match(version('cattle-bridge', 'none').stderr, /build-time accepted/);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.writeFileSync(dir, 'a file where the directory should be');
  assert.match(version('cattle-bridge', path.join(dir, 'cache')).stderr, /build-time accepted/);
  assert.deepEqual(fs.readdirSync(path.dirname(dir)), ['cache']);
});
