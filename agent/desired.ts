// The desired overlay state from a metadata environment, decided exactly as
// rancher/vxlan decides it (docs: /work/shared/reference/rancher-vxlan.md),
// except that a bad record is skipped and reported instead of crashing the
// agent. Pure: no I/O.

export type Obj = Record<string, unknown>;

/** What the agent reads from metadata (API 2016-07-29). */
export interface Environment {
  self: Obj;
  hosts: Obj[];
  networks: Obj[];
  containers: Obj[];
}

export interface Desired {
  /** This host's agent IP and its VTEP MAC. */
  selfIp: string;
  vtepMac: string;
  /** Peer agent IP → its VTEP MAC (one FDB entry each). */
  peers: Map<string, string>;
  /** Remote container IP → its host's VTEP MAC (one permanent neighbour each). */
  neighbours: Map<string, string>;
  /** Records skipped, one line each (never fatal). */
  problems: string[];
}

/** Container states rancher/vxlan programs. */
export const LIVE_STATES: ReadonlySet<string> = new Set(['running', 'starting', 'stopping']);

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** A dotted-quad IPv4 address without leading zeros (what rancher/vxlan can turn into a MAC). */
export function isIpv4(v: unknown): v is string {
  return typeof v === 'string' && IPV4.test(v);
}

/** rancher/vxlan's VTEP MAC: 0e:00 and the four octets of the agent IP. */
export function vtepMac(agentIp: string): string {
  if (!isIpv4(agentIp)) throw new Error(`not an IPv4 address: ${JSON.stringify(agentIp)}`);
  return ['0e', '00', ...agentIp.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** A record's name for a problem line. */
function who(kind: string, r: Obj): string {
  const name = text(r.name) || text(r.hostname);
  const uuid = text(r.uuid);
  return `${kind} ${name ? `"${name}"` : ''}${name && uuid ? ' ' : ''}${uuid ? `(${uuid})` : ''}`.trim();
}

/** The uuids of the networks served: those whose metadata.cniConfig is a JSON object. */
export function servedNetworks(networks: readonly Obj[]): Set<string> {
  const out = new Set<string>();
  for (const n of networks) {
    if (!isObj(n)) continue;
    const meta = n.metadata;
    if (isObj(meta) && isObj(meta.cniConfig) && text(n.uuid) !== '') out.add(text(n.uuid));
  }
  return out;
}

/**
 * The desired state. Throws only when this host itself cannot take part (no
 * valid agent_ip of its own): then there is nothing sensible to program.
 */
export function desiredState(env: Environment): Desired {
  const problems: string[] = [];
  const selfHost = isObj(env.self.host) ? env.self.host : env.self;
  const selfIp = selfHost.agent_ip;
  const selfUuid = text(selfHost.uuid);
  if (!isIpv4(selfIp)) throw new Error(`this host's agent_ip is ${selfIp === undefined || selfIp === '' ? 'empty' : `not an IPv4 address: ${JSON.stringify(selfIp)}`} (self/host)`);

  // Hosts by uuid; peers by agent IP.
  const hostIp = new Map<string, string | undefined>(); // uuid → agent IP (undefined: invalid)
  const peers = new Map<string, string>();
  for (const h of env.hosts) {
    if (!isObj(h)) {
      problems.push('a host record is not an object: skipped');
      continue;
    }
    const uuid = text(h.uuid);
    const ip = h.agent_ip;
    const valid = isIpv4(ip);
    if (uuid !== '') hostIp.set(uuid, valid ? ip : undefined);
    const isSelf = (selfUuid !== '' && uuid === selfUuid) || ip === selfIp;
    if (isSelf) continue;
    if (!valid) {
      problems.push(`${who('host', h)}: agent_ip ${ip === undefined || ip === '' ? 'is empty' : `is not an IPv4 address: ${JSON.stringify(ip)}`}: skipped`);
      continue;
    }
    peers.set(ip, vtepMac(ip));
  }

  const networks = servedNetworks(env.networks);
  const neighbours = new Map<string, string>();
  const ownerOf = new Map<string, string>(); // container IP → who claimed it first
  for (const c of env.containers) {
    if (!isObj(c)) continue;
    if (!networks.has(text(c.network_uuid))) continue;
    if (text(c.network_from_container_uuid) !== '') continue;
    if (!LIVE_STATES.has(text(c.state))) continue;
    const hostUuid = text(c.host_uuid);
    if (hostUuid === '' || (selfUuid !== '' && hostUuid === selfUuid) || !hostIp.has(hostUuid)) continue;
    const ip = c.primary_ip;
    if (ip === undefined || ip === null || ip === '') continue;
    const agentIp = hostIp.get(hostUuid);
    if (agentIp === undefined) continue; // its host is invalid: reported with the host
    if (agentIp === selfIp) continue;
    if (!isIpv4(ip)) {
      problems.push(`${who('container', c)}: primary_ip is not an IPv4 address: ${JSON.stringify(ip)}: skipped`);
      continue;
    }
    if (ip === agentIp) continue;
    if (ip === selfIp || peers.has(ip)) {
      problems.push(`${who('container', c)}: primary_ip ${ip} is a host's agent IP: skipped`);
      continue;
    }
    const mac = vtepMac(agentIp);
    const earlier = neighbours.get(ip);
    if (earlier !== undefined) {
      if (earlier !== mac) problems.push(`${who('container', c)}: primary_ip ${ip} is also on another host (${ownerOf.get(ip)}): kept the first`);
      continue;
    }
    neighbours.set(ip, mac);
    ownerOf.set(ip, who('container', c));
  }
  return { selfIp, vtepMac: vtepMac(selfIp), peers, neighbours, problems };
}
