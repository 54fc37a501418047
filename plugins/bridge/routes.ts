// cattle-bridge's pure decisions: which gateway an address gets and which
// routes the container gets. No kernel access: unit-tested on their own.
import type { Result, ResultRoute } from '../../lib/cni/result.ts';
import { type Cidr, nthAddress, parseCidr } from '../../lib/ip.ts';
import { ipsOf } from '../common.ts';
import type { BridgeConfig } from './config.ts';

type RouteConf = Pick<BridgeConfig, 'useBridgeIPAsGateway' | 'isDefaultGateway'>;

/** The gateway of each IP: IPAM's, the bridge's own IPv4 (useBridgeIPAsGateway), or network + 1. */
export function gatewayFor(conf: RouteConf, ip: Cidr, given: string | undefined, bridgeIPv4: string | undefined): string {
  if (conf.useBridgeIPAsGateway && ip.family === 4 && bridgeIPv4) return bridgeIPv4;
  return given ?? nthAddress(ip, 1);
}

/** IPAM routes (a route without gw goes via the gateway), plus the default route for isDefaultGateway. */
export function containerRoutes(conf: RouteConf, ipam: Result, bridgeIPv4: string | undefined): ResultRoute[] {
  const ips = ipsOf(ipam);
  const gwOf = (family: 4 | 6) => {
    const ip = ips.find((i) => i.cidr.family === family);
    return ip ? gatewayFor(conf, ip.cidr, ip.gateway, bridgeIPv4) : undefined;
  };
  const routes: ResultRoute[] = [];
  for (const r of ipam.routes ?? []) {
    const family = parseCidr(r.dst).family;
    routes.push({ ...r, gw: r.gw ?? gwOf(family) });
  }
  if (conf.isDefaultGateway) {
    for (const family of [4, 6] as const) {
      const gw = gwOf(family);
      const dst = family === 4 ? '0.0.0.0/0' : '::/0';
      if (gw && !routes.some((r) => parseCidr(r.dst).prefix === 0 && parseCidr(r.dst).family === family)) routes.push({ dst, gw });
    }
  }
  return routes;
}
