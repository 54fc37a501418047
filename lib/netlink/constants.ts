// rtnetlink numbers for callers: message types, address families, link
// flags, route scopes/types/protocols, neighbour states and flags. Values from
// the kernel uapi (linux/rtnetlink.h, if.h, if_addr.h, neighbour.h,
// if_bridge.h). Attribute type numbers live in the tables (tables.ts).

// ---- message types (rtnetlink.h) ----
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
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

/** Names for error messages ("RTM_NEWLINK IFLA_MTU: …"). */
export const RTM_NAMES: Readonly<Record<number, string>> = {
  [RTM_NEWLINK]: 'RTM_NEWLINK', [RTM_DELLINK]: 'RTM_DELLINK', [RTM_GETLINK]: 'RTM_GETLINK', [RTM_SETLINK]: 'RTM_SETLINK',
  [RTM_NEWADDR]: 'RTM_NEWADDR', [RTM_DELADDR]: 'RTM_DELADDR', [RTM_GETADDR]: 'RTM_GETADDR',
  [RTM_NEWROUTE]: 'RTM_NEWROUTE', [RTM_DELROUTE]: 'RTM_DELROUTE', [RTM_GETROUTE]: 'RTM_GETROUTE',
  [RTM_NEWNEIGH]: 'RTM_NEWNEIGH', [RTM_DELNEIGH]: 'RTM_DELNEIGH', [RTM_GETNEIGH]: 'RTM_GETNEIGH',
};

// ---- address families (socket.h) ----
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

// ---- link flags, ifinfomsg.ifi_flags (if.h) ----
export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_LOOPBACK = 0x8;
export const IFF_POINTOPOINT = 0x10;
export const IFF_RUNNING = 0x40;
export const IFF_NOARP = 0x80;
export const IFF_PROMISC = 0x100;
export const IFF_ALLMULTI = 0x200;
export const IFF_MULTICAST = 0x1000;
export const IFF_LOWER_UP = 0x10000;
export const IFF_DORMANT = 0x20000;

/** IFLA_OPERSTATE values, by number (RFC 2863). */
export const OPERSTATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;
export type OperState = (typeof OPERSTATES)[number];

/** IFLA_EXT_MASK bits. */
export const RTEXT_FILTER_VF = 0x1;
export const RTEXT_FILTER_BRVLAN = 0x2;
export const RTEXT_FILTER_BRVLAN_COMPRESSED = 0x4;

// ---- bridge (if_bridge.h) ----
export const BRIDGE_VLAN_INFO_MASTER = 0x1;
export const BRIDGE_VLAN_INFO_PVID = 0x2;
export const BRIDGE_VLAN_INFO_UNTAGGED = 0x4;
export const BRIDGE_VLAN_INFO_RANGE_BEGIN = 0x8;
export const BRIDGE_VLAN_INFO_RANGE_END = 0x10;
/** IFLA_BRPORT_MODE values. */
export const BRIDGE_MODE_UNSPEC = 0;
export const BRIDGE_MODE_HAIRPIN = 1;

// ---- addresses (if_addr.h) ----
export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NODAD = 0x02;
export const IFA_F_OPTIMISTIC = 0x04;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_HOMEADDRESS = 0x10;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;
export const IFA_F_MANAGETEMPADDR = 0x100;
export const IFA_F_NOPREFIXROUTE = 0x200;

// ---- routes (rtnetlink.h) ----
export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_SITE = 200;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;
export const RTPROT_UNSPEC = 0;
export const RTPROT_REDIRECT = 1;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;
export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_ANYCAST = 4;
export const RTN_MULTICAST = 5;
export const RTN_BLACKHOLE = 6;
export const RTN_UNREACHABLE = 7;
export const RTN_PROHIBIT = 8;
export const RTNH_F_DEAD = 0x1;
export const RTNH_F_PERVASIVE = 0x2;
export const RTNH_F_ONLINK = 0x4;
export const RTNH_F_LINKDOWN = 0x10;

// ---- neighbours (neighbour.h) ----
export const NUD_NONE = 0x00;
export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_DELAY = 0x08;
export const NUD_PROBE = 0x10;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
export const NTF_USE = 0x01;
export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;
export const NTF_PROXY = 0x08;
export const NTF_EXT_LEARNED = 0x10;
export const NTF_OFFLOADED = 0x20;
export const NTF_STICKY = 0x40;
export const NTF_ROUTER = 0x80;

/**
 * NDA_PROTOCOL (who installed a neighbour entry, as rtm_protocol for routes) of the entries
 * cattle-net makes. The kernel stores it with the entry and reports it in dumps and events, so
 * the agent can tell its own permanent neighbours from entries made by hand or by another tool
 * and touch only its own. Any value the kernel does not interpret works (it passes values
 * above RTPROT_STATIC through as they are); 0xce is none of the kernel uapi's RTPROT_* numbers
 * nor of iproute2's rt_protos table (0–4, 8–18, 42, 99, 186–189, 192), nor, as far as we
 * know, used by another CNI or routing daemon (Calico uses 80, BIRD 12, FRR 186–192). The kernel
 * keeps a neighbour's protocol on an `ip neigh replace` that gives none, so an entry stays
 * ours when someone changes its address by hand (and is then repaired). VXLAN FDB entries do
 * not store NDA_PROTOCOL (the driver ignores it): for those the agent's own record decides.
 */
export const NEIGH_PROTO_CATTLE_NET = 0xce;

/** The IANA VXLAN port; the kernel's own default (8472) predates it. */
export const VXLAN_PORT_IANA = 4789;
