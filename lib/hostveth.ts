// Host-side veth names and ownership marks, shared by the bridge and ptp
// plugins. A host veth carries an alias naming its container and interface,
// so a plugin only ever removes links it made for that very attachment.
import { hashHex } from './hash.ts';
import type { Link } from './netlink/rtnetlink.ts';

const MARK_PREFIX = 'cattle-cni';
const IFNAMSIZ = 15;

export interface Owner {
  containerId: string;
  ifname: string;
}

/** Hash-derived name: prefix + hex of a hash of containerId/ifname, 15 characters in all. */
export function hashedVethName(prefix: string, o: Owner): string {
  return prefix + hashHex(`${o.containerId}/${o.ifname}`, IFNAMSIZ - prefix.length);
}

/** The alias a host veth carries: "cattle-cni <plugin> <containerId> <ifname>". */
export function ownerMark(plugin: string, o: Owner): string {
  return `${MARK_PREFIX} ${plugin} ${o.containerId} ${o.ifname}`;
}

/** The owner a mark names, or undefined for links that are not ours. */
export function parseOwnerMark(alias: string | undefined): (Owner & { plugin: string }) | undefined {
  const parts = alias?.split(' ');
  if (!parts || parts.length !== 4 || parts[0] !== MARK_PREFIX) return undefined;
  return { plugin: parts[1]!, containerId: parts[2]!, ifname: parts[3]! };
}

export function isOwnedBy(link: Link, plugin: string, o: Owner): boolean {
  const m = parseOwnerMark(link.alias);
  return !!m && m.plugin === plugin && m.containerId === o.containerId && m.ifname === o.ifname;
}
