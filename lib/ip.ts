// IP and MAC helpers over ipaddr.js: the only place that knows its API.
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

export interface Cidr {
  /** Address as written (host bits kept), e.g. 10.1.2.3 */
  ip: string;
  prefix: number;
  family: Family;
}

/**
 * 4 or 6 for an address written as people write them (dotted quads without
 * leading zeros or classful shorthands such as "10.1.2"; IPv6 with an optional
 * zone), 0 otherwise: what node:net's isIP answers, without loading node:net,
 * which drags the whole stream stack into every plugin start (~2 ms).
 */
export function strictIpVersion(text: string): 0 | 4 | 6 {
  if (typeof text !== 'string') return 0;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return 4;
  const zoneAt = text.indexOf('%');
  const addr = zoneAt === -1 ? text : text.slice(0, zoneAt);
  if (zoneAt !== -1 && !/^[0-9a-zA-Z.:-]+$/.test(text.slice(zoneAt + 1))) return 0;
  return addr.includes(':') && ipaddr.IPv6.isValid(addr) ? 6 : 0;
}

export function isValidIp(text: string): boolean {
  return ipaddr.isValid(text);
}

export function ipFamily(text: string): Family {
  return ipaddr.parse(text).kind() === 'ipv4' ? 4 : 6;
}

/** Parse "a.b.c.d/n" or "x::y/n"; throws Error with a readable message. */
export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string' || !text.includes('/')) throw new Error(`invalid CIDR address: ${String(text)}`);
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    parsed = ipaddr.parseCIDR(text);
  } catch {
    throw new Error(`invalid CIDR address: ${text}`);
  }
  const [addr, prefix] = parsed;
  return { ip: addr.toString(), prefix, family: addr.kind() === 'ipv4' ? 4 : 6 };
}

export function formatCidr(c: Cidr): string {
  return `${c.ip}/${c.prefix}`;
}

export function ipToBytes(text: string): Buffer {
  return Buffer.from(ipaddr.parse(text).toByteArray());
}

export function bytesToIp(bytes: Uint8Array): string {
  return ipaddr.fromByteArray(Array.from(bytes)).toString();
}

/** Network address of a CIDR, as "net/prefix". */
export function networkOf(c: Cidr): string {
  const addr = ipaddr.parse(c.ip);
  const net = addr.kind() === 'ipv4'
    ? ipaddr.IPv4.networkAddressFromCIDR(formatCidr(c))
    : ipaddr.IPv6.networkAddressFromCIDR(formatCidr(c));
  return `${net.toString()}/${c.prefix}`;
}

/** The n-th address of the network containing c (n=1: the usual gateway). */
export function nthAddress(c: Cidr, n: number): string {
  const bytes = ipToBytes(networkOf(c).split('/')[0]!);
  let carry = n;
  for (let i = bytes.length - 1; i >= 0 && carry > 0; i--) {
    const sum = bytes[i]! + carry;
    bytes[i] = sum & 0xff;
    carry = sum >> 8;
  }
  return bytesToIp(bytes);
}

export function containsIp(c: Cidr, ip: string): boolean {
  const a = ipaddr.parse(ip);
  const n = ipaddr.parse(c.ip);
  if (a.kind() !== n.kind()) return false;
  return a.match(n, c.prefix);
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function isValidMac(text: string): boolean {
  return MAC_RE.test(text);
}

export function macToBytes(text: string): Buffer {
  if (!isValidMac(text)) throw new Error(`invalid MAC address: ${text}`);
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

export function bytesToMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}
