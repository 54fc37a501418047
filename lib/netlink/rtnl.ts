// rtnetlink message bodies (links, addresses, routes, neighbours): typed
// encoders and decoders over wire.ts. Still no I/O.
import {
  attr, attrNested, attrString, attrU32, attrU8, attributeMap, parseAttributes, readString, type Bytes,
} from './wire.ts';
import { bytesToIp, bytesToMac, ipToBytes, macToBytes, parseCidr } from '../ip.ts';

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_GETNEIGH = 30;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

export const IFF_UP = 0x1;
export const IFF_PROMISC = 0x100;
export const IFF_LOWER_UP = 0x10000;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_PROTINFO = 12;
const IFLA_OPERSTATE = 16;
const IFLA_LINKINFO = 18;
const IFLA_IFALIAS = 20;
const IFLA_AF_SPEC = 26;
const IFLA_NET_NS_FD = 28;
const IFLA_EXT_MASK = 29;
const IFLA_LINK_NETNSID = 37;

const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_INFO_SLAVE_KIND = 4;
const VETH_INFO_PEER = 1;
const IFLA_BR_VLAN_FILTERING = 7;
const IFLA_BRPORT_MODE = 4; // hairpin
const IFLA_BRPORT_LEARNING = 8;
const IFLA_BRPORT_UNICAST_FLOOD = 9;
const IFLA_BRIDGE_VLAN_INFO = 2;
export const BRIDGE_VLAN_INFO_PVID = 0x2;
export const BRIDGE_VLAN_INFO_UNTAGGED = 0x4;
const RTEXT_FILTER_BRVLAN = 0x2;

export const OPERSTATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;
export type OperState = (typeof OPERSTATES)[number];

// ---- links ----------------------------------------------------------------

export interface IfInfo {
  family?: number;
  type?: number;
  index?: number;
  flags?: number;
  change?: number;
}

export function encodeIfInfo(i: IfInfo): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(i.family ?? AF_UNSPEC, 0);
  b.writeUInt16LE(i.type ?? 0, 2);
  b.writeInt32LE(i.index ?? 0, 4);
  b.writeUInt32LE((i.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((i.change ?? 0) >>> 0, 12);
  return b;
}

/** Link attributes we set; each maps to one IFLA_* attribute. */
export interface LinkAttrs {
  name?: string;
  mtu?: number;
  mac?: string;
  /** 0 detaches from the master. */
  master?: number;
  alias?: string;
  netnsFd?: number;
}

export function encodeLinkAttrs(a: LinkAttrs): Buffer[] {
  const out: Buffer[] = [];
  if (a.name !== undefined) out.push(attrString(IFLA_IFNAME, a.name));
  if (a.mtu !== undefined) out.push(attrU32(IFLA_MTU, a.mtu));
  if (a.mac !== undefined) out.push(attr(IFLA_ADDRESS, macToBytes(a.mac)));
  if (a.master !== undefined) out.push(attrU32(IFLA_MASTER, a.master));
  if (a.alias !== undefined) out.push(attrString(IFLA_IFALIAS, a.alias));
  if (a.netnsFd !== undefined) out.push(attrU32(IFLA_NET_NS_FD, a.netnsFd));
  return out;
}

export interface VethSpec {
  name: string;
  peerName: string;
  /** Create the peer directly inside this netns (an open nsfs fd). */
  peerNetnsFd?: number;
  mtu?: number;
  /** The container side may have a smaller MTU (Rancher's linkMTUOverhead). */
  peerMtu?: number;
  mac?: string;
  peerMac?: string;
}

/** RTM_NEWLINK body for a veth pair; the peer is a nested ifinfomsg + attributes. */
export function encodeNewVeth(v: VethSpec): Buffer {
  const peer = Buffer.concat([
    encodeIfInfo({}),
    ...encodeLinkAttrs({ name: v.peerName, mtu: v.peerMtu ?? v.mtu, mac: v.peerMac, netnsFd: v.peerNetnsFd }),
  ]);
  return Buffer.concat([
    encodeIfInfo({}),
    // The kernel ignores IFLA_IFALIAS on creation: set an alias afterwards.
    ...encodeLinkAttrs({ name: v.name, mtu: v.mtu, mac: v.mac }),
    attrNested(IFLA_LINKINFO, [
      attrString(IFLA_INFO_KIND, 'veth'),
      attrNested(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer)]),
    ]),
  ]);
}

export interface BridgeSpec {
  name: string;
  mtu?: number;
  mac?: string;
  vlanFiltering?: boolean;
}

function bridgeLinkInfo(vlanFiltering: boolean | undefined): Buffer {
  const info = [attrString(IFLA_INFO_KIND, 'bridge')];
  if (vlanFiltering !== undefined) {
    info.push(attrNested(IFLA_INFO_DATA, [attrU8(IFLA_BR_VLAN_FILTERING, vlanFiltering ? 1 : 0)]));
  }
  return attrNested(IFLA_LINKINFO, info);
}

export function encodeNewBridge(b: BridgeSpec): Buffer {
  return Buffer.concat([
    encodeIfInfo({}),
    ...encodeLinkAttrs({ name: b.name, mtu: b.mtu, mac: b.mac }),
    bridgeLinkInfo(b.vlanFiltering),
  ]);
}

/** Turn VLAN filtering on or off on an existing bridge. */
export function encodeBridgeVlanFiltering(index: number, on: boolean): Buffer {
  return Buffer.concat([encodeIfInfo({ index }), bridgeLinkInfo(on)]);
}

/** Set attributes and/or flags of an existing link (RTM_NEWLINK without CREATE). */
export function encodeSetLink(index: number, a: LinkAttrs, flags?: { set: number; mask: number }): Buffer {
  return Buffer.concat([
    encodeIfInfo({ index, flags: flags?.set ?? 0, change: flags?.mask ?? 0 }),
    ...encodeLinkAttrs(a),
  ]);
}

export interface BridgePortFlags {
  hairpin?: boolean;
  learning?: boolean;
  unicastFlood?: boolean;
}

/** RTM_SETLINK on AF_BRIDGE: bridge-port settings carried in IFLA_PROTINFO. */
export function encodeBridgePort(index: number, f: BridgePortFlags): Buffer {
  const opts: Buffer[] = [];
  if (f.hairpin !== undefined) opts.push(attrU8(IFLA_BRPORT_MODE, f.hairpin ? 1 : 0));
  if (f.learning !== undefined) opts.push(attrU8(IFLA_BRPORT_LEARNING, f.learning ? 1 : 0));
  if (f.unicastFlood !== undefined) opts.push(attrU8(IFLA_BRPORT_UNICAST_FLOOD, f.unicastFlood ? 1 : 0));
  return Buffer.concat([encodeIfInfo({ family: AF_BRIDGE, index }), attrNested(IFLA_PROTINFO, opts)]);
}

/** RTM_SETLINK/RTM_DELLINK on AF_BRIDGE: add or remove a VLAN on a bridge port. */
export function encodeBridgeVlan(index: number, vid: number, flags: number): Buffer {
  const info = Buffer.alloc(4);
  info.writeUInt16LE(flags, 0);
  info.writeUInt16LE(vid, 2);
  return Buffer.concat([
    encodeIfInfo({ family: AF_BRIDGE, index }),
    attrNested(IFLA_AF_SPEC, [attr(IFLA_BRIDGE_VLAN_INFO, info)]),
  ]);
}

/** RTM_GETLINK body: by index, by name, or (dump) with optional kernel-side filters. */
export function encodeGetLink(q: { index?: number; name?: string; master?: number; kind?: string; family?: number; vlans?: boolean }): Buffer {
  const parts = [encodeIfInfo({ family: q.family ?? AF_UNSPEC, index: q.index ?? 0 })];
  if (q.name !== undefined) parts.push(attrString(IFLA_IFNAME, q.name));
  if (q.master !== undefined) parts.push(attrU32(IFLA_MASTER, q.master));
  if (q.kind !== undefined) parts.push(attrNested(IFLA_LINKINFO, [attrString(IFLA_INFO_KIND, q.kind)]));
  if (q.vlans) parts.push(attrU32(IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN));
  return Buffer.concat(parts);
}

export interface Link {
  index: number;
  name: string;
  flags: number;
  mtu: number;
  mac?: string;
  /** Link kind from IFLA_INFO_KIND: "veth", "bridge"… (undefined for plain devices). */
  kind?: string;
  /** Kind of the master this link is enslaved to ("bridge"). */
  slaveKind?: string;
  master?: number;
  /** For a veth: the peer's ifindex (in the peer's netns). */
  parentIndex?: number;
  operState: OperState;
  alias?: string;
  linkNetnsId?: number;
  /** Bridge-port mode (hairpin) and learning, when the kernel reports them. */
  hairpin?: boolean;
  learning?: boolean;
  /** Bridge VLAN filtering for kind=bridge, when reported. */
  vlanFiltering?: boolean;
  /** VLANs on a bridge port (AF_BRIDGE dumps with the VLAN filter mask). */
  vlans?: { vid: number; flags: number }[];
}

export function decodeLink(payload: Bytes): Link {
  const index = payload.readInt32LE(4);
  const flags = payload.readUInt32LE(8);
  const attrs = attributeMap(payload.subarray(16));
  const link: Link = {
    index,
    flags,
    name: readString(attrs.get(IFLA_IFNAME) ?? Buffer.alloc(0)),
    mtu: attrs.get(IFLA_MTU)?.readUInt32LE(0) ?? 0,
    operState: OPERSTATES[attrs.get(IFLA_OPERSTATE)?.readUInt8(0) ?? 0] ?? 'unknown',
  };
  const mac = attrs.get(IFLA_ADDRESS);
  if (mac && mac.length === 6) link.mac = bytesToMac(mac);
  const master = attrs.get(IFLA_MASTER);
  if (master) link.master = master.readUInt32LE(0);
  const parent = attrs.get(IFLA_LINK);
  if (parent) link.parentIndex = parent.readUInt32LE(0);
  const alias = attrs.get(IFLA_IFALIAS);
  if (alias) link.alias = readString(alias);
  const nsid = attrs.get(IFLA_LINK_NETNSID);
  if (nsid) link.linkNetnsId = nsid.readInt32LE(0);
  const info = attrs.get(IFLA_LINKINFO);
  if (info) {
    const im = attributeMap(info);
    const kind = im.get(IFLA_INFO_KIND);
    if (kind) link.kind = readString(kind);
    const slave = im.get(IFLA_INFO_SLAVE_KIND);
    if (slave) link.slaveKind = readString(slave);
    const data = im.get(IFLA_INFO_DATA);
    if (data && link.kind === 'bridge') {
      const vf = attributeMap(data).get(IFLA_BR_VLAN_FILTERING);
      if (vf) link.vlanFiltering = vf.readUInt8(0) === 1;
    }
  }
  const prot = attrs.get(IFLA_PROTINFO);
  if (prot && payload.readUInt8(0) === AF_BRIDGE) {
    const pm = attributeMap(prot);
    const mode = pm.get(IFLA_BRPORT_MODE);
    if (mode) link.hairpin = mode.readUInt8(0) === 1;
    const learning = pm.get(IFLA_BRPORT_LEARNING);
    if (learning) link.learning = learning.readUInt8(0) === 1;
  }
  const spec = attrs.get(IFLA_AF_SPEC);
  if (spec && payload.readUInt8(0) === AF_BRIDGE) {
    link.vlans = parseAttributes(spec)
      .filter((a) => a.type === IFLA_BRIDGE_VLAN_INFO && a.data.length >= 4)
      .map((a) => ({ flags: a.data.readUInt16LE(0), vid: a.data.readUInt16LE(2) }));
  }
  return link;
}

// ---- addresses --------------------------------------------------------------

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const IFA_FLAGS = 8;
export const IFA_F_NODAD = 0x02;
export const IFA_F_PERMANENT = 0x80;

export interface AddressSpec {
  index: number;
  /** CIDR with host bits, e.g. "10.1.2.3/24". */
  address: string;
  flags?: number;
  scope?: number;
}

export function familyOf(v: 4 | 6): number {
  return v === 4 ? AF_INET : AF_INET6;
}

export function encodeAddress(a: AddressSpec): Buffer {
  const c = parseCidr(a.address);
  const hdr = Buffer.alloc(8);
  hdr.writeUInt8(familyOf(c.family), 0);
  hdr.writeUInt8(c.prefix, 1);
  hdr.writeUInt8((a.flags ?? 0) & 0xff, 2);
  hdr.writeUInt8(a.scope ?? 0, 3);
  hdr.writeUInt32LE(a.index, 4);
  const ip = ipToBytes(c.ip);
  const parts: Buffer[] = [hdr];
  // IPv4 wants IFA_LOCAL (the interface's own address) as well as IFA_ADDRESS.
  if (c.family === 4) parts.push(attr(IFA_LOCAL, ip));
  parts.push(attr(IFA_ADDRESS, ip));
  if (a.flags !== undefined && a.flags > 0xff) parts.push(attrU32(IFA_FLAGS, a.flags));
  return Buffer.concat(parts);
}

export function encodeGetAddress(family: number, index?: number): Buffer {
  const hdr = Buffer.alloc(8);
  hdr.writeUInt8(family, 0);
  hdr.writeUInt32LE(index ?? 0, 4);
  return hdr;
}

export interface Address {
  index: number;
  family: 4 | 6;
  address: string;
  prefix: number;
  /** "ip/prefix" with host bits. */
  cidr: string;
  flags: number;
  scope: number;
  label?: string;
}

export function decodeAddress(payload: Bytes): Address {
  const family = payload.readUInt8(0) === AF_INET ? 4 : 6;
  const prefix = payload.readUInt8(1);
  const attrs = attributeMap(payload.subarray(8));
  const raw = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS) ?? Buffer.alloc(family === 4 ? 4 : 16);
  const address = bytesToIp(raw);
  const f32 = attrs.get(IFA_FLAGS);
  const label = attrs.get(IFA_LABEL);
  const a: Address = {
    index: payload.readUInt32LE(4),
    family,
    address,
    prefix,
    cidr: `${address}/${prefix}`,
    flags: f32 ? f32.readUInt32LE(0) : payload.readUInt8(2),
    scope: payload.readUInt8(3),
  };
  if (label) a.label = readString(label);
  return a;
}

// ---- routes -----------------------------------------------------------------

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_PREFSRC = 7;
const RTA_METRICS = 8;
const RTA_TABLE = 15;
const RTAX_MTU = 2;
const RTAX_ADVMSS = 8;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTNH_F_ONLINK = 0x4;

export interface RouteSpec {
  /** Destination CIDR; "0.0.0.0/0" or "::/0" for a default route. */
  dst: string;
  gw?: string;
  oif?: number;
  scope?: number;
  table?: number;
  priority?: number;
  prefsrc?: string;
  onlink?: boolean;
  mtu?: number;
  advmss?: number;
  protocol?: number;
  type?: number;
}

export function encodeRoute(r: RouteSpec): Buffer {
  const dst = parseCidr(r.dst);
  const table = r.table ?? RT_TABLE_MAIN;
  const hdr = Buffer.alloc(12);
  hdr.writeUInt8(familyOf(dst.family), 0);
  hdr.writeUInt8(dst.prefix, 1);
  hdr.writeUInt8(table < 256 ? table : 0, 4);
  hdr.writeUInt8(r.protocol ?? RTPROT_BOOT, 5);
  // Without a gateway a route is on-link: the kernel wants scope link for that.
  hdr.writeUInt8(r.scope ?? (r.gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK), 6);
  hdr.writeUInt8(r.type ?? RTN_UNICAST, 7);
  hdr.writeUInt32LE(r.onlink ? RTNH_F_ONLINK : 0, 8);
  const parts: Buffer[] = [hdr];
  if (dst.prefix > 0) parts.push(attr(RTA_DST, ipToBytes(dst.ip)));
  if (r.gw) parts.push(attr(RTA_GATEWAY, ipToBytes(r.gw)));
  if (r.oif !== undefined) parts.push(attrU32(RTA_OIF, r.oif));
  if (r.priority !== undefined) parts.push(attrU32(RTA_PRIORITY, r.priority));
  if (r.prefsrc) parts.push(attr(RTA_PREFSRC, ipToBytes(r.prefsrc)));
  if (table >= 256) parts.push(attrU32(RTA_TABLE, table));
  const metrics: Buffer[] = [];
  if (r.mtu !== undefined) metrics.push(attrU32(RTAX_MTU, r.mtu));
  if (r.advmss !== undefined) metrics.push(attrU32(RTAX_ADVMSS, r.advmss));
  if (metrics.length) parts.push(attrNested(RTA_METRICS, metrics));
  return Buffer.concat(parts);
}

export function encodeGetRoute(family: number, table?: number): Buffer {
  const hdr = Buffer.alloc(12);
  hdr.writeUInt8(family, 0);
  const parts: Buffer[] = [hdr];
  // With strict checking the kernel filters the dump by table for us.
  if (table !== undefined) parts.push(attrU32(RTA_TABLE, table));
  return Buffer.concat(parts);
}

export interface Route {
  family: 4 | 6;
  dst: string;
  gw?: string;
  oif?: number;
  scope: number;
  table: number;
  protocol: number;
  type: number;
  flags: number;
  priority?: number;
  prefsrc?: string;
  mtu?: number;
  advmss?: number;
}

export function decodeRoute(payload: Bytes): Route {
  const family = payload.readUInt8(0) === AF_INET ? 4 : 6;
  const dstLen = payload.readUInt8(1);
  const attrs = attributeMap(payload.subarray(12));
  const dstRaw = attrs.get(RTA_DST);
  const zero = family === 4 ? '0.0.0.0' : '::';
  const r: Route = {
    family,
    dst: `${dstRaw ? bytesToIp(dstRaw) : zero}/${dstLen}`,
    scope: payload.readUInt8(6),
    table: attrs.get(RTA_TABLE)?.readUInt32LE(0) ?? payload.readUInt8(4),
    protocol: payload.readUInt8(5),
    type: payload.readUInt8(7),
    flags: payload.readUInt32LE(8),
  };
  const gw = attrs.get(RTA_GATEWAY);
  if (gw) r.gw = bytesToIp(gw);
  const oif = attrs.get(RTA_OIF);
  if (oif) r.oif = oif.readUInt32LE(0);
  const prio = attrs.get(RTA_PRIORITY);
  if (prio) r.priority = prio.readUInt32LE(0);
  const src = attrs.get(RTA_PREFSRC);
  if (src) r.prefsrc = bytesToIp(src);
  const metrics = attrs.get(RTA_METRICS);
  if (metrics) {
    const mm = attributeMap(metrics);
    const mtu = mm.get(RTAX_MTU);
    if (mtu) r.mtu = mtu.readUInt32LE(0);
    const advmss = mm.get(RTAX_ADVMSS);
    if (advmss) r.advmss = advmss.readUInt32LE(0);
  }
  return r;
}

// ---- neighbours -------------------------------------------------------------

const NDA_DST = 1;
const NDA_LLADDR = 2;

export function encodeGetNeighbour(family: number, index?: number): Buffer {
  const hdr = Buffer.alloc(12);
  hdr.writeUInt8(family, 0);
  hdr.writeInt32LE(index ?? 0, 4);
  return hdr;
}

export interface Neighbour {
  family: number;
  index: number;
  state: number;
  flags: number;
  dst?: string;
  mac?: string;
}

export function decodeNeighbour(payload: Bytes): Neighbour {
  const attrs = attributeMap(payload.subarray(12));
  const n: Neighbour = {
    family: payload.readUInt8(0),
    index: payload.readInt32LE(4),
    state: payload.readUInt16LE(8),
    flags: payload.readUInt8(10),
  };
  const dst = attrs.get(NDA_DST);
  if (dst && (dst.length === 4 || dst.length === 16)) n.dst = bytesToIp(dst);
  const ll = attrs.get(NDA_LLADDR);
  if (ll && ll.length === 6) n.mac = bytesToMac(ll);
  return n;
}

