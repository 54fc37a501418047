// Steps both veth plugins (bridge, ptp) take the same way. Plugin-level, not
// lib/: these know CNI requests and results.
import fs from 'node:fs';

import { isPlainObject } from '../lib/cni/config.ts';
import { CniError, ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_INVALID_ENV } from '../lib/cni/errors.ts';
import type { Result, ResultIP } from '../lib/cni/result.ts';
import { type Cidr, formatCidr, networkOf, parseCidr } from '../lib/ip.ts';
import { ipFamily } from '../lib/ip.ts';
import type { Rtnetlink } from '../lib/netlink/rtnetlink.ts';
import { type Netns, NetnsError, netnsId, openNetns } from '../lib/netns.ts';
import { withNetnsSync } from '../lib/netns.ts';
import type { CniRequest } from '../lib/skel.ts';
import { interfaceKey, sysctlSet } from '../lib/sysctl.ts';

/** CNI_NETNS opened and checked; a missing or wrong path is an invalid CNI_NETNS. */
export function openPodNetns(req: CniRequest): Netns {
  try {
    return openNetns(req.netns);
  } catch (e) {
    if (e instanceof NetnsError) throw new CniError(ERR_INVALID_ENV, `invalid CNI_NETNS "${req.netns}"`, e.message);
    throw e;
  }
}

/** The netns identity, to tell a re-ADD into the same sandbox from a new one. */
export function podNetnsId(req: CniRequest): string | undefined {
  return req.netns ? netnsId(req.netns) : undefined;
}

export function requirePrevResult(result: Result | undefined): Result {
  if (!result) throw new CniError(ERR_INVALID_CONFIG, 'CHECK needs prevResult', 'the runtime must pass the result of ADD');
  return result;
}

/** Container-side sysctls set before addresses: DAD off (fast IPv6), ARP notify on. */
export function containerSysctls(ns: Netns, ifname: string, opts: { enableDad: boolean; extra?: [string, string][] }): void {
  withNetnsSync(ns, () => {
    const v6 = interfaceKey(6, ifname, 'accept_dad');
    if (!opts.enableDad && fs.existsSync(`/proc/sys/${v6}`)) sysctlSet(v6, '0');
    sysctlSet(interfaceKey(4, ifname, 'arp_notify'), '1');
    for (const [k, v] of opts.extra ?? []) sysctlSet(k, v);
  });
}

export function ipsOf(result: Result): (ResultIP & { cidr: Cidr })[] {
  return (result.ips ?? []).map((ip) => ({ ...ip, cidr: parseCidr(ip.address) }));
}

export function requireIps(result: Result, ipamType: string): void {
  if (!result.ips?.length) throw new CniError(ERR_INTERNAL, `IPAM plugin ${ipamType} returned no IP addresses`);
}

/** GC's list of attachments still in use: cni.dev/valid-attachments (or the older key). */
export function validAttachments(req: CniRequest): Set<string> {
  const raw = req.config['cni.dev/valid-attachments'] ?? req.config['cni.dev/attachments'];
  const set = new Set<string>();
  if (Array.isArray(raw)) {
    for (const a of raw) {
      if (isPlainObject(a) && typeof a.containerID === 'string' && typeof a.ifname === 'string') set.add(`${a.containerID}/${a.ifname}`);
    }
  }
  return set;
}

/** Verify kernel state against a prevResult's addresses and routes (CHECK). */
export function checkContainerState(cont: Rtnetlink, ifname: string, prev: Result, isOurIface: (i: number) => boolean): void {
  const link = cont.linkByName(ifname);
  if (!link) throw new CniError(ERR_INTERNAL, `interface ${ifname} not found in the container`);
  const ifaces = prev.interfaces ?? [];
  const want = ifaces.find((i) => i.name === ifname && i.sandbox);
  if (want?.mac && link.mac !== want.mac.toLowerCase()) {
    throw new CniError(ERR_INTERNAL, `interface ${ifname} has MAC ${link.mac}, expected ${want.mac}`);
  }
  const have = new Set(cont.addresses({ index: link.index }).map((a) => a.cidr));
  for (const ip of prev.ips ?? []) {
    if (ip.interface !== undefined && !isOurIface(ip.interface)) continue;
    const c = parseCidr(ip.address);
    if (!have.has(formatCidr(c))) throw new CniError(ERR_INTERNAL, `address ${ip.address} missing on ${ifname} in the container`);
  }
  const routes = [...cont.routes({ family: 4 }), ...cont.routes({ family: 6 })];
  // Each address implies its connected (prefix) route: without it the pod is cut off.
  for (const ip of prev.ips ?? []) {
    if (ip.interface !== undefined && !isOurIface(ip.interface)) continue;
    const c = parseCidr(ip.address);
    if (c.prefix === (c.family === 4 ? 32 : 128)) continue;
    const net = networkOf(c);
    if (!routes.some((k) => k.dst === net && k.oif === link.index)) {
      throw new CniError(ERR_INTERNAL, `route ${net} dev ${ifname} (implied by address ${ip.address}) missing in the container`);
    }
  }
  for (const r of prev.routes ?? []) {
    const dst = parseCidr(r.dst);
    const dstKey = formatCidr(dst);
    const found = routes.some((k) => k.dst === dstKey && (!r.gw || k.gw === r.gw));
    if (!found) throw new CniError(ERR_INTERNAL, `route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} missing in the container`);
  }
}

/** The result's DNS: IPAM's when it gave any, else the netconf's. */
export function chooseDns(req: CniRequest, ipam: Result): Result['dns'] {
  const dns = ipam.dns && Object.keys(ipam.dns).length ? ipam.dns : req.config.dns;
  return dns && Object.keys(dns).length ? dns : undefined;
}

export { ipFamily };
