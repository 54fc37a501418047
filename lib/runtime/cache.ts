// The result cache in libcni's on-disk format, so that libcni-based tools
// (cnitool, podman, containerd) and ours can read each other's entries:
// <cacheDir>/results/<network>-<containerID>-<ifname>, dir 0700, files 0600.
import fs from 'node:fs';
import path from 'node:path';

import { CniError, ERR_IO } from '../cni/errors.ts';

export const DEFAULT_CACHE_DIR = '/var/lib/cni';
export const CACHE_KIND = 'cniCacheV1';

/** Which attachment an entry belongs to. */
export interface AttachmentKey {
  network: string;
  containerId: string;
  ifname: string;
}

/** One cached attachment, decoded (libcni's cachedInfo). */
export interface CacheEntry extends AttachmentKey {
  /** The network configuration the attachment was made with. */
  config: Buffer;
  netns: string;
  cniArgs: [string, string][];
  capabilityArgs: Record<string, unknown>;
  /** The final ADD result as stored (its own cniVersion inside); undefined when none. */
  result?: Record<string, unknown>;
}

function resultsDir(cacheDir: string): string {
  return path.join(cacheDir, 'results');
}

/** The cache file of an attachment. Parts that could leave the directory are refused. */
export function cacheFilePath(cacheDir: string, key: AttachmentKey): string {
  for (const [what, v] of [['network name', key.network], ['container ID', key.containerId], ['interface name', key.ifname]]) {
    if (v === '' || v.includes('/') || v.includes('\0')) {
      throw new CniError(
        ERR_IO,
        'cache file path requires network name, container ID and interface name without "/"',
        `${what} is ${JSON.stringify(v)}`,
      );
    }
  }
  return path.join(resultsDir(cacheDir), `${key.network}-${key.containerId}-${key.ifname}`);
}

/** The entry as libcni writes it: Go field order, base64 config, empty optional fields left out. */
export function encodeCacheEntry(e: CacheEntry): string {
  const out: Record<string, unknown> = {
    kind: CACHE_KIND,
    containerId: e.containerId,
    config: e.config.toString('base64'),
    ifName: e.ifname,
    networkName: e.network,
  };
  if (e.netns !== '') out.netns = e.netns;
  if (e.cniArgs.length > 0) out.cniArgs = e.cniArgs;
  if (Object.keys(e.capabilityArgs).length > 0) out.capabilityArgs = e.capabilityArgs;
  if (e.result && Object.keys(e.result).length > 0) out.result = e.result;
  return JSON.stringify(out);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A cniCacheV1 document, or undefined when the text is something else (e.g. the bare result
 * that libcni before the cniCacheV1 format stored; see readCachedResult).
 */
export function decodeCacheEntry(text: string): CacheEntry | undefined {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(o) || o.kind !== CACHE_KIND) return undefined;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const cniArgs = Array.isArray(o.cniArgs)
    ? o.cniArgs.filter((p): p is [string, string] => Array.isArray(p) && p.length === 2 && p.every((s) => typeof s === 'string'))
    : [];
  return {
    network: str(o.networkName),
    containerId: str(o.containerId),
    ifname: str(o.ifName),
    config: Buffer.from(str(o.config), 'base64'),
    netns: str(o.netns),
    cniArgs,
    capabilityArgs: isObject(o.capabilityArgs) ? o.capabilityArgs : {},
    result: isObject(o.result) ? o.result : undefined,
  };
}

/** Writes the entry atomically (temp file + rename), creating the results dir 0700. */
export function writeCacheEntry(cacheDir: string, entry: CacheEntry): string {
  const file = cacheFilePath(cacheDir, entry);
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(tmp, encodeCacheEntry(entry), { mode: 0o600 });
    fs.chmodSync(tmp, 0o600); // an umask may not widen it, but a stale temp file could have other bits
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new CniError(ERR_IO, `failed to write cache file ${file}`, (e as Error).message);
  }
  return file;
}

/** The raw text of an attachment's cache file, or undefined when there is none. */
export function readCacheText(cacheDir: string, key: AttachmentKey): string | undefined {
  const file = cacheFilePath(cacheDir, key);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CniError(ERR_IO, `failed to read cache file ${file}`, (e as Error).message);
  }
}

/**
 * The stored result of an attachment as raw JSON: the `result` of a cniCacheV1 entry, or the
 * whole file when it is the older bare-result format. Undefined when there is no cache file.
 */
export function readCachedResult(cacheDir: string, key: AttachmentKey): unknown {
  const text = readCacheText(cacheDir, key);
  if (text === undefined) return undefined;
  const entry = decodeCacheEntry(text);
  if (entry) return entry.result;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CniError(ERR_IO, `cache file ${cacheFilePath(cacheDir, key)} is not JSON`, (e as Error).message);
  }
}

export function readCacheEntry(cacheDir: string, key: AttachmentKey): CacheEntry | undefined {
  const text = readCacheText(cacheDir, key);
  return text === undefined ? undefined : decodeCacheEntry(text);
}

/** Removes an attachment's cache file; a missing file is fine. */
export function removeCacheEntry(cacheDir: string, key: AttachmentKey): void {
  const file = cacheFilePath(cacheDir, key);
  try {
    fs.rmSync(file, { force: true });
  } catch (e) {
    throw new CniError(ERR_IO, `failed to remove cache file ${file}`, (e as Error).message);
  }
}

/**
 * Every readable cniCacheV1 entry in the cache (sorted by file name), optionally only those of one
 * container; entries without network or interface name are skipped, as libcni does.
 */
export function listCacheEntries(cacheDir: string, containerId?: string): CacheEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync(resultsDir(cacheDir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CniError(ERR_IO, `failed to read cache directory ${resultsDir(cacheDir)}`, (e as Error).message);
  }
  names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const entries: CacheEntry[] = [];
  for (const name of names) {
    if (containerId && !name.includes(`-${containerId}-`)) continue;
    let text: string;
    try {
      text = fs.readFileSync(path.join(resultsDir(cacheDir), name), 'utf8');
    } catch {
      continue; // a directory, or gone meanwhile
    }
    const entry = decodeCacheEntry(text);
    if (!entry || entry.ifname === '' || entry.network === '') continue;
    if (containerId && entry.containerId !== containerId) continue;
    entries.push(entry);
  }
  return entries;
}
