// Declarative netlink attribute tables (after mildsunrise/node_netlink): a
// table maps attribute type numbers to field names and codecs, and the codec
// carries the length rule. Decoders and encoders are derived from the tables;
// message code (rtnl.ts) only maps the decoded values to its public shapes.
//
//   export const IFA = table('IFA', {
//     address: [1, ip],       // IFA_ADDRESS: 4 or 16 bytes
//     label: [3, string],     // IFA_LABEL
//     flags: [8, u32],        // IFA_FLAGS: exactly 4 bytes
//   });
//
// The attribute's C name (for error messages) is the table prefix plus the
// field name in upper snake case: IFA + flags → IFA_FLAGS. Attribute types a
// table does not list are skipped (kernels add new ones all the time); a
// listed attribute of the wrong length, or a TLV that does not fit, is a
// NetlinkDecodeError naming the message and the attribute path.
//
// Hot path: no closure and no Buffer view per attribute; integers are read
// straight from the bytes.
import { ipToBytes } from '../ip.ts';
import { NetlinkDecodeError } from './errors.ts';
import type { Bytes } from './wire.ts';

const NLA_HDRLEN = 4;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

/** Decoding context handed down: the message header, for header-dependent attributes. */
type Header = Readonly<Record<string, unknown>> | undefined;

export interface Codec<T> {
  /** What the data is, for messages and docs: "u32", "ip"… */
  readonly name: string;
  /** Exact data length; -1 for variable-length data. */
  readonly size: number;
  /** Variable-length data: the lengths allowed (ip: 4 or 16); undefined: any. */
  readonly sizes?: readonly number[];
  /** Sent with NLA_F_NESTED. */
  readonly nested?: boolean;
  /** Encoding omits the attribute for this value (a false flag). */
  readonly omit?: unknown;
  /** Variant attributes: the real codec depends on a sibling or header field. */
  readonly pick?: Pick;
  decode(b: Bytes, off: number, len: number, hdr: Header): T;
  /** Data length of v. */
  measure(v: T, hdr: Header): number;
  write(out: Buffer, off: number, v: T, hdr: Header): void;
}

interface Pick {
  readonly from: 'sibling' | 'header';
  readonly key: string;
  readonly variants: Readonly<Record<string, Codec<unknown>>>;
}

export type CodecValue<C> = C extends Codec<infer T> ? T : never;

/** Thrown inside the decoder; the message decoder turns it into a NetlinkDecodeError. */
class DecodeFailure extends Error {
  readonly path: string[] = [];
  readonly detail: string;

  constructor(detail: string) {
    super(detail);
    this.detail = detail;
  }
}

function lengthFailure(len: number, c: Codec<unknown>): DecodeFailure {
  const want = c.size >= 0 ? String(c.size) : c.sizes!.join(' or ');
  return new DecodeFailure(`${len} byte${len === 1 ? '' : 's'}, expected ${want}`);
}

// ---- scalar codecs ----------------------------------------------------------

function fixed<T>(name: string, size: number, decode: Codec<T>['decode'], write: Codec<T>['write']): Codec<T> {
  return { name, size, decode, measure: () => size, write };
}

export const u8: Codec<number> = fixed('u8', 1, (b, o) => b[o]!, (out, o, v) => {
  out[o] = v & 0xff;
});
export const u16: Codec<number> = fixed('u16', 2, (b, o) => b[o]! | (b[o + 1]! << 8), (out, o, v) => {
  out.writeUInt16LE(v & 0xffff, o);
});
/** Network byte order (IFLA_VXLAN_PORT, NDA_PORT). */
export const be16: Codec<number> = fixed('be16', 2, (b, o) => (b[o]! << 8) | b[o + 1]!, (out, o, v) => {
  out.writeUInt16BE(v & 0xffff, o);
});
export const u32: Codec<number> = fixed('u32', 4, (b, o) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0,
  (out, o, v) => {
    out.writeUInt32LE(v >>> 0, o);
  });
export const s32: Codec<number> = fixed('s32', 4, (b, o) => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24),
  (out, o, v) => {
    out.writeInt32LE(v | 0, o);
  });
/** A u8 that is 0 or 1. */
export const bool: Codec<boolean> = fixed('u8', 1, (b, o) => b[o] !== 0, (out, o, v) => {
  out[o] = v ? 1 : 0;
});
/** NLA_FLAG: present (no data) or absent. */
export const flag: Codec<boolean> = { ...fixed<boolean>('flag', 0, () => true, () => undefined), omit: false };

/** NUL-terminated string (a missing NUL is tolerated on decode). */
export const string: Codec<string> = {
  name: 'string',
  size: -1,
  decode(b, o, len) {
    let end = o;
    const stop = o + len;
    while (end < stop && b[end] !== 0) end++;
    return b.toString('utf8', o, end);
  },
  measure: (v) => Buffer.byteLength(v) + 1,
  write(out, o, v) {
    out.write(v, o, 'utf8'); // the NUL is already there: buffers are zeroed
  },
};

/** Raw data (copied out of the datagram). */
export const bytes: Codec<Buffer> = {
  name: 'bytes',
  size: -1,
  decode: (b, o, len) => Buffer.from(b.subarray(o, o + len)),
  measure: (v) => v.length,
  write(out, o, v) {
    v.copy(out, o);
  },
};

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function parseHexColons(text: string, what: string, n?: number): number[] {
  const parts = text.split(':');
  if ((n !== undefined && parts.length !== n) || !parts.every((p) => /^[0-9a-f]{2}$/i.test(p))) {
    throw new Error(`invalid ${what}: ${text}`);
  }
  return parts.map((p) => parseInt(p, 16));
}

/** Ethernet address, exactly 6 bytes, "aa:bb:cc:dd:ee:ff". */
export const mac: Codec<string> = fixed('mac', 6,
  (b, o) => `${HEX[b[o]!]}:${HEX[b[o + 1]!]}:${HEX[b[o + 2]!]}:${HEX[b[o + 3]!]}:${HEX[b[o + 4]!]}:${HEX[b[o + 5]!]}`,
  (out, o, v) => {
    out.set(parseHexColons(v, 'MAC address', 6), o);
  });

/**
 * Link-layer address of any length (IFLA_ADDRESS, NDA_LLADDR): 6 bytes on
 * Ethernet, 4 or 16 on tunnels, 20 on InfiniBand. Colon-separated hex.
 */
export const lladdr: Codec<string> = {
  name: 'lladdr',
  size: -1,
  decode(b, o, len) {
    if (len === 6) return mac.decode(b, o, 6, undefined);
    let s = '';
    for (let i = 0; i < len; i++) s += (i ? ':' : '') + HEX[b[o + i]!];
    return s;
  },
  measure: (v) => (v === '' ? 0 : v.split(':').length),
  write(out, o, v) {
    if (v !== '') out.set(parseHexColons(v, 'link-layer address'), o);
  },
};

export function formatIp4(b: Bytes, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** RFC 5952 text (what ipaddr.js prints): the longest run of two or more zero groups becomes "::". */
export function formatIp6(b: Bytes, o: number): string {
  let best = -1;
  let bestLen = 1;
  let run = -1;
  for (let i = 0; i < 8; i++) {
    if (b[o + 2 * i] === 0 && b[o + 2 * i + 1] === 0) {
      if (run < 0) run = i;
      if (i - run + 1 > bestLen) {
        best = run;
        bestLen = i - run + 1;
      }
    } else {
      run = -1;
    }
  }
  let s = '';
  let colon = false;
  for (let i = 0; i < 8;) {
    if (i === best) {
      s += '::';
      colon = false;
      i += bestLen;
      continue;
    }
    s += (colon ? ':' : '') + ((b[o + 2 * i]! << 8) | b[o + 2 * i + 1]!).toString(16);
    colon = true;
    i++;
  }
  return s;
}

function ipCodec(name: string, size: number, sizes?: readonly number[]): Codec<string> {
  return {
    name,
    size,
    sizes,
    decode: (b, o, len) => (len === 4 ? formatIp4(b, o) : formatIp6(b, o)),
    measure: (v) => (v.includes(':') ? 16 : 4),
    write(out, o, v) {
      const raw = ipToBytes(v);
      if (size >= 0 && raw.length !== size) throw new Error(`${name}: ${v} is not an IPv${size === 4 ? 4 : 6} address`);
      raw.copy(out, o);
    },
  };
}

/** IPv4 or IPv6 address: 4 or 16 bytes. */
export const ip = ipCodec('ip', -1, [4, 16]);
export const ip4 = ipCodec('ip4', 4);
export const ip6 = ipCodec('ip6', 16);

// ---- structs (message headers, bridge_vlan_info…) ---------------------------

type StructDef = Readonly<Record<string, readonly [offset: number, codec: Codec<number>]>>;
export type StructValues<D extends StructDef> = { [K in keyof D]: number };
export type StructOf<T> = T extends Struct<infer V> ? V : never;

export interface Struct<V> {
  readonly name: string;
  readonly size: number;
  /** Parallel arrays: the decoder walks them without allocating. */
  readonly keys: readonly (keyof V & string)[];
  readonly offsets: readonly number[];
  readonly codecs: readonly Codec<number>[];
}

/** A fixed C struct of numeric fields; unnamed bytes (padding) are zero on encode. */
export function struct<const D extends StructDef>(name: string, size: number, def: D): Struct<StructValues<D>> {
  const keys = Object.keys(def) as (keyof D & string)[];
  for (const k of keys) {
    const [off, c] = def[k]!;
    if (off + c.size > size) throw new Error(`${name}.${k} does not fit in ${size} bytes`);
  }
  return { name, size, keys, offsets: keys.map((k) => def[k]![0]), codecs: keys.map((k) => def[k]![1]) };
}

export function decodeStruct<V>(s: Struct<V>, b: Bytes, off: number): V {
  const out: Record<string, number> = {};
  for (let i = 0; i < s.keys.length; i++) {
    const c = s.codecs[i]!;
    out[s.keys[i]!] = c.decode(b, off + s.offsets[i]!, c.size, undefined);
  }
  return out as V;
}

export function writeStruct<V>(s: Struct<V>, out: Buffer, off: number, v: Partial<V>): void {
  for (let i = 0; i < s.keys.length; i++) {
    const x = v[s.keys[i]!] as number | undefined;
    if (x !== undefined) s.codecs[i]!.write(out, off + s.offsets[i]!, x, undefined);
  }
}

/** A struct as the data of an attribute (IFLA_BRIDGE_VLAN_INFO: struct bridge_vlan_info). */
export function structCodec<V>(s: Struct<V>): Codec<V> {
  return {
    name: s.name,
    size: s.size,
    decode: (b, o) => decodeStruct(s, b, o),
    measure: () => s.size,
    write(out, o, v) {
      writeStruct(s, out, o, v);
    },
  };
}

// ---- tables -----------------------------------------------------------------

/** Entry rule: the attribute may repeat; its values are collected in an array. */
export const MULTI = 'multi';

type Entry = readonly [type: number, codec: Codec<unknown>] | readonly [type: number, codec: Codec<unknown>, rule: typeof MULTI];
type Spec = Readonly<Record<string, Entry>>;

type EntryValue<E> = E extends readonly [number, infer C, typeof MULTI] ? CodecValue<C>[]
  : E extends readonly [number, infer C] ? CodecValue<C> : never;

/** What a table decodes to and encodes from: every field optional. */
export type Values<S extends Spec> = { -readonly [K in keyof S]?: EntryValue<S[K]> };
export type TableValues<T> = T extends Table<infer S> ? Values<S> : never;

export interface Field {
  readonly key: string;
  readonly type: number;
  /** The uapi name, e.g. IFLA_MTU. */
  readonly cname: string;
  readonly codec: Codec<unknown>;
  readonly multi: boolean;
}

export interface Table<S extends Spec = Spec> {
  readonly prefix: string;
  readonly spec: S;
  /** Declaration order: the encoding order. */
  readonly fields: readonly Field[];
  /** Indexed by attribute type, for decoding. */
  readonly byType: readonly (Field | undefined)[];
}

export function cName(prefix: string, key: string): string {
  return `${prefix}_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

export function table<const S extends Spec>(prefix: string, spec: S): Table<S> {
  const fields: Field[] = [];
  const byType: (Field | undefined)[] = [];
  for (const [key, entry] of Object.entries(spec)) {
    const [type, codec, rule] = entry;
    if (byType[type]) throw new Error(`${prefix}: type ${type} listed twice (${byType[type]!.key}, ${key})`);
    const f: Field = { key, type, cname: cName(prefix, key), codec, multi: rule === MULTI };
    fields.push(f);
    byType[type] = f;
  }
  // A dense array: holes would make every lookup slow.
  for (let i = 0; i < byType.length; i++) byType[i] ??= undefined;
  return { prefix, spec, fields, byType };
}

/** The attribute type number of a field. */
export function typeOf<S extends Spec>(t: Table<S>, key: keyof S & string): number {
  return t.spec[key]![0];
}

/** A nested attribute whose data is a run of attributes of another table. */
export function nested<S extends Spec>(t: Table<S>): Codec<Values<S>> {
  return {
    name: `nested(${t.prefix})`,
    size: -1,
    nested: true,
    decode: (b, o, len, hdr) => decodeAttrs(t, b, o, o + len, hdr),
    measure: (v, hdr) => measureAttrs(t, v, hdr),
    write(out, o, v, hdr) {
      writeAttrs(t, v, out, o, hdr);
    },
  };
}

type VariantValue<M> = { [K in keyof M]: CodecValue<M[K]> }[keyof M];

function variantCodec<M extends Readonly<Record<string, Codec<unknown>>>>(from: Pick['from'], key: string, variants: M): Codec<VariantValue<M>> {
  const never = (): never => {
    throw new Error('variant codecs are resolved by the table code');
  };
  return { name: `by ${key}`, size: -1, pick: { from, key, variants }, decode: never, measure: never, write: never };
}

/** Data whose layout depends on a sibling attribute: IFLA_INFO_DATA by IFLA_INFO_KIND. */
export function bySibling<M extends Readonly<Record<string, Codec<unknown>>>>(key: string, variants: M): Codec<VariantValue<M>> {
  return variantCodec('sibling', key, variants);
}

/** Data whose layout depends on a header field: IFLA_PROTINFO by ifi_family. */
export function byHeader<M extends Readonly<Record<string, Codec<unknown>>>>(key: string, variants: M): Codec<VariantValue<M>> {
  return variantCodec('header', key, variants);
}

function resolve(c: Codec<unknown>, siblings: Readonly<Record<string, unknown>>, hdr: Header): Codec<unknown> | undefined {
  const p = c.pick;
  if (p === undefined) return c;
  const sel = p.from === 'header' ? hdr?.[p.key] : siblings[p.key];
  return sel === undefined ? undefined : p.variants[String(sel)];
}

// ---- decoding ---------------------------------------------------------------

function decodeOne(f: Field, c: Codec<unknown>, b: Bytes, o: number, len: number, hdr: Header, out: Record<string, unknown>): void {
  if (c.size >= 0 ? len !== c.size : c.sizes !== undefined && !c.sizes.includes(len)) throw lengthFailure(len, c);
  const v = c.decode(b, o, len, hdr);
  if (f.multi) ((out[f.key] ??= []) as unknown[]).push(v);
  else out[f.key] = v;
}

/** Decode the attributes in b[start, end). */
export function decodeAttrs<S extends Spec>(t: Table<S>, b: Bytes, start: number, end: number, hdr?: Header): Values<S> {
  const out: Record<string, unknown> = {};
  const byType = t.byType;
  const known = byType.length;
  let cur: Field | undefined;
  let late: number[] | undefined; // variant attributes seen before their selector
  try {
    let off = start;
    while (off < end) {
      cur = undefined;
      const rest = end - off;
      if (rest < NLA_HDRLEN) throw new DecodeFailure(`${rest} stray byte${rest === 1 ? '' : 's'} at offset ${off - start}, not an attribute`);
      const len = b[off]! | (b[off + 1]! << 8);
      const type = (b[off + 2]! | (b[off + 3]! << 8)) & NLA_TYPE_MASK;
      if (len < NLA_HDRLEN || len > rest) {
        const name = type < known ? byType[type]?.cname : undefined;
        throw new DecodeFailure(`attribute ${name ?? `type ${type}`} at offset ${off - start} has length ${len}, ${rest} bytes left`);
      }
      const f = type < known ? byType[type] : undefined;
      if (f !== undefined) {
        cur = f;
        const c = f.codec.pick === undefined ? f.codec : resolve(f.codec, out, hdr);
        if (c !== undefined) decodeOne(f, c, b, off + NLA_HDRLEN, len - NLA_HDRLEN, hdr, out);
        else if (f.codec.pick!.from === 'sibling' && out[f.codec.pick!.key] === undefined) (late ??= []).push(off);
      }
      off += (len + 3) & ~3;
    }
    if (late) {
      for (const off of late) {
        const f = byType[(b[off + 2]! | (b[off + 3]! << 8)) & NLA_TYPE_MASK]!;
        cur = f;
        const c = resolve(f.codec, out, hdr);
        if (c !== undefined) decodeOne(f, c, b, off + NLA_HDRLEN, (b[off]! | (b[off + 1]! << 8)) - NLA_HDRLEN, hdr, out);
      }
    }
  } catch (e) {
    if (cur !== undefined && e instanceof DecodeFailure) e.path.unshift(cur.cname);
    throw e;
  }
  return out as Values<S>;
}

// ---- encoding ---------------------------------------------------------------

function codecFor(f: Field, v: Readonly<Record<string, unknown>>, hdr: Header): Codec<unknown> {
  const c = resolve(f.codec, v, hdr);
  if (c === undefined) {
    const p = f.codec.pick!;
    throw new Error(`${f.cname}: no encoding for ${p.key}=${String(p.from === 'header' ? hdr?.[p.key] : v[p.key])}`);
  }
  return c;
}

export function measureAttrs<S extends Spec>(t: Table<S>, values: Values<S>, hdr?: Header): number {
  const v = values as Record<string, unknown>;
  let n = 0;
  for (const f of t.fields) {
    const x = v[f.key];
    if (x === undefined) continue;
    const c = codecFor(f, v, hdr);
    for (const y of f.multi ? (x as unknown[]) : [x]) {
      if (c.omit !== undefined && y === c.omit) continue;
      n += (NLA_HDRLEN + c.measure(y, hdr) + 3) & ~3;
    }
  }
  return n;
}

/** Write the attributes at out[off]; returns the offset after them. */
export function writeAttrs<S extends Spec>(t: Table<S>, values: Values<S>, out: Buffer, off: number, hdr?: Header): number {
  const v = values as Record<string, unknown>;
  for (const f of t.fields) {
    const x = v[f.key];
    if (x === undefined) continue;
    const c = codecFor(f, v, hdr);
    for (const y of f.multi ? (x as unknown[]) : [x]) {
      if (c.omit !== undefined && y === c.omit) continue;
      const len = NLA_HDRLEN + c.measure(y, hdr);
      out.writeUInt16LE(len, off);
      out.writeUInt16LE(f.type | (c.nested ? NLA_F_NESTED : 0), off + 2);
      c.write(out, off + NLA_HDRLEN, y, hdr);
      off += (len + 3) & ~3;
    }
  }
  return off;
}

export function encodeAttrs<S extends Spec>(t: Table<S>, values: Values<S>, hdr?: Header): Buffer {
  const out = Buffer.alloc(measureAttrs(t, values, hdr));
  writeAttrs(t, values, out, 0, hdr);
  return out;
}

// ---- messages: a fixed header followed by attributes --------------------------

export interface MessageSpec<H, S extends Spec> {
  readonly header: Struct<H>;
  readonly attrs: Table<S>;
}

export interface Decoded<H, S extends Spec> {
  header: H;
  attrs: Values<S>;
}

function decodeBody<H, S extends Spec>(m: MessageSpec<H, S>, b: Bytes, off: number, len: number): Decoded<H, S> {
  if (len < m.header.size) throw new DecodeFailure(`${len} bytes, shorter than ${m.header.name} (${m.header.size})`);
  const header = decodeStruct(m.header, b, off);
  const attrs = decodeAttrs(m.attrs, b, off + m.header.size, off + len, header as Header);
  return { header, attrs };
}

/** Decode one message payload; `name` ("RTM_NEWLINK") prefixes any error. */
export function decodeMessage<H, S extends Spec>(m: MessageSpec<H, S>, payload: Bytes, name: string): Decoded<H, S> {
  try {
    return decodeBody(m, payload, 0, payload.length);
  } catch (e) {
    if (e instanceof DecodeFailure) throw new NetlinkDecodeError(e.path.length ? `${name} ${e.path.join('/')}` : name, e.detail);
    throw e;
  }
}

/** Decode a bare attribute run (outside any message). */
export function decodeAttributes<S extends Spec>(t: Table<S>, buf: Bytes, where: string): Values<S> {
  try {
    return decodeAttrs(t, buf, 0, buf.length);
  } catch (e) {
    if (e instanceof DecodeFailure) throw new NetlinkDecodeError(e.path.length ? `${where} ${e.path.join('/')}` : where, e.detail);
    throw e;
  }
}

export interface Body<H, S extends Spec> {
  header?: Partial<H>;
  attrs?: Values<S>;
}

function measureBody<H, S extends Spec>(m: MessageSpec<H, S>, v: Body<H, S>): number {
  return m.header.size + (v.attrs ? measureAttrs(m.attrs, v.attrs, (v.header ?? {}) as Header) : 0);
}

function writeBody<H, S extends Spec>(m: MessageSpec<H, S>, v: Body<H, S>, out: Buffer, off: number): void {
  const hdr = v.header ?? {};
  writeStruct(m.header, out, off, hdr);
  if (v.attrs) writeAttrs(m.attrs, v.attrs, out, off + m.header.size, hdr as Header);
}

/** Encode a message payload (header + attributes; the nlmsghdr is wire.ts's business). */
export function encodeBody<H, S extends Spec>(m: MessageSpec<H, S>, v: Body<H, S>): Buffer {
  const out = Buffer.alloc(measureBody(m, v));
  writeBody(m, v, out, 0);
  return out;
}

/** An attribute holding a whole message body (VETH_INFO_PEER: ifinfomsg + IFLA_*). */
export function messageCodec<H, S extends Spec>(m: MessageSpec<H, S>): Codec<Body<H, S>> {
  return {
    name: m.header.name,
    size: -1,
    decode: (b, o, len) => decodeBody(m, b, o, len),
    measure: (v) => measureBody(m, v),
    write(out, o, v) {
      writeBody(m, v, out, o);
    },
  };
}
