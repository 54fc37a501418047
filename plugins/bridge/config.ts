// cattle-bridge configuration: the reference bridge fields plus Rancher's.
// Schema: conf-examples/schemas/cattle-bridge.schema.json (defaults live there).
import { type CattleBridgeConf, validateCattleBridge } from '../../gen/validators.js';
import { argValue } from '../../lib/cni/args.ts';
import type { IpamConf } from '../../lib/cni/config.ts';
import { CniError, ERR_INCOMPATIBLE_VERSION, ERR_INVALID_CONFIG } from '../../lib/cni/errors.ts';
import { versionAtLeast } from '../../lib/cni/versions.ts';
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
  /** "none": an L2-only network (no ipam type): no IPAM runs, the pod gets no addresses. */
  addressing: 'ipam' | 'none';
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
  const addressing = addressingOf(req.config.ipam);
  const cfg: BridgeConfig = {
    ...f,
    network: req.config.name,
    isGateway: f.isGateway || f.isDefaultGateway,
    linkMTUOverhead: overhead,
    containerMtu: f.mtu > 0 ? f.mtu - overhead : 0,
    mac: requestedMac(req.config, req.args),
    masquerade: f.ipMasq || f.hostNat,
    addressing,
  };
  // As the reference: a container interface left down is for L2-only networks.
  // Refused where it would be made or judged (ADD, CHECK, STATUS); DEL and GC
  // only clean up, and must not fail on a network whose every ADD was refused.
  if (cfg.disableContainerInterface && addressing === 'ipam' && req.command !== 'DEL' && req.command !== 'GC') {
    throw new CniError(ERR_INVALID_CONFIG, 'IPAM cannot be used with disableContainerInterface',
      `ipam.type is "${String(req.config.ipam?.type)}", but an interface left down gets no addresses: drop the ipam section (an L2-only network) or disableContainerInterface`);
  }
  if (addressing === 'none') layer2Only(cfg, req);
  if (cfg.vlan > 0 && cfg.isGateway) {
    throw new CniError(ERR_INVALID_CONFIG, 'vlan cannot be combined with isGateway or isDefaultGateway',
      `the gateway would have to live in VLAN ${cfg.vlan} (the reference adds a ${cfg.bridge}.${cfg.vlan} veth for it); cattle-bridge does not: route VLAN ${cfg.vlan} through a router on it, or drop "vlan"`);
  }
  if (f.bridgeSubnet !== undefined) cfg.bridgeAddress = bridgeAddressOf(f.bridgeSubnet, f.bridgeIP);
  else if (f.bridgeIP !== undefined) throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "bridgeIP"', 'bridgeIP needs bridgeSubnet');
  return cfg;
}

/**
 * An ipam section with a type: addresses from that plugin. None, or `{}`:
 * an L2-only network, as the reference bridge decides (no type, no IPAM). A
 * section with settings but no type is a mistake, not an L2 network: refused.
 */
function addressingOf(ipam: IpamConf | undefined): 'ipam' | 'none' {
  if (ipam === undefined) return 'none';
  if (ipam.type !== undefined) return 'ipam';
  const settings = Object.keys(ipam);
  if (settings.length) {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "ipam"',
      `it has settings (${settings.join(', ')}) but no type: name the IPAM plugin in ipam.type, or leave ipam out (or {}) for an L2-only network`);
  }
  return 'none';
}

/**
 * L2 only: what acts on addresses does nothing, as in the reference (isGateway,
 * isDefaultGateway and ipMasq live in its layer-3 branch); Rancher's bridge
 * address would put an address on the bridge, so it is refused rather than
 * silently dropped, and so is an ADD whose result version cannot say it.
 */
function layer2Only(cfg: BridgeConfig, req: CniRequest): void {
  // Refused before anything is made: the reference makes the pod, then fails to print its result.
  if (req.command === 'ADD' && !versionAtLeast(req.config.cniVersion, '0.3.0')) {
    throw new CniError(ERR_INCOMPATIBLE_VERSION, `an L2-only network (no ipam type) needs cniVersion 0.3.0 or later, not ${req.config.cniVersion}`,
      'a 0.1.0/0.2.0 result has room only for IP addresses, and this attachment has none');
  }
  if (cfg.bridgeSubnet !== undefined || cfg.bridgeIP !== undefined) {
    const field = cfg.bridgeSubnet !== undefined ? 'bridgeSubnet' : 'bridgeIP';
    throw new CniError(ERR_INVALID_CONFIG, `invalid configuration field "${field}"`,
      'an L2-only network (no ipam type) puts no address on the bridge: drop bridgeSubnet/bridgeIP, or give an ipam section with a type');
  }
  cfg.isGateway = false;
  cfg.isDefaultGateway = false;
  cfg.masquerade = false;
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
