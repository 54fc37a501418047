// Link events for the VTEP and the bridge: a netlink socket joined to
// RTNLGRP_LINK, read asynchronously (fs.read on the socket: a pool thread
// blocks in read(2) for at most the receive timeout, so stopping is prompt).
// Any RTM_NEWLINK/RTM_DELLINK naming a watched link, or an overflow of the
// socket (events lost), calls onChange: the agent then repairs at once instead
// of waiting for its next resync.
import fs from 'node:fs';

import { isErrno } from '../lib/netlink/errors.ts';
import { RTM_DELLINK, RTM_NEWLINK } from '../lib/netlink/rtnetlink.ts';
import { decodeLink } from '../lib/netlink/rtnl.ts';
import { NetlinkSocket, RTMGRP_LINK } from '../lib/netlink/socket.ts';
import { parseMessages } from '../lib/netlink/wire.ts';

/** How long one read blocks a pool thread at most (and so how long stop() may take). */
const READ_TIMEOUT_MS = 500;

export class LinkWatch {
  private readonly sock: NetlinkSocket;
  private readonly names: ReadonlySet<string>;
  private readonly onChange: (why: string) => void;
  private stopping = false;
  private readonly done: Promise<void>;

  constructor(names: readonly string[], onChange: (why: string) => void) {
    this.names = new Set(names);
    this.onChange = onChange;
    this.sock = NetlinkSocket.open({ groups: RTMGRP_LINK, recvTimeoutMs: READ_TIMEOUT_MS });
    this.done = this.loop();
  }

  private read(buf: Buffer): Promise<number> {
    return new Promise((resolve, reject) => fs.read(this.sock.fd, buf, 0, buf.length, null, (e, n) => (e ? reject(e) : resolve(n))));
  }

  private async loop(): Promise<void> {
    const buf = Buffer.allocUnsafe(256 * 1024);
    try {
      while (!this.stopping) {
        let n: number;
        try {
          n = await this.read(buf);
        } catch (e) {
          if (isErrno(e, 'EAGAIN', 'EWOULDBLOCK', 'EINTR')) continue;
          if (isErrno(e, 'ENOBUFS')) {
            if (!this.stopping) this.onChange('link events overflowed');
            continue;
          }
          throw e;
        }
        if (this.stopping) break;
        for (const msg of parseMessages(Buffer.from(buf.subarray(0, n)))) {
          if (msg.type !== RTM_NEWLINK && msg.type !== RTM_DELLINK) continue;
          let name: string;
          try {
            name = decodeLink(msg.payload, msg.type === RTM_NEWLINK ? 'RTM_NEWLINK' : 'RTM_DELLINK').name;
          } catch {
            continue;
          }
          if (this.names.has(name)) this.onChange(`${name} ${msg.type === RTM_DELLINK ? 'deleted' : 'changed'}`);
        }
      }
    } catch (e) {
      // Not fatal: the periodic resync still repairs.
      process.stderr.write(`cattle-net: link events: ${(e as Error).message}; repairs wait for the next resync\n`);
    } finally {
      this.sock.close();
    }
  }

  /** Stop reading; resolves once the socket is closed. */
  stop(): Promise<void> {
    this.stopping = true;
    return this.done;
  }
}
