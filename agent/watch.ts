// Kernel events for the agent, each on a netlink socket of its own read
// asynchronously (fs.read on the socket: a pool thread blocks in read(2) for
// at most the receive timeout, so stopping is prompt).
// - LinkWatch (RTNLGRP_LINK): an RTM_NEWLINK/RTM_DELLINK naming the VTEP or
//   the bridge that changes what the agent checks (index, kind, MTU, MAC,
//   master, up, alias, vxlan settings), or an overflow of the socket (events
//   lost), calls onChange: the agent then repairs at once instead of waiting
//   for its next resync. Bridge-port state (AF_BRIDGE messages) and carrier
//   changes are not such changes.
// - NeighbourWatch (RTNLGRP_NEIGH): every neighbour and FDB event on the
//   VTEP's index, and overflows (events lost), go to onEvent; the agent
//   decides which entries are its own.
import fs from 'node:fs';

import { isErrno } from '../lib/netlink/errors.ts';
import { AF_BRIDGE, AF_INET, IFF_UP, type Link, NUD_PERMANENT, RTM_DELLINK, RTM_DELNEIGH, RTM_NEWLINK, RTM_NEWNEIGH } from '../lib/netlink/rtnetlink.ts';
import { decodeLink, decodeNeighbour } from '../lib/netlink/rtnl.ts';
import { NetlinkSocket, RTMGRP_LINK, RTMGRP_NEIGH } from '../lib/netlink/socket.ts';
import { type Message, parseMessages } from '../lib/netlink/wire.ts';

/** How long one read blocks a pool thread at most (and so how long stop() may take). */
const READ_TIMEOUT_MS = 500;
/** One read: the kernel sends at most this much per datagram for events. */
const READ_BYTES = 64 * 1024;

/** Reads a subscribed socket until stopped: messages and overflows go to the handlers. */
class EventReader {
  private readonly sock: NetlinkSocket;
  private stopping = false;
  private readonly done: Promise<void>;

  constructor(groups: number, what: string, onMessages: (msgs: Message[]) => void, onOverflow: () => void) {
    this.sock = NetlinkSocket.open({ groups, recvTimeoutMs: READ_TIMEOUT_MS });
    this.done = this.loop(what, onMessages, onOverflow);
  }

  private read(buf: Buffer): Promise<number> {
    return new Promise((resolve, reject) => fs.read(this.sock.fd, buf, 0, buf.length, null, (e, n) => (e ? reject(e) : resolve(n))));
  }

  private async loop(what: string, onMessages: (msgs: Message[]) => void, onOverflow: () => void): Promise<void> {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    try {
      while (!this.stopping) {
        let n: number;
        try {
          n = await this.read(buf);
        } catch (e) {
          if (isErrno(e, 'EAGAIN', 'EWOULDBLOCK', 'EINTR')) continue;
          if (isErrno(e, 'ENOBUFS')) {
            if (!this.stopping) onOverflow();
            continue;
          }
          throw e;
        }
        if (this.stopping) break;
        // Handled before the next read: the messages may point into buf.
        onMessages(parseMessages(buf.subarray(0, n)));
      }
    } catch (e) {
      // Not fatal: the periodic resync still repairs.
      process.stderr.write(`cattle-net: ${what}: ${(e as Error).message}; repairs wait for the next resync\n`);
    } finally {
      this.sock.close();
    }
  }

  stop(): Promise<void> {
    this.stopping = true;
    return this.done;
  }
}

/** What of a link the agent checks and repairs; another value means a repair is due. */
export function linkSignature(l: Link): string {
  const x = l.vxlan;
  return [l.index, l.kind ?? '', l.mtu, l.mac ?? '', l.master ?? 0, l.flags & IFF_UP, l.alias ?? '',
    x ? `${x.vni}/${x.port}/${x.learning}/${x.proxy}/${x.underlay ?? ''}` : ''].join(' ');
}

export class LinkWatch {
  private readonly reader: EventReader;
  private readonly names: ReadonlySet<string>;
  private readonly onChange: (why: string) => void;
  /** Last signature seen per watched name (absent: none seen yet, or deleted). */
  private readonly seen = new Map<string, string>();

  constructor(names: readonly string[], onChange: (why: string) => void) {
    this.names = new Set(names);
    this.onChange = onChange;
    this.reader = new EventReader(RTMGRP_LINK, 'link events', (msgs) => this.handle(msgs), () => {
      this.seen.clear();
      onChange('link events overflowed');
    });
  }

  private handle(msgs: Message[]): void {
    for (const msg of msgs) {
      if (msg.type !== RTM_NEWLINK && msg.type !== RTM_DELLINK) continue;
      // Bridge-port views (STP state and the like) repeat what the plain messages say.
      if (msg.payload[0] === AF_BRIDGE) continue;
      let link: Link;
      try {
        link = decodeLink(msg.payload, msg.type === RTM_NEWLINK ? 'RTM_NEWLINK' : 'RTM_DELLINK');
      } catch {
        continue;
      }
      if (!this.names.has(link.name)) continue;
      if (msg.type === RTM_DELLINK) {
        this.seen.delete(link.name);
        this.onChange(`${link.name} deleted`);
        continue;
      }
      const sig = linkSignature(link);
      if (this.seen.get(link.name) === sig) continue;
      this.seen.set(link.name, sig);
      this.onChange(`${link.name} changed`);
    }
  }

  /** Stop reading; resolves once the socket is closed. */
  stop(): Promise<void> {
    return this.reader.stop();
  }
}

export type NeighbourEvent =
  | { kind: 'fdb' | 'neighbour'; key: string; mac?: string; deleted: boolean; permanent: boolean; protocol?: number }
  | { kind: 'overflow' };

export class NeighbourWatch {
  private readonly reader: EventReader;
  private index: number | undefined;

  constructor(onEvent: (e: NeighbourEvent) => void) {
    this.reader = new EventReader(RTMGRP_NEIGH, 'neighbour events', (msgs) => {
      for (const msg of msgs) {
        if (msg.type !== RTM_NEWNEIGH && msg.type !== RTM_DELNEIGH) continue;
        const p = msg.payload;
        // ndmsg: family u8 at 0, ifindex s32 at 4. Only the VTEP's, IPv4 neighbours and FDB entries.
        if (this.index === undefined || p.length < 12 || p.readInt32LE(4) !== this.index) continue;
        const family = p[0];
        if (family !== AF_INET && family !== AF_BRIDGE) continue;
        let n;
        try {
          n = decodeNeighbour(p, msg.type === RTM_NEWNEIGH ? 'RTM_NEWNEIGH' : 'RTM_DELNEIGH');
        } catch {
          continue;
        }
        if (n.dst === undefined) continue;
        const e: NeighbourEvent = { kind: family === AF_BRIDGE ? 'fdb' : 'neighbour', key: n.dst, deleted: msg.type === RTM_DELNEIGH, permanent: (n.state & NUD_PERMANENT) !== 0 };
        if (n.mac !== undefined) e.mac = n.mac;
        if (n.protocol !== undefined) e.protocol = n.protocol;
        onEvent(e);
      }
    }, () => onEvent({ kind: 'overflow' }));
  }

  /** The VTEP's ifindex (it changes when the VTEP is re-created). */
  setIndex(index: number): void {
    this.index = index;
  }

  stop(): Promise<void> {
    return this.reader.stop();
  }
}
