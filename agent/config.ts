// cattle-net's options: flags win over environment variables, which win over
// rancher/vxlan's defaults. Pure (the environment is passed in).

export const DEFAULT_METADATA_ADDRESS = '169.254.169.250';
export const DEFAULT_BRIDGE = 'docker0';
export const DEFAULT_VNI = 1042;
export const DEFAULT_VTEP_MTU = 1500;
/** The metadata API version rancher/vxlan reads. */
export const METADATA_VERSION = '2016-07-29';
/** The older one also accepted (same fields for what the agent reads). */
export const METADATA_VERSION_OLD = '2015-12-19';
/** --metadata-version: one of them, or `auto` (2016-07-29, 2015-12-19 where that is not served). */
export type MetadataVersionChoice = 'auto' | typeof METADATA_VERSION | typeof METADATA_VERSION_OLD;
/** UDP port of the overlay, fixed as in rancher/vxlan. */
export const VXLAN_PORT = 4789;
/** Where the agent keeps its lock, status and applied view (one agent per host). */
export const DEFAULT_RUN_DIR = '/run/cattle-cni';

export interface AgentOptions {
  metadataAddress: string;
  /** The metadata API version to read; `auto` unless given. */
  metadataVersion?: MetadataVersionChoice;
  bridge: string;
  vni: number;
  vtepMtu: number;
  /**
   * Underlay interface: the only input interface the filter looks at. Not the VTEP's `dev` (as in
   * rancher/vxlan, which has none): a bound VTEP's MTU is capped at the underlay's − 50, so the
   * default 1500 would be refused.
   */
  underlayIface?: string;
  /** Lock, status file and applied view live here. */
  runDir: string;
  /** Unix socket answering status (and, later, the fast path); undefined: none. */
  socket?: string;
  /** Longest a metadata long-poll is held, seconds. */
  pollWaitS: number;
  /** Check (and repair) the VTEP, the filter and the entries against the kernel this often, seconds. */
  resyncS: number;
  /** The members-only filter on UDP 4789 (on unless --no-filter). */
  filter: boolean;
  /**
   * The filter's backend: by default nftables where `nft` exists, else iptables
   * (--filter-backend, CATTLE_NET_FILTER_BACKEND: force one, e.g. to test the other).
   */
  filterBackend?: 'nft' | 'iptables';
}

export class UsageError extends Error {}

export type Command = 'run' | 'status' | 'teardown' | 'help';

export interface Parsed {
  command: Command;
  options: AgentOptions;
  json: boolean;
  /** teardown --force: remove the VTEP even with entries not made by cattle-net on it. */
  force: boolean;
}

const VALUE_FLAGS = new Set(['metadata-address', 'metadata-version', 'bridge', 'vni', 'vxlan-vni', 'vtep-mtu', 'underlay-iface', 'socket', 'run-dir', 'poll-wait', 'resync', 'filter-backend']);
const BOOL_FLAGS = new Set(['json', 'no-filter', 'force']);

/** A decimal integer within [min, max], else a UsageError naming where it came from. */
export function intIn(text: string, min: number, max: number, what: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t) || Number(t) < min || Number(t) > max) throw new UsageError(`${what}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return Number(t);
}

/** Interface names as the kernel takes them: 1–15 bytes, no "/", whitespace or ":". */
export function checkIfname(name: string, what: string): string {
  if (!/^[^\s/:]{1,15}$/.test(name) || name === '.' || name === '..') throw new UsageError(`${what}: not a valid interface name: ${JSON.stringify(name)}`);
  return name;
}

export function parseArgs(args: string[], env: Record<string, string | undefined>): Parsed {
  let command: Command = 'run';
  let rest = args;
  const first = args[0];
  if (first === 'status' || first === 'teardown' || first === 'run') {
    command = first;
    rest = args.slice(1);
  } else if (first === 'help' || first === '--help' || first === '-h') {
    command = 'help';
    rest = [];
  }
  const flags = new Map<string, string | true>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const name = m[1]!;
    if (BOOL_FLAGS.has(name)) {
      if (m[2] !== undefined) throw new UsageError(`--${name} takes no value`);
      flags.set(name, true);
    } else if (VALUE_FLAGS.has(name)) {
      const value = m[2] ?? rest[++i];
      if (value === undefined || (m[2] === undefined && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  const str = (name: string): string | undefined => {
    const v = flags.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  const envValue = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);

  const metadataAddress = (str('metadata-address') ?? envValue('RANCHER_METADATA_ADDRESS') ?? DEFAULT_METADATA_ADDRESS).trim();
  if (metadataAddress === '') throw new UsageError('--metadata-address: empty');
  const bridge = checkIfname(str('bridge') ?? envValue('RANCHER_BRIDGE') ?? DEFAULT_BRIDGE, str('bridge') !== undefined ? '--bridge' : 'RANCHER_BRIDGE');
  const vniText = str('vni') ?? str('vxlan-vni');
  const vni = vniText !== undefined ? intIn(vniText, 1, 0xffffff, '--vni')
    : envValue('RANCHER_VXLAN_VNI') !== undefined ? intIn(envValue('RANCHER_VXLAN_VNI')!, 1, 0xffffff, 'RANCHER_VXLAN_VNI') : DEFAULT_VNI;
  const mtuText = str('vtep-mtu');
  const vtepMtu = mtuText !== undefined ? intIn(mtuText, 68, 65535, '--vtep-mtu')
    : envValue('RANCHER_VTEP_MTU') !== undefined ? intIn(envValue('RANCHER_VTEP_MTU')!, 68, 65535, 'RANCHER_VTEP_MTU') : DEFAULT_VTEP_MTU;
  const underlay = str('underlay-iface');
  const runDir = str('run-dir') ?? envValue('CATTLE_CNI_AGENT_DIR') ?? DEFAULT_RUN_DIR;
  if (!runDir.startsWith('/')) throw new UsageError(`--run-dir: must be an absolute path, got ${JSON.stringify(runDir)}`);
  const socketText = str('socket') ?? envValue('CATTLE_CNI_AGENT_SOCKET') ?? `${runDir.replace(/\/+$/, '')}/agent.sock`;
  if (socketText !== 'none' && !socketText.startsWith('/')) throw new UsageError(`--socket: must be an absolute path or "none", got ${JSON.stringify(socketText)}`);
  if (Buffer.byteLength(socketText) > 107) throw new UsageError('--socket: a unix socket path is limited to 107 bytes');
  const options: AgentOptions = {
    metadataAddress,
    bridge,
    vni,
    vtepMtu,
    runDir,
    pollWaitS: str('poll-wait') !== undefined ? intIn(str('poll-wait')!, 1, 120, '--poll-wait') : 30,
    resyncS: str('resync') !== undefined ? intIn(str('resync')!, 1, 86400, '--resync') : 60,
    filter: flags.get('no-filter') !== true,
  };
  if (underlay !== undefined) options.underlayIface = checkIfname(underlay, '--underlay-iface');
  if (socketText !== 'none') options.socket = socketText;
  const mdVersion = str('metadata-version') ?? envValue('RANCHER_METADATA_VERSION');
  if (mdVersion !== undefined) {
    if (mdVersion !== 'auto' && mdVersion !== METADATA_VERSION && mdVersion !== METADATA_VERSION_OLD) throw new UsageError(`--metadata-version: expected auto, ${METADATA_VERSION} or ${METADATA_VERSION_OLD}, got ${JSON.stringify(mdVersion)}`);
    options.metadataVersion = mdVersion;
  }
  const backend = str('filter-backend') ?? envValue('CATTLE_NET_FILTER_BACKEND');
  if (backend !== undefined) {
    if (backend !== 'nft' && backend !== 'iptables') throw new UsageError(`--filter-backend: expected nft or iptables, got ${JSON.stringify(backend)}`);
    options.filterBackend = backend;
  }
  if (flags.get('force') === true && command !== 'teardown') throw new UsageError('--force is for teardown only');
  return { command, options, json: flags.get('json') === true, force: flags.get('force') === true };
}

/** The VTEP's name, always `vtep<VNI>` as in rancher/vxlan. */
export function vtepName(vni: number): string {
  return `vtep${vni}`;
}

export const USAGE = `Usage:
  cattle-net [run] [--metadata-address HOST[:PORT]] [--metadata-version V] [--bridge NAME] [--vni N]
                   [--vtep-mtu N] [--underlay-iface IFACE] [--socket PATH|none] [--run-dir DIR]
                   [--no-filter] [--filter-backend nft|iptables]
  cattle-net status [--json]
  cattle-net teardown [--force]

run       the per-host VXLAN agent (rancher/vxlan compatible): one per host (a lock), prints
          {"ready": …} once the first reconcile is done, runs until SIGTERM/SIGINT, which leave
          the data plane in place
          --metadata-address  RANCHER_METADATA_ADDRESS, default ${DEFAULT_METADATA_ADDRESS}
          --metadata-version  RANCHER_METADATA_VERSION: ${METADATA_VERSION}, ${METADATA_VERSION_OLD} or auto (default:
                              ${METADATA_VERSION}, ${METADATA_VERSION_OLD} where the server does not serve it)
          --bridge            RANCHER_BRIDGE, default ${DEFAULT_BRIDGE}
          --vni               RANCHER_VXLAN_VNI, default ${DEFAULT_VNI} (device vtep<VNI>, UDP ${VXLAN_PORT})
          --vtep-mtu          RANCHER_VTEP_MTU, default ${DEFAULT_VTEP_MTU}
          --underlay-iface    the underlay interface: the filter then looks at it only
          --socket            CATTLE_CNI_AGENT_SOCKET, default <run dir>/agent.sock ("none": no socket)
          --run-dir           CATTLE_CNI_AGENT_DIR, default ${DEFAULT_RUN_DIR}
          --no-filter         no members-only nftables filter on UDP ${VXLAN_PORT}
          --filter-backend    CATTLE_NET_FILTER_BACKEND: nft or iptables (default nft where it exists)
status    what the agent last applied (peers, entries, metadata version, timings, errors)
teardown  remove what the agent made (VTEP and its entries, the filter); refused while it runs;
          a VTEP that also carries entries not made by cattle-net keeps them (and so stays)
          unless --force
`;
