// A V8 code cache for the executable's main bundle, made by the executable
// itself. Most of a cold plugin run's own time is V8 compiling the functions
// it calls (measured: ADD 22 ms cold vs 8 ms warm in-process). The SEA's
// build-time cache holds only the bundle's top level, since functions compile
// lazily on first call; a cache made at the end of a real run holds every
// function that run compiled. So the first run of each program and command
// (cattle-bridge ADD, cattle-bridge DEL, …) writes one, and later runs start
// with that code compiled.
//
// The file lives in a root-only directory on tmpfs (gone at reboot, made
// again by the next runs) and is named by the bundle's content hash: V8 itself
// checks only the source's length, so a cache must never meet other source.
// A file not owned by us, writable by others, malformed or rejected by V8 is
// simply not used and gets replaced. Nothing here may fail a plugin run.
import fs from 'node:fs';
import path from 'node:path';

export const DEFAULT_CODE_CACHE_DIR = '/run/cattle-cni/code-cache';
const MAGIC = 'CCC1';
/** Other builds' caches untouched this long are removed (an upgrade leaves the old one behind). */
const STALE_MS = 60 * 60 * 1000;

/** The bundle as a CommonJS module function, on its first line (its source map stays valid); caches are for this text. */
export function wrapBundle(source: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
}

export interface CacheFile {
  /** The runs (program and command) whose functions the cache holds. */
  covered: string[];
  data: Buffer;
}

/** magic, u32 header length, JSON header, V8 cache data. */
export function encodeCacheFile(f: CacheFile): Buffer {
  const header = Buffer.from(JSON.stringify({ covered: f.covered }));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  return Buffer.concat([Buffer.from(MAGIC), len, header, f.data]);
}

export function decodeCacheFile(buf: Buffer): CacheFile | undefined {
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== MAGIC) return undefined;
  const len = buf.readUInt32LE(4);
  if (8 + len >= buf.length) return undefined;
  try {
    const header: unknown = JSON.parse(buf.toString('utf8', 8, 8 + len));
    const covered = (header as { covered?: unknown }).covered;
    if (!Array.isArray(covered) || !covered.every((c) => typeof c === 'string')) return undefined;
    return { covered, data: buf.subarray(8 + len) };
  } catch {
    return undefined;
  }
}

export interface CodeCacheStore {
  file: string;
  /** What a run found: undefined when there was no usable cache. */
  found?: CacheFile;
}

/** The cache file for a bundle with this content hash, and what it holds (if usable). */
export function openCodeCache(dir: string, bundleHash: string): CodeCacheStore {
  const file = path.join(dir, `main-${bundleHash}.cache`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const st = fs.fstatSync(fd);
    // Bytecode is code: only a regular file that only we could have written.
    if (!st.isFile() || st.uid !== process.geteuid?.() || (st.mode & 0o022) !== 0) return { file };
    return { file, found: decodeCacheFile(fs.readFileSync(fd)) };
  } catch {
    return { file };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Whether this run should write the cache: none usable, V8 refused it, or it lacks this run's functions. */
export function needsWrite(store: CodeCacheStore, rejected: boolean | undefined, run: string): boolean {
  return !store.found || rejected === true || !store.found.covered.includes(run);
}

/** Write the cache atomically (temporary file, then rename); errors are swallowed. */
export function writeCodeCache(store: CodeCacheStore, rejected: boolean | undefined, run: string, data: Buffer): void {
  const covered = store.found && !rejected ? [...new Set([...store.found.covered, run])] : [run];
  const dir = path.dirname(store.file);
  const tmp = `${store.file}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(tmp, encodeCacheFile({ covered, data }), { mode: 0o600 });
    fs.renameSync(tmp, store.file);
    removeStale(dir, path.basename(store.file));
  } catch {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // nothing more to do: a cache is only ever an optimisation
    }
  }
}

/** Other builds' caches not used for a while, and temporary files of writers that died. */
function removeStale(dir: string, keep: string): void {
  const now = Date.now();
  for (const name of fs.readdirSync(dir)) {
    if (name === keep) continue;
    const file = path.join(dir, name);
    const tmpPid = /\.(\d+)\.tmp$/.exec(name)?.[1];
    if (tmpPid !== undefined ? !processAlive(Number(tmpPid)) : name.endsWith('.cache') && now - fs.statSync(file).mtimeMs > STALE_MS) {
      fs.rmSync(file, { force: true });
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
