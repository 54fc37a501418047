// The running agent: one per host (a lock), driven by the metadata version
// long-poll. Each pass reads the environment, decides the desired state
// (desired.ts), repairs the VTEP, sends only the difference from the applied
// view to the kernel (diff.ts, kernel.ts), updates the filter, and writes its
// status. Metadata unreachable: the last applied state stays, retries back off.
// Link events on the VTEP or the bridge (a hand deletion, a changed MTU, MAC
// or master) trigger a repair from the last desired state at once, also while
// metadata is unreachable; so do neighbour and FDB events naming one of our
// entries (deleted or changed by hand): that entry alone is put back. At
// start, at every resync, and when events were lost, the entries are read
// back from the kernel: what a killed agent left half done is finished, stale
// entries are removed. Entries it did not make are never changed or removed
// (kernel.ts). SIGTERM/SIGINT stop it and leave the data plane in place.
import fs from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';

import { type Lock, lockFile } from '../lib/lock.ts';
import { Rtnetlink } from '../lib/netlink/rtnetlink.ts';
import { type AgentOptions, vtepName } from './config.ts';
import { type Desired, desiredState } from './desired.ts';
import { type Applied, diff, emptyApplied, isEmpty, viewFromJson, viewToJson } from './diff.ts';
import { MembersFilter } from './filter.ts';
import { applyChanges, emptyForeign, ensureSysctls, ensureVtep, type Foreign, kernelView } from './kernel.ts';
import { MetadataSource } from './metadata.ts';
import { type AgentStatus, APPLIED_FILE, LOCK_FILE, readJson, STATUS_FILE, writeJsonAtomic } from './status.ts';
import { LinkWatch, type NeighbourEvent, NeighbourWatch } from './watch.ts';

function log(line: string): void {
  process.stderr.write(`cattle-net: ${line}\n`);
}

/** The PID written in a held lock file (for "another agent runs" messages). */
export function lockHolder(runDir: string): string {
  try {
    return fs.readFileSync(path.join(runDir, LOCK_FILE), 'utf8').trim() || '?';
  } catch {
    return '?';
  }
}

/** Take the per-host lock, or undefined when another agent holds it. */
export function takeLock(runDir: string): Lock | undefined {
  const lock = lockFile(path.join(runDir, LOCK_FILE), { wait: false });
  if (lock) {
    fs.ftruncateSync(lock.fd, 0);
    fs.writeSync(lock.fd, `${process.pid}\n`, 0);
  }
  return lock;
}

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 30_000;
/** While the bridge is missing, look again this often. */
const BRIDGE_WAIT_MS = 1000;
/** After a link or neighbour event, wait this long for the rest of a burst (e.g. a delete and a re-create by hand). */
const LINK_SETTLE_MS = 100;
/**
 * A pass that sends at least this many changes may overflow the neighbour
 * event socket with the kernel's echo of its own changes: an overflow right
 * after it is taken as that (a hand change in the same instant waits for the
 * resync) rather than read the whole kernel table again.
 */
const BULK_CHANGES = 256;

type Env = Awaited<ReturnType<MetadataSource['environment']>>;

let collect: ((o: object) => void) | undefined | false;

/**
 * After a pass over many entries: collect its garbage now and give the pages back (what V8's
 * memory reducer does after some idle seconds), so the agent's RSS returns to its live data at
 * once rather than after the next idle period. V8's gc extension, reached through a fresh
 * context once --expose-gc is set (the executable's execArgv does not set it).
 */
function reclaim(): void {
  if (collect === undefined) {
    try {
      process.getBuiltinModule('node:v8').setFlagsFromString('--expose-gc');
      const gc: unknown = process.getBuiltinModule('node:vm').runInNewContext('gc');
      collect = typeof gc === 'function' ? (gc as (o: object) => void) : false;
    } catch {
      collect = false;
    }
  }
  if (collect) collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

export class Agent {
  private readonly opts: AgentOptions;
  private readonly rt: Rtnetlink;
  private readonly source: MetadataSource;
  private readonly filter: MembersFilter | undefined;
  private applied: Applied;
  private status: AgentStatus;
  private stopping = false;
  private signalStop!: () => void;
  private readonly stopped = new Promise<'stop'>((resolve) => {
    this.signalStop = () => resolve('stop');
  });
  private lastVerify = 0;
  private lastDesired: Desired | undefined;
  private lastVersion: string | undefined;
  private bridgeMissing = false;
  private ready = false;
  private loggedProblems = new Set<string>();
  private kickPending: string | undefined;
  /** The pending kick needs the kernel read back (lost neighbour events, or none are watched). */
  private kickVerify = false;
  /** The pending kick names an entry (a neighbour event), not a link. */
  private kickByEntry = false;
  private kickWake: (() => void) | undefined;
  /** Entries named by neighbour/FDB events since the last repair: "fdb <dst>" or "neighbour <ip>" → the kernel's MAC then (undefined: deleted). */
  private readonly touched = new Map<string, string | undefined>();
  /** Entries on our VTEP that are not ours (last read of the kernel): never changed. */
  private foreign: Foreign = emptyForeign();
  /** Set when a pass sent many changes: the next neighbour-event overflow is its own echo. */
  private bulkEcho = false;
  private neighbourWatch: NeighbourWatch | undefined;
  private vtepIndex: number | undefined;

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.rt = Rtnetlink.open();
    this.source = new MetadataSource(opts.metadataAddress, opts.metadataVersion);
    this.source.onSwitch = (from, to) => log(`metadata: ${from} is not served (HTTP 404 on /${from}/version): reading ${to}`);
    this.filter = opts.filter ? new MembersFilter(opts.underlayIface, opts.filterBackend) : undefined;
    this.applied = viewFromJson(readJson(this.file(APPLIED_FILE)));
    this.status = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      state: 'starting',
      vtep: vtepName(opts.vni),
      bridge: opts.bridge,
      vni: opts.vni,
      metadata: { address: this.source.base, reachable: false },
      peers: [],
      counts: { fdb: this.applied.fdb.size, neighbours: this.applied.neighbours.size },
      filter: this.filter ? { backend: this.filter.backend, members: 0 } : { backend: 'off' },
      skipped: [],
      errors: [],
      notes: [],
    };
  }

  private file(name: string): string {
    return path.join(this.opts.runDir, name);
  }

  get currentStatus(): AgentStatus {
    return this.status;
  }

  private writeStatus(): void {
    try {
      writeJsonAtomic(this.file(STATUS_FILE), this.status);
    } catch (e) {
      log(`cannot write status: ${(e as Error).message}`);
    }
  }

  stop(): void {
    this.stopping = true;
    this.signalStop();
  }

  /** p, or 'stop' as soon as stop() is called. */
  private orStop<T>(p: Promise<T>): Promise<T | 'stop'> {
    return Promise.race([p, this.stopped]);
  }

  /** Sleep up to ms, woken early by stop() and (unless told otherwise) by a link event. */
  private async sleep(ms: number, wakeOnKick = true): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    const timer = new Promise<void>((resolve) => {
      t = setTimeout(resolve, ms);
    });
    await this.orStop(wakeOnKick ? Promise.race([timer, this.nextKick()]) : timer);
    clearTimeout(t);
  }

  private verifyDue(): boolean {
    return this.lastVerify === 0 || performance.now() - this.lastVerify >= this.opts.resyncS * 1000;
  }

  /** One pass: environment → desired → kernel. */
  reconcile(env: Env, version: string, cause?: string): void {
    let desired: Desired | undefined;
    let error: string | undefined;
    try {
      desired = desiredState(env);
    } catch (e) {
      error = (e as Error).message;
    }
    this.pass(desired, version, cause, error);
  }

  /** The kernel made to match `desired` (undefined: this host cannot take part; `error` says why). */
  private pass(desired: Desired | undefined, version: string, cause?: string, error?: string): void {
    const t0 = performance.now();
    const errors: string[] = error !== undefined ? [error] : [];
    const notes: string[] = [];
    const changes = { fdbAdded: 0, fdbRemoved: 0, neighboursSet: 0, neighboursRemoved: 0 };
    let verified = false;
    this.bulkEcho = false;
    if (desired) {
      this.lastDesired = desired;
      try {
        const v = ensureVtep(this.rt, { vni: this.opts.vni, mtu: this.opts.vtepMtu, mac: desired.vtepMac, bridge: this.opts.bridge });
        notes.push(...v.notes);
        this.bridgeMissing = v.bridgeMissing;
        this.vtepIndex = v.index;
        this.neighbourWatch?.setIndex(v.index);
        errors.push(...ensureSysctls(v.bridgeMissing ? undefined : this.opts.bridge));
        const verify = (claimAll: boolean): void => {
          const checked = kernelView(this.rt, v.index, this.applied, claimAll);
          if (checked.missing > 0) notes.push(`${checked.missing} recorded entries missing from the kernel`);
          if (checked.extra > 0) notes.push(`${checked.extra} kernel entries on ${vtepName(this.opts.vni)} not recorded (adopted)`);
          const f = checked.foreign;
          if (f.fdb.size + f.neighbours.size > 0) notes.push(`${f.fdb.size} fdb and ${f.neighbours.size} neighbour entries on ${vtepName(this.opts.vni)} not made by cattle-net: left as they are`);
          this.applied = checked.view;
          this.foreign = f;
          this.touched.clear();
          verified = true;
          this.lastVerify = performance.now();
        };
        if (v.fresh) {
          this.applied = emptyApplied();
          this.foreign = emptyForeign();
          this.touched.clear();
          this.lastVerify = performance.now();
        } else if (v.takenOver || v.flushed || this.verifyDue()) {
          verify(v.takenOver);
        } else {
          this.forgetTouched();
        }
        let c = diff(this.applied, desired);
        for (let round = 0; !isEmpty(c); round++) {
          // A new FDB entry is recorded before it is sent (VXLAN keeps no NDA_PROTOCOL): a killed agent's
          // entry is then still known as ours.
          if (c.fdb.put.length > 0) this.saveApplied(c.fdb.put);
          const r = applyChanges(this.rt, v.index, this.applied, c, this.foreign);
          this.applied = r.applied;
          for (const k of Object.keys(changes) as (keyof typeof changes)[]) changes[k] += r.counts[k];
          errors.push(...r.errors);
          notes.push(...r.conflicts);
          this.saveApplied();
          const sent = r.counts.fdbAdded + r.counts.fdbRemoved + r.counts.neighboursSet + r.counts.neighboursRemoved;
          if (sent >= BULK_CHANGES) this.bulkEcho = true;
          // Neighbours that exist though the last read did not have them: read the kernel, then once more.
          if (r.unknown === 0 || round > 0) {
            if (r.unknown > 0) notes.push(`${r.unknown} neighbours exist though not in the last read of the kernel: left for the next check`);
            break;
          }
          verify(false);
          c = diff(this.applied, desired);
        }
        if (v.fresh) this.saveApplied();
      } catch (e) {
        errors.push((e as Error).message);
      }
      if (this.filter) {
        try {
          this.filter.update([...desired.peers.keys()], verified || !this.ready);
          this.status.filter = this.filter.state();
        } catch (e) {
          errors.push(`filter: ${(e as Error).message}`);
        }
      }
    }
    const durationMs = Math.round((performance.now() - t0) * 100) / 100;
    this.lastVersion = version;
    this.status.version = version;
    this.status.state = 'running';
    if (desired) {
      this.status.self = { agentIp: desired.selfIp, vtepMac: desired.vtepMac };
      this.status.peers = [...desired.peers].sort().map(([ip, mac]) => ({ ip, mac }));
      this.status.skipped = desired.problems;
    }
    this.status.counts = { fdb: this.applied.fdb.size, neighbours: this.applied.neighbours.size };
    this.status.foreign = { fdb: this.foreign.fdb.size, neighbours: this.foreign.neighbours.size };
    this.status.errors = errors;
    this.status.notes = notes;
    this.status.lastReconcile = { at: new Date().toISOString(), durationMs, version, ok: errors.length === 0, changes, verified };
    this.writeStatus();
    const sent = changes.fdbAdded + changes.fdbRemoved + changes.neighboursSet + changes.neighboursRemoved;
    // Once this turn is done (the ready line out first).
    if (sent >= BULK_CHANGES || (verified && this.applied.neighbours.size >= BULK_CHANGES)) setTimeout(reclaim, 0).unref();
    const c = changes;
    const changed = c.fdbAdded + c.fdbRemoved + c.neighboursSet + c.neighboursRemoved > 0;
    if (changed || errors.length || notes.length) {
      log(`${cause ? `${cause}: ` : ''}version ${version}: fdb +${c.fdbAdded} -${c.fdbRemoved}, neighbours +${c.neighboursSet} -${c.neighboursRemoved} in ${durationMs} ms${errors.length ? `; errors: ${errors.join('; ')}` : ''}${notes.length ? `; ${notes.join('; ')}` : ''}`);
    }
    const problems = desired?.problems ?? [];
    for (const p of problems) if (!this.loggedProblems.has(p)) log(`skipped: ${p}`);
    this.loggedProblems = new Set(problems);
  }

  /**
   * Entries named by neighbour/FDB events: one of ours deleted, or changed
   * (another MAC), is dropped from the applied view, so the diff puts it back.
   * An event that matches the view (the echo of our own change) changes nothing.
   */
  private forgetTouched(): void {
    for (const [key, mac] of this.touched) {
      const [part, k] = key.split(' ') as ['fdb' | 'neighbour', string];
      if (part === 'fdb') {
        // An FDB event names one MAC of the destination: only our own MAC matters.
        const ours = this.applied.fdb.get(k);
        if (ours !== undefined && mac === undefined) this.applied.fdb.delete(k);
      } else {
        const ours = this.applied.neighbours.get(k);
        if (ours !== undefined && ours !== mac) {
          this.applied.neighbours.delete(k);
          // What is left of it (a FAILED entry, or one still ours with another MAC) is replaced, not added.
          this.foreign.transient.add(k);
        }
      }
    }
    this.touched.clear();
  }

  /** The applied view to its file; `intents`: FDB entries about to be sent, recorded as ours first. */
  private saveApplied(intents: readonly [string, string][] = []): void {
    try {
      let view = this.applied;
      if (intents.length > 0) view = { fdb: new Map([...view.fdb, ...intents]), neighbours: view.neighbours };
      writeJsonAtomic(this.file(APPLIED_FILE), { vtep: vtepName(this.opts.vni), ...viewToJson(view) });
    } catch (e) {
      log(`cannot write the applied view: ${(e as Error).message}`);
    }
  }

  private metadataDown(e: unknown, retryInMs: number): void {
    const msg = (e as Error).message;
    const md = this.status.metadata;
    if (md.reachable || md.lastError !== msg) log(`metadata unreachable, keeping the last applied state (version ${this.lastVersion ?? 'none'}), retrying: ${msg}`);
    if (md.reachable || md.since === undefined) md.since = new Date().toISOString();
    md.reachable = false;
    md.lastError = msg;
    md.retryInMs = retryInMs;
    if (this.status.state !== 'starting') this.status.state = 'metadata-unreachable';
    this.writeStatus();
  }

  private metadataUp(): void {
    const md = this.status.metadata;
    if (!md.reachable && md.since !== undefined) log('metadata reachable again');
    this.status.metadata = { address: this.source.base, reachable: true };
  }

  private kicked(why: string, verify: boolean, entry = false): void {
    // A link event names the repair even when the neighbour events of the same burst (a flush) came first.
    if (this.kickPending === undefined || (!entry && this.kickByEntry)) {
      this.kickPending = why;
      this.kickByEntry = entry;
    }
    if (verify) this.kickVerify = true;
    this.kickWake?.();
  }

  /** A neighbour/FDB event on our VTEP: remember the entry, repair soon. */
  private neighbourEvent(e: NeighbourEvent): void {
    if (e.kind === 'overflow') {
      // Events were lost: unless that is the echo of our own large pass, read the kernel back.
      if (this.bulkEcho) {
        this.bulkEcho = false;
        return;
      }
      this.kicked('neighbour events overflowed', true);
      return;
    }
    const key = `${e.kind} ${e.key}`;
    const ours = e.kind === 'fdb' ? this.applied.fdb.get(e.key) : this.applied.neighbours.get(e.key);
    if (ours === undefined) return; // not one of ours (or no longer)
    if (e.kind === 'fdb' && e.mac !== ours) return; // another MAC of that destination
    if (!e.deleted && e.permanent && e.mac === ours) {
      this.touched.delete(key);
      return; // as we made it: our own echo
    }
    if (e.kind === 'neighbour' && !e.deleted && e.permanent && e.protocol === undefined) {
      // Deleted and added again by hand (without our mark): someone else's now, left as it is.
      this.applied.neighbours.delete(e.key);
      this.foreign.neighbours.set(e.key, e.mac ?? '');
      this.touched.delete(key);
      return;
    }
    this.touched.set(key, e.deleted ? undefined : e.mac);
    this.kicked(`${e.kind === 'fdb' ? 'fdb entry' : 'neighbour'} ${e.key} ${e.deleted ? 'deleted' : 'changed'}`, false, true);
  }

  /** Resolves 'kick' once a link event is pending. */
  private nextKick(): Promise<'kick'> {
    if (this.kickPending !== undefined) return Promise.resolve('kick');
    return new Promise((resolve) => {
      this.kickWake = () => {
        this.kickWake = undefined;
        resolve('kick');
      };
    });
  }

  /** A link or neighbour event: let the burst settle, then repair from the last desired state (no metadata needed). */
  private async repair(): Promise<void> {
    await this.sleep(LINK_SETTLE_MS, false);
    const why = this.kickPending;
    const verify = this.kickVerify;
    const byEntry = this.kickByEntry;
    this.kickPending = undefined;
    this.kickVerify = false;
    this.kickByEntry = false;
    if (this.stopping || why === undefined || this.lastDesired === undefined) return;
    if (verify) this.lastVerify = 0;
    this.pass(this.lastDesired, this.lastVersion ?? '?', `${byEntry ? 'neighbour event' : 'link event'} (${why})`);
  }

  /** Runs until stop(); resolves when stopped. */
  async run(onReady: (line: object) => void): Promise<void> {
    let watch: LinkWatch | undefined;
    try {
      // Without neighbour events the kernel is read back on every link event: a MAC change or a down/up
      // of the VTEP flushes its neighbours (permanent ones too). With them, the flush shows as events
      // (or an overflow), and ensureVtep tells when it changed the MAC or set the VTEP up itself.
      watch = new LinkWatch([vtepName(this.opts.vni), this.opts.bridge], (why) => this.kicked(why, this.neighbourWatch === undefined));
    } catch (e) {
      log(`cannot watch link events (${(e as Error).message}): repairs wait for the resync every ${this.opts.resyncS} s`);
    }
    try {
      this.neighbourWatch = new NeighbourWatch((e) => this.neighbourEvent(e));
      if (this.vtepIndex !== undefined) this.neighbourWatch.setIndex(this.vtepIndex);
    } catch (e) {
      log(`cannot watch neighbour events (${(e as Error).message}): entries deleted by hand are repaired at the resync every ${this.opts.resyncS} s`);
    }
    try {
      await this.loop(onReady);
    } finally {
      await watch?.stop();
      await this.neighbourWatch?.stop();
    }
  }

  private async loop(onReady: (line: object) => void): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    let version: string | undefined;
    while (!this.stopping) {
      try {
        // The version first: a change published while the environment is read is then seen next time.
        const got = await this.orStop(this.source.version().then(async (v) => [v, await this.source.environment()] as const));
        if (got === 'stop') break;
        version = got[0];
        this.metadataUp();
        // A full pass repairs what a pending link event names; entries named by neighbour events are in `touched`.
        this.kickPending = undefined;
        this.kickByEntry = false;
        if (this.kickVerify) this.lastVerify = 0;
        this.kickVerify = false;
        this.reconcile(got[1], version);
        backoff = BACKOFF_MIN_MS;
      } catch (e) {
        if (this.stopping) break;
        backoff = await this.backOff(e, backoff);
        continue;
      }
      if (!this.ready) {
        this.ready = true;
        const s = this.status;
        onReady({ ready: s.errors.length === 0, vtep: s.vtep, version: s.version, peers: s.peers.length, fdb: s.counts.fdb, neighbours: s.counts.neighbours, ...(s.errors.length ? { errors: s.errors } : {}) });
      }
      // Wait for the next version; wake early to re-check the VTEP (missing bridge) or verify.
      const waitS = this.bridgeMissing ? Math.ceil(BRIDGE_WAIT_MS / 1000) : Math.min(this.opts.pollWaitS, this.opts.resyncS);
      try {
        // An unchanged version after maxWait needs no new pass unless a check of the kernel is due.
        // A link event repairs at once and goes on waiting on the same long-poll.
        let poll = this.source.waitForChange(version, waitS);
        for (;;) {
          const r = await Promise.race([poll.then((v) => ({ v })), this.stopped, this.nextKick()]);
          if (r === 'stop') break;
          if (r === 'kick') {
            await this.repair();
            continue;
          }
          if (r.v !== version || this.bridgeMissing || this.verifyDue()) break;
          poll = this.source.waitForChange(version, waitS);
        }
        if (this.stopping) break;
      } catch (e) {
        if (this.stopping) break;
        backoff = await this.backOff(e, backoff);
      }
    }
    this.status.state = 'stopped';
    this.writeStatus();
  }

  /** Metadata failed: say so, wait (repairing what a link event named meanwhile), return the next pause. */
  private async backOff(e: unknown, backoff: number): Promise<number> {
    this.metadataDown(e, backoff);
    await this.sleep(backoff);
    if (this.kickPending !== undefined) await this.repair();
    return Math.min(BACKOFF_MAX_MS, backoff * 2);
  }

  close(): void {
    this.rt.close();
  }
}

/** The agent socket: GET /v1/status and /ping now; room for a fast path (e.g. POST /v1/containers) later. */
export async function listenSocket(file: string, status: () => AgentStatus): Promise<Server> {
  // getBuiltinModule, not import(): the agent runs from a bundle evaluated without a dynamic import callback.
  const http = process.getBuiltinModule('node:http');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // Only a socket is replaced (a stale one of a dead agent: we hold the lock).
  try {
    if (fs.lstatSync(file).isSocket()) fs.rmSync(file);
  } catch {
    // absent
  }
  const server = http.createServer((req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && p === '/v1/status') {
      const body = JSON.stringify(status());
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    } else if (req.method === 'GET' && p === '/ping') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('pong\n');
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('Not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => resolve());
  });
  fs.chmodSync(file, 0o600);
  return server;
}
