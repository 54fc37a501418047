// cattle-ipam (alias rancher-cni-ipam): the address cattle assigned, from the
// runtime's arguments when it passed one (no request at all), else from the
// Rancher metadata service (by container id or uuid, else by Kubernetes pod).
// Cattle owns the addresses: DEL and GC have nothing to release.
import { argValue } from '../../lib/cni/args.ts';
import { isPlainObject, prevResultOf } from '../../lib/cni/config.ts';
import { CniError, ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_NOT_AVAILABLE } from '../../lib/cni/errors.ts';
import type { Result, ResultDNS, ResultRoute } from '../../lib/cni/result.ts';
import { type Cidr, formatCidr, nthAddress } from '../../lib/ip.ts';
import { Logger } from '../../lib/log.ts';
import { httpGetJson, metadataBaseUrl, MetadataHttpError } from '../../lib/metadata-client.ts';
import { type CniRequest, type PluginSpec, processIO, runPlugin } from '../../lib/skel.ts';
import { SUITE_VERSION } from '../../lib/version.ts';
import { addressWithPrefix, checkIpamArgs, type IpamConfig, loadIpamConfig, requestedIps } from './config.ts';
import type { ContainerRecord, LookupOptions, LookupTarget } from './lookup.ts';

const PLUGIN = 'cattle-ipam';
/** STATUS asks one quick question: it must answer fast even when the service is unroutable. */
const STATUS_TIMEOUT_MS = 2000;

function loggerFor(req: CniRequest, cfg: IpamConfig): Logger {
  return new Logger({ plugin: PLUGIN, command: req.command, containerId: req.containerId, ifname: req.ifname }, cfg.logToFile, cfg.isDebugLevel);
}

async function add(req: CniRequest): Promise<Result> {
  const cfg = loadIpamConfig(req);
  checkIpamArgs(req);
  const log = loggerFor(req, cfg);
  try {
    const given = requestedIps(req, cfg.prefix);
    if (given) {
      log.detail('address from the runtime', { source: given.source, addresses: given.addresses.map(formatCidr) });
      const result = buildResult(cfg, given.addresses);
      log.finish('ok', { address: result.ips?.map((i) => i.address), source: given.source });
      return result;
    }
    const record = await lookup(req, cfg, log, true);
    const address = addressWithPrefix(record.primary_ip, cfg.prefix, 'metadata primary_ip');
    const result = buildResult(cfg, [address], record);
    // The MAC cattle assigned travels in the result's interfaces, the spec's channel for it.
    if (record.primary_mac_address) result.interfaces = [{ name: req.ifname, mac: record.primary_mac_address.toLowerCase() }];
    log.finish('ok', { address: formatCidr(address), source: 'metadata' });
    return result;
  } catch (e) {
    log.finish('error', { error: e instanceof Error ? e.message : String(e) });
    throw e;
  }
}

async function lookup(req: CniRequest, cfg: IpamConfig, log: Logger, waitForRecord: boolean): Promise<ContainerRecord> {
  const { findContainer } = await import('./lookup.ts'); // only paid for when the runtime gave no address
  const uuid = argValue(req.args, 'RancherContainerUUID');
  const target: LookupTarget = { containerId: req.containerId, ...(uuid ? { uuid } : {}) };
  // Kubernetes (containerd makes the sandbox id only now): the pod, by the labels of its record.
  const namespace = argValue(req.args, 'K8S_POD_NAMESPACE');
  const name = argValue(req.args, 'K8S_POD_NAME');
  const uid = argValue(req.args, 'K8S_POD_UID');
  if (namespace && name) target.pod = { namespace, name, ...(uid ? { uid } : {}) };
  const opts: LookupOptions = {
    baseUrl: metadataBaseUrl(cfg.metadataAddress),
    version: cfg.metadataVersion,
    timeoutMs: cfg.timeoutMs,
    waitForRecord,
    onEvent: (step, fields) => log.detail(step, fields),
  };
  return findContainer(target, opts);
}

/** ADD's result: address, gateway (configured, else network + 1), routes, DNS from the record. */
export function buildResult(cfg: IpamConfig, addresses: Cidr[], record?: ContainerRecord): Result {
  const gateways = new Map<4 | 6, string>();
  const ips = addresses.map((a) => {
    const gateway = gatewayFor(cfg, a);
    if (gateway !== undefined && !gateways.has(a.family)) gateways.set(a.family, gateway);
    return gateway !== undefined ? { address: formatCidr(a), gateway } : { address: formatCidr(a) };
  });
  const routes: ResultRoute[] = [];
  for (const { dst, gw: given, ...attrs } of cfg.routes) {
    // Rancher's routes (e.g. 169.254.169.250/32) leave out gw: they go via the gateway.
    const gw = given ?? gateways.get(dst.includes(':') ? 6 : 4);
    routes.push(gw !== undefined ? { dst, gw, ...attrs } : { dst, ...attrs });
  }
  const result: Result = { ips };
  if (routes.length) result.routes = routes;
  const dns: ResultDNS = {};
  if (record?.dns?.length) dns.nameservers = [...record.dns];
  if (record?.dns_search?.length) dns.search = [...record.dns_search];
  if (Object.keys(dns).length) result.dns = dns;
  return result;
}

function gatewayFor(cfg: IpamConfig, a: Cidr): string | undefined {
  if (cfg.gateway !== undefined) return cfg.gateway.includes(':') === (a.family === 6) ? cfg.gateway : undefined;
  // /31, /32 (and v6 /127, /128) have no room for a gateway inside the prefix.
  const max = a.family === 4 ? 32 : 128;
  if (a.prefix >= max - 1) return undefined;
  return nthAddress(a, 1);
}

async function del(_req: CniRequest): Promise<void> {
  // Cattle assigned the address and takes it back itself: nothing to release, nobody to ask.
}

/** CHECK: the address in prevResult is still the one the runtime or the metadata record gives. */
async function check(req: CniRequest): Promise<void> {
  const cfg = loadIpamConfig(req);
  checkIpamArgs(req);
  const prev = prevResultOf(req.config);
  if (!prev) throw new CniError(ERR_INVALID_CONFIG, 'CHECK needs prevResult', 'the runtime must pass the result of ADD');
  // By address only: a main plugin may narrow the prefix (cattle-ptp gives the pod a /32).
  const have = new Set((prev.ips ?? []).map((i) => canonical(i.address).split('/')[0]));
  const given = requestedIps(req, cfg.prefix);
  let want: Cidr[];
  if (given) {
    want = given.addresses;
  } else {
    const log = loggerFor(req, cfg);
    const record = await lookup(req, cfg, log, false);
    want = [addressWithPrefix(record.primary_ip, cfg.prefix, 'metadata primary_ip')];
  }
  for (const a of want) {
    if (!have.has(formatCidr(a).split('/')[0])) {
      const found = prev.ips?.map((i) => i.address).join(', ') || 'none';
      throw new CniError(ERR_INTERNAL, `address ${formatCidr(a)} is not in prevResult`, `prevResult has ${found}; the container's address changed`);
    }
  }
}

function canonical(address: string): string {
  try {
    return formatCidr(addressWithPrefix(address, 0, 'prevResult'));
  } catch {
    return address;
  }
}

async function gc(_req: CniRequest): Promise<void> {
  // Nothing is stored on the host: there is nothing to collect.
}

/**
 * STATUS: can an ADD be served? Only ADDs without a runtime-given address need the service, so
 * when the network declares the `ips` capability (the runtime hands out addresses) an
 * unreachable service does not make the network unavailable. Otherwise one quick question.
 */
async function status(req: CniRequest): Promise<void> {
  const cfg = loadIpamConfig(req);
  const caps = req.config.capabilities;
  if (isPlainObject(caps) && caps.ips === true) return;
  const url = `${metadataBaseUrl(cfg.metadataAddress)}/${cfg.metadataVersion}/version`;
  try {
    await httpGetJson(url, { timeoutMs: Math.min(STATUS_TIMEOUT_MS, cfg.timeoutMs) });
  } catch (e) {
    // "Not found" for the key: the service is up (lookups work, only long-polls do not).
    // "Invalid version" is a misconfiguration no ADD would get past.
    if (e instanceof MetadataHttpError && e.status === 404 && !/Invalid version/i.test(e.body)) return;
    throw new CniError(ERR_NOT_AVAILABLE, 'metadata service unavailable', e instanceof Error ? e.message : String(e));
  }
}

export const plugin: PluginSpec = {
  name: PLUGIN,
  version: SUITE_VERSION,
  about: 'addresses assigned by Rancher cattle, from CNI_ARGS or the metadata service (alias rancher-cni-ipam)',
  add,
  del,
  check,
  gc,
  status,
};

export async function main(_args: string[]): Promise<number> {
  return runPlugin(plugin, processIO());
}
