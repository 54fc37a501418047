// `docker run -p` for CNI: a container's HostConfig.PortBindings (the same
// shape in hostconfig.json, which hook mode reads, and in `docker inspect`,
// which the watcher reads) as the `portMappings` capability argument of the
// CNI conventions. The runtime library hands it, as runtimeConfig, only to the
// plugins that declare `"capabilities": {"portMappings": true}` (e.g. the
// reference `portmap` chained after the bridge), on ADD and on DEL alike.
//
// PortBindings: `{"<port>[-<port>][/<proto>]": [{"HostIp": "", "HostPort": "8080"}, …] | null}`.
// Docker writes one key per container port (the CLI expands `-p 8000-8002:80-82`
// to 80/tcp→8000, 81/tcp→8001, 82/tcp→8002); a key that is still a range is
// expanded here the same way.
import net from 'node:net';

/** One entry of the `portMappings` capability (CNI CONVENTIONS.md). */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  /** Only when Docker has one: `0.0.0.0` limits the mapping to IPv4, `::` to IPv6. */
  hostIP?: string;
}

export const PORT_MAPPINGS_CAPABILITY = 'portMappings';

const PROTOCOLS: ReadonlySet<string> = new Set(['tcp', 'udp', 'sctp']);

export class PortBindingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortBindingsError';
  }
}

export interface PortConversion {
  mappings: PortMapping[];
  /** Bindings that cannot become a mapping and are left out, each with the reason. */
  ignored: string[];
}

type Range = [first: number, last: number];

function port(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new PortBindingsError(`${what}: ${JSON.stringify(text)} is not a port number (1-65535)`);
  }
  return Number(text);
}

function range(text: string, what: string): Range {
  const dash = text.indexOf('-');
  if (dash === -1) {
    const p = port(text, what);
    return [p, p];
  }
  const first = port(text.slice(0, dash), what);
  const last = port(text.slice(dash + 1), what);
  if (last < first) throw new PortBindingsError(`${what}: range ${JSON.stringify(text)} ends before it starts`);
  return [first, last];
}

function size(r: Range): number {
  return r[1] - r[0] + 1;
}

/** `80`, `80/tcp`, `53/UDP`, `8000-8002/tcp`: the container ports and the protocol (default tcp). */
function parseKey(key: string): { ports: Range; protocol: PortMapping['protocol'] } {
  const slash = key.indexOf('/');
  const portText = (slash === -1 ? key : key.slice(0, slash)).trim();
  const proto = (slash === -1 ? 'tcp' : key.slice(slash + 1)).trim().toLowerCase();
  if (!PROTOCOLS.has(proto)) throw new PortBindingsError(`PortBindings ${JSON.stringify(key)}: protocol ${JSON.stringify(proto)} is not tcp, udp or sctp`);
  return { ports: range(portText, `PortBindings ${JSON.stringify(key)}`), protocol: proto as PortMapping['protocol'] };
}

function hostIPOf(v: unknown, key: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new PortBindingsError(`PortBindings ${JSON.stringify(key)}: HostIp must be a string`);
  const ip = v.trim().replace(/^\[(.*)\]$/, '$1');
  if (ip === '') return undefined;
  if (net.isIP(ip) === 0) throw new PortBindingsError(`PortBindings ${JSON.stringify(key)}: HostIp ${JSON.stringify(v)} is not an IP address`);
  return ip;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** By code units, not locale: the order must not depend on the machine. */
function text(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compare(a: PortMapping, b: PortMapping): number {
  return a.containerPort - b.containerPort || text(a.protocol, b.protocol)
    || a.hostPort - b.hostPort || text(a.hostIP ?? '', b.hostIP ?? '');
}

/**
 * The port mappings of HostConfig.PortBindings (absent or null: none), in a
 * stable order (container port, protocol, host port, host IP) without
 * duplicates, so ADD and a later DEL send the very same list.
 *  - a container port range and a host port range of the same length map pairwise;
 *  - one container port and a host port range (`-p 8000-8010:80`, where Docker
 *    picks a free port of the range) maps the range's first port;
 *  - a binding without a host port (`-p 80`, `-P`; Docker would pick an
 *    ephemeral port) is ignored: a mapping needs a fixed port;
 *  - HostIp is passed on when set.
 * Anything malformed (a bad port, protocol, address, ranges of different
 * lengths) throws PortBindingsError.
 */
export function portMappingsFrom(bindings: unknown): PortConversion {
  const out: PortConversion = { mappings: [], ignored: [] };
  if (bindings === undefined || bindings === null) return out;
  if (!isObject(bindings)) throw new PortBindingsError('PortBindings must be an object');
  const seen = new Set<string>();
  const add = (m: PortMapping) => {
    const k = `${m.hostIP ?? ''} ${m.hostPort} ${m.protocol} ${m.containerPort}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.mappings.push(m);
  };
  for (const [key, list] of Object.entries(bindings)) {
    const { ports, protocol } = parseKey(key);
    if (list === null || list === undefined) continue; // exposed, not published
    if (!Array.isArray(list)) throw new PortBindingsError(`PortBindings ${JSON.stringify(key)} must be a list of bindings`);
    for (const b of list) {
      if (!isObject(b)) throw new PortBindingsError(`PortBindings ${JSON.stringify(key)}: a binding must be an object`);
      const hostIP = hostIPOf(b.HostIp, key);
      const rawHostPort = b.HostPort ?? '';
      if (typeof rawHostPort !== 'string' && typeof rawHostPort !== 'number') {
        throw new PortBindingsError(`PortBindings ${JSON.stringify(key)}: HostPort must be a string`);
      }
      const hostPortText = String(rawHostPort).trim();
      if (hostPortText === '' || hostPortText === '0') {
        out.ignored.push(`${key}: no host port (Docker would pick one; publish a fixed port, e.g. -p 8080:${ports[0]})`);
        continue;
      }
      const hostPorts = range(hostPortText, `PortBindings ${JSON.stringify(key)}: HostPort`);
      const ip = hostIP !== undefined ? { hostIP } : {};
      if (size(ports) === 1) {
        add({ hostPort: hostPorts[0], containerPort: ports[0], protocol, ...ip });
        continue;
      }
      if (size(hostPorts) !== size(ports)) {
        throw new PortBindingsError(`PortBindings ${JSON.stringify(key)}: host ports ${hostPortText} and container ports ${ports[0]}-${ports[1]} are ranges of different lengths`);
      }
      for (let i = 0; i < size(ports); i++) add({ hostPort: hostPorts[0] + i, containerPort: ports[0] + i, protocol, ...ip });
    }
  }
  out.mappings.sort(compare);
  return out;
}

/** The capability arguments for these mappings: none at all when there are none. */
export function portCapabilityArgs(mappings: readonly PortMapping[] | undefined): Record<string, unknown> | undefined {
  return mappings && mappings.length > 0 ? { [PORT_MAPPINGS_CAPABILITY]: mappings.map((m) => ({ ...m })) } : undefined;
}

/** A checked list of mappings (from a record or a cache entry on disk), or undefined when it is not one. */
export function asPortMappings(v: unknown): PortMapping[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: PortMapping[] = [];
  for (const m of v) {
    if (!isObject(m)) return undefined;
    const { hostPort, containerPort, protocol, hostIP } = m;
    const okPort = (p: unknown) => typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
    if (!okPort(hostPort) || !okPort(containerPort) || typeof protocol !== 'string' || !PROTOCOLS.has(protocol)) return undefined;
    if (hostIP !== undefined && (typeof hostIP !== 'string' || net.isIP(hostIP) === 0)) return undefined;
    out.push({ hostPort: hostPort as number, containerPort: containerPort as number, protocol: protocol as PortMapping['protocol'], ...(hostIP !== undefined ? { hostIP } : {}) });
  }
  return out;
}

/** `8080:80/tcp`, `127.0.0.1:53:53/udp`, `[::1]:8080:80/tcp`: for log lines. */
export function formatPortMappings(mappings: readonly PortMapping[]): string {
  return mappings.map((m) => {
    const ip = m.hostIP === undefined ? '' : m.hostIP.includes(':') ? `[${m.hostIP}]:` : `${m.hostIP}:`;
    return `${ip}${m.hostPort}:${m.containerPort}/${m.protocol}`;
  }).join(',');
}
