// The attribute-table machinery (lib/netlink/attrs.ts): length rules, bad
// TLVs, unknown attributes, variant and repeated attributes, the codecs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import fc from 'fast-check';
import ipaddr from 'ipaddr.js';

import * as a from '../../lib/netlink/attrs.ts';
import { NetlinkDecodeError } from '../../lib/netlink/errors.ts';
import * as m from '../../lib/netlink/rtnl.ts';
import { IFLA, TABLES } from '../../lib/netlink/tables.ts';
import * as w from '../../lib/netlink/wire.ts';

const from = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const IFINFO = from('00 00 0000 05000000 00000000 00000000');
const NDMSG = from('02 00 0000 08000000 8000 00 00');

function decodeError(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof NetlinkDecodeError, String(e));
    assert.equal(e.message, message);
    return true;
  });
}

test('fixed-size attributes: too short or too long is an error naming the message and the attribute', () => {
  decodeError(() => m.decodeLink(Buffer.concat([IFINFO, w.attr(4, from('dc05'))])), 'RTM_NEWLINK IFLA_MTU: 2 bytes, expected 4');
  decodeError(() => m.decodeLink(Buffer.concat([IFINFO, w.attrU32(16, 6)])), 'RTM_NEWLINK IFLA_OPERSTATE: 4 bytes, expected 1');
  decodeError(() => m.decodeNeighbour(Buffer.concat([NDMSG, w.attr(1, from('0a000001ff'))])), 'RTM_NEWNEIGH NDA_DST: 5 bytes, expected 4 or 16');
  decodeError(() => m.decodeNeighbour(Buffer.concat([NDMSG, w.attr(6, from('12b5 0000'))]), 'RTM_DELNEIGH'), 'RTM_DELNEIGH NDA_PORT: 4 bytes, expected 2');
  assert.equal(m.decodeNeighbour(Buffer.concat([NDMSG, w.attr(1, from('0a000001'))])).dst, '10.0.0.1');
});

test('length rules inside nests name the whole path', () => {
  const vxlanPort = Buffer.concat([IFINFO, w.attrNested(18, [w.attrString(1, 'vxlan'), w.attrNested(2, [w.attrU32(1, 42), w.attr(15, from('12'))])])]);
  decodeError(() => m.decodeLink(vxlanPort), 'RTM_NEWLINK IFLA_LINKINFO/IFLA_INFO_DATA/IFLA_VXLAN_PORT: 1 byte, expected 2');
  const metrics = Buffer.concat([from('02 18 00 00 fe 03 00 01 00000000'), w.attrNested(8, [w.attr(2, from('7805'))])]);
  decodeError(() => m.decodeRoute(metrics), 'RTM_NEWROUTE RTA_METRICS/RTAX_MTU: 2 bytes, expected 4');
  const port = Buffer.concat([from('07 00 0000 05000000 00000000 00000000'), w.attrNested(12, [w.attrU32(4, 1)])]);
  decodeError(() => m.decodeLink(port), 'RTM_NEWLINK IFLA_PROTINFO/IFLA_BRPORT_MODE: 4 bytes, expected 1');
});

test('a bad TLV is an error, not a silent stop: truncated, short length, stray bytes', () => {
  decodeError(() => m.decodeLink(Buffer.concat([IFINFO, w.attrU32(4, 1500)]).subarray(0, 22)),
    'RTM_NEWLINK: attribute IFLA_MTU at offset 0 has length 8, 6 bytes left');
  decodeError(() => m.decodeLink(Buffer.concat([IFINFO, from('0200 0400')])), 'RTM_NEWLINK: attribute IFLA_MTU at offset 0 has length 2, 4 bytes left');
  decodeError(() => m.decodeLink(Buffer.concat([IFINFO, w.attrU32(4, 1500), from('0000')])), 'RTM_NEWLINK: 2 stray bytes at offset 8, not an attribute');
  const nested = Buffer.concat([IFINFO, w.attr(18 | w.NLA_F_NESTED, from('0c00 0100 7665'))]);
  decodeError(() => m.decodeLink(nested), 'RTM_NEWLINK IFLA_LINKINFO: attribute IFLA_INFO_KIND at offset 0 has length 12, 6 bytes left');
  decodeError(() => m.decodeLink(Buffer.alloc(10)), 'RTM_NEWLINK: 10 bytes, shorter than ifinfomsg (16)');
  decodeError(() => m.decodeAddress(Buffer.alloc(4)), 'RTM_NEWADDR: 4 bytes, shorter than ifaddrmsg (8)');
});

test('a captured reply cut short fails loudly wherever the cut falls', () => {
  const fx = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'netlink', 'links.json'), 'utf8'));
  const vtep = Buffer.from(fx.replies.find((r: { payload: string }) => m.decodeLink(Buffer.from(r.payload, 'hex')).kind === 'vxlan').payload, 'hex');
  // Cutting at the end of an attribute (padding or not, as the kernel's
  // nla_for_each) leaves a shorter valid message; anywhere else is an error.
  const boundaries = new Set<number>([16]);
  for (let off = 16; off < vtep.length; off += w.align4(vtep.readUInt16LE(off))) {
    for (let end = off + vtep.readUInt16LE(off); end <= off + w.align4(vtep.readUInt16LE(off)); end++) boundaries.add(end);
  }
  let failures = 0;
  for (let end = 16; end < vtep.length; end++) {
    if (boundaries.has(end)) assert.doesNotThrow(() => m.decodeLink(vtep.subarray(0, end)));
    else {
      assert.throws(() => m.decodeLink(vtep.subarray(0, end)), NetlinkDecodeError, `cut at ${end}`);
      failures++;
    }
  }
  assert.ok(failures > vtep.length / 2);
});

test('unknown attribute types (and unknown kinds) are skipped', () => {
  const base = Buffer.concat([IFINFO, w.attrString(3, 'eth0'), w.attrU32(4, 1500)]);
  const extra = Buffer.concat([IFINFO, w.attr(999, from('deadbeefff')), w.attrString(3, 'eth0'), w.attr(0x3fff, Buffer.alloc(0)), w.attrU32(4, 1500),
    w.attrNested(18, [w.attrString(1, 'wireguard'), w.attrNested(2, [w.attr(1, from('01'))])])]);
  assert.deepEqual(m.decodeLink(extra), { ...m.decodeLink(base), kind: 'wireguard' });
  // Unknown header family: IFLA_PROTINFO of AF_INET6 is not bridge-port data.
  const inet6 = Buffer.concat([from('0a 00 0000 05000000 00000000 00000000'), w.attrNested(12, [w.attr(1, from('01'))])]);
  assert.equal(m.decodeLink(inet6).hairpin, undefined);
});

test('variant data decodes even when it comes before its selector; repeated attributes collect', () => {
  const late = Buffer.concat([IFINFO, w.attrNested(18, [w.attrNested(2, [w.attrU8(7, 1)]), w.attrString(1, 'bridge')])]);
  assert.equal(m.decodeLink(late).vlanFiltering, true);
  const t = a.table('T', { item: [1, a.u16, a.MULTI], one: [2, a.u16] });
  const buf = Buffer.concat([w.attrU16(1, 7), w.attrU16(2, 1), w.attrU16(1, 8), w.attrU16(2, 2)]);
  assert.deepEqual(a.decodeAttributes(t, buf, 'T'), { item: [7, 8], one: 2 });
  assert.equal(a.encodeAttrs(t, { item: [7, 8], one: 2 }).toString('hex'), Buffer.concat([w.attrU16(1, 7), w.attrU16(1, 8), w.attrU16(2, 2)]).toString('hex'));
});

test('codecs: be16, s32, flag, bool, string without NUL, lladdr of other lengths', () => {
  const t = a.table('X', {
    port: [1, a.be16], nsid: [2, a.s32], gbp: [3, a.flag], on: [4, a.bool], name: [5, a.string], hw: [6, a.lladdr], raw: [7, a.bytes],
  });
  const v = { port: 4789, nsid: -1, gbp: true, on: false, name: 'ü', hw: 'c0:a8:00:01', raw: from('0102') };
  const enc = a.encodeAttrs(t, v);
  assert.equal(enc.toString('hex'), [
    '0600 0100 12b5 0000', '0800 0200 ffffffff', '0400 0300', '0500 0400 00 000000', '0700 0500 c3bc00 00', '0800 0600 c0a80001', '0600 0700 0102 0000',
  ].join('').replace(/\s+/g, ''));
  assert.deepEqual(a.decodeAttributes(t, enc, 'X'), v);
  assert.equal(a.encodeAttrs(t, { gbp: false }).length, 0, 'a false flag is left out');
  assert.deepEqual(a.decodeAttributes(t, w.attr(5, Buffer.from('abc')), 'X'), { name: 'abc' }, 'a missing NUL is tolerated');
  assert.throws(() => a.encodeAttrs(t, { hw: 'zz:00' }), /invalid link-layer address/);
  decodeError(() => a.decodeAttributes(t, w.attr(3, from('01')), 'X'), 'X X_GBP: 1 byte, expected 0');
});

test('IP text matches ipaddr.js for any 4 or 16 bytes (RFC 5952 zero compression)', () => {
  const groups = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 });
  fc.assert(fc.property(groups, (g) => {
    const b = Buffer.alloc(16);
    g.forEach((x, i) => b.writeUInt16BE(x, 2 * i));
    assert.equal(a.formatIp6(b, 0), ipaddr.fromByteArray([...b]).toString());
  }), { numRuns: 2000 });
  fc.assert(fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => {
    assert.equal(a.formatIp4(Buffer.from(b), 0), ipaddr.fromByteArray([...b]).toString());
  }));
});

test('tables: attribute names are the uapi names; a type is listed once', () => {
  assert.equal(a.cName('IFLA', 'linkNetnsid'), 'IFLA_LINK_NETNSID');
  assert.equal(a.cName('IFLA_VXLAN', 'udpZeroCsum6Tx'), 'IFLA_VXLAN_UDP_ZERO_CSUM6_TX');
  assert.equal(a.typeOf(IFLA, 'mtu'), 4);
  for (const t of TABLES) {
    const types = t.fields.map((f) => f.type);
    assert.equal(new Set(types).size, types.length, t.prefix);
    for (const f of t.fields) assert.equal(t.byType[f.type], f);
  }
  assert.throws(() => a.table('D', { x: [1, a.u8], y: [1, a.u8] }), /type 1 listed twice/);
});

test('encoding a variant without its selector is a programming error, not garbage', () => {
  assert.throws(() => a.encodeAttrs(IFLA, { linkinfo: { data: { vlanFiltering: true } } }), /IFLA_INFO_DATA: no encoding for kind=undefined/);
});
