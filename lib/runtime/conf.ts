// Network configuration lists as libcni loads them: `*.conflist` first, then the
// deprecated single-plugin `*.conf`/`*.json` wrapped as a one-plugin list.
import fs from 'node:fs';
import path from 'node:path';

import { CniError, ERR_INCOMPATIBLE_VERSION, ERR_INVALID_CONFIG } from '../cni/errors.ts';
import { compareVersions, CURRENT_VERSION, isSupportedVersion, parseVersion, SUPPORTED_VERSIONS } from '../cni/versions.ts';

/** One plugin object of a list, kept as parsed JSON: runtimes keep unknown keys. */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface NetworkList {
  name: string;
  /** The version every plugin is called with. */
  cniVersion: string;
  disableCheck: boolean;
  disableGC: boolean;
  loadOnlyInlinedPlugins: boolean;
  plugins: PluginConf[];
  /** The configuration as cached with each attachment: the file as read, or the wrapped list. */
  bytes: Buffer;
  /** Where the list came from, for messages. */
  source: string;
}

/** The version a spec-less config means. */
const DEFAULT_VERSION = '0.1.0';

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(source: string, problem: string): CniError {
  return new CniError(ERR_INVALID_CONFIG, `error parsing configuration ${source}`, problem);
}

function parseJSONObject(bytes: Buffer, source: string): Obj {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, ''));
  } catch (e) {
    throw invalid(source, (e as Error).message);
  }
  if (!isObject(raw)) throw invalid(source, 'not a JSON object');
  return raw;
}

/**
 * The version to run a list with: `cniVersion`, or with `cniVersions` the highest
 * version we support among both (libcni likewise ignores versions newer than its own).
 */
export function pickVersion(cniVersion: unknown, cniVersions: unknown, source = 'configuration'): string {
  if (cniVersion !== undefined && cniVersion !== null && typeof cniVersion !== 'string') {
    throw invalid(source, `invalid cniVersion type ${typeof cniVersion}`);
  }
  const declared = cniVersion || undefined;
  if (cniVersions === undefined || cniVersions === null) {
    const v = declared ?? DEFAULT_VERSION;
    requireSupported(v, source);
    return v;
  }
  if (!Array.isArray(cniVersions)) throw invalid(source, 'cniVersions must be a list of strings');
  const candidates: string[] = [];
  cniVersions.forEach((v, i) => {
    if (typeof v !== 'string') throw invalid(source, `cniVersions[${i}] must be a string`);
    validVersion(v, `cniVersions[${i}]`, source);
    candidates.push(v);
  });
  if (declared !== undefined) {
    validVersion(declared, 'cniVersion', source);
    candidates.push(declared);
  }
  const usable = candidates.filter(isSupportedVersion).sort(compareVersions);
  const best = usable.at(-1);
  if (best === undefined) {
    throw new CniError(
      ERR_INCOMPATIBLE_VERSION,
      'incompatible CNI versions',
      `${source} offers ${JSON.stringify(candidates)}, this runtime supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    );
  }
  return best;
}

function validVersion(v: string, field: string, source: string): void {
  try {
    parseVersion(v);
  } catch {
    throw invalid(source, `invalid ${field} ${JSON.stringify(v)}`);
  }
}

function requireSupported(v: string, source: string): void {
  if (!isSupportedVersion(v)) {
    throw new CniError(
      ERR_INCOMPATIBLE_VERSION,
      'incompatible CNI versions',
      `${source} is ${JSON.stringify(v)}, this runtime supports up to ${CURRENT_VERSION}: ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    );
  }
}

/** libcni reads these flags as booleans or the strings "true"/"false" (any case). */
function readFlag(o: Obj, key: string, source: string): boolean {
  const v = o[key];
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.toLowerCase();
    if (s === 'true') return true;
    if (s === 'false') return false;
  }
  throw invalid(source, `invalid value ${JSON.stringify(v)} for ${key}`);
}

/** A plugin object: needs a `type` usable as a file name; `capabilities` maps names to booleans. */
export function pluginFromJSON(raw: unknown, source: string): PluginConf {
  if (!isObject(raw)) throw invalid(source, 'plugin configuration must be a JSON object');
  const type = raw.type;
  if (typeof type !== 'string' || type === '') throw invalid(source, "missing 'type'");
  if (type.includes('/') || type === '.' || type === '..') {
    throw invalid(source, `plugin type ${JSON.stringify(type)} is not a plain file name`);
  }
  const caps = raw.capabilities;
  if (caps !== undefined && caps !== null) {
    if (!isObject(caps) || !Object.values(caps).every((v) => typeof v === 'boolean')) {
      throw invalid(source, 'capabilities must map capability names to true or false');
    }
  }
  return raw as PluginConf;
}

/** A `.conflist` document (plugins from `<dir>/<name>/*.conf` are added by the file loader). */
export function networkListFromBytes(bytes: Buffer, source = 'configuration list'): NetworkList {
  const raw = parseJSONObject(bytes, source);
  if (!('name' in raw)) throw invalid(source, 'no name');
  if (typeof raw.name !== 'string') throw invalid(source, `invalid name type ${typeof raw.name}`);
  const list: NetworkList = {
    name: raw.name,
    cniVersion: pickVersion(raw.cniVersion, raw.cniVersions, source),
    disableCheck: readFlag(raw, 'disableCheck', source),
    disableGC: readFlag(raw, 'disableGC', source),
    loadOnlyInlinedPlugins: readFlag(raw, 'loadOnlyInlinedPlugins', source),
    plugins: [],
    bytes,
    source,
  };
  if (raw.plugins === undefined) {
    if (list.loadOnlyInlinedPlugins) throw invalid(source, "loadOnlyInlinedPlugins is true, and no 'plugins' key");
    return list;
  }
  if (!Array.isArray(raw.plugins)) throw invalid(source, "invalid 'plugins' type");
  if (raw.plugins.length === 0) throw invalid(source, 'no plugins in list');
  list.plugins = raw.plugins.map((p, i) => pluginFromJSON(p, `${source} (plugin ${i})`));
  return list;
}

/** A deprecated single-plugin config, wrapped as a one-plugin list the way libcni does. */
export function networkListFromConf(bytes: Buffer, source = 'configuration'): NetworkList {
  const raw = parseJSONObject(bytes, source);
  const plugin = pluginFromJSON(raw, source);
  const name = typeof raw.name === 'string' ? raw.name : '';
  const cniVersion = typeof raw.cniVersion === 'string' ? raw.cniVersion : '';
  const wrapped = Buffer.from(JSON.stringify({ cniVersion, name, plugins: [plugin] }));
  return networkListFromBytes(wrapped, source);
}

/** Go's filepath.Ext: from the last dot of the base name (".conf" has the extension ".conf"). */
function extension(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot === -1 ? '' : name.slice(dot);
}

/** Non-directory entries of `dir` with one of `extensions`, sorted by name (byte order); none when dir is missing. */
export function confFiles(dir: string, extensions: readonly string[]): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CniError(ERR_INVALID_CONFIG, `cannot read configuration directory ${dir}`, (e as Error).message);
  }
  return entries
    .filter((e) => !e.isDirectory() && extensions.includes(extension(e.name)))
    .map((e) => e.name)
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((name) => path.join(dir, name));
}

function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new CniError(ERR_INVALID_CONFIG, `error reading ${file}`, (e as Error).message);
  }
}

/** A conflist file plus, unless loadOnlyInlinedPlugins, the plugin objects in `<dir>/<name>/*.conf`. */
export function networkListFromFile(file: string): NetworkList {
  const list = networkListFromBytes(readFile(file), file);
  // A name such as "../x" must not lead the lookup out of the directory.
  const plainName = list.name !== '' && !list.name.includes('/') && list.name !== '.' && list.name !== '..';
  if (!list.loadOnlyInlinedPlugins && plainName) {
    for (const pluginFile of confFiles(path.join(path.dirname(file), list.name), ['.conf'])) {
      list.plugins.push(pluginFromJSON(parseJSONObject(readFile(pluginFile), pluginFile), pluginFile));
    }
  }
  if (list.plugins.length === 0) throw invalid(file, 'no plugin configs found');
  return list;
}

/**
 * The network `name` from `dir`: the first `*.conflist` (by file name) with that name, else the
 * first `*.conf`/`*.json` with that name as a one-plugin list. As in libcni, a broken file met on
 * the way is an error (naming the file), not skipped.
 */
export function loadNetworkList(dir: string, name: string): NetworkList {
  const lists = confFiles(dir, ['.conflist']);
  for (const file of lists) {
    const list = networkListFromFile(file);
    if (list.name === name) return list;
  }
  const singles = confFiles(dir, ['.conf', '.json']);
  if (lists.length === 0 && singles.length === 0) {
    throw new CniError(ERR_INVALID_CONFIG, `no net configurations found in ${dir}`);
  }
  for (const file of singles) {
    const bytes = readFile(file);
    const raw = parseJSONObject(bytes, file);
    pluginFromJSON(raw, file);
    if (raw.name === name) return networkListFromConf(bytes, file);
  }
  throw new CniError(ERR_INVALID_CONFIG, `no net configuration with name "${name}" in ${dir}`);
}
