// cattle-ptp's pure decisions: the pod's addresses (/32, /128), its gateways
// (169.254.1.1 and the host veth's link-local) and its routes. No kernel
// access: unit-tested on their own.
import type { Result, ResultRoute } from '../../lib/cni/result.ts';
import { bytesToIp, type Cidr, type Family, formatCidr, macToBytes, parseCidr } from '../../lib/ip.ts';
import { ipsOf } from '../common.ts';
import type { PtpConfig } from './config.ts';

/** The pods' IPv4 gateway: link-local, assigned to nobody, answered by proxy ARP. */
export const GATEWAY4 = '169.254.1.1';
/** The EUI-64 link-local address of a MAC (ee:ee:ee:ee:ee:ee → fe80::ecee:eeff:feee:eeee): the pods' IPv6 gateway. */
export function linkLocalOf(mac: string): string {
  const m = macToBytes(mac);
  const b = Buffer.alloc(16);
  b[0] = 0xfe;
  b[1] = 0x80;
  b[8] = m[0]! ^ 0x02;
  b[9] = m[1]!;
  b[10] = m[2]!;
  b[11] = 0xff;
  b[12] = 0xfe;
  b[13] = m[3]!;
  b[14] = m[4]!;
  b[15] = m[5]!;
  return bytesToIp(b);
}

/** A pod address: the IPAM address with the prefix the pod gets (/32 or /128). */
export interface PodIp {
  cidr: Cidr;
  /** e.g. 10.42.0.5/32 */
  host: string;
}

export function gatewayOf(conf: Pick<PtpConfig, 'hostVethMac'>, family: Family): string {
  return family === 4 ? GATEWAY4 : linkLocalOf(conf.hostVethMac);
}

/** Every IPAM address, narrowed to a host prefix: the pod shares no subnet with anyone. */
export function podIps(ipam: Result): PodIp[] {
  return ipsOf(ipam).map(({ cidr }) => ({ cidr, host: `${cidr.ip}/${cidr.family === 4 ? 32 : 128}` }));
}

/**
 * The default route of each family the pod has an address of, then the IPAM
 * routes, all via the gateway: with a /32 the pod has no other neighbour, so
 * IPAM's own next hops are not reachable. Routes of a family the pod has no
 * address of are left out.
 */
export function containerRoutes(conf: Pick<PtpConfig, 'hostVethMac'>, ipam: Result, ips: PodIp[]): ResultRoute[] {
  const families = new Set(ips.map((i) => i.cidr.family));
  const routes: ResultRoute[] = [];
  const seen = new Set<string>();
  for (const family of [4, 6] as const) {
    if (!families.has(family)) continue;
    const dst = family === 4 ? '0.0.0.0/0' : '::/0';
    routes.push({ dst, gw: gatewayOf(conf, family) });
    seen.add(dst);
  }
  for (const r of ipam.routes ?? []) {
    const dst = parseCidr(r.dst);
    const key = formatCidr(dst);
    if (!families.has(dst.family) || dst.prefix === 0 || seen.has(key)) continue;
    seen.add(key);
    const route: ResultRoute = { dst: r.dst, gw: gatewayOf(conf, dst.family) };
    if (r.mtu !== undefined) route.mtu = r.mtu;
    if (r.advmss !== undefined) route.advmss = r.advmss;
    if (r.priority !== undefined) route.priority = r.priority;
    if (r.table !== undefined) route.table = r.table;
    if (r.scope !== undefined) route.scope = r.scope;
    routes.push(route);
  }
  return routes;
}
