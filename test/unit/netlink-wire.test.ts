// Netlink wire format: attribute helpers and nlmsghdr framing against golden
// bytes, the strict splitting of datagrams and attribute runs, acks and the
// extended-ack text of NLMSG_ERROR and NLMSG_DONE. The rtnetlink message
// bodies are in netlink-encode (encoders) and netlink-decode (captured replies).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { NetlinkDecodeError } from '../../lib/netlink/errors.ts';
import * as w from '../../lib/netlink/wire.ts';

const hex = (b: Buffer) => b.toString('hex');
const from = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('attribute: header, NUL-terminated string, padded to 4 bytes', () => {
  assert.equal(hex(w.attrString(3, 'lo')), '0700' + '0300' + '6c6f00' + '00');
  assert.equal(hex(w.attrU32(4, 1500)), '0800' + '0400' + 'dc050000');
  assert.equal(hex(w.attrU8(4, 1)), '0500' + '0400' + '01' + '000000');
  assert.equal(hex(w.attrU16(5, 42)), '0600' + '0500' + '2a00' + '0000');
  assert.equal(hex(w.attrS32(37, -1)), '0800' + '2500' + 'ffffffff');
  assert.equal(hex(w.attrNested(18, [w.attrString(1, 'veth')])), '1000' + '1280' + '0900' + '0100' + '7665746800' + '000000');
});

test('nlmsghdr: length without the payload padding, type, flags, seq, pid', () => {
  assert.equal(hex(w.encodeMessage({ type: 28, flags: 0xc05, seq: 0x01020304, pid: 7 }, from('0102 03'))),
    '13000000' + '1c00' + '050c' + '04030201' + '07000000' + '010203' + '00');
});

test('parseAttributes: masks the NESTED flag, keeps order; a bad TLV is an error naming where', () => {
  const run = Buffer.concat([w.attrNested(18, [w.attrString(1, 'veth')]), w.attrU32(4, 1500)]);
  assert.deepEqual(w.parseAttributes(run).map((x) => [x.type, x.data.length]), [[18, 12], [4, 4]]);
  assert.throws(() => w.parseAttributes(run.subarray(0, run.length - 2), 'IFLA'),
    (e: unknown) => e instanceof NetlinkDecodeError && e.message === 'IFLA: attribute type 4 at offset 16 has length 8, 6 bytes left');
  assert.throws(() => w.parseAttributes(from('0100 0100')), /attribute type 1 at offset 0 has length 1, 4 bytes left/);
  assert.throws(() => w.parseAttributes(from('00')), /1 stray byte at offset 0/);
  assert.deepEqual(w.parseAttributes(Buffer.alloc(0)), []);
});

test('message parsing: multi-part datagram and NLMSG_ERROR with extended ack text', () => {
  const hdr = (type: number, flags: number, payload: Buffer) => w.encodeMessage({ type, flags, seq: 9, pid: 0 }, payload);
  const ackPayload = Buffer.concat([
    from('efffffff'), // -17 EEXIST
    from('10000000 1400 0500 09000000 00000000'), // echoed header (capped)
    w.attrString(1, 'Address already assigned'),
  ]);
  const dgram = Buffer.concat([hdr(w.NLMSG_NOOP, 0, Buffer.alloc(0)), hdr(w.NLMSG_ERROR, w.NLM_F_ACK_TLVS | w.NLM_F_CAPPED, ackPayload)]);
  const msgs = w.parseMessages(dgram);
  assert.equal(msgs.length, 2);
  assert.deepEqual(w.parseAck(msgs[1]!), { errno: 17, message: 'Address already assigned' });
  assert.deepEqual(w.parseAck({ type: w.NLMSG_ERROR, flags: 0, seq: 1, pid: 0, payload: from('00000000') }), { errno: 0 });
});

test('message parsing: a header that does not fit the datagram is an error, not a silent stop', () => {
  const one = w.encodeMessage({ type: 16, flags: 2, seq: 1, pid: 0 }, Buffer.alloc(16));
  assert.equal(w.parseMessages(one).length, 1);
  assert.throws(() => w.parseMessages(Buffer.concat([one, one.subarray(0, 20)])),
    (e: unknown) => e instanceof NetlinkDecodeError && e.message === 'netlink datagram: message at offset 32 has length 32, 20 bytes left');
  assert.throws(() => w.parseMessages(Buffer.concat([one, Buffer.alloc(8)])), /message at offset 32 has length 0, 8 bytes left/);
});

test('NLMSG_DONE: plain end of dump, a failed dump, and the extended-ack text of a rejected dump request', () => {
  const done = (flags: number, payload: Buffer) => ({ type: w.NLMSG_DONE, flags, seq: 1, pid: 0, payload });
  assert.deepEqual(w.parseDone(done(w.NLM_F_MULTI, from('00000000'))), { errno: 0 });
  assert.deepEqual(w.parseDone(done(w.NLM_F_MULTI, Buffer.alloc(0))), { errno: 0 });
  assert.deepEqual(w.parseDone(done(w.NLM_F_MULTI | w.NLM_F_ACK_TLVS, Buffer.concat([
    from('eaffffff'), // -22 EINVAL
    w.attrString(1, 'Invalid values in header for neighbor dump request'),
  ]))), { errno: 22, message: 'Invalid values in header for neighbor dump request' });
});
