// rtnetlink message bodies (links, addresses, routes, neighbours, FDB
// entries): encoders and decoders over the attribute tables (tables.ts), and
// the public shapes callers use. Still no I/O.
import { ipFamily, parseCidr } from '../ip.ts';
import { decodeMessage, encodeBody } from './attrs.ts';
import {
  AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC, NTF_SELF, NUD_NOARP, NUD_PERMANENT,   type OperState,
  OPERSTATES, RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RTEXT_FILTER_BRVLAN, RTN_UNICAST, RTNH_F_ONLINK, RTPROT_BOOT, VXLAN_PORT_IANA,
} from './constants.ts';
import {
  ADDRESS,   type BridgePortValues, type BridgeValues, type IfInfoHeader, LINK, type LinkValues, NEIGHBOUR, ROUTE,
  type VxlanValues,
} from './tables.ts';
import type { Bytes } from './wire.ts';

export * from './constants.ts';

// ---- links ----------------------------------------------------------------

export type IfInfo = Partial<IfInfoHeader>;

export function encodeIfInfo(i: IfInfo): Buffer {
  return encodeBody(LINK, { header: i });
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

function linkValues(a: LinkAttrs): LinkValues {
  return { ifname: a.name, mtu: a.mtu, address: a.mac, master: a.master, ifalias: a.alias, netNsFd: a.netnsFd };
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
  const peer = { ifname: v.peerName, mtu: v.peerMtu ?? v.mtu, address: v.peerMac, netNsFd: v.peerNetnsFd };
  return encodeBody(LINK, {
    // The kernel ignores IFLA_IFALIAS on creation: set an alias afterwards.
    attrs: { ...linkValues({ name: v.name, mtu: v.mtu, mac: v.mac }), linkinfo: { kind: 'veth', data: { peer: { attrs: peer } } } },
  });
}

export interface BridgeSpec {
  name: string;
  mtu?: number;
  mac?: string;
  vlanFiltering?: boolean;
}

export function encodeNewBridge(b: BridgeSpec): Buffer {
  const data: BridgeValues | undefined = b.vlanFiltering === undefined ? undefined : { vlanFiltering: b.vlanFiltering };
  return encodeBody(LINK, { attrs: { ...linkValues(b), linkinfo: { kind: 'bridge', data } } });
}

/** Turn VLAN filtering on or off on an existing bridge. */
export function encodeBridgeVlanFiltering(index: number, on: boolean): Buffer {
  return encodeBody(LINK, { header: { index }, attrs: { linkinfo: { kind: 'bridge', data: { vlanFiltering: on } } } });
}

/** `ip link add NAME type vxlan id VNI dstport PORT [nolearning] [proxy] [local IP] [dev UNDERLAY]`. */
export interface VxlanSpec {
  name: string;
  /** IFLA_VXLAN_ID. */
  vni: number;
  /** Destination UDP port; 4789 (IANA) unless given, never the kernel's own default 8472. */
  port?: number;
  /** Source address for the underlay (IFLA_VXLAN_LOCAL or LOCAL6). */
  local?: string;
  /** Default remote or multicast group (IFLA_VXLAN_GROUP or GROUP6). */
  group?: string;
  /** ifindex of the underlay device (`dev`). */
  underlay?: number;
  /** Learn remote MACs from received packets; the kernel's default is on. */
  learning?: boolean;
  /** Answer ARP/ND from the neighbour table instead of flooding. */
  proxy?: boolean;
  ttl?: number;
  /** FDB ageing, in seconds. */
  ageing?: number;
  l2miss?: boolean;
  l3miss?: boolean;
  mtu?: number;
  mac?: string;
  master?: number;
}

function vxlanValues(v: VxlanSpec): VxlanValues {
  const v6 = (ip: string | undefined) => ip !== undefined && ipFamily(ip) === 6;
  return {
    id: v.vni,
    group: v.group !== undefined && !v6(v.group) ? v.group : undefined,
    link: v.underlay,
    local: v.local !== undefined && !v6(v.local) ? v.local : undefined,
    ttl: v.ttl,
    learning: v.learning,
    ageing: v.ageing,
    proxy: v.proxy,
    l2miss: v.l2miss,
    l3miss: v.l3miss,
    port: v.port ?? VXLAN_PORT_IANA,
    group6: v6(v.group) ? v.group : undefined,
    local6: v6(v.local) ? v.local : undefined,
  };
}

export function encodeNewVxlan(v: VxlanSpec): Buffer {
  return encodeBody(LINK, { attrs: { ...linkValues(v), linkinfo: { kind: 'vxlan', data: vxlanValues(v) } } });
}

/** Set attributes and/or flags of an existing link (RTM_NEWLINK without CREATE). */
export function encodeSetLink(index: number, a: LinkAttrs, flags?: { set: number; mask: number }): Buffer {
  return encodeBody(LINK, { header: { index, flags: flags?.set ?? 0, change: flags?.mask ?? 0 }, attrs: linkValues(a) });
}

export interface BridgePortFlags {
  hairpin?: boolean;
  learning?: boolean;
  unicastFlood?: boolean;
  /** Isolated ports only talk to non-isolated ones. */
  isolated?: boolean;
}

/** RTM_SETLINK on AF_BRIDGE: bridge-port settings carried in IFLA_PROTINFO. */
export function encodeBridgePort(index: number, f: BridgePortFlags): Buffer {
  return encodeBody(LINK, {
    header: { family: AF_BRIDGE, index },
    attrs: { protinfo: { mode: f.hairpin, learning: f.learning, unicastFlood: f.unicastFlood, isolated: f.isolated } },
  });
}

/** RTM_SETLINK/RTM_DELLINK on AF_BRIDGE: add or remove a VLAN on a bridge port. */
export function encodeBridgeVlan(index: number, vid: number, flags: number): Buffer {
  return encodeBody(LINK, { header: { family: AF_BRIDGE, index }, attrs: { afSpec: { vlanInfo: [{ flags, vid }] } } });
}

/** RTM_GETLINK body: by index, by name, or (dump) with optional kernel-side filters. */
export function encodeGetLink(q: { index?: number; name?: string; master?: number; kind?: string; family?: number; vlans?: boolean }): Buffer {
  return encodeBody(LINK, {
    header: { family: q.family ?? AF_UNSPEC, index: q.index ?? 0 },
    attrs: {
      ifname: q.name,
      master: q.master,
      linkinfo: q.kind === undefined ? undefined : { kind: q.kind },
      extMask: q.vlans ? RTEXT_FILTER_BRVLAN : undefined,
    },
  });
}

export interface VxlanInfo {
  /** IFLA_VXLAN_ID. */
  vni: number;
  /** Destination UDP port. */
  port: number;
  learning: boolean;
  proxy: boolean;
  local?: string;
  group?: string;
  /** ifindex of the underlay device. */
  underlay?: number;
  ttl?: number;
  ageing?: number;
  l2miss?: boolean;
  l3miss?: boolean;
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
  /**
   * Bridge-port settings of a bridge port: from IFLA_PROTINFO in AF_BRIDGE
   * dumps, from IFLA_INFO_SLAVE_DATA in plain ones.
   */
  hairpin?: boolean;
  learning?: boolean;
  unicastFlood?: boolean;
  isolated?: boolean;
  /** Bridge VLAN filtering for kind=bridge, when reported. */
  vlanFiltering?: boolean;
  /** VLANs on a bridge port (AF_BRIDGE dumps with the VLAN filter mask). */
  vlans?: { flags: number; vid: number }[];
  /** For kind=vxlan. */
  vxlan?: VxlanInfo;
}

function vxlanInfo(d: VxlanValues): VxlanInfo {
  const x: VxlanInfo = { vni: d.id ?? 0, port: d.port ?? 0, learning: d.learning ?? false, proxy: d.proxy ?? false };
  const local = d.local ?? d.local6;
  if (local !== undefined) x.local = local;
  const group = d.group ?? d.group6;
  if (group !== undefined) x.group = group;
  if (d.link !== undefined) x.underlay = d.link;
  if (d.ttl !== undefined) x.ttl = d.ttl;
  if (d.ageing !== undefined) x.ageing = d.ageing;
  if (d.l2miss !== undefined) x.l2miss = d.l2miss;
  if (d.l3miss !== undefined) x.l3miss = d.l3miss;
  return x;
}

function bridgePortInto(link: Link, p: BridgePortValues): void {
  if (p.mode !== undefined) link.hairpin = p.mode;
  if (p.learning !== undefined) link.learning = p.learning;
  if (p.unicastFlood !== undefined) link.unicastFlood = p.unicastFlood;
  if (p.isolated !== undefined) link.isolated = p.isolated;
}

/** Decode an RTM_NEWLINK payload (a dump reply or an event). */
export function decodeLink(payload: Bytes, msg = 'RTM_NEWLINK'): Link {
  const { header: h, attrs: a } = decodeMessage(LINK, payload, msg);
  const link: Link = { index: h.index, flags: h.flags, name: a.ifname ?? '', mtu: a.mtu ?? 0, operState: OPERSTATES[a.operstate ?? 0] ?? 'unknown' };
  // Ethernet only: tunnels have 4- or 16-byte link-layer addresses.
  if (a.address !== undefined && a.address.length === 17) link.mac = a.address;
  if (a.master !== undefined) link.master = a.master;
  if (a.link !== undefined) link.parentIndex = a.link;
  if (a.ifalias !== undefined) link.alias = a.ifalias;
  if (a.linkNetnsid !== undefined) link.linkNetnsId = a.linkNetnsid;
  const info = a.linkinfo;
  if (info !== undefined) {
    if (info.kind !== undefined) link.kind = info.kind;
    if (info.slaveKind !== undefined) link.slaveKind = info.slaveKind;
    if (info.data !== undefined) {
      if (info.kind === 'bridge') {
        const vf = (info.data as BridgeValues).vlanFiltering;
        if (vf !== undefined) link.vlanFiltering = vf;
      } else if (info.kind === 'vxlan') {
        link.vxlan = vxlanInfo(info.data as VxlanValues);
      }
    }
    if (info.slaveData !== undefined && info.slaveKind === 'bridge') bridgePortInto(link, info.slaveData);
  }
  if (a.protinfo !== undefined) bridgePortInto(link, a.protinfo);
  if (a.afSpec !== undefined) link.vlans = a.afSpec.vlanInfo ?? [];
  return link;
}

// ---- addresses --------------------------------------------------------------

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
  const flags = a.flags ?? 0;
  return encodeBody(ADDRESS, {
    header: { family: familyOf(c.family), prefixlen: c.prefix, flags: flags & 0xff, scope: a.scope ?? 0, index: a.index },
    attrs: {
      address: c.ip,
      // IPv4 wants IFA_LOCAL (the interface's own address) as well as IFA_ADDRESS.
      local: c.family === 4 ? c.ip : undefined,
      flags: flags > 0xff ? flags : undefined,
    },
  });
}

export function encodeGetAddress(family: number, index?: number): Buffer {
  return encodeBody(ADDRESS, { header: { family, index: index ?? 0 } });
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

export function decodeAddress(payload: Bytes, msg = 'RTM_NEWADDR'): Address {
  const { header: h, attrs: a } = decodeMessage(ADDRESS, payload, msg);
  const family = h.family === AF_INET ? 4 : 6;
  const address = a.local ?? a.address ?? (family === 4 ? '0.0.0.0' : '::');
  const out: Address = {
    index: h.index,
    family,
    address,
    prefix: h.prefixlen,
    cidr: `${address}/${h.prefixlen}`,
    flags: a.flags ?? h.flags,
    scope: h.scope,
  };
  if (a.label !== undefined) out.label = a.label;
  return out;
}

// ---- routes -----------------------------------------------------------------

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
  const metrics = r.mtu !== undefined || r.advmss !== undefined ? { mtu: r.mtu, advmss: r.advmss } : undefined;
  return encodeBody(ROUTE, {
    header: {
      family: familyOf(dst.family),
      dstLen: dst.prefix,
      table: table < 256 ? table : 0,
      protocol: r.protocol ?? RTPROT_BOOT,
      // Without a gateway a route is on-link: the kernel wants scope link for that.
      scope: r.scope ?? (r.gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK),
      type: r.type ?? RTN_UNICAST,
      flags: r.onlink ? RTNH_F_ONLINK : 0,
    },
    attrs: {
      dst: dst.prefix > 0 ? dst.ip : undefined,
      oif: r.oif,
      gateway: r.gw || undefined,
      priority: r.priority,
      prefsrc: r.prefsrc || undefined,
      metrics,
      table: table >= 256 ? table : undefined,
    },
  });
}

/** RTM_GETROUTE dump request; with strict checking the kernel filters by table and oif for us. */
export function encodeGetRoute(family: number, table?: number, oif?: number): Buffer {
  return encodeBody(ROUTE, { header: { family }, attrs: { table, oif } });
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

export function decodeRoute(payload: Bytes, msg = 'RTM_NEWROUTE'): Route {
  const { header: h, attrs: a } = decodeMessage(ROUTE, payload, msg);
  const family = h.family === AF_INET ? 4 : 6;
  const r: Route = {
    family,
    dst: `${a.dst ?? (family === 4 ? '0.0.0.0' : '::')}/${h.dstLen}`,
    scope: h.scope,
    table: a.table ?? h.table,
    protocol: h.protocol,
    type: h.type,
    flags: h.flags,
  };
  if (a.gateway !== undefined) r.gw = a.gateway;
  if (a.oif !== undefined) r.oif = a.oif;
  if (a.priority !== undefined) r.priority = a.priority;
  if (a.prefsrc !== undefined) r.prefsrc = a.prefsrc;
  if (a.metrics?.mtu !== undefined) r.mtu = a.metrics.mtu;
  if (a.metrics?.advmss !== undefined) r.advmss = a.metrics.advmss;
  return r;
}

// ---- neighbours and FDB entries --------------------------------------------

/**
 * RTM_GETNEIGH dump request: AF_INET/AF_INET6/AF_UNSPEC for neighbours,
 * AF_BRIDGE for FDB entries. The device filter goes in NDA_IFINDEX: with
 * strict checking the kernel rejects a dump request with ndm_ifindex set.
 */
export function encodeGetNeighbour(family: number, index?: number): Buffer {
  return encodeBody(NEIGHBOUR, { header: { family }, attrs: { ifindex: index || undefined } });
}

/** `ip neigh add|replace DST lladdr MAC dev … nud permanent` */
export interface NeighbourSpec {
  dst: string;
  mac?: string;
  /** NUD_* state; NUD_PERMANENT unless given. */
  state?: number;
  /** NTF_* flags. */
  flags?: number;
  /** NDA_PROTOCOL: who made the entry (kept by the kernel, reported in dumps and events). */
  protocol?: number;
}

/** RTM_NEWNEIGH / RTM_DELNEIGH body for a neighbour (ARP/ND) entry. */
export function encodeNeighbour(index: number, n: NeighbourSpec): Buffer {
  return encodeBody(NEIGHBOUR, {
    header: { family: familyOf(ipFamily(n.dst)), index, state: n.state ?? NUD_PERMANENT, flags: n.flags ?? 0 },
    attrs: { dst: n.dst, lladdr: n.mac, protocol: n.protocol },
  });
}

/** `bridge fdb add|append|replace|del MAC dev … [dst IP] [vni N] [port P] [self] [permanent]` */
export interface FdbSpec {
  /** 00:00:00:00:00:00 on a VXLAN device: the default (flooding) destinations. */
  mac: string;
  /** Remote VTEP (VXLAN devices). */
  dst?: string;
  vni?: number;
  port?: number;
  /** Underlay device toward dst (NDA_IFINDEX). */
  remoteIndex?: number;
  vlan?: number;
  /** NTF_* flags; NTF_SELF unless given (the device's own table, as bridge(8) assumes). */
  flags?: number;
  /** NUD_* state; NUD_NOARP | NUD_PERMANENT unless given, which is what bridge(8) sends. */
  state?: number;
  /** NDA_PROTOCOL (bridge FDB entries keep it; VXLAN devices ignore it). */
  protocol?: number;
}

/** RTM_NEWNEIGH / RTM_DELNEIGH body for an FDB entry (AF_BRIDGE). */
export function encodeFdb(index: number, e: FdbSpec): Buffer {
  return encodeBody(NEIGHBOUR, {
    header: { family: AF_BRIDGE, index, state: e.state ?? (NUD_NOARP | NUD_PERMANENT), flags: e.flags ?? NTF_SELF },
    attrs: { dst: e.dst, lladdr: e.mac, vlan: e.vlan, port: e.port, vni: e.vni, ifindex: e.remoteIndex, protocol: e.protocol },
  });
}

export interface Neighbour {
  /** AF_INET, AF_INET6, or AF_BRIDGE for FDB entries. */
  family: number;
  index: number;
  /** NUD_* bits. */
  state: number;
  /** NTF_* bits. */
  flags: number;
  dst?: string;
  mac?: string;
  /** FDB: VLAN (bridges), remote VNI and UDP port, underlay device and master (VXLAN). */
  vlan?: number;
  vni?: number;
  port?: number;
  remoteIndex?: number;
  master?: number;
  /** NDA_PROTOCOL, when the kernel reports one (not for entries made without it). */
  protocol?: number;
}

export function decodeNeighbour(payload: Bytes, msg = 'RTM_NEWNEIGH'): Neighbour {
  const { header: h, attrs: a } = decodeMessage(NEIGHBOUR, payload, msg);
  const n: Neighbour = { family: h.family, index: h.index, state: h.state, flags: h.flags };
  if (a.dst !== undefined) n.dst = a.dst;
  if (a.lladdr !== undefined && a.lladdr.length === 17) n.mac = a.lladdr;
  if (a.vlan !== undefined) n.vlan = a.vlan;
  if (a.vni !== undefined) n.vni = a.vni;
  if (a.port !== undefined) n.port = a.port;
  if (a.ifindex !== undefined) n.remoteIndex = a.ifindex;
  if (a.master !== undefined) n.master = a.master;
  if (a.protocol !== undefined) n.protocol = a.protocol;
  return n;
}
