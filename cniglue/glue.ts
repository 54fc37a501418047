// The CNI side of cniglue: run every configuration of a network for one
// container through the runtime library. ADD in file order, stopping at the
// first failure (which is rolled back); DEL in reverse, going on past failures.
// Synchronous, like the runtime library: hook mode runs it in-process, the
// watcher in a child process per operation.
import { toCniError } from '../lib/cni/errors.ts';
import { convertResult } from '../lib/cni/result.ts';
import { CURRENT_VERSION } from '../lib/cni/versions.ts';
import { listCacheEntries } from '../lib/runtime/cache.ts';
import type { NetworkList } from '../lib/runtime/conf.ts';
import { addNetworkList, delNetworkList, getCachedResult, type RuntimeConf, type RuntimeOptions } from '../lib/runtime/runtime.ts';
import { loadState } from '../lib/state.ts';
import { DEFAULT_CNI_PATH, DEFAULT_CONF_ROOT, loadNetworkConfigs, networkNames } from './configs.ts';
import { asPortMappings, PORT_MAPPINGS_CAPABILITY, portCapabilityArgs, type PortMapping } from './ports.ts';

export const IFNAME = 'eth0';
export const DEFAULT_CACHE_DIR = '/var/lib/cni';
/** A plugin that takes longer than this is killed (the agent gives up after 30 s anyway). */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;

export interface GlueSettings {
  /** Holds `<network>.d` directories. */
  confRoot: string;
  /** Plugin directories, in order. */
  cniPath: string[];
  /** libcni-format result cache root (`results/` inside). */
  cacheDir: string;
  pluginTimeoutMs: number;
}

export function defaultSettings(): GlueSettings {
  return { confRoot: DEFAULT_CONF_ROOT, cniPath: [...DEFAULT_CNI_PATH], cacheDir: DEFAULT_CACHE_DIR, pluginTimeoutMs: DEFAULT_PLUGIN_TIMEOUT_MS };
}

/** One container on one network. */
export interface Attachment {
  network: string;
  /** Full Docker container ID. */
  containerId: string;
  /** `/proc/<pid>/ns/net` for ADD; DEL sends none, as cniglue did. */
  netns: string;
  args: [string, string][];
  /**
   * Docker's published ports (ports.ts), sent as the `portMappings` capability
   * to the plugins that declare it, on ADD and DEL alike. None: no capability args.
   */
  portMappings?: PortMapping[];
}

type JSONObject = Record<string, unknown>;

function runtimeOptions(s: GlueSettings): RuntimeOptions {
  // As in cniglue, plugins (and whatever they run) see the plugin path as PATH.
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: s.cniPath.join(':') };
  return { path: s.cniPath, cacheDir: s.cacheDir, env, timeoutMs: s.pluginTimeoutMs };
}

function runtimeConf(a: Attachment, netns: string): RuntimeConf {
  const capabilityArgs = portCapabilityArgs(a.portMappings);
  return { containerId: a.containerId, netns, ifname: IFNAME, args: a.args, ...(capabilityArgs ? { capabilityArgs } : {}) };
}

/** Does a result (any version) carry an address? */
export function hasAddress(result: JSONObject): boolean {
  if (typeof result.ip4 === 'object' && result.ip4 !== null) return true;
  if (typeof result.ip6 === 'object' && result.ip6 !== null) return true;
  return Array.isArray(result.ips) && result.ips.length > 0;
}

/** An error whose message names the network file that failed. */
function wrapped(list: NetworkList, e: unknown): Error {
  return new Error(`${list.source}: ${toCniError(e).message}`, { cause: e });
}

/**
 * ADD every configuration of the network in order. The answer is the last
 * result that carries an address (the last result when none does). A failure
 * stops the chain and DELs, in reverse, what was added including the failed
 * list (its plugins may have done part of their work), then throws.
 */
export function glueAdd(a: Attachment, s: GlueSettings): JSONObject {
  const lists = loadNetworkConfigs(s.confRoot, a.network);
  const opts = runtimeOptions(s);
  let answer: JSONObject | undefined;
  let last: JSONObject | undefined;
  const touched: NetworkList[] = [];
  for (const list of lists) {
    touched.push(list);
    try {
      last = addNetworkList(list, runtimeConf(a, a.netns), opts);
    } catch (e) {
      for (const done of touched.reverse()) {
        try {
          delNetworkList(done, runtimeConf(a, a.netns), opts);
        } catch {
          // rollback is best effort; the ADD error is what matters
        }
      }
      throw wrapped(list, e);
    }
    if (hasAddress(last)) answer = last;
  }
  return answer ?? last ?? {};
}

/**
 * DEL every configuration of the network in reverse order, each attempted even
 * when another failed; throws the last failure. The netns is not sent (the
 * container is gone or going), as cniglue did.
 */
export function glueDel(a: Attachment, s: GlueSettings): void {
  const lists = loadNetworkConfigs(s.confRoot, a.network);
  const opts = runtimeOptions(s);
  let lastError: Error | undefined;
  for (const list of [...lists].reverse()) {
    try {
      delNetworkList(list, runtimeConf(a, ''), opts);
    } catch (e) {
      lastError = wrapped(list, e);
    }
  }
  if (lastError) throw lastError;
}

// ---- what an earlier watcher left behind ----------------------------------------

/**
 * Our veth plugins' names for their per-attachment state files (lib/state.ts),
 * by the type a configuration gives; those files hold the result in the
 * internal (CURRENT_VERSION) shape.
 */
const STATE_KEEPERS: ReadonlyMap<string, string> = new Map([
  ['cattle-bridge', 'cattle-bridge'],
  ['rancher-bridge', 'cattle-bridge'],
  ['cattle-ptp', 'cattle-ptp'],
]);

function cachedResultOf(list: NetworkList, a: Attachment, opts: RuntimeOptions): JSONObject | undefined {
  try {
    return getCachedResult(list, runtimeConf(a, ''), opts);
  } catch {
    return undefined; // unreadable: the plugin's own record may still tell
  }
}

/** The result the list's last plugin of ours stored, in the list's version. */
function pluginStoredResult(list: NetworkList, containerId: string): JSONObject | undefined {
  for (const plugin of [...list.plugins].reverse()) {
    const keeper = STATE_KEEPERS.get(plugin.type);
    if (!keeper) continue;
    const state = loadState<{ result?: unknown }>({ plugin: keeper, network: list.name, containerId, ifname: IFNAME });
    if (state?.result === undefined) return undefined;
    try {
      return convertResult(state.result, CURRENT_VERSION, list.cniVersion);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The result of an attachment made earlier, without running a plugin: per
 * configuration the libcni cache entry, else what our plugin stored; chosen
 * as glueAdd chooses. Undefined when nothing is stored (or the network has
 * no configurations any more).
 */
export function recoverResult(a: Attachment, s: GlueSettings): JSONObject | undefined {
  let lists: NetworkList[];
  try {
    lists = loadNetworkConfigs(s.confRoot, a.network);
  } catch {
    return undefined;
  }
  const opts = runtimeOptions(s);
  let answer: JSONObject | undefined;
  let last: JSONObject | undefined;
  for (const list of lists) {
    const r = cachedResultOf(list, a, opts) ?? pluginStoredResult(list, a.containerId);
    if (!r) continue;
    last = r;
    if (hasAddress(r)) answer = r;
  }
  return answer ?? last;
}

function listNamesOf(confRoot: string, network: string): string[] {
  try {
    return loadNetworkConfigs(confRoot, network).map((l) => l.name);
  } catch {
    return [];
  }
}

/**
 * The network, CNI_ARGS and published ports of a container Docker no longer knows, from its
 * libcni cache entries on eth0: the one `<network>.d` whose configurations
 * carry the cached names. Undefined when there are no entries, or when no
 * network or several networks match (DEL with a guessed network could hit
 * another attachment's state).
 */
export function attachmentFromCache(containerId: string, s: GlueSettings): Pick<Attachment, 'network' | 'args' | 'portMappings'> | undefined {
  let entries;
  try {
    entries = listCacheEntries(s.cacheDir, containerId).filter((e) => e.ifname === IFNAME);
  } catch {
    return undefined;
  }
  if (entries.length === 0) return undefined;
  const cached = new Set(entries.map((e) => e.network));
  let networks: string[];
  try {
    networks = networkNames(s.confRoot).filter((n) => listNamesOf(s.confRoot, n).some((name) => cached.has(name)));
  } catch {
    return undefined;
  }
  if (networks.length !== 1) return undefined;
  // The published ports the ADD was given (libcni keeps the capability args in the entry): DEL needs them too.
  const portMappings = asPortMappings(entries[0]!.capabilityArgs[PORT_MAPPINGS_CAPABILITY]);
  return { network: networks[0]!, args: entries[0]!.cniArgs, ...(portMappings && portMappings.length > 0 ? { portMappings } : {}) };
}
