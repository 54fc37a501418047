// Netlink encoding against golden bytes (hand-derived from the kernel's
// struct layouts) and decoding of replies captured from a real kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as w from '../../lib/netlink/wire.ts';
import * as m from '../../lib/netlink/rtnl.ts';

const hex = (b: Buffer) => b.toString('hex');
const from = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('attribute: header, NUL-terminated string, padded to 4 bytes', () => {
  assert.equal(hex(w.attrString(3, 'lo')), '0700' + '0300' + '6c6f00' + '00');
  assert.equal(hex(w.attrU32(4, 1500)), '0800' + '0400' + 'dc050000');
  assert.equal(hex(w.attrU8(4, 1)), '0500' + '0400' + '01' + '000000');
  assert.equal(hex(w.attrNested(18, [w.attrString(1, 'veth')])), '1000' + '1280' + '0900' + '0100' + '7665746800' + '000000');
});

test('RTM_GETLINK by name: full message', () => {
  const msg = w.encodeMessage({ type: m.RTM_GETLINK, flags: w.NLM_F_REQUEST | w.NLM_F_ACK, seq: 1, pid: 0 }, m.encodeGetLink({ name: 'lo' }));
  assert.equal(hex(msg), from(`
    28000000 1200 0500 01000000 00000000
    00 00 0000 00000000 00000000 00000000
    0700 0300 6c6f00 00`).toString('hex'));
});

test('veth with peer in another netns: nested linkinfo layout', () => {
  const body = m.encodeNewVeth({ name: 'vh', peerName: 'eth0', peerNetnsFd: 7, mtu: 1400 });
  assert.equal(hex(body), from(`
    00000000 00000000 00000000 00000000
    0700 0300 766800 00
    0800 0400 78050000
    4400 1280
      0900 0100 7665746800 000000
      3400 0280
        3000 0100
          00000000 00000000 00000000 00000000
          0900 0300 6574683000 000000
          0800 0400 78050000
          0800 1c00 07000000`).toString('hex'));
});

test('set link up: flags and change mask in ifinfomsg', () => {
  assert.equal(hex(m.encodeSetLink(5, {}, { set: m.IFF_UP, mask: m.IFF_UP })),
    '00000000' + '05000000' + '01000000' + '01000000');
  assert.equal(hex(m.encodeSetLink(5, { master: 0 })), '00000000' + '05000000' + '0000000000000000' + '0800' + '0a00' + '00000000');
});

test('IPv4 address carries IFA_LOCAL and IFA_ADDRESS; nodad in ifa_flags', () => {
  assert.equal(hex(m.encodeAddress({ index: 2, address: '10.1.2.3/24', flags: m.IFA_F_NODAD })),
    '02' + '18' + '02' + '00' + '02000000' + '0800' + '0200' + '0a010203' + '0800' + '0100' + '0a010203');
  assert.equal(hex(m.encodeAddress({ index: 3, address: 'fd00::1/64' })),
    '0a' + '40' + '00' + '00' + '03000000' + '1400' + '0100' + 'fd000000000000000000000000000001');
});

test('routes: default via gateway (no RTA_DST), on-link scope when no gateway, table > 255', () => {
  assert.equal(hex(m.encodeRoute({ dst: '0.0.0.0/0', gw: '10.0.0.1', oif: 4 })),
    '02' + '00' + '00' + '00' + 'fe' + '03' + '00' + '01' + '00000000' + '0800' + '0500' + '0a000001' + '0800' + '0400' + '04000000');
  assert.equal(hex(m.encodeRoute({ dst: '169.254.1.1/32', oif: 4 })),
    '02' + '20' + '00' + '00' + 'fe' + '03' + 'fd' + '01' + '00000000' + '0800' + '0100' + 'a9fe0101' + '0800' + '0400' + '04000000');
  const t = m.encodeRoute({ dst: '10.0.0.0/8', gw: '10.0.0.1', table: 1000, onlink: true, mtu: 1400 });
  assert.equal(t.readUInt8(4), 0, 'rtm_table is 0 when RTA_TABLE carries the id');
  assert.equal(t.readUInt32LE(8), m.RTNH_F_ONLINK);
  assert.match(hex(t), /08000f00e8030000/, 'RTA_TABLE 1000');
  assert.match(hex(t), /0c0008800800020078050000/, 'RTA_METRICS { RTAX_MTU 1400 }');
});

test('bridge port hairpin: AF_BRIDGE + IFLA_PROTINFO { IFLA_BRPORT_MODE }', () => {
  assert.equal(hex(m.encodeBridgePort(9, { hairpin: true })),
    '07000000' + '09000000' + '0000000000000000' + '0c00' + '0c80' + '0500' + '0400' + '01000000');
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

test('decode a link reply captured from the kernel (veth, operstate, linkinfo)', () => {
  const payload = Buffer.concat([
    from('00 00 0100 05000000 02100000 00000000'),
    w.attrString(3, 'vethr1234'),
    w.attrU32(4, 1450),
    w.attr(1, from('aabbccddeeff')),
    w.attrU32(10, 3),
    w.attrU8(16, 6),
    w.attrString(20, 'cattle:abc/eth0'),
    w.attrU32(5, 2),
    w.attrNested(18, [w.attrString(1, 'veth'), w.attrString(4, 'bridge')]),
  ]);
  assert.deepEqual(m.decodeLink(payload), {
    index: 5, flags: 0x1002, name: 'vethr1234', mtu: 1450, mac: 'aa:bb:cc:dd:ee:ff', master: 3,
    operState: 'up', alias: 'cattle:abc/eth0', parentIndex: 2, kind: 'veth', slaveKind: 'bridge',
  });
});

test('decode address and route replies', () => {
  const addr = Buffer.concat([from('02 18 80 00 02000000'), w.attr(2, from('0a010203')), w.attr(1, from('0a010203')), w.attrString(3, 'eth0')]);
  assert.deepEqual(m.decodeAddress(addr), { index: 2, family: 4, address: '10.1.2.3', prefix: 24, cidr: '10.1.2.3/24', flags: 0x80, scope: 0, label: 'eth0' });
  const route = Buffer.concat([from('0a 00 00 00 fe 03 00 01 00000000'), w.attr(5, from('fe800000000000000000000000000001')), w.attrU32(4, 7), w.attrU32(15, 254)]);
  assert.deepEqual(m.decodeRoute(route), { family: 6, dst: '::/0', gw: 'fe80::1', oif: 7, scope: 0, table: 254, protocol: 3, type: 1, flags: 0 });
});
