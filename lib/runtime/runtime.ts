// The runtime side of CNI, as libcni does it: run a network configuration list's
// plugins for ADD, CHECK, DEL, GC and STATUS, and keep the result cache.
import { validateNetworkName } from '../cni/config.ts';
import type { CniCommand } from '../cni/env.ts';
import { validateContainerId, validateIfName } from '../cni/env.ts';
import { CniError, ERR_DECODE, ERR_INCOMPATIBLE_VERSION, ERR_IO, toCniError } from '../cni/errors.ts';
import { formatResult, parseResult } from '../cni/result.ts';
import { versionAtLeast } from '../cni/versions.ts';
import type { AttachmentKey } from './cache.ts';
import { DEFAULT_CACHE_DIR, listCacheEntries, readCachedResult, removeCacheEntry, writeCacheEntry } from './cache.ts';
import type { NetworkList, PluginConf } from './conf.ts';
import type { ExecOptions, PluginCall } from './invoke.ts';
import { execPlugin, execPluginJSON, findInPath } from './invoke.ts';

/** One attachment of a container to a network: libcni's RuntimeConf. */
export interface RuntimeConf {
  containerId: string;
  /** Path of the container's network namespace; may be '' for DEL. */
  netns: string;
  ifname: string;
  /** CNI_ARGS pairs. */
  args?: [string, string][];
  /** Capability arguments; each plugin gets only those it declares in `capabilities`. */
  capabilityArgs?: Record<string, unknown>;
}

export interface RuntimeOptions extends ExecOptions {
  /** Plugin directories, searched in order. */
  path: readonly string[];
  /** Holds `results/`; default /var/lib/cni as libcni. */
  cacheDir?: string;
}

/** A container interface the runtime still uses (GC keeps these). */
export interface GCAttachment {
  containerID: string;
  ifname: string;
}

type JSONObject = Record<string, unknown>;

function cacheDirOf(opts: RuntimeOptions): string {
  return opts.cacheDir ?? DEFAULT_CACHE_DIR;
}

function keyOf(list: NetworkList, rt: RuntimeConf): AttachmentKey {
  return { network: list.name, containerId: rt.containerId, ifname: rt.ifname };
}

function describe(plugin: PluginConf): string {
  return typeof plugin.name === 'string' && plugin.name !== ''
    ? `type="${plugin.type}" name="${plugin.name}"`
    : `type="${plugin.type}"`;
}

/** Same code, message naming the plugin and operation: `plugin type="bridge" failed (add): …`. */
function pluginFailed(plugin: PluginConf, op: string, e: unknown): CniError {
  const inner = toCniError(e);
  return new CniError(inner.code, `plugin ${describe(plugin)} failed (${op}): ${inner.msg}`, inner.details, { cause: e });
}

/** Several failures as one error: the first one's code, every message. */
function joinErrors(errors: CniError[]): CniError {
  if (errors.length === 1) return errors[0]!;
  return new CniError(errors[0]!.code, errors.map((e) => e.message).join('; '), undefined, { cause: errors });
}

/**
 * A plugin's stdin: its object from the list plus the list's name and cniVersion, prevResult when
 * given, and runtimeConfig holding only the capability arguments the plugin declares (a literal
 * runtimeConfig in the file stays when there are none, as in libcni).
 */
export function pluginStdin(
  list: NetworkList,
  plugin: PluginConf,
  prevResult: JSONObject | undefined,
  capabilityArgs: Record<string, unknown> = {},
): JSONObject {
  const conf: JSONObject = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  const runtimeConfig: JSONObject = {};
  for (const [capability, declared] of Object.entries(plugin.capabilities ?? {})) {
    if (declared === true && Object.hasOwn(capabilityArgs, capability)) runtimeConfig[capability] = capabilityArgs[capability];
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  return conf;
}

function callFor(command: CniCommand, rt: RuntimeConf | undefined, opts: RuntimeOptions): PluginCall {
  return {
    command,
    containerId: rt?.containerId ?? '',
    netns: rt?.netns ?? '',
    ifname: rt?.ifname ?? '',
    args: (rt?.args ?? []).map(([k, v]) => `${k}=${v}`).join(';'),
    path: opts.path,
  };
}

function runPlugin(command: CniCommand, conf: JSONObject, plugin: PluginConf, rt: RuntimeConf | undefined, opts: RuntimeOptions): void {
  execPlugin(findInPath(plugin.type, opts.path), JSON.stringify(conf), callFor(command, rt, opts), opts);
}

/** A result of any version (a reply without cniVersion is in the list's) written in the list's version. */
function inListVersion(raw: unknown, list: NetworkList, label: string): JSONObject {
  return formatResult(parseResult(raw, list.cniVersion, label), list.cniVersion);
}

/**
 * ADD: each plugin in order, result N as prevResult of N+1, stopping at the first failure.
 * The final result is cached and returned (in the list's cniVersion). A failed ADD caches
 * nothing: the caller should DEL.
 */
export function addNetworkList(list: NetworkList, rt: RuntimeConf, opts: RuntimeOptions): JSONObject {
  validateContainerId(rt.containerId);
  validateNetworkName(list.name);
  validateIfName(rt.ifname);
  let result: JSONObject | undefined;
  for (const plugin of list.plugins) {
    try {
      const pluginPath = findInPath(plugin.type, opts.path);
      const conf = pluginStdin(list, plugin, result, rt.capabilityArgs);
      const raw = execPluginJSON(pluginPath, conf, callFor('ADD', rt, opts), opts);
      if (raw === undefined) throw new CniError(ERR_DECODE, 'plugin printed no result');
      result = inListVersion(raw, list, 'result');
    } catch (e) {
      throw pluginFailed(plugin, 'add', e);
    }
  }
  const final = result ?? formatResult({}, list.cniVersion);
  try {
    writeCacheEntry(cacheDirOf(opts), {
      ...keyOf(list, rt),
      config: list.bytes,
      netns: rt.netns,
      cniArgs: rt.args ?? [],
      capabilityArgs: rt.capabilityArgs ?? {},
      result: final,
    });
  } catch (e) {
    throw new CniError(ERR_IO, `failed to set network "${list.name}" cached result`, toCniError(e).message);
  }
  return final;
}

/** The cached ADD result of an attachment in the list's cniVersion, or undefined when none is cached. */
export function getCachedResult(list: NetworkList, rt: RuntimeConf, opts: RuntimeOptions): JSONObject | undefined {
  const raw = readCachedResult(cacheDirOf(opts), keyOf(list, rt));
  if (raw === undefined) return undefined;
  return inListVersion(raw, list, 'cached result');
}

/**
 * CHECK (0.4.0+): each plugin in order with the cached result as prevResult; the first failure is
 * the answer. Nothing to do when the list says disableCheck.
 */
export function checkNetworkList(list: NetworkList, rt: RuntimeConf, opts: RuntimeOptions): void {
  if (!versionAtLeast(list.cniVersion, '0.4.0')) {
    throw new CniError(ERR_INCOMPATIBLE_VERSION, `configuration version "${list.cniVersion}" does not support the CHECK command`);
  }
  if (list.disableCheck) return;
  validateContainerId(rt.containerId);
  validateIfName(rt.ifname);
  let cached: JSONObject | undefined;
  try {
    cached = getCachedResult(list, rt, opts);
  } catch (e) {
    throw new CniError(toCniError(e).code, `failed to get network "${list.name}" cached result`, toCniError(e).message);
  }
  for (const plugin of list.plugins) {
    try {
      runPlugin('CHECK', pluginStdin(list, plugin, cached, rt.capabilityArgs), plugin, rt, opts);
    } catch (e) {
      throw pluginFailed(plugin, 'check', e);
    }
  }
}

/**
 * DEL: each plugin in reverse order with the cached result as prevResult (0.4.0+). Every plugin
 * runs even when an earlier one failed, so one broken plugin cannot leak the others' resources;
 * the first failure is reported. The cache entry goes once all succeeded, and is kept otherwise
 * so a retried DEL still has the result. An unreadable cache entry is dropped and DEL goes on without it.
 */
export function delNetworkList(list: NetworkList, rt: RuntimeConf, opts: RuntimeOptions): void {
  validateContainerId(rt.containerId);
  validateIfName(rt.ifname);
  const cacheDir = cacheDirOf(opts);
  let cached: JSONObject | undefined;
  if (versionAtLeast(list.cniVersion, '0.4.0')) {
    try {
      cached = getCachedResult(list, rt, opts);
    } catch {
      forgetCacheEntry(cacheDir, keyOf(list, rt));
      cached = undefined;
    }
  }
  const errors: CniError[] = [];
  for (const plugin of [...list.plugins].reverse()) {
    try {
      runPlugin('DEL', pluginStdin(list, plugin, cached, rt.capabilityArgs), plugin, rt, opts);
    } catch (e) {
      errors.push(pluginFailed(plugin, 'delete', e));
    }
  }
  if (errors.length > 0) throw errors[0]!;
  forgetCacheEntry(cacheDir, keyOf(list, rt));
}

/** Cache removal on DEL is best effort, as in libcni: a left-over entry only means a later GC DELs again. */
function forgetCacheEntry(cacheDir: string, key: AttachmentKey): void {
  try {
    removeCacheEntry(cacheDir, key);
  } catch {
    // nothing better to do; the plugins have already released everything
  }
}

/**
 * GC: first DEL every cached attachment of this network that is not in `validAttachments`
 * (undefined: none is valid, as cnitool's `gc`), then (1.1.0+) send GC to every plugin with the
 * valid attachments under `cni.dev/valid-attachments` and the older `cni.dev/attachments`.
 * Goes on past failures and reports them all. Nothing happens when the list says disableGC.
 */
export function gcNetworkList(list: NetworkList, validAttachments: GCAttachment[] | undefined, opts: RuntimeOptions): void {
  if (list.disableGC) return;
  const valid = new Set((validAttachments ?? []).map((a) => `${a.containerID}\0${a.ifname}`));
  const errors: CniError[] = [];
  for (const entry of listCacheEntries(cacheDirOf(opts))) {
    if (entry.network !== list.name || valid.has(`${entry.containerId}\0${entry.ifname}`)) continue;
    const rt: RuntimeConf = {
      containerId: entry.containerId,
      netns: entry.netns,
      ifname: entry.ifname,
      args: entry.cniArgs,
      capabilityArgs: entry.capabilityArgs,
    };
    try {
      delNetworkList(list, rt, opts);
    } catch (e) {
      const err = toCniError(e);
      errors.push(new CniError(err.code, `failed to delete stale attachment ${rt.containerId} ${rt.ifname}: ${err.message}`));
    }
  }
  if (versionAtLeast(list.cniVersion, '1.1.0')) {
    for (const plugin of list.plugins) {
      const conf: JSONObject = { ...plugin, name: list.name, cniVersion: list.cniVersion };
      if (validAttachments !== undefined) {
        conf['cni.dev/valid-attachments'] = validAttachments;
        conf['cni.dev/attachments'] = validAttachments;
      }
      try {
        runPlugin('GC', conf, plugin, undefined, opts);
      } catch (e) {
        errors.push(pluginFailed(plugin, 'gc', e));
      }
    }
  }
  if (errors.length > 0) throw joinErrors(errors);
}

/**
 * STATUS (1.1.0+; nothing to ask below): each plugin in order, the first failure is the answer
 * (50: cannot serve ADD now, 51: existing containers degraded).
 */
export function statusNetworkList(list: NetworkList, opts: RuntimeOptions): void {
  if (!versionAtLeast(list.cniVersion, '1.1.0')) return;
  for (const plugin of list.plugins) {
    try {
      runPlugin('STATUS', { ...plugin, name: list.name, cniVersion: list.cniVersion }, plugin, undefined, opts);
    } catch (e) {
      throw pluginFailed(plugin, 'status', e);
    }
  }
}
