// Steps both veth plugins (bridge, ptp) take the same way. Plugin-level, not
// lib/: these know CNI requests and results.
import fs from 'node:fs';

import { isPlainObject } from '../lib/cni/config.ts';
import { CniError, ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_INVALID_ENV } from '../lib/cni/errors.ts';
import type { Result, ResultIP, ResultRoute } from '../lib/cni/result.ts';
import { type Cidr, formatCidr, networkOf, parseCidr } from '../lib/ip.ts';
import { ipFamily } from '../lib/ip.ts';
import type { Logger } from '../lib/log.ts';
import { gcMasqNft, hasTool, masqBackend, masqChainName, masqComment, masqNftPresent, masqPresent, setupMasq, setupMasqNft, teardownMasq, teardownMasqNft } from '../lib/masq.ts';
import { isErrno } from '../lib/netlink/errors.ts';
import { type Route, type RouteSpec, RT_TABLE_MAIN, type Rtnetlink } from '../lib/netlink/rtnetlink.ts';
import { type Netns, NetnsError, netnsId, openNetns } from '../lib/netns.ts';
import { withNetnsSync } from '../lib/netns.ts';
import type { CniRequest } from '../lib/skel.ts';
import { interfaceKey, sysctlSet } from '../lib/sysctl.ts';
import type { UndoStack } from '../lib/undo.ts';

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
  const tables = new Map<string, Route[]>();
  const routesOf = (family: 4 | 6, table: number = RT_TABLE_MAIN): Route[] => {
    const key = `${family}/${table}`;
    let list = tables.get(key);
    // A table that does not exist (ENOENT) has no routes.
    if (!list) {
      try {
        list = cont.routes({ family, table });
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e;
        list = [];
      }
      tables.set(key, list);
    }
    return list;
  };
  const routes = [...routesOf(4), ...routesOf(6)];
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
    const dstKey = formatCidr(parseCidr(r.dst));
    const candidates = routesOf(parseCidr(r.dst).family, r.table).filter((k) => k.dst === dstKey && (!r.gw || k.gw === r.gw));
    const what = `route ${r.dst}${r.gw ? ` via ${r.gw}` : ''}${r.table !== undefined ? ` table ${r.table}` : ''}`;
    if (!candidates.length) throw new CniError(ERR_INTERNAL, `${what} missing in the container`);
    const mismatch = routeMismatch(r, candidates);
    if (mismatch) throw new CniError(ERR_INTERNAL, `${what} in the container differs from the result`, mismatch);
  }
}

/** The MTU without a default route to take it from. */
export const FALLBACK_MTU = 1500;

/**
 * The MTU a config without `mtu` gets: that of the host interface carrying
 * the default route (IPv4 first, then IPv6; the lowest metric), else 1500.
 * One route dump of the main table and one link lookup: it is on the pod
 * start path.
 */
export function defaultRouteMtu(host: Rtnetlink): number {
  const defaults = host.routes().filter((r) => r.oif !== undefined && (r.dst === '0.0.0.0/0' || r.dst === '::/0'))
    .sort((a, b) => a.family - b.family || (a.priority ?? 0) - (b.priority ?? 0));
  const oif = defaults[0]?.oif;
  return (oif !== undefined ? host.linkByIndex(oif)?.mtu : undefined) || FALLBACK_MTU;
}

/** Netlink route spec of a result route (CNI 1.1 attributes: mtu, advmss, priority, table, scope). */
export function routeSpec(r: ResultRoute, oif: number, gw = r.gw): RouteSpec {
  return { dst: r.dst, gw, oif, mtu: r.mtu, advmss: r.advmss, priority: r.priority, table: r.table, scope: r.scope };
}

/** Undefined when one of the kernel's routes has every attribute the result route names; else what differs. */
function routeMismatch(r: ResultRoute, have: Route[]): string | undefined {
  const diffs = have.map((k) => {
    const d: string[] = [];
    if (r.mtu !== undefined && k.mtu !== r.mtu) d.push(`mtu ${k.mtu ?? 'unset'}, expected ${r.mtu}`);
    if (r.advmss !== undefined && k.advmss !== r.advmss) d.push(`advmss ${k.advmss ?? 'unset'}, expected ${r.advmss}`);
    if (r.priority !== undefined && (k.priority ?? 0) !== r.priority) d.push(`priority ${k.priority ?? 0}, expected ${r.priority}`);
    if (r.scope !== undefined && k.scope !== r.scope) d.push(`scope ${k.scope}, expected ${r.scope}`);
    return d;
  });
  return diffs.some((d) => d.length === 0) ? undefined : diffs[0]!.join('; ');
}

/**
 * The result's DNS, as the reference plugins decide: the netconf's `dns` when
 * it sets anything (a non-empty nameservers, search or options list, or a
 * domain), otherwise what IPAM returned.
 */
export function chooseDns(req: CniRequest, ipam: Result): Result['dns'] {
  const dns = dnsIsSet(req.config.dns) ? req.config.dns : ipam.dns;
  return dnsIsSet(dns) ? dns : undefined;
}

export function dnsIsSet(dns: Result['dns'] | undefined): dns is NonNullable<Result['dns']> {
  if (!dns) return false;
  return !!dns.nameservers?.length || !!dns.search?.length || !!dns.options?.length || !!dns.domain;
}

export { ipFamily };

// ---- masquerade (ipMasq), either backend --------------------------------------

export interface MasqConf {
  network: string;
  ipMasqBackend?: 'iptables' | 'nftables';
}

interface MasqOwner {
  containerId: string;
  ifname: string;
}

function masqKey(conf: MasqConf, owner: MasqOwner) {
  return { network: conf.network, containerId: owner.containerId, ifname: owner.ifname };
}

/** ADD step: masquerade the pod's addresses, its undo registered first (a half-done setup is undone too). */
export function setUpMasquerade(conf: MasqConf, owner: MasqOwner, addrs: Cidr[], undo: UndoStack, log: Logger): void {
  const key = masqKey(conf, owner);
  if (masqBackend(conf.ipMasqBackend) === 'nftables') {
    undo.push('remove masquerade', () => teardownMasqNft(key));
    log.step('masquerade (nftables)', () => setupMasqNft(key, addrs));
  } else {
    const chain = masqChainName(conf.network, owner.containerId, owner.ifname);
    undo.push('remove masquerade', () => teardownMasq(chain));
    log.step('masquerade (iptables)', () => setupMasq(chain, masqComment(conf.network, owner.containerId), addrs));
  }
}

/** DEL and GC: both backends, as the reference: the pod may have been added under another configuration. */
export function tearDownMasquerade(conf: MasqConf, owner: MasqOwner): void {
  const failures: string[] = [];
  const attempt = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      failures.push((e as Error).message);
    }
  };
  if (conf.ipMasqBackend !== 'nftables' || hasTool('iptables')) attempt(() => teardownMasq(masqChainName(conf.network, owner.containerId, owner.ifname)));
  if (conf.ipMasqBackend === 'nftables' || hasTool('nft')) attempt(() => teardownMasqNft(masqKey(conf, owner)));
  if (failures.length) throw new Error(failures.join('; '));
}

/** GC: nftables elements of this network whose attachment is not valid (iptables chains go with their records). */
export function gcMasquerade(conf: MasqConf, valid: Set<string>): void {
  if (!hasTool('nft')) return;
  const keys = [...valid].map((v) => {
    const slash = v.lastIndexOf('/');
    return { network: conf.network, containerId: v.slice(0, slash), ifname: v.slice(slash + 1) };
  });
  gcMasqNft(conf.network, keys);
}

export function masqueradePresent(conf: MasqConf, owner: MasqOwner): boolean {
  return masqBackend(conf.ipMasqBackend) === 'nftables' ? masqNftPresent(masqKey(conf, owner))
    : masqPresent(masqChainName(conf.network, owner.containerId, owner.ifname));
}
