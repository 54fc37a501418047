// The executable's SEA main script: runs the main bundle (SEA asset main.cjs)
// with the code cache of earlier runs (lib/code-cache.ts), and after a run
// that compiled what the cache lacks, writes a new one on the way out.
// Only built into the executable; from source, main.ts runs directly.
import path from 'node:path';
import sea from 'node:sea';
import vm from 'node:vm';

import { DEFAULT_CODE_CACHE_DIR, needsWrite, openCodeCache, wrapBundle, writeCodeCache } from './lib/code-cache.ts';

declare const MAIN_BUNDLE_HASH: string;

const filename = path.join(path.dirname(process.execPath), 'main.cjs');
const dir = process.env.CATTLE_CNI_CODE_CACHE_DIR || DEFAULT_CODE_CACHE_DIR;
const store = dir === 'none' ? undefined : openCodeCache(dir, MAIN_BUNDLE_HASH);
// Without a cache of our own yet, the build's (top level only, as a SEA's useCodeCache makes it).
const script = new vm.Script(wrapBundle(sea.getAsset('main.cjs', 'utf8')), {
  filename,
  cachedData: store?.found?.data ?? new Uint8Array(sea.getAsset('main.cjs.cache')),
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
// A run is a program and what it was asked: cattle-bridge ADD, cattle-cni add, …
const run = `${path.basename(process.argv[1] ?? process.argv0)} ${process.env.CNI_COMMAND ?? process.argv[2] ?? ''}`;
if (process.env.CATTLE_CNI_CODE_CACHE_DEBUG) {
  process.stderr.write(`code cache: ${store?.found ? store.file : 'build-time'} ${script.cachedDataRejected ? 'rejected' : 'accepted'}\n`);
}
if (store && needsWrite(store, script.cachedDataRejected, run)) {
  process.once('exit', () => writeCodeCache(store, script.cachedDataRejected, run, script.createCachedData()));
}
const bundle = { exports: {} };
(script.runInThisContext() as (...a: unknown[]) => void)(bundle.exports, require, bundle, filename, path.dirname(filename));
