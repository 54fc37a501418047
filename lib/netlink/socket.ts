// Synchronous netlink request/response over a socket fd. Synchronous on
// purpose: a plugin does one thing at a time, and sync I/O never touches the
// libuv pool (see the netns thread rules in docs).
import fs from 'node:fs';

import { nowMs } from '../clock.ts';
import { native } from '../native.ts';
import { NetlinkError } from './errors.ts';
import { netlinkTrace } from './trace.ts';
import {
  encodeMessage, type Message,
  NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTI, NLM_F_REQUEST,
  NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, parseAck, parseDone, parseMessages } from './wire.ts';

export const NETLINK_ROUTE = 0;
export const RTMGRP_LINK = 0x1;
/** Neighbour and FDB events (RTNLGRP_NEIGH, as a legacy group bit). */
export const RTMGRP_NEIGH = 0x4;

const RECV_BUFFER = 256 * 1024;

export interface SocketOptions {
  /** Open nsfs fd: the socket lives in that netns for its whole life. */
  netnsFd?: number;
  /** Multicast groups to join (for waiting on kernel events). */
  groups?: number;
  /** Receive timeout; reads then fail with EAGAIN instead of blocking. */
  recvTimeoutMs?: number;
}

export class NetlinkSocket {
  readonly fd: number;
  private seq: number;
  private readonly buf = Buffer.allocUnsafe(RECV_BUFFER);
  /** A background request still using the fd (requestInBackground). */
  private inBackground: Promise<unknown> | undefined;

  constructor(fd: number) {
    this.fd = fd;
    this.seq = Math.floor(Date.now() / 1000) & 0x7fffffff;
  }

  static open(opts: SocketOptions = {}, protocol = NETLINK_ROUTE): NetlinkSocket {
    return new NetlinkSocket(native().netlinkSocket(opts.netnsFd ?? -1, protocol, opts.groups ?? 0, opts.recvTimeoutMs ?? 0));
  }

  /** Whether a background request is still using the fd. */
  get busyInBackground(): boolean {
    return this.inBackground !== undefined;
  }

  /**
   * Close now, or once a background request has finished with the fd: closed
   * under it, its number could be reused and its read would take another
   * socket's replies.
   */
  close(): void {
    if (this.inBackground) void this.inBackground.finally(() => fs.closeSync(this.fd));
    else fs.closeSync(this.fd);
  }

  /** Send one request and collect replies until the ack (or NLMSG_DONE for dumps). */
  request(operation: string, type: number, flags: number, payload: Buffer): Message[] {
    const trace = netlinkTrace();
    if (!trace) return this.exchange(operation, type, flags, payload);
    const t0 = nowMs();
    try {
      const replies = this.exchange(operation, type, flags, payload);
      trace(operation, nowMs() - t0);
      return replies;
    } catch (e) {
      trace(operation, nowMs() - t0, e as Error);
      throw e;
    }
  }

  private exchange(operation: string, type: number, flags: number, payload: Buffer): Message[] {
    const seq = ++this.seq;
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    const msg = encodeMessage({ type, flags: flags | NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK), seq, pid: 0 }, payload);
    fs.writeSync(this.fd, msg);
    const replies: Message[] = [];
    for (;;) {
      for (const m of this.receive()) {
        if (m.seq !== seq) continue; // a stale reply or an event: not ours
        if (m.type === NLMSG_ERROR) {
          const ack = parseAck(m);
          if (ack.errno !== 0) throw new NetlinkError(operation, ack.errno, ack.message);
          return replies;
        }
        if (m.type === NLMSG_DONE) {
          const done = parseDone(m);
          if (done.errno !== 0) throw new NetlinkError(operation, done.errno, done.message);
          return replies;
        }
        if (m.type === NLMSG_NOOP) continue;
        replies.push(m);
        if (!dump && !(m.flags & NLM_F_MULTI) && !(flags & NLM_F_ACK)) return replies;
      }
    }
  }

  /**
   * One request whose kernel work may be long (a veth deletion waits for an
   * RCU grace period: 10–20 ms here), done on a libuv pool thread: the event
   * loop stays free, and a process serving many requests (the agent) lets the
   * kernel overlap several. No other request may use this socket meanwhile.
   */
  requestInBackground(operation: string, type: number, payload: Buffer): Promise<void> {
    const done = this.backgroundRequest(operation, type, payload);
    const idle = done.then(() => undefined, () => undefined);
    this.inBackground = idle;
    void idle.then(() => {
      if (this.inBackground === idle) this.inBackground = undefined;
    });
    return done;
  }

  private async backgroundRequest(operation: string, type: number, payload: Buffer): Promise<void> {
    const seq = ++this.seq;
    const msg = encodeMessage({ type, flags: NLM_F_REQUEST | NLM_F_ACK, seq, pid: 0 }, payload);
    const trace = netlinkTrace();
    const t0 = nowMs();
    try {
      await new Promise<void>((resolve, reject) => fs.write(this.fd, msg, (e) => (e ? reject(e) : resolve())));
      for (;;) {
        const buf = Buffer.allocUnsafe(RECV_BUFFER);
        const n = await new Promise<number>((resolve, reject) => fs.read(this.fd, buf, 0, buf.length, null, (e, bytes) => (e ? reject(e) : resolve(bytes))));
        for (const m of parseMessages(buf.subarray(0, n))) {
          if (m.seq !== seq || m.type !== NLMSG_ERROR) continue;
          const ack = parseAck(m);
          if (ack.errno !== 0) throw new NetlinkError(operation, ack.errno, ack.message);
          trace?.(operation, nowMs() - t0);
          return;
        }
      }
    } catch (e) {
      trace?.(operation, nowMs() - t0, e as Error);
      throw e;
    }
  }

  /** Read one datagram (blocks, or EAGAIN after the receive timeout). */
  receive(): Message[] {
    const n = fs.readSync(this.fd, this.buf, 0, this.buf.length, null);
    return parseMessages(Buffer.from(this.buf.subarray(0, n)));
  }
}
