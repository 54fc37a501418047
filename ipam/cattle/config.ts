// cattle-ipam configuration: the `ipam` section plus the addresses a runtime
// may hand over directly (CNI_ARGS IPAddress/IP, the `ips` capability, args.cni.ips).
// Schema and defaults: conf-examples/schemas/cattle-ipam.schema.json.

import { type CattleIpamConf, validateCattleIpam } from '../../gen/validators.js';
import { argValue } from '../../lib/cni/args.ts';
import { argsCni, runtimeConfigValue } from '../../lib/cni/config.ts';
import { CniError, ERR_INVALID_CONFIG } from '../../lib/cni/errors.ts';
import { type Cidr, parseCidr, strictIpVersion } from '../../lib/ip.ts';
import { checkArgs, validateWith } from '../../lib/plugin-config.ts';
import type { CniRequest } from '../../lib/skel.ts';

export const DEFAULT_METADATA_ADDRESS = '169.254.169.250';

/** The schema's fields, as validated (types generated from the schema at build time). */
type IpamFields = CattleIpamConf;

export interface IpamRoute {
  dst: string;
  gw?: string;
  /** CNI 1.1 route attributes, passed through. */
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface IpamConfig {
  type: string;
  /** Prefix length given to a bare address (metadata primary_ip, IPAddress without /n). */
  prefix: number;
  routes: IpamRoute[];
  gateway?: string;
  metadataAddress: string;
  metadataVersion: string;
  /** Overall deadline of a lookup, in milliseconds. */
  timeoutMs: number;
  logToFile?: string;
  isDebugLevel: boolean;
}

/** The ipam section, validated; `env` supplies RANCHER_METADATA_ADDRESS. */
export function loadIpamConfig(req: CniRequest): IpamConfig {
  const section = req.config.ipam;
  if (!section) throw new CniError(ERR_INVALID_CONFIG, 'IPAM config missing "ipam" key', 'the network configuration has no ipam section');
  const f = validateWith<IpamFields>(validateCattleIpam, section, 'ipam.');
  const prefix = prefixOf(f.subnetPrefixSize);
  const gateway = f.gateway === undefined || f.gateway === '' ? undefined : f.gateway;
  if (gateway !== undefined && !isStrictIp(gateway)) fail('gateway', `not an IP address: ${gateway}`);
  const envAddress = req.env.RANCHER_METADATA_ADDRESS;
  const metadataAddress = f.metadataAddress || envAddress || DEFAULT_METADATA_ADDRESS;
  // The metadata API is plain HTTP on a link-local address; there is no TLS client here.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(metadataAddress) && !/^http:\/\//i.test(metadataAddress)) {
    fail('metadataAddress', `only http:// is supported, got ${metadataAddress}`);
  }
  return {
    type: f.type,
    prefix,
    routes: f.routes.map((r, i) => checkRoute(r, i)),
    ...(gateway !== undefined ? { gateway } : {}),
    metadataAddress,
    metadataVersion: f.metadataVersion,
    timeoutMs: Math.round(f.timeout * 1000),
    ...(f.logToFile ? { logToFile: f.logToFile } : {}),
    isDebugLevel: f.isDebugLevel,
  };
}

function prefixOf(v: number | string): number {
  const n = typeof v === 'number' ? v : Number(v.replace(/^\//, ''));
  if (!Number.isInteger(n) || n < 0 || n > 128) fail('subnetPrefixSize', `expected "/16", "16" or 16, got ${JSON.stringify(v)}`);
  return n;
}

/** Dotted quads and IPv6 as written by people; no classful shorthands such as "10.1.2". */
function isStrictIp(text: string): boolean {
  return strictIpVersion(text) !== 0;
}

function strictCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0 || !isStrictIp(text.slice(0, slash)) || !/^\d{1,3}$/.test(text.slice(slash + 1))) return undefined;
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

function checkRoute(r: IpamRoute, i: number): IpamRoute {
  if (!strictCidr(r.dst)) fail(`routes[${i}].dst`, `not a CIDR: ${r.dst}`);
  // CNI 1.1 route attributes pass through as given (the schema checked their ranges).
  const out: IpamRoute = { dst: r.dst };
  for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) if (r[k] !== undefined) out[k] = r[k];
  if (r.gw === undefined || r.gw === '') return out;
  if (!isStrictIp(r.gw)) fail(`routes[${i}].gw`, `not an IP address: ${r.gw}`);
  return { ...out, gw: r.gw };
}

function fail(field: string, details: string): never {
  throw new CniError(ERR_INVALID_CONFIG, `invalid configuration field "ipam.${field}"`, details);
}

export interface RequestedIps {
  /** Where the addresses came from, for logs and errors. */
  source: string;
  addresses: Cidr[];
}

/**
 * Addresses the runtime chose, in precedence order: runtimeConfig.ips, args.cni.ips, then
 * CNI_ARGS IPAddress (cniglue) or IP. A bare address gets `prefix`. Undefined: ask metadata.
 */
export function requestedIps(req: CniRequest, prefix: number): RequestedIps | undefined {
  const candidates: [string, unknown][] = [
    ['runtimeConfig.ips', runtimeConfigValue(req.config, 'ips')],
    ['args.cni.ips', argsCni(req.config).ips],
    ['CNI_ARGS IPAddress', argValue(req.args, 'IPAddress')],
    ['CNI_ARGS IP', argValue(req.args, 'IP')],
  ];
  for (const [source, v] of candidates) {
    if (v === undefined || v === null || v === '') continue;
    const list: unknown[] = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : [v];
    if (list.length === 0) continue;
    const addresses = list.map((item) => addressWithPrefix(item, prefix, source));
    return { source, addresses };
  }
  return undefined;
}

/** "10.42.1.5/16" as is; "10.42.1.5" with the configured prefix. */
export function addressWithPrefix(item: unknown, prefix: number, source: string): Cidr {
  const text = typeof item === 'string' ? item.trim() : undefined;
  if (text === undefined || text === '') throw new CniError(ERR_INVALID_CONFIG, `invalid address in ${source}`, `expected an IP address, got ${JSON.stringify(item)}`);
  if (text.includes('/')) {
    const c = strictCidr(text);
    if (!c) throw new CniError(ERR_INVALID_CONFIG, `invalid address in ${source}`, `not an IP address or CIDR: ${text}`);
    return c;
  }
  const family = strictIpVersion(text);
  if (family === 0) throw new CniError(ERR_INVALID_CONFIG, `invalid address in ${source}`, `not an IP address or CIDR: ${text}`);
  if (family === 4 && prefix > 32) {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "ipam.subnetPrefixSize"', `/${prefix} is too long for the IPv4 address ${text}`);
  }
  return parseCidr(`${text}/${prefix}`);
}

/** CNI_ARGS keys are checked as for every plugin of the suite (IgnoreUnknown honoured). */
export function checkIpamArgs(req: CniRequest): void {
  checkArgs(req.args);
}
