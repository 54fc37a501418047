// Netlink wire format: message headers and TLV attributes. Pure functions over
// Buffers, no I/O, so that every encoding can be checked against golden bytes.
import { NetlinkDecodeError } from './errors.ts';

/** Any Buffer view (subarrays of received datagrams included). */
export type Bytes = Buffer<ArrayBufferLike>;

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
/** Set on an NLMSG_ERROR whose trailer carries extended-ack TLVs. */
export const NLM_F_ACK_TLVS = 0x200;
/** Set on an NLMSG_ERROR that does not echo the whole request. */
export const NLM_F_CAPPED = 0x100;

export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

const NLMSGERR_ATTR_MSG = 1;

export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** One attribute: header + data + padding to 4 bytes. */
export function attr(type: number, data: Buffer): Buffer {
  const len = NLA_HDRLEN + data.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  data.copy(out, NLA_HDRLEN);
  return out;
}

export function attrU8(type: number, v: number): Buffer {
  return attr(type, Buffer.from([v & 0xff]));
}

export function attrU16(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return attr(type, b);
}

export function attrU32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return attr(type, b);
}

export function attrS32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return attr(type, b);
}

/** NUL-terminated string, as the kernel expects for names and kinds. */
export function attrString(type: number, s: string): Buffer {
  return attr(type, Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]));
}

export function attrNested(type: number, children: Buffer[]): Buffer {
  return attr(type | NLA_F_NESTED, Buffer.concat(children));
}

export interface Attribute {
  type: number;
  data: Bytes;
}

/**
 * Split a run of attributes; the NESTED and byte-order flags are masked off.
 * A TLV that does not fit is a NetlinkDecodeError naming `where` and the offset.
 */
export function parseAttributes(buf: Bytes, where = 'attributes'): Attribute[] {
  const out: Attribute[] = [];
  let off = 0;
  while (off < buf.length) {
    const rest = buf.length - off;
    if (rest < NLA_HDRLEN) throw new NetlinkDecodeError(where, `${rest} stray byte${rest === 1 ? '' : 's'} at offset ${off}, not an attribute`);
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || len > rest) throw new NetlinkDecodeError(where, `attribute type ${type} at offset ${off} has length ${len}, ${rest} bytes left`);
    out.push({ type, data: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += align4(len);
  }
  return out;
}

/** Attributes as a map by type (last one wins, which is what the kernel sends once). */
export function attributeMap(buf: Bytes, where?: string): Map<number, Bytes> {
  const m = new Map<number, Bytes>();
  for (const a of parseAttributes(buf, where)) m.set(a.type, a.data);
  return m;
}

export function readString(data: Bytes): string {
  const nul = data.indexOf(0);
  return data.toString('utf8', 0, nul < 0 ? data.length : nul);
}

export interface MessageHeader {
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

export function encodeMessage(h: MessageHeader, payload: Buffer): Buffer {
  const out = Buffer.alloc(NLMSG_HDRLEN + align4(payload.length));
  out.writeUInt32LE(NLMSG_HDRLEN + payload.length, 0);
  out.writeUInt16LE(h.type, 4);
  out.writeUInt16LE(h.flags, 6);
  out.writeUInt32LE(h.seq >>> 0, 8);
  out.writeUInt32LE(h.pid >>> 0, 12);
  payload.copy(out, NLMSG_HDRLEN);
  return out;
}

export interface Message extends MessageHeader {
  payload: Bytes;
}

/** Split a datagram into messages; a header that does not fit is a NetlinkDecodeError. */
export function parseMessages(buf: Bytes): Message[] {
  const out: Message[] = [];
  let off = 0;
  while (off < buf.length) {
    const rest = buf.length - off;
    const len = rest >= NLMSG_HDRLEN ? buf.readUInt32LE(off) : 0;
    if (len < NLMSG_HDRLEN || len > rest) {
      throw new NetlinkDecodeError('netlink datagram', `message at offset ${off} has length ${len}, ${rest} bytes left`);
    }
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

export interface AckError {
  /** Positive errno, 0 for a plain ack. */
  errno: number;
  /** The kernel's extended-ack text, when it sent one. */
  message?: string;
}

/** Decode an NLMSG_ERROR payload: int error, the echoed request header, then optional TLVs. */
export function parseAck(msg: Message): AckError {
  const raw = msg.payload.readInt32LE(0);
  const errno = raw < 0 ? -raw : raw;
  if (!(msg.flags & NLM_F_ACK_TLVS)) return { errno };
  // The echoed request is just its header when capped, the whole request otherwise.
  const echoedLen = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : msg.payload.readUInt32LE(4);
  const tlvs = msg.payload.subarray(4 + align4(echoedLen));
  const text = attributeMap(tlvs, 'NLMSG_ERROR').get(NLMSGERR_ATTR_MSG);
  return text ? { errno, message: readString(text) } : { errno };
}

/**
 * Decode an NLMSG_DONE payload: int error (0, or minus an errno when the dump
 * failed), then extended-ack TLVs when NLM_F_ACK_TLVS is set (a dump request
 * the kernel rejected: "Invalid values in header for neighbor dump request").
 */
export function parseDone(msg: Message): AckError {
  if (msg.payload.length < 4) return { errno: 0 };
  const raw = msg.payload.readInt32LE(0);
  const errno = raw < 0 ? -raw : raw;
  if (!(msg.flags & NLM_F_ACK_TLVS)) return { errno };
  const text = attributeMap(msg.payload.subarray(4), 'NLMSG_DONE').get(NLMSGERR_ATTR_MSG);
  return text ? { errno, message: readString(text) } : { errno };
}
