// The rtnetlink attribute tables: type number → field name and codec, one
// table per message family and nest, with the numbers of the kernel uapi
// (linux/if_link.h, if_addr.h, rtnetlink.h, neighbour.h, if_bridge.h, veth.h).
// Field names are the uapi names in camelCase (IFLA_LINK_NETNSID → linkNetnsid),
// which is how errors name them. A table lists what we read or write; the
// decoder skips the rest.
import {
  be16, bool, byHeader, bySibling, bytes, flag, ip, ip4, ip6, lladdr, messageCodec, MULTI, nested, s32, string,
  struct, structCodec, type StructOf, table, type TableValues,
  u8, u16, u32 } from './attrs.ts';
import { AF_BRIDGE } from './constants.ts';

// ---- links: ifinfomsg + IFLA_* ------------------------------------------------

export const IFINFOMSG = struct('ifinfomsg', 16, {
  family: [0, u8], // 1 byte of padding
  type: [2, u16],
  index: [4, s32],
  flags: [8, u32],
  change: [12, u32],
});

/** Bridge port settings: IFLA_PROTINFO of AF_BRIDGE messages, IFLA_INFO_SLAVE_DATA of bridge ports. */
export const IFLA_BRPORT = table('IFLA_BRPORT', {
  state: [1, u8],
  priority: [2, u16],
  cost: [3, u32],
  /** Hairpin (BRIDGE_MODE_HAIRPIN). */
  mode: [4, bool],
  guard: [5, bool],
  protect: [6, bool],
  fastLeave: [7, bool],
  learning: [8, bool],
  unicastFlood: [9, bool],
  proxyarp: [10, bool],
  mcastFlood: [27, bool],
  bcastFlood: [30, bool],
  neighSuppress: [32, bool],
  isolated: [33, bool],
});

/** IFLA_INFO_DATA of kind "bridge". */
export const IFLA_BR = table('IFLA_BR', {
  forwardDelay: [1, u32],
  ageingTime: [4, u32],
  stpState: [5, u32],
  priority: [6, u16],
  vlanFiltering: [7, bool],
  vlanDefaultPvid: [39, u16],
});

/** IFLA_INFO_DATA of kind "vxlan". */
export const IFLA_VXLAN = table('IFLA_VXLAN', {
  id: [1, u32],
  /** Remote or multicast group (IPv4). */
  group: [2, ip4],
  /** Underlay device. */
  link: [3, u32],
  local: [4, ip4],
  ttl: [5, u8],
  tos: [6, u8],
  learning: [7, bool],
  ageing: [8, u32],
  limit: [9, u32],
  proxy: [11, bool],
  rsc: [12, bool],
  l2miss: [13, bool],
  l3miss: [14, bool],
  /** Destination UDP port, network byte order. */
  port: [15, be16],
  group6: [16, ip6],
  local6: [17, ip6],
  udpCsum: [18, bool],
  udpZeroCsum6Tx: [19, bool],
  udpZeroCsum6Rx: [20, bool],
  gbp: [23, flag],
});

export const BRIDGE_VLAN_INFO = struct('bridge_vlan_info', 4, { flags: [0, u16], vid: [2, u16] });

/** IFLA_AF_SPEC of AF_BRIDGE messages. */
export const IFLA_BRIDGE = table('IFLA_BRIDGE', {
  flags: [0, u16],
  mode: [1, u16],
  vlanInfo: [2, structCodec(BRIDGE_VLAN_INFO), MULTI],
});

/** IFLA_* of every link message, IFLA_LINKINFO aside (a veth peer has none of its own). */
const IFLA_COMMON = {
  address: [1, lladdr],
  broadcast: [2, lladdr],
  ifname: [3, string],
  mtu: [4, u32],
  /** Parent link; for a veth, the peer (in the peer's netns). */
  link: [5, u32],
  master: [10, u32],
  protinfo: [12, byHeader('family', { [AF_BRIDGE]: nested(IFLA_BRPORT) })],
  txqlen: [13, u32],
  operstate: [16, u8],
  linkmode: [17, u8],
  ifalias: [20, string],
  afSpec: [26, byHeader('family', { [AF_BRIDGE]: nested(IFLA_BRIDGE) })],
  group: [27, u32],
  netNsFd: [28, s32],
  extMask: [29, u32],
  promiscuity: [30, u32],
  carrier: [33, u8],
  linkNetnsid: [37, s32],
  minMtu: [50, u32],
  maxMtu: [51, u32],
} as const;

/** The body of a veth peer: ifinfomsg + IFLA_* without IFLA_LINKINFO. */
export const PEER = { header: IFINFOMSG, attrs: table('IFLA', IFLA_COMMON) };

/** IFLA_INFO_DATA of kind "veth". */
export const VETH_INFO = table('VETH_INFO', {
  peer: [1, messageCodec(PEER)],
});

/** IFLA_LINKINFO. */
export const IFLA_INFO = table('IFLA_INFO', {
  kind: [1, string],
  data: [2, bySibling('kind', { bridge: nested(IFLA_BR), veth: nested(VETH_INFO), vxlan: nested(IFLA_VXLAN) })],
  slaveKind: [4, string],
  slaveData: [5, bySibling('slaveKind', { bridge: nested(IFLA_BRPORT) })],
});

export const IFLA = table('IFLA', { ...IFLA_COMMON, linkinfo: [18, nested(IFLA_INFO)] });

export const LINK = { header: IFINFOMSG, attrs: IFLA };

export type IfInfoHeader = StructOf<typeof IFINFOMSG>;
export type LinkValues = TableValues<typeof IFLA>;
export type LinkInfoValues = TableValues<typeof IFLA_INFO>;
export type BridgePortValues = TableValues<typeof IFLA_BRPORT>;
export type VxlanValues = TableValues<typeof IFLA_VXLAN>;
export type BridgeValues = TableValues<typeof IFLA_BR>;

// ---- addresses: ifaddrmsg + IFA_* ---------------------------------------------

export const IFADDRMSG = struct('ifaddrmsg', 8, {
  family: [0, u8],
  prefixlen: [1, u8],
  flags: [2, u8],
  scope: [3, u8],
  index: [4, u32],
});

export const IFA = table('IFA', {
  address: [1, ip],
  local: [2, ip],
  label: [3, string],
  broadcast: [4, ip4],
  anycast: [5, ip],
  /** struct ifa_cacheinfo */
  cacheinfo: [6, bytes],
  flags: [8, u32],
  rtPriority: [9, u32],
  proto: [11, u8],
});

export const ADDRESS = { header: IFADDRMSG, attrs: IFA };

// ---- routes: rtmsg + RTA_* ----------------------------------------------------

export const RTMSG = struct('rtmsg', 12, {
  family: [0, u8],
  dstLen: [1, u8],
  srcLen: [2, u8],
  tos: [3, u8],
  table: [4, u8],
  protocol: [5, u8],
  scope: [6, u8],
  type: [7, u8],
  flags: [8, u32],
});

export const RTAX = table('RTAX', {
  lock: [1, u32],
  mtu: [2, u32],
  window: [3, u32],
  rtt: [4, u32],
  rttvar: [5, u32],
  ssthresh: [6, u32],
  cwnd: [7, u32],
  advmss: [8, u32],
  reordering: [9, u32],
  hoplimit: [10, u32],
  initcwnd: [11, u32],
  features: [12, u32],
  rtoMin: [13, u32],
  initrwnd: [14, u32],
  quickack: [15, u32],
  ccAlgo: [16, string],
});

export const RTA = table('RTA', {
  dst: [1, ip],
  src: [2, ip],
  iif: [3, u32],
  oif: [4, u32],
  gateway: [5, ip],
  priority: [6, u32],
  prefsrc: [7, ip],
  metrics: [8, nested(RTAX)],
  flow: [11, u32],
  table: [15, u32],
  mark: [16, u32],
  pref: [20, u8],
});

export const ROUTE = { header: RTMSG, attrs: RTA };

// ---- neighbours and FDB entries: ndmsg + NDA_* ----------------------------------

export const NDMSG = struct('ndmsg', 12, {
  family: [0, u8],
  index: [4, s32],
  state: [8, u16],
  flags: [10, u8],
  type: [11, u8],
});

export const NDA = table('NDA', {
  /** IP of a neighbour; for a VXLAN FDB entry, the remote VTEP. */
  dst: [1, ip],
  lladdr: [2, lladdr],
  /** struct nda_cacheinfo */
  cacheinfo: [3, bytes],
  probes: [4, u32],
  vlan: [5, u16],
  /** VXLAN FDB: remote UDP port, network byte order. */
  port: [6, be16],
  /** VXLAN FDB: remote VNI. */
  vni: [7, u32],
  /** VXLAN FDB: underlay device toward dst; in a dump request, the device filter. */
  ifindex: [8, u32],
  master: [9, u32],
  linkNetnsid: [10, s32],
  srcVni: [11, u32],
  protocol: [12, u8],
  nhId: [13, u32],
  flagsExt: [15, u32],
});

export const NEIGHBOUR = { header: NDMSG, attrs: NDA };

/** Every table, for checks and docs. */
export const TABLES = [IFLA, IFLA_INFO, IFLA_BR, VETH_INFO, IFLA_VXLAN, IFLA_BRPORT, IFLA_BRIDGE, IFA, RTA, RTAX, NDA] as const;
