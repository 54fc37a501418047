// CNI results: one internal model (the 1.1.0 shape), read from and written to every supported version.

import { strictIpVersion } from '../ip.ts';
import { CniError, ERR_DECODE, ERR_INCOMPATIBLE_VERSION } from './errors.ts';
import { isSupportedVersion, SUPPORTED_VERSIONS, versionAtLeast } from './versions.ts';

export interface ResultInterface {
  name: string;
  mac?: string;
  /** 1.1.0+ */
  mtu?: number;
  /** Only on container-side interfaces. */
  sandbox?: string;
  /** 1.1.0+ */
  socketPath?: string;
  /** 1.1.0+ */
  pciID?: string;
}

export interface ResultIP {
  /** Index into `interfaces`; IPAM delegates leave it out. */
  interface?: number;
  /** CIDR that keeps the host bits, e.g. 10.22.0.5/24. */
  address: string;
  gateway?: string;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
  /** mtu..scope are 1.1.0+ */
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  /** 0 global, 253 link, 254 host. */
  scope?: number;
}

export interface ResultDNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Result {
  interfaces?: ResultInterface[];
  ips?: ResultIP[];
  routes?: ResultRoute[];
  dns?: ResultDNS;
}

/** 4 or 6 for an address with or without /prefix, 0 when it is not an IP address. */
export function ipFamily(addr: string): 0 | 4 | 6 {
  const slash = addr.indexOf('/');
  const family = strictIpVersion(slash === -1 ? addr : addr.slice(0, slash));
  return family === 4 || family === 6 ? family : 0;
}

function isCidr(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return false;
  const family = strictIpVersion(m[1]);
  const prefix = Number(m[2]);
  return (family === 4 && prefix <= 32) || (family === 6 && prefix <= 128);
}

function isLegacyVersion(version: string): boolean {
  return !versionAtLeast(version, '0.3.0');
}

function requireSupported(version: string, what: string): void {
  if (!isSupportedVersion(version)) {
    throw new CniError(
      ERR_INCOMPATIBLE_VERSION,
      'incompatible CNI versions',
      `${what} is ${JSON.stringify(version)}, plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

type Obj = Record<string, unknown>;

/** Walks untrusted JSON and reports problems with a path such as `prevResult.ips[1].address`. */
class Reader {
  readonly label: string;

  constructor(label: string) {
    this.label = label;
  }

  fail(path: string, problem: string): never {
    throw new CniError(ERR_DECODE, `invalid ${this.label}: ${path} ${problem}`);
  }

  object(v: unknown, path: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'must be an object');
    return v as Obj;
  }

  /** Missing or null → undefined. */
  list(o: Obj, key: string, path: string): unknown[] | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) this.fail(`${path}${key}`, 'must be a list');
    return v;
  }

  /** Missing, null or "" → undefined (Go treats an empty string as unset). */
  string(o: Obj, key: string, path: string): string | undefined {
    const v = o[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') this.fail(`${path}${key}`, 'must be a string');
    return v;
  }

  requiredString(o: Obj, key: string, path: string): string {
    const v = this.string(o, key, path);
    if (v === undefined) this.fail(`${path}${key}`, 'is required');
    return v;
  }

  int(o: Obj, key: string, path: string, max: number): number | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
      this.fail(`${path}${key}`, `must be an integer between 0 and ${max}`);
    }
    return v;
  }

  strings(o: Obj, key: string, path: string): string[] | undefined {
    const v = this.list(o, key, path);
    if (v === undefined) return undefined;
    v.forEach((s, i) => {
      if (typeof s !== 'string') this.fail(`${path}${key}[${i}]`, 'must be a string');
    });
    return [...(v as string[])];
  }

  cidr(o: Obj, key: string, path: string): string {
    const v = this.requiredString(o, key, path);
    if (!isCidr(v)) this.fail(`${path}${key}`, `must be an IP address with prefix length, got ${JSON.stringify(v)}`);
    return v;
  }

  ip(o: Obj, key: string, path: string): string | undefined {
    const v = this.string(o, key, path);
    if (v !== undefined && strictIpVersion(v) === 0) this.fail(`${path}${key}`, `must be an IP address, got ${JSON.stringify(v)}`);
    return v;
  }
}

const U32 = 0xffffffff;

/**
 * Reads a result of any supported version into the model. A reply without cniVersion is read as
 * `fallbackVersion` (the config's version); `null`/`undefined` is an empty result.
 */
export function parseResult(json: unknown, fallbackVersion: string, label = 'result'): Result {
  if (json === null || json === undefined) return {};
  const r = new Reader(label);
  const o = r.object(json, label);
  const declared = o.cniVersion;
  if (declared !== undefined && declared !== null && typeof declared !== 'string') {
    r.fail('cniVersion', 'must be a string');
  }
  const version = typeof declared === 'string' && declared !== '' ? declared : fallbackVersion;
  requireSupported(version, `${label} version`);

  const result: Result = isLegacyVersion(version) ? readLegacy(r, o) : readCurrent(r, o);
  if (o.dns !== undefined && o.dns !== null) {
    const dns = readDns(r, r.object(o.dns, 'dns'));
    if (dns !== undefined) result.dns = dns;
  }
  return result;
}

function readCurrent(r: Reader, o: Obj): Result {
  const result: Result = {};
  const interfaces = r.list(o, 'interfaces', '');
  if (interfaces !== undefined) {
    result.interfaces = interfaces.map((v, i) => readInterface(r, r.object(v, `interfaces[${i}]`), `interfaces[${i}].`));
  }
  // The 0.3.0 text said "ip"; accept it when "ips" is absent.
  const ipsKey = o.ips === undefined && Array.isArray(o.ip) ? 'ip' : 'ips';
  const ips = r.list(o, ipsKey, '');
  if (ips !== undefined) {
    result.ips = ips.map((v, i) => readIP(r, r.object(v, `${ipsKey}[${i}]`), `${ipsKey}[${i}].`));
  }
  const routes = r.list(o, 'routes', '');
  if (routes !== undefined) {
    result.routes = routes.map((v, i) => readRoute(r, r.object(v, `routes[${i}]`), `routes[${i}].`));
  }
  return result;
}

function readLegacy(r: Reader, o: Obj): Result {
  const ips: ResultIP[] = [];
  const routes: ResultRoute[] = [];
  for (const key of ['ip4', 'ip6']) {
    if (o[key] === undefined || o[key] === null) continue;
    const c = r.object(o[key], key);
    const ip: ResultIP = { address: r.cidr(c, 'ip', `${key}.`) };
    const gateway = r.ip(c, 'gateway', `${key}.`);
    if (gateway !== undefined) ip.gateway = gateway;
    ips.push(ip);
    const list = r.list(c, 'routes', `${key}.`);
    list?.forEach((v, i) => {
      const path = `${key}.routes[${i}]`;
      routes.push(readRoute(r, r.object(v, path), `${path}.`));
    });
  }
  const result: Result = {};
  if (ips.length > 0) result.ips = ips;
  if (routes.length > 0) result.routes = routes;
  return result;
}

function readInterface(r: Reader, o: Obj, path: string): ResultInterface {
  const iface: ResultInterface = { name: r.requiredString(o, 'name', path) };
  const mac = r.string(o, 'mac', path);
  if (mac !== undefined) iface.mac = mac;
  const mtu = r.int(o, 'mtu', path, U32);
  if (mtu !== undefined) iface.mtu = mtu;
  const sandbox = r.string(o, 'sandbox', path);
  if (sandbox !== undefined) iface.sandbox = sandbox;
  const socketPath = r.string(o, 'socketPath', path);
  if (socketPath !== undefined) iface.socketPath = socketPath;
  const pciID = r.string(o, 'pciID', path);
  if (pciID !== undefined) iface.pciID = pciID;
  return iface;
}

function readIP(r: Reader, o: Obj, path: string): ResultIP {
  // `version` (0.3.x/0.4.0) is ignored: the address already says which family it is.
  const index = r.int(o, 'interface', path, U32);
  const address = r.cidr(o, 'address', path);
  const gateway = r.ip(o, 'gateway', path);
  // Key order stays interface, address, gateway.
  const ip: ResultIP = index === undefined ? { address } : { interface: index, address };
  if (gateway !== undefined) ip.gateway = gateway;
  return ip;
}

function readRoute(r: Reader, o: Obj, path: string): ResultRoute {
  const route: ResultRoute = { dst: r.cidr(o, 'dst', path) };
  const gw = r.ip(o, 'gw', path);
  if (gw !== undefined) route.gw = gw;
  const mtu = r.int(o, 'mtu', path, U32);
  if (mtu !== undefined) route.mtu = mtu;
  const advmss = r.int(o, 'advmss', path, U32);
  if (advmss !== undefined) route.advmss = advmss;
  const priority = r.int(o, 'priority', path, U32);
  if (priority !== undefined) route.priority = priority;
  const table = r.int(o, 'table', path, U32);
  if (table !== undefined) route.table = table;
  const scope = r.int(o, 'scope', path, 255);
  if (scope !== undefined) route.scope = scope;
  return route;
}

function readDns(r: Reader, o: Obj): ResultDNS | undefined {
  const dns: ResultDNS = {};
  const nameservers = r.strings(o, 'nameservers', 'dns.');
  if (nameservers !== undefined && nameservers.length > 0) dns.nameservers = nameservers;
  const domain = r.string(o, 'domain', 'dns.');
  if (domain !== undefined) dns.domain = domain;
  const search = r.strings(o, 'search', 'dns.');
  if (search !== undefined && search.length > 0) dns.search = search;
  const options = r.strings(o, 'options', 'dns.');
  if (options !== undefined && options.length > 0) dns.options = options;
  return Object.keys(dns).length > 0 ? dns : undefined;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Plain JSON object of `result` in exactly the shape of `version`. Key order: cniVersion, interfaces, ips, routes, dns. */
export function formatResult(result: Result, version: string): Record<string, unknown> {
  requireSupported(version, 'result version');
  return isLegacyVersion(version) ? formatLegacy(result, version) : formatCurrent(result, version);
}

/** Reads a result in any version and writes it in `toVersion` (e.g. passing prevResult through). */
export function convertResult(json: unknown, fromVersion: string, toVersion: string): Record<string, unknown> {
  return formatResult(parseResult(json, fromVersion), toVersion);
}

function formatCurrent(result: Result, version: string): Record<string, unknown> {
  const v11 = versionAtLeast(version, '1.1.0');
  const v1 = versionAtLeast(version, '1.0.0');
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces?.length) out.interfaces = result.interfaces.map((i) => formatInterface(i, v11));
  if (result.ips?.length) out.ips = result.ips.map((ip) => formatIP(ip, !v1));
  if (result.routes?.length) out.routes = result.routes.map((rt) => formatRoute(rt, v11));
  const dns = formatDns(result.dns);
  // 1.x leaves out an empty dns; 0.x always prints it.
  if (!v1 || Object.keys(dns).length > 0) out.dns = dns;
  return out;
}

function formatInterface(i: ResultInterface, v11: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { name: i.name };
  if (i.mac !== undefined) out.mac = i.mac;
  if (v11 && i.mtu !== undefined) out.mtu = i.mtu;
  if (i.sandbox !== undefined) out.sandbox = i.sandbox;
  if (v11 && i.socketPath !== undefined) out.socketPath = i.socketPath;
  if (v11 && i.pciID !== undefined) out.pciID = i.pciID;
  return out;
}

function formatIP(ip: ResultIP, withVersion: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (withVersion) out.version = ipFamily(ip.address) === 6 ? '6' : '4';
  // `interface: 0` is meaningful: test for undefined, never truthiness.
  if (ip.interface !== undefined) out.interface = ip.interface;
  out.address = ip.address;
  if (ip.gateway !== undefined) out.gateway = ip.gateway;
  return out;
}

function formatRoute(rt: ResultRoute, v11: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { dst: rt.dst };
  if (rt.gw !== undefined) out.gw = rt.gw;
  if (v11) {
    if (rt.mtu !== undefined) out.mtu = rt.mtu;
    if (rt.advmss !== undefined) out.advmss = rt.advmss;
    if (rt.priority !== undefined) out.priority = rt.priority;
    if (rt.table !== undefined) out.table = rt.table;
    if (rt.scope !== undefined) out.scope = rt.scope;
  }
  return out;
}

function formatDns(dns: ResultDNS | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!dns) return out;
  if (dns.nameservers?.length) out.nameservers = [...dns.nameservers];
  if (dns.domain) out.domain = dns.domain;
  if (dns.search?.length) out.search = [...dns.search];
  if (dns.options?.length) out.options = [...dns.options];
  return out;
}

function formatLegacy(result: Result, version: string): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion: version };
  let found = false;
  for (const family of [4, 6] as const) {
    const ip = result.ips?.find((c) => ipFamily(c.address) === family);
    if (!ip) continue; // routes of a family without an IP are dropped
    found = true;
    const entry: Record<string, unknown> = { ip: ip.address };
    if (ip.gateway !== undefined) entry.gateway = ip.gateway;
    const routes = (result.routes ?? [])
      .filter((rt) => ipFamily(rt.dst) === family)
      .map((rt) => (rt.gw !== undefined ? { dst: rt.dst, gw: rt.gw } : { dst: rt.dst }));
    if (routes.length > 0) entry.routes = routes;
    out[`ip${family}`] = entry;
  }
  if (!found) {
    throw new CniError(
      ERR_INCOMPATIBLE_VERSION,
      'cannot convert: no valid IP addresses',
      `a ${version} result needs at least one IP address`,
    );
  }
  out.dns = formatDns(result.dns);
  return out;
}
