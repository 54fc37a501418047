// The kernel as the only data plane: the VTEP (checked and repaired at every
// reconcile), its FDB entries (one per peer host) and permanent neighbours
// (one per remote container), the sysctls the routed overlay needs, and a MAC
// of its own for the bridge. Only links and entries the agent made are ever
// changed or removed: the VTEP carries our alias; a neighbour entry is ours
// when it carries our NDA_PROTOCOL (NEIGH_PROTO_CATTLE_NET), or carries none
// and is in our record (made by an earlier version, or on a kernel that does
// not keep the protocol); an FDB entry is ours when it is in our record (VXLAN
// devices do not keep NDA_PROTOCOL), which names a new FDB entry before it is
// sent. Anything else on our VTEP (added by hand or by another tool) is left
// as it is, also by teardown.
import fs from 'node:fs';

import { isErrno } from '../lib/netlink/errors.ts';
import { IFF_UP, type Link, NEIGH_PROTO_CATTLE_NET, NUD_PERMANENT, type Rtnetlink } from '../lib/netlink/rtnetlink.ts';
import { sysctlSet } from '../lib/sysctl.ts';
import { vtepName, VXLAN_PORT } from './config.ts';
import { type Applied, type Changes, emptyApplied } from './diff.ts';

/** The alias on every VTEP this agent made: what teardown and repairs look for. */
export const VTEP_ALIAS = 'cattle-net vtep';

export interface VtepWanted {
  vni: number;
  mtu: number;
  mac: string;
  bridge: string;
  underlayIface?: string;
}

export interface VtepResult {
  index: number;
  /** Created now (or re-created): it has no entries. */
  fresh: boolean;
  /** What was repaired or is pending, one line each (for the log and status). */
  notes: string[];
  /** The bridge is missing or not a bridge: the VTEP waits unenslaved. */
  bridgeMissing: boolean;
  /** A vxlan device made by someone else (rancher/vxlan, an interrupted start) was taken over with its entries. */
  takenOver: boolean;
  /** Its MAC was changed or it was set up again: the kernel flushed its neighbours (permanent ones too). */
  flushed: boolean;
}

const NET_ADDR_SET = '3';

/** addr_assign_type from sysfs (not in rtnetlink): "3" when the MAC was set explicitly. */
export function macIsPinned(link: Link): boolean {
  try {
    const dir = `/sys/class/net/${link.name}`;
    if (fs.readFileSync(`${dir}/ifindex`, 'utf8').trim() !== String(link.index)) return true; // sysfs of another netns
    return fs.readFileSync(`${dir}/addr_assign_type`, 'utf8').trim() === NET_ADDR_SET;
  } catch {
    return true;
  }
}

function randomLocalMac(): string {
  const b = Array.from({ length: 6 }, () => Math.floor(Math.random() * 256));
  b[0] = (b[0]! & 0xfc) | 0x02;
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Sysctls of the routed overlay: forwarding on, no ICMP redirects (all, default, the bridge). */
export function ensureSysctls(bridge: string | undefined): string[] {
  const notes: string[] = [];
  const settings: [string, string][] = [
    ['net.ipv4.ip_forward', '1'],
    ['net/ipv4/conf/all/send_redirects', '0'],
    ['net/ipv4/conf/default/send_redirects', '0'],
  ];
  if (bridge !== undefined) settings.push([`net/ipv4/conf/${bridge}/send_redirects`, '0']);
  for (const [k, v] of settings) {
    try {
      sysctlSet(k, v);
    } catch (e) {
      notes.push(`sysctl ${k}=${v}: ${(e as Error).message}`);
    }
  }
  return notes;
}

/**
 * Is this link (named vtep<VNI>, the name of our --vni) one of ours? Ours by
 * alias. Another vxlan device of that name is taken over: made by us and
 * interrupted before the alias was set, by rancher/vxlan for this very host,
 * or re-created by hand; it is then repaired like ours. Anything else is refused.
 */
function ownership(link: Link, w: VtepWanted): 'ours' | 'adopt' | 'takeover' | 'foreign' {
  if (link.kind !== 'vxlan') return 'foreign';
  if (link.alias === VTEP_ALIAS) return 'ours';
  return link.mac === w.mac && link.vxlan?.vni === w.vni ? 'adopt' : 'takeover';
}

/** The VTEP exactly as wanted: created, or repaired (VNI/port/underlay wrong: re-created; MAC/MTU/master: set). */
export function ensureVtep(rt: Rtnetlink, w: VtepWanted): VtepResult {
  const name = vtepName(w.vni);
  const notes: string[] = [];
  let bridge = rt.linkByName(w.bridge);
  let bridgeMissing = false;
  if (bridge === undefined) {
    notes.push(`bridge ${w.bridge} does not exist yet: ${name} is not enslaved (retrying)`);
    bridgeMissing = true;
  } else if (bridge.kind !== 'bridge') {
    notes.push(`${w.bridge} is not a bridge (kind ${bridge.kind ?? 'none'}): ${name} is not enslaved`);
    bridgeMissing = true;
    bridge = undefined;
  } else if (!macIsPinned(bridge)) {
    // Before the VTEP joins: a bridge with a kernel-chosen MAC would adopt the lowest port's, maybe the VTEP's.
    const mac = bridge.mac && bridge.mac !== w.mac ? bridge.mac : randomLocalMac();
    rt.setMac(bridge.index, mac);
    notes.push(`bridge ${w.bridge}: MAC ${mac} pinned`);
  }
  let underlay: number | undefined;
  if (w.underlayIface !== undefined) {
    const u = rt.linkByName(w.underlayIface);
    if (u === undefined) throw new Error(`underlay interface ${w.underlayIface} does not exist`);
    underlay = u.index;
  }

  let link = rt.linkByName(name);
  let fresh = false;
  let takenOver = false;
  let flushed = false;
  if (link !== undefined) {
    const own = ownership(link, w);
    if (own === 'foreign') {
      throw new Error(`${name} exists and is not a vxlan device (kind ${link.kind ?? 'none'}${link.alias ? `, alias "${link.alias}"` : ''}): not touching it; remove it or use another --vni`);
    }
    if (own === 'adopt' || own === 'takeover') {
      rt.setAlias(link.index, VTEP_ALIAS);
      takenOver = true;
      notes.push(own === 'adopt' ? `${name}: adopted (vxlan with this host's VTEP MAC, no alias)`
        : `${name}: taken over (a vxlan device not made by cattle-net: VNI ${link.vxlan?.vni ?? 'none'}, MAC ${link.mac ?? 'none'})`);
    }
    const x = link.vxlan;
    const wrong = !x ? 'no vxlan data' : x.vni !== w.vni ? `VNI ${x.vni}` : x.port !== VXLAN_PORT ? `port ${x.port}` : x.learning ? 'learning on'
      : !x.proxy ? 'proxy off' : (x.underlay ?? undefined) !== underlay ? `underlay #${x.underlay ?? 'none'}` : undefined;
    if (wrong !== undefined) {
      notes.push(`${name}: ${wrong}: re-created`);
      rt.deleteLink(link.index);
      link = undefined;
    }
  }
  if (link === undefined) {
    if (notes.every((n) => !n.endsWith('re-created'))) notes.push(`${name}: missing: created`);
    rt.createVxlan({ name, vni: w.vni, port: VXLAN_PORT, learning: false, proxy: true, mtu: w.mtu, mac: w.mac, underlay });
    link = rt.linkByName(name);
    if (link === undefined) throw new Error(`${name} vanished right after it was created`);
    rt.setAlias(link.index, VTEP_ALIAS);
    fresh = true;
  }
  const index = link.index;
  if (link.mac !== w.mac) {
    rt.setMac(index, w.mac);
    flushed = !fresh;
    if (!fresh) notes.push(`${name}: MAC ${link.mac ?? 'none'} → ${w.mac}`);
  }
  if (link.mtu !== w.mtu) {
    rt.setMtu(index, w.mtu);
    if (!fresh) notes.push(`${name}: MTU ${link.mtu} → ${w.mtu}`);
  }
  if (bridge !== undefined && link.master !== bridge.index) {
    rt.setMaster(index, bridge.index);
    if (!fresh) notes.push(`${name}: master → ${w.bridge}`);
  }
  if (!(link.flags & IFF_UP)) {
    rt.setUp(index);
    if (!fresh) {
      flushed = true;
      notes.push(`${name}: was down: set up`);
    }
  }
  return { index, fresh, notes, bridgeMissing, takenOver: takenOver && !fresh, flushed };
}

export interface TeardownResult {
  removed: string[];
  /** VTEPs kept because entries not made by cattle-net are on them (deleting the device would delete those). */
  kept: string[];
}

/**
 * Remove every VTEP this agent made (by alias); the kernel removes their
 * entries with them. A VTEP that also carries entries the agent did not make
 * (`records`: the applied view per VTEP name, for entries of earlier versions)
 * is kept, with those entries, unless `force`: only the agent's own entries are
 * removed from it.
 */
export function removeVteps(rt: Rtnetlink, records: ReadonlyMap<string, Applied> = new Map(), force = false): TeardownResult {
  const out: TeardownResult = { removed: [], kept: [] };
  for (const l of rt.links({ kind: 'vxlan' })) {
    if (l.alias !== VTEP_ALIAS) continue;
    if (!force) {
      const k = kernelView(rt, l.index, records.get(l.name) ?? emptyApplied());
      const others = [...[...k.foreign.fdb].map((e) => `fdb ${e}`), ...[...k.foreign.neighbours.keys()].map((ip) => `neighbour ${ip}`)];
      if (others.length > 0) {
        for (const ip of k.view.neighbours.keys()) ignoreMissing(() => rt.delNeighbour(l.index, ip));
        for (const [ip, mac] of k.view.fdb) ignoreMissing(() => rt.delFdb(l.index, { mac, dst: ip }));
        out.kept.push(`${l.name}: kept, with ${others.length} entries not made by cattle-net (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', …' : ''}); its own entries removed (teardown --force removes the device)`);
        continue;
      }
    }
    rt.deleteLink(l.index);
    out.removed.push(l.name);
  }
  return out;
}

/** Entries on our VTEP that are not ours, from the last read of the kernel. */
export interface Foreign {
  /** Permanent FDB entries not in our record, as "MAC dst". */
  fdb: Set<string>;
  /** Permanent neighbours without our mark (and not in our record): IP → MAC. */
  neighbours: Map<string, string>;
  /** IPs with a neighbour entry the kernel made (not permanent): replaced when wanted. */
  transient: Set<string>;
}

export function emptyForeign(): Foreign {
  return { fdb: new Set(), neighbours: new Map(), transient: new Set() };
}

export interface ApplyResult {
  applied: Applied;
  errors: string[];
  counts: { fdbAdded: number; fdbRemoved: number; neighboursSet: number; neighboursRemoved: number };
  /** Wanted entries left alone because an entry not made by cattle-net holds the key, one line each. */
  conflicts: string[];
  /** Neighbours refused as existing (EEXIST) though unknown to the last read: the kernel must be read again. */
  unknown: number;
}

function ignoreMissing(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!isErrno(e, 'ENOENT', 'ESRCH', 'ENODEV')) throw e;
  }
}

/**
 * Send only these changes to the kernel. The returned view holds what is in
 * the kernel now as far as the agent knows: a failed change keeps the old view
 * for that key (tried again at the next reconcile).
 */
export function applyChanges(rt: Rtnetlink, index: number, view: Applied, c: Changes, foreign: Foreign = emptyForeign()): ApplyResult {
  // Changed in place: a copy of 10,000 entries per pass is garbage the agent's heap grows for.
  const { fdb, neighbours } = view;
  const errors: string[] = [];
  const conflicts: string[] = [];
  let unknown = 0;
  const counts = { fdbAdded: 0, fdbRemoved: 0, neighboursSet: 0, neighboursRemoved: 0 };
  const attempt = (what: string, fn: () => void): boolean => {
    try {
      fn();
      return true;
    } catch (e) {
      errors.push(`${what}: ${(e as Error).message}`);
      return false;
    }
  };
  // Removals first: an IP that moved between hosts is removed and put again.
  for (const [ip, mac] of c.neighbours.remove) {
    if (attempt(`remove neighbour ${ip}`, () => ignoreMissing(() => rt.delNeighbour(index, ip)))) {
      neighbours.delete(ip);
      counts.neighboursRemoved++;
    }
    void mac;
  }
  for (const [ip, mac] of c.fdb.remove) {
    if (attempt(`remove fdb ${mac} dst ${ip}`, () => ignoreMissing(() => rt.delFdb(index, { mac, dst: ip })))) {
      fdb.delete(ip);
      counts.fdbRemoved++;
    }
  }
  for (const [ip, mac] of c.fdb.put) {
    if (foreign.fdb.has(`${mac} ${ip}`)) {
      conflicts.push(`fdb ${mac} dst ${ip} exists, not made by cattle-net: left as it is`);
      continue;
    }
    // As rancher/vxlan: `bridge fdb append <peer VTEP MAC> dev vtep<VNI> dst <agent IP> self permanent`.
    const old = fdb.get(ip);
    if (old !== undefined && old !== mac) attempt(`remove fdb ${old} dst ${ip}`, () => ignoreMissing(() => rt.delFdb(index, { mac: old, dst: ip })));
    if (attempt(`append fdb ${mac} dst ${ip}`, () => rt.appendFdb(index, { mac, dst: ip }))) {
      fdb.set(ip, mac);
      counts.fdbAdded++;
    }
  }
  for (const [ip, mac] of c.neighbours.put) {
    const held = foreign.neighbours.get(ip);
    if (held !== undefined) {
      conflicts.push(`neighbour ${ip} (lladdr ${held}) exists, not made by cattle-net: left as it is`);
      continue;
    }
    // `ip neigh add|replace <ip> lladdr <peer VTEP MAC> dev vtep<VNI> nud permanent proto 0xce`: replace
    // only our own (or one the kernel made); a new one is added, so that one made by someone else since
    // the last read is refused (EEXIST) rather than overwritten.
    const spec = { dst: ip, mac, state: NUD_PERMANENT, protocol: NEIGH_PROTO_CATTLE_NET };
    const ours = neighbours.has(ip) || foreign.transient.has(ip);
    let exists = false;
    const ok = attempt(`set neighbour ${ip}`, () => {
      if (ours) {
        rt.replaceNeighbour(index, spec);
        return;
      }
      try {
        rt.addNeighbour(index, spec);
      } catch (e) {
        if (!isErrno(e, 'EEXIST')) throw e;
        exists = true;
      }
    });
    if (exists) {
      unknown++;
    } else if (ok) {
      neighbours.set(ip, mac);
      counts.neighboursSet++;
    }
  }
  return { applied: { fdb, neighbours }, errors, counts, conflicts, unknown };
}

/**
 * The view as the kernel has it (at start, at every resync, after lost
 * events): our entries on our VTEP, including those a killed agent put without
 * recording them (neighbours carry our mark; a new FDB entry is recorded before
 * it is sent), and apart from them the entries that are not ours (`foreign`,
 * never changed). With `claimAll` (a VTEP just taken over, e.g. from
 * rancher/vxlan) every permanent entry is taken as ours. The following diff then
 * puts what is missing and removes what is stale. `missing`: entries of the
 * recorded view the kernel lacks (or has otherwise); `extra`: our entries in the
 * kernel the recorded view did not name.
 */
export function kernelView(rt: Rtnetlink, index: number, recorded: Applied, claimAll = false): { view: Applied; missing: number; extra: number; foreign: Foreign } {
  const out = emptyApplied();
  const foreign = emptyForeign();
  // MACs are few (one per peer): one string each instead of one per entry.
  const macs = new Map<string, string>();
  const mac = (m: string): string => {
    const had = macs.get(m);
    if (had !== undefined) return had;
    macs.set(m, m);
    return m;
  };
  for (const e of rt.fdb(index)) {
    if (e.dst === undefined || e.mac === undefined || !(e.state & NUD_PERMANENT)) continue;
    if (!claimAll && recorded.fdb.get(e.dst) !== e.mac) {
      foreign.fdb.add(`${e.mac} ${e.dst}`);
      continue;
    }
    // One destination per peer: a second MAC for the same destination is kept as the recorded one, if any.
    if (!out.fdb.has(e.dst) || recorded.fdb.get(e.dst) === e.mac) out.fdb.set(e.dst, mac(e.mac));
  }
  for (const n of rt.neighbours({ index, family: 4 })) {
    if (n.dst === undefined || n.mac === undefined) continue;
    if (!(n.state & NUD_PERMANENT)) {
      foreign.transient.add(n.dst);
      continue;
    }
    const ours = claimAll || n.protocol === NEIGH_PROTO_CATTLE_NET || (n.protocol === undefined && recorded.neighbours.get(n.dst) === n.mac);
    if (ours) out.neighbours.set(n.dst, mac(n.mac));
    else foreign.neighbours.set(n.dst, n.mac);
  }
  let missing = 0;
  let extra = 0;
  for (const part of ['fdb', 'neighbours'] as const) {
    for (const [k, mac] of recorded[part]) if (out[part].get(k) !== mac) missing++;
    for (const [k, mac] of out[part]) if (recorded[part].get(k) !== mac) extra++;
  }
  return { view: out, missing, extra, foreign };
}
