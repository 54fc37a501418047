// cattle-bridge configuration: the reference bridge fields plus Rancher's.
// Schema: conf-examples/schemas/cattle-bridge.schema.json (defaults live there).
import { type CattleBridgeConf, validateCattleBridge } from '../../gen/validators.js';
import { argValue } from '../../lib/cni/args.ts';
import { CniError, ERR_INVALID_CONFIG } from '../../lib/cni/errors.ts';
import { type Cidr, containsIp, isValidIp, nthAddress, parseCidr } from '../../lib/ip.ts';
import { checkArgs, requestedMac, validateWith } from '../../lib/plugin-config.ts';
import type { CniRequest } from '../../lib/skel.ts';

/** The schema's fields, as validated (types generated from the schema at build time). */
type BridgeConfFields = CattleBridgeConf;

export interface BridgeConfig extends BridgeConfFields {
  network: string;
  /** bridgeSubnet with bridgeIP as the address, e.g. 10.42.0.1/16. */
  bridgeAddress?: Cidr;
  /** MTU of the container interface (mtu − overhead); 0 = kernel default. */
  containerMtu: number;
  /** MAC asked for by the runtime, if any. */
  mac?: string;
  masquerade: boolean;
  hasIpam: boolean;
}

export function loadBridgeConfig(req: CniRequest): BridgeConfig {
  const f = validateWith<BridgeConfFields>(validateCattleBridge, req.config);
  if (f.hairpinMode && f.promiscMode) {
    throw new CniError(ERR_INVALID_CONFIG, 'cannot set hairpinMode and promiscMode at the same time', 'promiscMode already lets traffic return to its port; pick one');
  }
  checkArgs(req.args);
  // Rancher: a LinkMTUOverhead argument wins over the config; a non-number is ignored.
  const argOverhead = argValue(req.args, 'LinkMTUOverhead');
  const overhead = argOverhead !== undefined && /^\d+$/.test(argOverhead) ? Number(argOverhead) : f.linkMTUOverhead;
  if (f.mtu > 0 && overhead >= f.mtu) {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "linkMTUOverhead"', `overhead ${overhead} leaves no MTU of ${f.mtu}`);
  }
  const cfg: BridgeConfig = {
    ...f,
    network: req.config.name,
    isGateway: f.isGateway || f.isDefaultGateway,
    linkMTUOverhead: overhead,
    containerMtu: f.mtu > 0 ? f.mtu - overhead : 0,
    mac: requestedMac(req.config, req.args),
    masquerade: f.ipMasq || f.hostNat,
    hasIpam: !!req.config.ipam,
  };
  if (cfg.vlan > 0 && cfg.isGateway) {
    throw new CniError(ERR_INVALID_CONFIG, 'vlan cannot be combined with isGateway or isDefaultGateway',
      `the gateway would have to live in VLAN ${cfg.vlan} (the reference adds a ${cfg.bridge}.${cfg.vlan} veth for it); cattle-bridge does not: route VLAN ${cfg.vlan} through a router on it, or drop "vlan"`);
  }
  if (!cfg.hasIpam) throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "ipam"', 'an ipam section with a type is required');
  if (f.bridgeSubnet !== undefined) cfg.bridgeAddress = bridgeAddressOf(f.bridgeSubnet, f.bridgeIP);
  else if (f.bridgeIP !== undefined) throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "bridgeIP"', 'bridgeIP needs bridgeSubnet');
  return cfg;
}

function bridgeAddressOf(subnet: string, ip: string | undefined): Cidr {
  let net: Cidr;
  try {
    net = parseCidr(subnet);
  } catch {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "bridgeSubnet"', `not a CIDR: ${subnet}`);
  }
  if (ip === undefined) return { ...net, ip: nthAddress(net, 1) };
  if (!isValidIp(ip) || !containsIp(net, ip)) {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "bridgeIP"', `${ip} is not an address in ${subnet}`);
  }
  return { ...net, ip };
}
