// Host-side veth names and ownership marks, shared by the bridge and ptp
// plugins. A host veth carries an alias naming its plugin, container,
// interface and network, so a plugin only ever removes links it made for that
// very attachment.
import { hashHex } from './hash.ts';
import type { Link } from './netlink/rtnetlink.ts';

const MARK_PREFIX = 'cattle-cni';
const IFNAMSIZ = 15;
/** Container ids have no length limit; the alias does (IFALIASZ − 1 = 255 bytes). */
const MAX_ID_IN_MARK = 128;
const ID_PREFIX_KEPT = 100;

export interface Owner {
  containerId: string;
  ifname: string;
}

/** Hash-derived name: prefix + hex of a hash of containerId/ifname, 15 characters in all. */
export function hashedVethName(prefix: string, o: Owner): string {
  return prefix + hashHex(`${o.containerId}/${o.ifname}`, IFNAMSIZ - prefix.length);
}

/** The id as the mark holds it: whole when short, else a prefix and a digest of all of it. */
export function containerToken(containerId: string): string {
  if (containerId.length <= MAX_ID_IN_MARK) return containerId;
  return `${containerId.slice(0, ID_PREFIX_KEPT)}~${hashHex(containerId, 24)}`;
}

/** A short tag of the network name: the mark fits any network name. */
export function networkTag(network: string): string {
  return `net:${hashHex(network, 8)}`;
}

/** The alias a host veth carries: "cattle-cni <plugin> <container> <ifname> net:<tag>". */
export function ownerMark(plugin: string, o: Owner, network: string): string {
  return `${MARK_PREFIX} ${plugin} ${containerToken(o.containerId)} ${o.ifname} ${networkTag(network)}`;
}

export interface ParsedMark {
  plugin: string;
  /** containerToken() of the id. */
  container: string;
  ifname: string;
  /** networkTag() of the network; absent in marks of earlier versions. */
  network?: string;
}

/** The owner a mark names, or undefined for links that are not ours. */
export function parseOwnerMark(alias: string | undefined): ParsedMark | undefined {
  const parts = alias?.split(' ');
  if (!parts || parts[0] !== MARK_PREFIX || (parts.length !== 4 && parts.length !== 5)) return undefined;
  return { plugin: parts[1]!, container: parts[2]!, ifname: parts[3]!, network: parts[4] };
}

/** Does the mark name this attachment? A mark without a network (earlier versions) matches any. */
export function markNames(m: ParsedMark | undefined, plugin: string, o: Owner, network: string): boolean {
  return !!m && m.plugin === plugin && m.container === containerToken(o.containerId) && m.ifname === o.ifname
    && (m.network === undefined || m.network === networkTag(network));
}

export function isOwnedBy(link: Link, plugin: string, o: Owner, network: string): boolean {
  return markNames(parseOwnerMark(link.alias), plugin, o, network);
}

/** Is this a link of that plugin's network (GC)? Marks without a network count as the network's. */
export function isOfNetwork(m: ParsedMark, plugin: string, network: string): boolean {
  return m.plugin === plugin && (m.network === undefined || m.network === networkTag(network));
}
