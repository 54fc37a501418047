// rtnetlink client: links, addresses, routes, neighbours in one network
// namespace. Every mutating request is acked; kernel errors surface as
// NetlinkError with the errno name and what was being done.
import { nowMs } from '../clock.ts';
import { isErrno } from './errors.ts';
import * as m from './rtnl.ts';
import { NetlinkSocket, RTMGRP_LINK, type SocketOptions } from './socket.ts';
import { NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE } from './wire.ts';

/** The numbers callers need (IFF_*, RT_SCOPE_*, NUD_*, NTF_*, AF_*…), from one import. */
export * from './constants.ts';
export type {
  Address, BridgePortFlags, BridgeSpec, FdbSpec,
  Link, LinkAttrs,
  Neighbour,   NeighbourSpec, Route, RouteSpec, VethSpec, VxlanInfo, VxlanSpec } from './rtnl.ts';

/** IPv6 address events (RTNLGRP_IPV6_IFADDR, as a legacy group bit). */
const RTMGRP_IPV6_IFADDR = 0x100;

export interface LinkFilter {
  kind?: string;
  master?: number;
  name?: string;
}

export class Rtnetlink {
  readonly sock: NetlinkSocket;
  private readonly netnsFd?: number;

  constructor(sock: NetlinkSocket, netnsFd?: number) {
    this.sock = sock;
    this.netnsFd = netnsFd;
  }

  /** Open a client in the current netns, or in the netns of an open nsfs fd. */
  static open(opts: SocketOptions = {}): Rtnetlink {
    return new Rtnetlink(NetlinkSocket.open(opts), opts.netnsFd);
  }

  close(): void {
    this.sock.close();
  }

  // ---- links ----

  createVeth(v: m.VethSpec): void {
    this.sock.request(`create veth ${v.name} (peer ${v.peerName})`, m.RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, m.encodeNewVeth(v));
  }

  createBridge(b: m.BridgeSpec): void {
    this.sock.request(`create bridge ${b.name}`, m.RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, m.encodeNewBridge(b));
  }

  /** `ip link add NAME type vxlan id VNI dstport PORT [nolearning] [proxy] [local IP] [dev UNDERLAY]` */
  createVxlan(v: m.VxlanSpec): void {
    this.sock.request(`create vxlan ${v.name} (vni ${v.vni})`, m.RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, m.encodeNewVxlan(v));
  }

  /** The link with this name, or undefined when there is none (ENODEV). */
  linkByName(name: string): m.Link | undefined {
    return this.getLink(`get link ${name}`, { name });
  }

  linkByIndex(index: number): m.Link | undefined {
    return this.getLink(`get link #${index}`, { index });
  }

  private getLink(op: string, q: { name?: string; index?: number }): m.Link | undefined {
    try {
      const [reply] = this.sock.request(op, m.RTM_GETLINK, 0, m.encodeGetLink(q));
      return reply ? m.decodeLink(reply.payload) : undefined;
    } catch (e) {
      if (isErrno(e, 'ENODEV')) return undefined;
      throw e;
    }
  }

  /** Dump links; kind and master are filtered by the kernel and checked again here. */
  links(f: LinkFilter = {}): m.Link[] {
    const replies = this.sock.request('list links', m.RTM_GETLINK, NLM_F_DUMP, m.encodeGetLink({ master: f.master, kind: f.kind }));
    return replies.map((r) => m.decodeLink(r.payload)).filter((l) =>
      (f.kind === undefined || l.kind === f.kind)
      && (f.master === undefined || l.master === f.master)
      && (f.name === undefined || l.name === f.name));
  }

  /** Bridge-port view (AF_BRIDGE) of the ports of a bridge: hairpin, learning, VLANs. */
  bridgePorts(): m.Link[] {
    const replies = this.sock.request('list bridge ports', m.RTM_GETLINK, NLM_F_DUMP, m.encodeGetLink({ family: m.AF_BRIDGE, vlans: true }));
    return replies.map((r) => m.decodeLink(r.payload));
  }

  setLink(index: number, attrs: m.LinkAttrs, what = 'set link'): void {
    this.sock.request(`${what} #${index}`, m.RTM_NEWLINK, 0, m.encodeSetLink(index, attrs));
  }

  private setFlags(index: number, set: number, mask: number, what: string): void {
    this.sock.request(`${what} #${index}`, m.RTM_NEWLINK, 0, m.encodeSetLink(index, {}, { set, mask }));
  }

  setUp(index: number): void {
    this.setFlags(index, m.IFF_UP, m.IFF_UP, 'set up');
  }

  setDown(index: number): void {
    this.setFlags(index, 0, m.IFF_UP, 'set down');
  }

  setPromisc(index: number, on: boolean): void {
    this.setFlags(index, on ? m.IFF_PROMISC : 0, m.IFF_PROMISC, 'set promisc');
  }

  setMtu(index: number, mtu: number): void {
    this.setLink(index, { mtu }, `set mtu ${mtu} on`);
  }

  setMac(index: number, mac: string): void {
    this.setLink(index, { mac }, `set mac ${mac} on`);
  }

  setMaster(index: number, master: number): void {
    this.setLink(index, { master }, master ? `set master #${master} on` : 'set nomaster on');
  }

  setName(index: number, name: string): void {
    this.setLink(index, { name }, `rename to ${name}`);
  }

  setAlias(index: number, alias: string): void {
    this.setLink(index, { alias }, 'set alias on');
  }

  /** Move a link into the netns of an open nsfs fd. */
  setNetns(index: number, netnsFd: number): void {
    this.setLink(index, { netnsFd }, 'move to netns');
  }

  setBridgeVlanFiltering(index: number, on: boolean): void {
    this.sock.request(`set vlan_filtering ${on ? 1 : 0} on #${index}`, m.RTM_NEWLINK, 0, m.encodeBridgeVlanFiltering(index, on));
  }

  /**
   * Wait until the link is operationally up, by kernel notification rather
   * than by polling with sleeps. Returns false on timeout.
   */
  waitOperUp(index: number, timeoutMs: number): boolean {
    const up = () => this.linkByIndex(index)?.operState === 'up';
    return this.waitForEvents(RTMGRP_LINK, timeoutMs, up, (msg) => {
      if (msg.type !== m.RTM_NEWLINK) return undefined;
      const link = m.decodeLink(msg.payload);
      return link.index === index && link.operState === 'up' ? true : undefined;
    }, up);
  }

  /**
   * Wait until no IPv6 address on the link (or none of `cidrs`) is tentative
   * any more: DAD done, or — an address added with IFA_F_NODAD to a link
   * without carrier yet — the link ready. By kernel notification, as
   * waitOperUp. Returns false on timeout or when DAD failed.
   */
  waitAddressesSettled(index: number, timeoutMs: number, cidrs?: string[]): boolean {
    const wanted = (a: m.Address) => a.index === index && a.family === 6 && (!cidrs || cidrs.includes(a.cidr));
    const unsettled = (a: m.Address) => (a.flags & (m.IFA_F_TENTATIVE | m.IFA_F_DADFAILED)) !== 0;
    const pending = new Map<string, boolean>();
    const done = () => ![...pending.values()].some(Boolean);
    return this.waitForEvents(RTMGRP_IPV6_IFADDR, timeoutMs, () => {
      for (const a of this.addresses({ index, family: 6 })) if (wanted(a)) pending.set(a.cidr, unsettled(a));
      return done();
    }, (msg) => {
      if (msg.type !== m.RTM_NEWADDR && msg.type !== m.RTM_DELADDR) return undefined;
      const a = m.decodeAddress(msg.payload);
      if (!wanted(a)) return undefined;
      if (msg.type === m.RTM_DELADDR) pending.delete(a.cidr);
      else if (a.flags & m.IFA_F_DADFAILED) return false;
      else pending.set(a.cidr, unsettled(a));
      return done() ? true : undefined;
    }, done);
  }

  /**
   * Subscribe to `groups` first, then look (`ready`): no change can slip
   * between the two. Each event may settle the wait (true/false); at the
   * deadline, `last` decides.
   */
  private waitForEvents(groups: number, timeoutMs: number, ready: () => boolean,
    onEvent: (msg: { type: number; payload: Buffer }) => boolean | undefined, last: () => boolean): boolean {
    const events = NetlinkSocket.open({ netnsFd: this.netnsFd, groups, recvTimeoutMs: timeoutMs });
    try {
      if (ready()) return true;
      const deadline = nowMs() + timeoutMs;
      while (nowMs() < deadline) {
        let msgs;
        try {
          msgs = events.receive();
        } catch (e) {
          if (isErrno(e, 'EAGAIN', 'EWOULDBLOCK')) return false;
          throw e;
        }
        for (const msg of msgs) {
          const settled = onEvent(msg);
          if (settled !== undefined) return settled;
        }
      }
      return last();
    } finally {
      events.close();
    }
  }

  setBridgePort(index: number, flags: m.BridgePortFlags): void {
    this.sock.request(`set bridge port flags on #${index}`, m.RTM_SETLINK, 0, m.encodeBridgePort(index, flags));
  }

  addBridgeVlan(index: number, vid: number, flags = 0): void {
    this.sock.request(`add vlan ${vid} on #${index}`, m.RTM_SETLINK, 0, m.encodeBridgeVlan(index, vid, flags));
  }

  delBridgeVlan(index: number, vid: number): void {
    this.sock.request(`del vlan ${vid} on #${index}`, m.RTM_DELLINK, 0, m.encodeBridgeVlan(index, vid, 0));
  }

  deleteLink(index: number): void {
    this.sock.request(`delete link #${index}`, m.RTM_DELLINK, 0, m.encodeIfInfo({ index }));
  }

  /** deleteLink on a pool thread (NetlinkSocket.requestInBackground): for DEL, whose veth deletion is the slow part. */
  deleteLinkInBackground(index: number): Promise<void> {
    return this.sock.requestInBackground(`delete link #${index}`, m.RTM_DELLINK, m.encodeIfInfo({ index }));
  }

  /**
   * deleteLinkInBackground, settled once the link is gone from the netns
   * rather than when the request returns. A veth's deletion holds the request
   * ~20 ms more in rcu_barrier(), after the kernel has unlisted both ends,
   * dropped their addresses and routes and sent RTM_DELLINK: only freeing is
   * left, which nothing can observe. Gone = a lookup by index answers ENODEV,
   * asked at each timer tick on this client, so a link already absent counts
   * as deleted; while the link is there, the request's error is the answer.
   * The request has a socket of its own: it goes on to its end after this
   * returns (a process exiting meanwhile waits for it), and this client is
   * free for the next request at once.
   */
  async deleteLinkUntilGone(index: number): Promise<void> {
    const sender = Rtnetlink.open({ netnsFd: this.netnsFd });
    let outcome: { error?: unknown } | undefined;
    const request = sender.deleteLinkInBackground(index).then(() => (outcome = {}), (error: unknown) => (outcome = { error }));
    sender.close(); // once the request is done with it
    for (;;) {
      await Promise.race([request, new Promise((r) => setTimeout(r, 1))]);
      if (outcome?.error && !isErrno(outcome.error, 'ENODEV')) throw outcome.error;
      if (outcome || !this.linkByIndex(index)) return;
    }
  }

  // ---- addresses ----

  addAddress(index: number, cidr: string, opts: { nodad?: boolean; scope?: number } = {}): void {
    const flags = opts.nodad ? m.IFA_F_NODAD : 0;
    this.sock.request(`add address ${cidr} on #${index}`, m.RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
      m.encodeAddress({ index, address: cidr, flags, scope: opts.scope }));
  }

  delAddress(index: number, cidr: string): void {
    this.sock.request(`delete address ${cidr} on #${index}`, m.RTM_DELADDR, 0, m.encodeAddress({ index, address: cidr }));
  }

  addresses(f: { index?: number; family?: 4 | 6 } = {}): m.Address[] {
    const fam = f.family ? m.familyOf(f.family) : m.AF_UNSPEC;
    const replies = this.sock.request('list addresses', m.RTM_GETADDR, NLM_F_DUMP, m.encodeGetAddress(fam, f.index));
    return replies.map((r) => m.decodeAddress(r.payload)).filter((a) => f.index === undefined || a.index === f.index);
  }

  // ---- routes ----

  addRoute(r: m.RouteSpec): void {
    this.sock.request(`add route ${describeRoute(r)}`, m.RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, m.encodeRoute(r));
  }

  replaceRoute(r: m.RouteSpec): void {
    this.sock.request(`replace route ${describeRoute(r)}`, m.RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, m.encodeRoute(r));
  }

  delRoute(r: m.RouteSpec): void {
    this.sock.request(`delete route ${describeRoute(r)}`, m.RTM_DELROUTE, 0, m.encodeRoute({ ...r, scope: r.scope ?? m.RT_SCOPE_UNIVERSE }));
  }

  routes(f: { family?: 4 | 6; table?: number; oif?: number } = {}): m.Route[] {
    const fam = f.family ? m.familyOf(f.family) : m.AF_UNSPEC;
    const table = f.table ?? m.RT_TABLE_MAIN;
    const replies = this.sock.request('list routes', m.RTM_GETROUTE, NLM_F_DUMP, m.encodeGetRoute(fam, table, f.oif));
    // An AF_UNSPEC dump also brings MPLS and multicast routing tables: not ours to read.
    return replies.filter((r) => isInet(r.payload)).map((r) => m.decodeRoute(r.payload))
      .filter((r) => r.table === table && (f.oif === undefined || r.oif === f.oif));
  }

  // ---- neighbours (ARP/ND) ----

  /** `ip neigh add DST lladdr MAC dev … nud permanent` (fails with EEXIST when there is one). */
  addNeighbour(index: number, n: m.NeighbourSpec): void {
    this.sock.request(`add neighbour ${n.dst} on #${index}`, m.RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, m.encodeNeighbour(index, n));
  }

  /** `ip neigh replace DST lladdr MAC dev … nud permanent` */
  replaceNeighbour(index: number, n: m.NeighbourSpec): void {
    this.sock.request(`replace neighbour ${n.dst} on #${index}`, m.RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, m.encodeNeighbour(index, n));
  }

  /** `ip neigh del DST dev …` */
  delNeighbour(index: number, dst: string): void {
    this.sock.request(`delete neighbour ${dst} on #${index}`, m.RTM_DELNEIGH, 0, m.encodeNeighbour(index, { dst, state: 0 }));
  }

  /** ARP and ND entries; the device filter is applied by the kernel (NDA_IFINDEX) and again here. */
  neighbours(f: { index?: number; family?: 4 | 6 } = {}): m.Neighbour[] {
    const fam = f.family ? m.familyOf(f.family) : m.AF_UNSPEC;
    const replies = this.sock.request('list neighbours', m.RTM_GETNEIGH, NLM_F_DUMP, m.encodeGetNeighbour(fam, f.index));
    return replies.filter((r) => isInet(r.payload)).map((r) => m.decodeNeighbour(r.payload))
      .filter((n) => f.index === undefined || n.index === f.index);
  }

  // ---- FDB entries of a device (AF_BRIDGE neighbours) ----

  /** `bridge fdb add MAC dev … [dst IP] self permanent` (EEXIST when the MAC is there). */
  addFdb(index: number, e: m.FdbSpec): void {
    this.sock.request(`add fdb ${describeFdb(e)} on #${index}`, m.RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, m.encodeFdb(index, e));
  }

  /**
   * `bridge fdb append MAC dev … dst IP`: one more destination for the MAC;
   * with 00:00:00:00:00:00 on a VXLAN device, one more VTEP to flood to.
   */
  appendFdb(index: number, e: m.FdbSpec): void {
    this.sock.request(`append fdb ${describeFdb(e)} on #${index}`, m.RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, m.encodeFdb(index, e));
  }

  /** `bridge fdb replace MAC dev … dst IP`: the MAC now has this destination only. */
  replaceFdb(index: number, e: m.FdbSpec): void {
    this.sock.request(`replace fdb ${describeFdb(e)} on #${index}`, m.RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, m.encodeFdb(index, e));
  }

  /** `bridge fdb del MAC dev … [dst IP]`: with dst, that destination only; without, the whole entry. */
  delFdb(index: number, e: m.FdbSpec): void {
    this.sock.request(`delete fdb ${describeFdb(e)} on #${index}`, m.RTM_DELNEIGH, 0, m.encodeFdb(index, e));
  }

  /** FDB entries of one device (`bridge fdb show dev …`), filtered by the kernel (NDA_IFINDEX) and again here. */
  fdb(index: number): m.Neighbour[] {
    const replies = this.sock.request(`list fdb of #${index}`, m.RTM_GETNEIGH, NLM_F_DUMP, m.encodeGetNeighbour(m.AF_BRIDGE, index));
    return replies.map((r) => m.decodeNeighbour(r.payload)).filter((n) => n.family === m.AF_BRIDGE && n.index === index);
  }
}

function isInet(payload: Buffer): boolean {
  const family = payload[0];
  return family === m.AF_INET || family === m.AF_INET6;
}

function describeFdb(e: m.FdbSpec): string {
  return `${e.mac}${e.dst ? ` dst ${e.dst}` : ''}`;
}

function describeRoute(r: m.RouteSpec): string {
  return `${r.dst}${r.gw ? ` via ${r.gw}` : ''}${r.oif !== undefined ? ` dev #${r.oif}` : ''}`;
}
