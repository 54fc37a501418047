// The executable's code cache store (lib/code-cache.ts): file format, which
// files are trusted, when a run writes, and what writing leaves behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import vm from 'node:vm';

import { decodeCacheFile, encodeCacheFile, needsWrite, openCodeCache, wrapBundle, writeCodeCache } from '../../lib/code-cache.ts';

function tmpDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-codecache-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('cache file: round trip, and anything malformed is no cache', () => {
  const data = Buffer.from([1, 2, 3, 4, 5]);
  const f = decodeCacheFile(encodeCacheFile({ covered: ['cattle-bridge ADD'], data }));
  assert.deepEqual(f?.covered, ['cattle-bridge ADD']);
  assert.deepEqual(f?.data, data);
  assert.equal(decodeCacheFile(Buffer.from('')), undefined);
  assert.equal(decodeCacheFile(Buffer.from('garbage that is long enough')), undefined);
  const good = encodeCacheFile({ covered: ['x'], data });
  assert.equal(decodeCacheFile(good.subarray(0, 12)), undefined, 'cut inside the header');
  const badJson = Buffer.from(good);
  badJson[9] = 0x7b; // breaks the JSON header
  assert.equal(decodeCacheFile(badJson), undefined);
  assert.equal(decodeCacheFile(encodeCacheFile({ covered: [1 as unknown as string], data })), undefined);
});

test('a run writes when there is no cache, V8 refused it, or it lacks this run', () => {
  const found = { covered: ['cattle-bridge ADD'], data: Buffer.alloc(1) };
  assert.equal(needsWrite({ file: 'f' }, undefined, 'cattle-bridge ADD'), true);
  assert.equal(needsWrite({ file: 'f', found }, true, 'cattle-bridge ADD'), true);
  assert.equal(needsWrite({ file: 'f', found }, false, 'cattle-bridge DEL'), true);
  assert.equal(needsWrite({ file: 'f', found }, false, 'cattle-bridge ADD'), false);
});

test('written caches are read back, name the runs they hold, and are private', (t) => {
  const dir = path.join(tmpDir(t), 'sub', 'cache');
  const first = openCodeCache(dir, 'abc');
  assert.equal(first.found, undefined);
  writeCodeCache(first, undefined, 'cattle-bridge ADD', Buffer.from('one'));
  const second = openCodeCache(dir, 'abc');
  assert.deepEqual(second.found?.covered, ['cattle-bridge ADD']);
  writeCodeCache(second, false, 'cattle-bridge DEL', Buffer.from('two'));
  assert.deepEqual(openCodeCache(dir, 'abc').found?.covered, ['cattle-bridge ADD', 'cattle-bridge DEL']);
  // Rejected by V8: what it claimed to cover is gone with it.
  writeCodeCache(openCodeCache(dir, 'abc'), true, 'cattle-ptp ADD', Buffer.from('three'));
  assert.deepEqual(openCodeCache(dir, 'abc').found?.covered, ['cattle-ptp ADD']);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(dir, 'main-abc.cache')).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(dir), ['main-abc.cache'], 'no temporary file left');
  assert.equal(openCodeCache(dir, 'other').found, undefined, 'another bundle never reads this one');
});

test('a cache file others could have written is not used', (t) => {
  const dir = tmpDir(t);
  writeCodeCache({ file: path.join(dir, 'main-h.cache') }, undefined, 'r', Buffer.from('x'));
  const file = path.join(dir, 'main-h.cache');
  fs.chmodSync(file, 0o620);
  assert.equal(openCodeCache(dir, 'h').found, undefined, 'group-writable');
  fs.chmodSync(file, 0o600);
  if (process.geteuid?.() === 0) {
    fs.chownSync(file, 65534, 65534);
    assert.equal(openCodeCache(dir, 'h').found, undefined, 'owned by someone else');
    fs.chownSync(file, 0, 0);
  }
  fs.rmSync(file);
  fs.symlinkSync('/etc/hostname', file);
  assert.equal(openCodeCache(dir, 'h').found, undefined, 'a symlink');
});

test('writing removes dead writers\' temporary files and other builds\' stale caches, nothing else', (t) => {
  const dir = tmpDir(t);
  const dead = path.join(dir, 'main-h.cache.999999999.tmp');
  const live = path.join(dir, `main-h.cache.${process.ppid}.tmp`); // a writer still running (our parent)
  const stale = path.join(dir, 'main-old.cache');
  const recent = path.join(dir, 'main-new.cache');
  for (const f of [dead, live, stale, recent]) fs.writeFileSync(f, 'x');
  const hoursAgo = new Date(Date.now() - 2 * 3600_000);
  fs.utimesSync(stale, hoursAgo, hoursAgo);
  writeCodeCache({ file: path.join(dir, 'main-h.cache') }, undefined, 'r', Buffer.from('x'));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['main-h.cache', path.basename(live), 'main-new.cache'].sort());
});

test('a write that cannot happen is no error and leaves nothing', (t) => {
  const dir = tmpDir(t);
  const notADir = path.join(dir, 'file');
  fs.writeFileSync(notADir, '');
  writeCodeCache({ file: path.join(notADir, 'main-h.cache') }, undefined, 'r', Buffer.from('x'));
  assert.deepEqual(fs.readdirSync(dir), ['file']);
});

test('a cache made after running holds the functions that ran, and V8 takes it back', () => {
  const source = 'exports.f = function f(x) { return [x, x * 2].map((y) => y + 1); };';
  const run = (cachedData?: Buffer) => {
    const script = new vm.Script(wrapBundle(source), { filename: 'cc-test.cjs', cachedData });
    const mod = { exports: {} as { f(x: number): number[] } };
    (script.runInThisContext() as (...a: unknown[]) => void)(mod.exports, undefined, mod, 'cc-test.cjs', '.');
    return { script, mod };
  };
  const cold = run();
  const topOnly = cold.script.createCachedData();
  assert.deepEqual(cold.mod.exports.f(1), [2, 3]);
  const afterRun = cold.script.createCachedData();
  assert.ok(afterRun.length > topOnly.length, `after running: ${afterRun.length} bytes, top level only: ${topOnly.length}`);
  const warm = run(afterRun);
  assert.equal(warm.script.cachedDataRejected, false);
  assert.deepEqual(warm.mod.exports.f(2), [3, 5]);
});
