// cattle-bridge (alias rancher-bridge): a veth pair per attachment, the host
// end on a Linux bridge, the container end in the pod's netns, addresses from
// IPAM — or none on an L2-only network (no ipam type), where the container end
// may even stay down (disableContainerInterface). Reference-bridge behaviour
// plus Rancher's extensions, without their races (bridge creation under a
// lock), leaks (rollback on any failure) or DEL failures (best effort,
// owner-checked).
import fs from 'node:fs';

import { CniError, ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_NOT_AVAILABLE } from '../../lib/cni/errors.ts';
import type { Result, ResultInterface } from '../../lib/cni/result.ts';
import { hashedVethName, isOwnedBy, type Owner } from '../../lib/hostveth.ts';
import { type Cidr, containsIp, formatCidr, parseCidr } from '../../lib/ip.ts';
import { acquireLock, lockNames, removeIdleLock } from '../../lib/lock.ts';
import { setupSpoofCheck, spoofCheckPresent, teardownSpoofCheck } from '../../lib/macspoof.ts';
import { ignoreErrno, isErrno } from '../../lib/netlink/errors.ts';
import { type Link, Rtnetlink } from '../../lib/netlink/rtnetlink.ts';
import { BRIDGE_VLAN_INFO_PVID, BRIDGE_VLAN_INFO_UNTAGGED, IFF_PROMISC, IFF_UP } from '../../lib/netlink/rtnl.ts';
import type { Netns } from '../../lib/netns.ts';
import type { CniRequest, PluginSpec } from '../../lib/skel.ts';
import { processIO, runPlugin } from '../../lib/skel.ts';
import { sysctlSet } from '../../lib/sysctl.ts';
import { SUITE_VERSION } from '../../lib/version.ts';
import { addAttachment, type AddContext, checkAttachment, createVethPair, delAttachment, gcAttachments, ipamOf, type VethPlugin } from '../attachment.ts';
import { checkContainerState, chooseDns, containerSysctls, defaultRouteMtu, gcMasquerade, ipsOf, masqueradePresent, routeSpec, setUpMasquerade, tearDownMasquerade, validAttachments } from '../common.ts';
import { type BridgeConfig, loadBridgeConfig } from './config.ts';
import { containerRoutes, gatewayFor } from './routes.ts';

const PLUGIN = 'cattle-bridge';
const BRIDGE_LOCK_PREFIX = 'bridge-';
/** How long ADD waits for the host veth to come up (kernel notification, not polling). */
const PORT_UP_TIMEOUT_MS = 2000;
/** How long ADD waits for IPv6 addresses to leave the tentative state (kernel notification, not polling). */
const SETTLE_TIMEOUT_MS = 10_000;

/** Host veth name: Rancher's vethr<10 chars of the Docker id> for eth0, else a hash of id+ifname. */
export function hostVethName(o: Owner): string {
  if (/^[0-9a-f]{64}$/.test(o.containerId) && o.ifname === 'eth0') return `vethr${o.containerId.slice(0, 10)}`;
  return hashedVethName('veth', o);
}

const steps: VethPlugin<BridgeConfig> = {
  name: PLUGIN,
  loadConfig: loadBridgeConfig,
  hostVethName: (_conf, owner) => hostVethName(owner),
  prepare(ctx) {
    const { conf, log, host } = ctx;
    if (!conf.mtu) log.step('detect MTU', () => detectMtu(host, conf));
    const bridge = log.step('ensure bridge', () => ensureBridge(host, conf));
    const veth = log.step('create veth pair', () => createVethPair(ctx, { mtu: conf.mtu || undefined, peerMtu: conf.containerMtu || undefined, peerMac: conf.mac }));
    log.step('attach host veth to bridge', () => attachToBridge(host, veth, bridge, conf));
    return veth;
  },
  async configure(ctx, hostVeth, ipam) {
    const { req, conf, log, ns, host, cont, owner, undo } = ctx;
    const macHint = ipamMacHint(req, ipam);
    const contLink = log.step('container side', () => configureContainer(cont, ns, req.ifname, conf, ipam, macHint));
    const bridge = host.linkByName(conf.bridge) ?? fail(`bridge ${conf.bridge} vanished`);
    const gateways = log.step('host side: gateway', () => configureGateway(host, bridge, conf, ipam));
    if (conf.macspoofchk) setUpSpoofCheck(ctx, hostVeth, contLink);
    if (conf.masquerade) setUpMasquerade(conf, owner, ipsOf(ipam).map((i) => i.cidr), undo, log);
    log.step('wait for port up', () => waitPortUp(host, hostVeth));
    return buildResult(req, conf, resultInterfaces(ctx, bridge, hostVeth, contLink), ipam, gateways);
  },
  configureLayer2(ctx, hostVeth) {
    // L2 only: no addresses, routes, sysctls, gateway or masquerade (the reference's layer-2 branch).
    const { req, conf, log, host, cont } = ctx;
    const contLink = conf.disableContainerInterface
      ? log.step('container side: left down (disableContainerInterface)', () => cont.linkByName(req.ifname) ?? fail(`${req.ifname} vanished from the container`))
      : log.step('container side: up, no address', () => containerUp(cont, req.ifname));
    const bridge = host.linkByName(conf.bridge) ?? fail(`bridge ${conf.bridge} vanished`);
    if (conf.macspoofchk) setUpSpoofCheck(ctx, hostVeth, contLink);
    // A port whose peer is down has no carrier: there is no "up" to wait for.
    if (!conf.disableContainerInterface) log.step('wait for port up', () => waitPortUp(host, hostVeth));
    const dns = chooseDns(req, {});
    return { interfaces: resultInterfaces(ctx, bridge, hostVeth, contLink), ...(dns ? { dns } : {}) };
  },
  cleanup(conf, owner) {
    if (conf.masquerade) tearDownMasquerade(conf, owner);
    if (conf.macspoofchk) teardownSpoofCheck(spoofKey(conf, owner));
  },
};

/** No `mtu`: the default-route interface's, the container's less linkMTUOverhead (as with a configured one). */
function detectMtu(host: Rtnetlink, conf: BridgeConfig): void {
  const mtu = defaultRouteMtu(host);
  if (conf.linkMTUOverhead >= mtu) {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "linkMTUOverhead"', `overhead ${conf.linkMTUOverhead} leaves no MTU of the detected ${mtu}`);
  }
  conf.mtu = mtu;
  conf.containerMtu = mtu - conf.linkMTUOverhead;
}

/** macspoofchk: the pod's MAC is final only now (runtime's, cattle's or the kernel's). Undo first: a half-done setup goes too. */
function setUpSpoofCheck(ctx: AddContext<BridgeConfig>, hostVeth: Link, contLink: Link): void {
  const { conf, owner, undo, log, req } = ctx;
  undo.push('remove MAC spoof check', () => teardownSpoofCheck(spoofKey(conf, owner)));
  log.step('MAC spoof check', () => setupSpoofCheck({ ...spoofKey(conf, owner), hostVeth: hostVeth.name }, contLink.mac ?? fail(`${req.ifname} has no MAC`)));
}

function waitPortUp(host: Rtnetlink, hostVeth: Link): void {
  if (!host.waitOperUp(hostVeth.index, PORT_UP_TIMEOUT_MS)) fail(`bridge port ${hostVeth.name} did not come up`);
}

function spoofKey(conf: BridgeConfig, owner: Owner) {
  return { network: conf.network, containerId: owner.containerId, ifname: owner.ifname };
}

function fail(msg: string): never {
  throw new CniError(ERR_INTERNAL, msg);
}

/** A MAC the IPAM result asks for this interface (cattle-ipam: the one cattle assigned). */
function ipamMacHint(req: CniRequest, ipam: Result): string | undefined {
  return ipam.interfaces?.find((i) => i.name === req.ifname && i.mac)?.mac;
}

/** Create the bridge if missing (under a lock: no boot-time races), bring it up, add Rancher's bridge address. */
function ensureBridge(host: Rtnetlink, conf: BridgeConfig): Link {
  // Usually the bridge is there and ready: then no lock, so concurrent ADDs
  // (a node booting, a deployment scaling) never queue behind each other.
  const ready = host.linkByName(conf.bridge);
  if (ready && bridgeReady(host, ready, conf)) return ready;
  const lock = acquireLock(BRIDGE_LOCK_PREFIX + conf.bridge);
  try {
    let br = host.linkByName(conf.bridge);
    if (!br) {
      try {
        host.createBridge({ name: conf.bridge, mtu: conf.mtu || undefined, mac: randomLocalMac(), vlanFiltering: conf.vlan > 0 ? true : undefined });
      } catch (e) {
        // Another runtime (or a non-cooperating tool) made it first: fine if it is a bridge.
        if (!isErrno(e, 'EEXIST')) throw vlanSupportError(e, conf);
      }
      br = host.linkByName(conf.bridge);
      if (!br) throw new CniError(ERR_INTERNAL, `bridge ${conf.bridge} vanished after creation`);
    }
    if (br.kind !== 'bridge') {
      throw new CniError(ERR_INVALID_CONFIG, `"${conf.bridge}" already exists but is not a bridge`, `it is a ${br.kind ?? 'plain'} link`);
    }
    if (conf.vlan > 0 && br.vlanFiltering !== true) {
      try {
        host.setBridgeVlanFiltering(br.index, true);
      } catch (e) {
        throw vlanSupportError(e, conf);
      }
    }
    if (!macIsPinned(br) && br.mac) host.setMac(br.index, br.mac);
    if (conf.promiscMode && !(br.flags & IFF_PROMISC)) host.setPromisc(br.index, true);
    if (!(br.flags & IFF_UP)) host.setUp(br.index);
    if (conf.bridgeAddress && !conf.skipBridgeConfigureIP) ensureBridgeAddress(host, br, conf.bridgeAddress, conf.forceAddress);
    return host.linkByIndex(br.index) ?? br;
  } finally {
    lock.release();
  }
}

/** Nothing for ensureBridge to change (read-only check). */
function bridgeReady(host: Rtnetlink, br: Link, conf: BridgeConfig): boolean {
  if (br.kind !== 'bridge' || !(br.flags & IFF_UP) || !macIsPinned(br)) return false;
  if (conf.vlan > 0 && br.vlanFiltering !== true) return false;
  if (conf.promiscMode && !(br.flags & IFF_PROMISC)) return false;
  return !conf.bridgeAddress || conf.skipBridgeConfigureIP || hasAddress(host, br, conf.bridgeAddress);
}

/**
 * A bridge whose MAC the kernel chose takes the lowest port's MAC whenever a
 * port comes or goes, and long-lived pods keep the old gateway MAC in their
 * ARP cache. A MAC set explicitly never moves: bridges we create get a random
 * locally administered one (random, not from the name: bridges of different
 * hosts meet on the overlay); an existing bridge keeps its current MAC, now
 * pinned, so no pod sees it change.
 */
function randomLocalMac(): string {
  const b = Array.from({ length: 6 }, () => Math.floor(Math.random() * 256));
  b[0] = (b[0]! & 0xfc) | 0x02; // locally administered, unicast
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

const NET_ADDR_SET = '3';

/** addr_assign_type from sysfs (not in rtnetlink); when sysfs describes another netns, assume pinned. */
function macIsPinned(br: Link): boolean {
  try {
    const dir = `/sys/class/net/${br.name}`;
    if (fs.readFileSync(`${dir}/ifindex`, 'utf8').trim() !== String(br.index)) return true;
    return fs.readFileSync(`${dir}/addr_assign_type`, 'utf8').trim() === NET_ADDR_SET;
  } catch {
    return true;
  }
}

function hasAddress(host: Rtnetlink, br: Link, addr: Cidr): boolean {
  const want = formatCidr(addr);
  return host.addresses({ index: br.index, family: addr.family }).some((a) => a.cidr === want);
}

function vlanSupportError(e: unknown, conf: BridgeConfig): unknown {
  if (conf.vlan > 0 && isErrno(e, 'ENOTSUP', 'EOPNOTSUPP')) {
    return new CniError(ERR_INVALID_CONFIG, `vlan ${conf.vlan} needs bridge VLAN filtering, which this kernel does not support`,
      'CONFIG_BRIDGE_VLAN_FILTERING is off; remove "vlan" from the configuration or use a kernel with it');
  }
  return e;
}

/**
 * Put addr on the bridge. Other addresses stay; one of the same family whose
 * subnet overlaps is an error unless forceAddress (then it is replaced).
 */
function ensureBridgeAddress(host: Rtnetlink, br: Link, addr: Cidr, force: boolean): void {
  const want = formatCidr(addr);
  for (const a of host.addresses({ index: br.index, family: addr.family })) {
    if (a.cidr === want) return;
    if (addr.family === 6 && a.scope === 253) continue; // link-local
    const theirs = parseCidr(a.cidr);
    const overlaps = containsIp(theirs, addr.ip) || containsIp(addr, theirs.ip);
    if (!overlaps) continue;
    if (!force) {
      throw new CniError(ERR_INTERNAL, `"${br.name}" already has an IP address different from ${want}`, `it has ${a.cidr}; set forceAddress to replace it`);
    }
    host.delAddress(br.index, a.cidr);
  }
  // IPv6: no DAD for an address we own (the gateway), so it is usable at once rather than after 1–2 s.
  ignoreErrno(() => host.addAddress(br.index, want, { nodad: addr.family === 6 }), 'EEXIST');
}

function attachToBridge(host: Rtnetlink, veth: Link, bridge: Link, conf: BridgeConfig): void {
  host.setMaster(veth.index, bridge.index);
  // One request for both port flags; an isolated port reaches only non-isolated ones (the bridge itself, uplinks).
  if (conf.hairpinMode || conf.portIsolation) host.setBridgePort(veth.index, { hairpin: conf.hairpinMode || undefined, isolated: conf.portIsolation || undefined });
  if (conf.vlan > 0) {
    host.addBridgeVlan(veth.index, conf.vlan, BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED);
    // The default VLAN would otherwise still carry the port's traffic.
    ignoreErrno(() => host.delBridgeVlan(veth.index, 1), 'ENOENT', 'EINVAL');
  }
  host.setUp(veth.index);
}

/** L2 only: the container end up, nothing else. */
function containerUp(cont: Rtnetlink, ifname: string): Link {
  const link = cont.linkByName(ifname) ?? fail(`${ifname} vanished from the container`);
  cont.setUp(link.index);
  return cont.linkByIndex(link.index) ?? link;
}

function configureContainer(cont: Rtnetlink, ns: Netns, ifname: string, conf: BridgeConfig, ipam: Result, macHint: string | undefined): Link {
  const link = cont.linkByName(ifname)!;
  containerSysctls(ns, ifname, { enableDad: conf.enabledad });
  // The runtime's MAC (already set at creation) wins over the one cattle published.
  if (!conf.mac && macHint) cont.setMac(link.index, macHint);
  for (const ip of ipsOf(ipam)) cont.addAddress(link.index, ip.address, { nodad: !conf.enabledad });
  cont.setUp(link.index);
  // With DAD on, IPv6 addresses are tentative for a while; routes through them and the pod's first
  // packets would fail. Wait as the reference does (SettleAddresses), by notification.
  if (conf.enabledad && ipsOf(ipam).some((i) => i.cidr.family === 6) && !cont.waitAddressesSettled(link.index, SETTLE_TIMEOUT_MS)) {
    fail(`IPv6 addresses of ${ifname} in the container still tentative after ${SETTLE_TIMEOUT_MS} ms (duplicate address detection failed?)`);
  }
  const bridgeIPv4 = conf.bridgeAddress?.family === 4 ? conf.bridgeAddress.ip : undefined;
  for (const r of containerRoutes(conf, ipam, bridgeIPv4)) {
    ignoreErrno(() => cont.addRoute(routeSpec(r, link.index)), 'EEXIST');
  }
  return cont.linkByIndex(link.index) ?? link;
}

/** isGateway: the gateway address on the bridge (other addresses kept) and forwarding on. */
function configureGateway(host: Rtnetlink, bridge: Link, conf: BridgeConfig, ipam: Result): Map<string, string> {
  const bridgeIPv4 = conf.bridgeAddress?.family === 4 ? conf.bridgeAddress.ip : undefined;
  const gateways = new Map<string, string>();
  for (const ip of ipsOf(ipam)) gateways.set(ip.address, gatewayFor(conf, ip.cidr, ip.gateway, bridgeIPv4));
  if (!conf.isGateway) return gateways;
  const wanted = ipsOf(ipam).map((ip) => ({ ip: gateways.get(ip.address)!, prefix: ip.cidr.prefix, family: ip.cidr.family }));
  // Only the first pod of a subnet adds the gateway address: the rest skip the lock.
  if (!conf.skipBridgeConfigureIP && !wanted.every((addr) => hasAddress(host, bridge, addr))) {
    const lock = acquireLock(BRIDGE_LOCK_PREFIX + conf.bridge);
    try {
      for (const addr of wanted) ensureBridgeAddress(host, bridge, addr, conf.forceAddress);
    } finally {
      lock.release();
    }
  }
  // A gateway still tentative (a bridge without carrier yet, or one added by an older version with DAD)
  // would leave the pod without IPv6 for a while after ADD returned: wait until it is usable.
  const v6 = wanted.filter((a) => a.family === 6).map(formatCidr);
  if (v6.length && !conf.skipBridgeConfigureIP && !host.waitAddressesSettled(bridge.index, SETTLE_TIMEOUT_MS, v6)) {
    fail(`IPv6 gateway ${v6.join(', ')} on ${bridge.name} still tentative after ${SETTLE_TIMEOUT_MS} ms (duplicate address detection failed or the bridge has no carrier)`);
  }
  const families = new Set(ipsOf(ipam).map((i) => i.cidr.family));
  if (families.has(4)) sysctlSet('net/ipv4/ip_forward', '1');
  if (families.has(6)) sysctlSet('net/ipv6/conf/all/forwarding', '1');
  return gateways;
}

/** Bridge, host veth, and the container end (index 2, in its sandbox). MACs re-read: udev may have rewritten them while we worked. */
function resultInterfaces(ctx: AddContext<BridgeConfig>, bridge: Link, hostVeth: Link, contLink: Link): ResultInterface[] {
  const { host, cont, req } = ctx;
  const br = host.linkByIndex(bridge.index) ?? bridge;
  const hv = host.linkByIndex(hostVeth.index) ?? hostVeth;
  const cl = cont.linkByIndex(contLink.index) ?? contLink;
  return [
    { name: br.name, mac: br.mac },
    { name: hv.name, mac: hv.mac },
    { name: cl.name, mac: cl.mac, mtu: cl.mtu, sandbox: req.netns },
  ];
}

function buildResult(req: CniRequest, conf: BridgeConfig, interfaces: ResultInterface[], ipam: Result, gateways: Map<string, string>): Result {
  const bridgeIPv4 = conf.bridgeAddress?.family === 4 ? conf.bridgeAddress.ip : undefined;
  const result: Result = {
    interfaces,
    ips: (ipam.ips ?? []).map((ip) => ({ interface: 2, address: ip.address, gateway: conf.isGateway || ip.gateway ? gateways.get(ip.address) : undefined })),
    routes: containerRoutes(conf, ipam, bridgeIPv4),
  };
  const dns = chooseDns(req, ipam);
  if (dns) result.dns = dns;
  return result;
}

// ---- DEL --------------------------------------------------------------------

function add(req: CniRequest): Promise<Result> {
  return addAttachment(steps, req);
}

function del(req: CniRequest): Promise<void> {
  return delAttachment(steps, req);
}

// ---- CHECK ------------------------------------------------------------------

function check(req: CniRequest): Promise<void> {
  return checkAttachment(steps, req, ({ req, conf, prev, owner, host, cont }) => {
    const br = host.linkByName(conf.bridge);
    if (!br || br.kind !== 'bridge') throw new CniError(ERR_INTERNAL, `bridge ${conf.bridge} not found`);
    const hostName = hostVethName(owner);
    const hv = host.linkByName(hostName);
    if (!hv || !isOwnedBy(hv, PLUGIN, owner, conf.network)) throw new CniError(ERR_INTERNAL, `host veth ${hostName} of this attachment not found`);
    if (hv.master !== br.index) throw new CniError(ERR_INTERNAL, `host veth ${hostName} is not attached to ${conf.bridge}`);
    if (conf.portIsolation && hv.isolated !== true) throw new CniError(ERR_INTERNAL, `bridge port ${hostName} is not isolated (portIsolation)`);
    const cl = cont.linkByName(req.ifname);
    if (!cl || cl.parentIndex !== hv.index) throw new CniError(ERR_INTERNAL, `${req.ifname} in the container is not the peer of ${hostName}`);
    // ADD left it up, unless disableContainerInterface: then down is expected (and up, by whoever took it over, is fine).
    if (!conf.disableContainerInterface && !(cl.flags & IFF_UP)) throw new CniError(ERR_INTERNAL, `${req.ifname} in the container is down`, 'ADD left it up');
    const ifaces = prev.interfaces ?? [];
    checkContainerState(cont, req.ifname, prev, (i) => ifaces[i]?.name === req.ifname && !!ifaces[i]?.sandbox);
    if (conf.macspoofchk && !spoofCheckPresent({ ...spoofKey(conf, owner), hostVeth: hostName })) {
      throw new CniError(ERR_INTERNAL, `MAC spoof check of bridge port ${hostName} is missing`);
    }
    if (conf.masquerade && !masqueradePresent(conf, owner)) {
      throw new CniError(ERR_INTERNAL, 'masquerade rule for this attachment is missing');
    }
  });
}

// ---- GC and STATUS ----------------------------------------------------------

/**
 * Attachments of this network not in the valid list go (see gcAttachments);
 * links marked by earlier versions (no network in the mark) count as this
 * network's when they are ports of its bridge. Lock files of bridges that no
 * longer exist go too.
 */
async function gc(req: CniRequest): Promise<void> {
  const conf = loadBridgeConfig(req);
  await gcAttachments(steps, req, (host, link) => link.master === host.linkByName(conf.bridge)?.index, (errs) => {
    errs.attempt('remove lock files of vanished bridges', () => removeVanishedBridgeLocks());
    if (conf.masquerade) errs.attempt('remove stale masquerade elements', () => gcMasquerade(conf, validAttachments(req)));
  });
}

function removeVanishedBridgeLocks(): void {
  const host = Rtnetlink.open();
  try {
    for (const name of lockNames()) {
      if (name.startsWith(BRIDGE_LOCK_PREFIX) && !host.linkByName(name.slice(BRIDGE_LOCK_PREFIX.length))) removeIdleLock(name);
    }
  } finally {
    host.close();
  }
}

async function status(req: CniRequest): Promise<void> {
  const conf = loadBridgeConfig(req);
  const host = Rtnetlink.open();
  try {
    const br = host.linkByName(conf.bridge);
    if (br && br.kind !== 'bridge') throw new CniError(ERR_NOT_AVAILABLE, `"${conf.bridge}" exists but is not a bridge`, 'ADD would fail');
  } finally {
    host.close();
  }
  await ipamOf(conf, req).status();
}

export const plugin: PluginSpec = {
  name: PLUGIN,
  version: SUITE_VERSION,
  about: 'veth pairs on a Linux bridge (reference bridge + Rancher rancher-bridge)',
  add,
  del,
  check,
  gc,
  status,
};

export async function main(_args: string[]): Promise<number> {
  return runPlugin(plugin, processIO());
}
