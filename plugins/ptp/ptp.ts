// cattle-ptp: Calico-style proxy-ARP point-to-point wiring. One veth pair per
// attachment, no bridge and no shared L2: the pod holds its addresses as /32
// (/128) and reaches everything through the link-local gateway 169.254.1.1,
// which nobody owns; the host veth answers ARP for it (proxy_arp) with its
// fixed MAC. The host reaches the pod through a /32 route on that veth.
import fs from 'node:fs';

import { CniError, ERR_INTERNAL } from '../../lib/cni/errors.ts';
import type { Result, ResultRoute } from '../../lib/cni/result.ts';
import { hashedVethName, isOwnedBy, type Owner } from '../../lib/hostveth.ts';
import { parseCidr } from '../../lib/ip.ts';
import { Logger } from '../../lib/log.ts';
import { ignoreErrno, isErrno } from '../../lib/netlink/errors.ts';
import { type Link, Rtnetlink } from '../../lib/netlink/rtnetlink.ts';
import { RT_SCOPE_LINK, RT_SCOPE_UNIVERSE } from '../../lib/netlink/rtnl.ts';
import type { Netns } from '../../lib/netns.ts';
import type { CniRequest, PluginSpec } from '../../lib/skel.ts';
import { processIO, runPlugin } from '../../lib/skel.ts';
import { listStates } from '../../lib/state.ts';
import { interfaceKey, sysctlGet, sysctlSet } from '../../lib/sysctl.ts';
import { SUITE_VERSION } from '../../lib/version.ts';
import { addAttachment, type AttachmentState, checkAttachment, createVethPair, delAttachment, gcAttachments, ipamOf, type VethPlugin } from '../attachment.ts';
import { checkContainerState, chooseDns, containerSysctls, defaultRouteMtu, gcMasquerade, masqueradePresent, routeSpec, setUpMasquerade, tearDownMasquerade, validAttachments } from '../common.ts';
import { loadPtpConfig, type PtpConfig } from './config.ts';
import { containerRoutes, GATEWAY4, gatewayOf, linkLocalOf, type PodIp, podIps } from './routes.ts';

const PLUGIN = 'cattle-ptp';
/** How long ADD waits for the host veth to come up (kernel notification, not polling). */
const UP_TIMEOUT_MS = 2000;

export function hostVethName(conf: PtpConfig, o: Owner): string {
  return hashedVethName(conf.hostVethPrefix, o);
}

// ---- ADD --------------------------------------------------------------------

const steps: VethPlugin<PtpConfig> = {
  name: PLUGIN,
  loadConfig: loadPtpConfig,
  hostVethName,
  prepare(ctx) {
    const { conf } = ctx;
    if (!conf.mtu) conf.mtu = ctx.log.step('detect MTU', () => defaultRouteMtu(ctx.host));
    // Given at creation, the host MAC counts as set (not random): udev leaves it alone.
    return ctx.log.step('create veth pair', () => createVethPair(ctx, { mtu: conf.mtu || undefined, mac: conf.hostVethMac, peerMac: conf.mac }));
  },
  configure(ctx, hostVeth, ipam) {
    const { req, conf, log, ns, host, cont, owner, undo } = ctx;
    const ips = podIps(ipam);
    const routes = containerRoutes(conf, ipam, ips);
    log.step('host side', () => configureHostSide(host, hostVeth, conf, ips, log));
    if (conf.ipMasq) setUpMasquerade(conf, owner, ips.map((i) => i.cidr), undo, log);
    const contLink = log.step('container side', () => configureContainerSide(cont, ns, req.ifname, conf, ips, routes));
    log.step('wait for host veth up', () => {
      if (!host.waitOperUp(hostVeth.index, UP_TIMEOUT_MS)) throw new CniError(ERR_INTERNAL, `host veth ${hostVeth.name} did not come up`);
    });
    return buildResult(req, conf, host, cont, hostVeth, contLink, ipam, ips, routes);
  },
  cleanup(conf, owner) {
    if (conf.ipMasq) tearDownMasquerade(conf, owner);
  },
};

function add(req: CniRequest): Promise<Result> {
  return addAttachment(steps, req);
}

function del(req: CniRequest): Promise<void> {
  return delAttachment(steps, req);
}

// ---- ADD step 1: host side ----------------------------------------------------

/**
 * The host veth answers ARP for the gateway and forwards the pod's traffic:
 * sysctls before it goes up (Calico's order), then up, then a host route per
 * pod address.
 */
function configureHostSide(host: Rtnetlink, hv: Link, conf: PtpConfig, ips: PodIp[], log: Logger): void {
  const name = hv.name;
  const wantV6 = ips.some((i) => i.cidr.family === 6);
  sysctlSet(interfaceKey(4, name, 'proxy_arp'), '1');
  // Answer at once rather than after up to 0.8 s (the default proxy delay); not every kernel lets us.
  optionalSysctl(`net/ipv4/neigh/${name}/proxy_delay`, '0', log);
  // Per interface, not the global ip_forward: IPv4 forwarding is decided by the input device.
  sysctlSet(interfaceKey(4, name, 'forwarding'), '1');
  if (conf.routeLocalnet) sysctlSet(interfaceKey(4, name, 'route_localnet'), '1');
  if (fs.existsSync(`/proc/sys/${interfaceKey(6, name, '')}`)) {
    optionalSysctl(interfaceKey(6, name, 'accept_ra'), '0', log);
    sysctlSet(interfaceKey(6, name, 'accept_dad'), '0');
    sysctlSet(interfaceKey(6, name, 'proxy_ndp'), '1');
    if (wantV6) configureHostIPv6(host, hv, conf, log);
  } else if (wantV6) {
    throw new CniError(ERR_INTERNAL, 'IPv6 is not available on this host', `IPAM returned an IPv6 address but /proc/sys/net/ipv6/conf/${name} does not exist`);
  }
  host.setUp(hv.index);
  for (const ip of ips) addHostRoute(host, hv, ip);
}

/**
 * The pods' IPv6 gateway is the host veth's EUI-64 link-local address. It is
 * put there by us (no DAD, so usable at once) instead of left to address
 * generation, which may follow another mode (stable-privacy) or still be
 * tentative when the pod first asks for it.
 */
function configureHostIPv6(host: Rtnetlink, hv: Link, conf: PtpConfig, log: Logger): void {
  const name = hv.name;
  // Only here, for pods with IPv6: a host veth in IPv6 router mode takes the kernel ~15 ms longer to
  // delete (measured: 33–43 ms against 14–29 ms), a cost an IPv4-only pod's DEL has no reason to pay.
  sysctlSet(interfaceKey(6, name, 'forwarding'), '1');
  sysctlSet(interfaceKey(6, name, 'disable_ipv6'), '0');
  sysctlSet(interfaceKey(6, name, 'addr_gen_mode'), '1'); // none: the only link-local is ours
  // Kernels ≥ 6.17 can forward IPv6 per input interface; older ones need the host's global forwarding.
  if (fs.existsSync(`/proc/sys/${interfaceKey(6, name, 'force_forwarding')}`)) sysctlSet(interfaceKey(6, name, 'force_forwarding'), '1');
  else log.detail('ipv6 forwarding', { note: 'no per-interface force_forwarding on this kernel: pod IPv6 traffic is forwarded only with net.ipv6.conf.all.forwarding=1' });
  host.addAddress(hv.index, `${linkLocalOf(conf.hostVethMac)}/64`, { nodad: true });
}

/** `<pod>/32 dev <hv> scope link`; an existing route is fine only when it already uses this veth. */
function addHostRoute(host: Rtnetlink, hv: Link, ip: PodIp): void {
  const family = ip.cidr.family;
  try {
    host.addRoute({ dst: ip.host, oif: hv.index, scope: family === 4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE });
  } catch (e) {
    if (!isErrno(e, 'EEXIST')) throw e;
    const existing = host.routes({ family }).find((r) => r.dst === ip.host);
    if (existing?.oif === hv.index) return;
    const via = existing?.oif !== undefined ? (host.linkByIndex(existing.oif)?.name ?? `#${existing.oif}`) : undefined;
    throw new CniError(ERR_INTERNAL, `host route to ${ip.host} already exists${via ? ` via ${via}` : ''}`,
      'another interface has this pod address: a stale route or an address in use elsewhere; remove it before retrying');
  }
}

// ---- ADD step 2: container side -------------------------------------------------

/**
 * Addresses as /32 (/128) without DAD, the link-scope route to 169.254.1.1,
 * the default route through it (IPv6: through the host veth's link-local),
 * and the IPAM routes through the same gateway.
 */
function configureContainerSide(cont: Rtnetlink, ns: Netns, ifname: string, conf: PtpConfig, ips: PodIp[], routes: ResultRoute[]): Link {
  const link = cont.linkByName(ifname)!;
  const families = new Set(ips.map((i) => i.cidr.family));
  const forward = conf.allowIPForwarding ? '1' : '0';
  // Written explicitly either way: a new netns may inherit ip_forward=1 from the host.
  const extra: [string, string][] = [['net/ipv4/ip_forward', forward]];
  if (families.has(6)) extra.push([interfaceKey(6, ifname, 'disable_ipv6'), '0'], ['net/ipv6/conf/all/forwarding', forward]);
  containerSysctls(ns, ifname, { enableDad: false, extra });
  for (const ip of ips) cont.addAddress(link.index, ip.host, { nodad: true });
  cont.setUp(link.index);
  if (families.has(4)) addRouteOnce(cont, { dst: `${GATEWAY4}/32`, oif: link.index, scope: RT_SCOPE_LINK });
  for (const r of routes) {
    addRouteOnce(cont, routeSpec(r, link.index));
  }
  return cont.linkByIndex(link.index) ?? link;
}

function addRouteOnce(rt: Rtnetlink, r: Parameters<Rtnetlink['addRoute']>[0]): void {
  ignoreErrno(() => rt.addRoute(r), 'EEXIST');
}

function buildResult(req: CniRequest, conf: PtpConfig, host: Rtnetlink, cont: Rtnetlink, hostVeth: Link, contLink: Link,
  ipam: Result, ips: PodIp[], routes: ResultRoute[]): Result {
  // Re-read: udev may have rewritten MACs while we worked. The host MAC is the
  // one pods resolve 169.254.1.1 to, so it is put back if it changed.
  let hv = host.linkByIndex(hostVeth.index) ?? hostVeth;
  if (hv.mac !== conf.hostVethMac) {
    host.setMac(hv.index, conf.hostVethMac);
    hv = host.linkByIndex(hv.index) ?? hv;
  }
  const cl = cont.linkByIndex(contLink.index) ?? contLink;
  const result: Result = {
    interfaces: [
      { name: hv.name, mac: hv.mac },
      { name: cl.name, mac: cl.mac, mtu: cl.mtu, sandbox: req.netns },
    ],
    ips: ips.map((ip) => ({ interface: 1, address: ip.host, gateway: gatewayOf(conf, ip.cidr.family) })),
    routes,
  };
  const dns = chooseDns(req, ipam);
  if (dns) result.dns = dns;
  return result;
}

// ---- CHECK ------------------------------------------------------------------

function check(req: CniRequest): Promise<void> {
  return checkAttachment(steps, req, ({ req, conf, prev, owner, host, cont }) => {
    const hostName = prev.interfaces?.find((i) => !i.sandbox)?.name ?? hostVethName(conf, owner);
    const hv = host.linkByName(hostName);
    if (!hv || !isOwnedBy(hv, PLUGIN, owner, conf.network)) throw new CniError(ERR_INTERNAL, `host veth ${hostName} of this attachment not found`);
    const cl = cont.linkByName(req.ifname);
    if (!cl || cl.parentIndex !== hv.index) throw new CniError(ERR_INTERNAL, `${req.ifname} in the container is not the peer of ${hostName}`);
    if (hv.mac !== conf.hostVethMac) throw new CniError(ERR_INTERNAL, `host veth ${hostName} has MAC ${hv.mac}, expected ${conf.hostVethMac}`);
    if (sysctlGet(interfaceKey(4, hostName, 'proxy_arp')) !== '1') throw new CniError(ERR_INTERNAL, `proxy_arp is off on host veth ${hostName}`);
    const ifaces = prev.interfaces ?? [];
    checkContainerState(cont, req.ifname, prev, (i) => ifaces[i]?.name === req.ifname && !!ifaces[i]?.sandbox);
    const ips = (prev.ips ?? []).map((i) => parseCidr(i.address));
    if (ips.some((i) => i.family === 4)) {
      const gwRoute = cont.routes({ family: 4, oif: cl.index }).some((r) => r.dst === `${GATEWAY4}/32` && !r.gw);
      if (!gwRoute) throw new CniError(ERR_INTERNAL, `route ${GATEWAY4} dev ${req.ifname} scope link missing in the container`);
    }
    if (conf.ipMasq && !masqueradePresent(conf, owner)) throw new CniError(ERR_INTERNAL, 'masquerade rule for this attachment is missing');
    for (const ip of ips) {
      const dst = `${ip.ip}/${ip.family === 4 ? 32 : 128}`;
      if (!host.routes({ family: ip.family, oif: hv.index }).some((r) => r.dst === dst)) {
        throw new CniError(ERR_INTERNAL, `host route ${dst} dev ${hostName} missing`);
      }
    }
  });
}

// ---- GC and STATUS ----------------------------------------------------------

/**
 * Attachments of this network not in the valid list go (see gcAttachments).
 * Marks of earlier versions name no network: such a link counts as this
 * network's only when this network recorded it, so a second ptp network on
 * the same host keeps its pods.
 */
async function gc(req: CniRequest): Promise<void> {
  const conf = loadPtpConfig(req);
  const recorded = () => new Set(listStates<AttachmentState>(PLUGIN).filter((r) => r.key.network === conf.network).map((r) => r.hostVeth));
  let names: Set<string> | undefined;
  await gcAttachments(steps, req, (_host, link) => (names ??= recorded()).has(link.name), (errs) => {
    if (conf.ipMasq) errs.attempt('remove stale masquerade elements', () => gcMasquerade(conf, validAttachments(req)));
  });
}

async function status(req: CniRequest): Promise<void> {
  await ipamOf(loadPtpConfig(req), req).status();
}

// ---- helpers ------------------------------------------------------------------

/** Settings whose failure is only logged (Calico: proxy_delay, accept_ra). */
function optionalSysctl(key: string, value: string, log: Logger): void {
  try {
    sysctlSet(key, value);
  } catch (e) {
    log.detail('sysctl not set', { key, value, error: (e as Error).message });
  }
}

export const plugin: PluginSpec = {
  name: PLUGIN,
  version: SUITE_VERSION,
  about: 'proxy-ARP point-to-point veths: pod /32 behind gateway 169.254.1.1, routed host (Calico-style)',
  add,
  del,
  check,
  gc,
  status,
};

export async function main(_args: string[]): Promise<number> {
  return runPlugin(plugin, processIO());
}
