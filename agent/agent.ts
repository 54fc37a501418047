// The running agent: one per host (a lock), driven by the metadata version
// long-poll. Each pass reads the environment, decides the desired state
// (desired.ts), repairs the VTEP, sends only the difference from the applied
// view to the kernel (diff.ts, kernel.ts), updates the filter, and writes its
// status. Metadata unreachable: the last applied state stays, retries back off.
// Link events on the VTEP or the bridge (a hand deletion, a changed MTU, MAC
// or master) trigger a repair from the last environment at once, also while
// metadata is unreachable. At start, and at every resync, the entries are read
// back from the kernel: what a killed agent left half done is finished, stale
// entries are removed. SIGTERM/SIGINT stop it and leave the data plane in place.
import fs from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';

import { type Lock, lockFile } from '../lib/lock.ts';
import { Rtnetlink } from '../lib/netlink/rtnetlink.ts';
import { type AgentOptions, vtepName } from './config.ts';
import { type Desired, desiredState } from './desired.ts';
import { type Applied, diff, emptyApplied, isEmpty, viewFromJson, viewToJson } from './diff.ts';
import { MembersFilter } from './filter.ts';
import { applyChanges, ensureSysctls, ensureVtep, kernelView } from './kernel.ts';
import { MetadataSource } from './metadata.ts';
import { type AgentStatus, APPLIED_FILE, LOCK_FILE, readJson, STATUS_FILE, writeJsonAtomic } from './status.ts';
import { LinkWatch } from './watch.ts';

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
/** After a link event, wait this long for the rest of a burst (e.g. a delete and a re-create by hand). */
const LINK_SETTLE_MS = 100;

type Env = Awaited<ReturnType<MetadataSource['environment']>>;

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
  private lastEnv: Env | undefined;
  private kickPending: string | undefined;
  private kickWake: (() => void) | undefined;

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.rt = Rtnetlink.open();
    this.source = new MetadataSource(opts.metadataAddress);
    this.filter = opts.filter ? new MembersFilter(opts.underlayIface) : undefined;
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
    const t0 = performance.now();
    const errors: string[] = [];
    const notes: string[] = [];
    const changes = { fdbAdded: 0, fdbRemoved: 0, neighboursSet: 0, neighboursRemoved: 0 };
    let verified = false;
    let desired: Desired | undefined;
    try {
      desired = desiredState(env);
    } catch (e) {
      errors.push((e as Error).message);
    }
    if (desired) {
      this.lastDesired = desired;
      try {
        const v = ensureVtep(this.rt, { vni: this.opts.vni, mtu: this.opts.vtepMtu, mac: desired.vtepMac, bridge: this.opts.bridge });
        notes.push(...v.notes);
        this.bridgeMissing = v.bridgeMissing;
        errors.push(...ensureSysctls(v.bridgeMissing ? undefined : this.opts.bridge));
        if (v.fresh) {
          this.applied = emptyApplied();
        } else if (this.verifyDue()) {
          const checked = kernelView(this.rt, v.index, this.applied);
          if (checked.missing > 0) notes.push(`${checked.missing} recorded entries missing from the kernel`);
          if (checked.extra > 0) notes.push(`${checked.extra} kernel entries on ${vtepName(this.opts.vni)} not recorded (adopted)`);
          this.applied = checked.view;
          verified = true;
        }
        if (verified || v.fresh) this.lastVerify = performance.now();
        const c = diff(this.applied, desired);
        if (!isEmpty(c)) {
          const r = applyChanges(this.rt, v.index, this.applied, c);
          this.applied = r.applied;
          Object.assign(changes, r.counts);
          errors.push(...r.errors);
          this.saveApplied();
        } else if (v.fresh) {
          this.saveApplied();
        }
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
    this.status.errors = errors;
    this.status.notes = notes;
    this.status.lastReconcile = { at: new Date().toISOString(), durationMs, version, ok: errors.length === 0, changes, verified };
    this.writeStatus();
    const c = changes;
    const changed = c.fdbAdded + c.fdbRemoved + c.neighboursSet + c.neighboursRemoved > 0;
    if (changed || errors.length || notes.length) {
      log(`${cause ? `${cause}: ` : ''}version ${version}: fdb +${c.fdbAdded} -${c.fdbRemoved}, neighbours +${c.neighboursSet} -${c.neighboursRemoved} in ${durationMs} ms${errors.length ? `; errors: ${errors.join('; ')}` : ''}${notes.length ? `; ${notes.join('; ')}` : ''}`);
    }
    const problems = desired?.problems ?? [];
    for (const p of problems) if (!this.loggedProblems.has(p)) log(`skipped: ${p}`);
    this.loggedProblems = new Set(problems);
  }

  private saveApplied(): void {
    try {
      writeJsonAtomic(this.file(APPLIED_FILE), { vtep: vtepName(this.opts.vni), ...viewToJson(this.applied) });
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
    this.status.metadata = { address: md.address, reachable: true };
  }

  private kicked(why: string): void {
    this.kickPending ??= why;
    this.kickWake?.();
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

  /** A link event: let the burst settle, then repair from the last environment (no metadata needed). */
  private async repair(): Promise<void> {
    await this.sleep(LINK_SETTLE_MS, false);
    const why = this.kickPending;
    this.kickPending = undefined;
    if (this.stopping || why === undefined || this.lastEnv === undefined) return;
    // A MAC change or a down/up of the VTEP flushes its neighbours (permanent ones too): read the kernel back.
    this.lastVerify = 0;
    this.reconcile(this.lastEnv, this.lastVersion ?? '?', `link event (${why})`);
  }

  /** Runs until stop(); resolves when stopped. */
  async run(onReady: (line: object) => void): Promise<void> {
    let watch: LinkWatch | undefined;
    try {
      watch = new LinkWatch([vtepName(this.opts.vni), this.opts.bridge], (why) => this.kicked(why));
    } catch (e) {
      log(`cannot watch link events (${(e as Error).message}): repairs wait for the resync every ${this.opts.resyncS} s`);
    }
    try {
      await this.loop(onReady);
    } finally {
      await watch?.stop();
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
        this.kickPending = undefined;
        this.lastEnv = got[1];
        this.reconcile(got[1], version);
        backoff = BACKOFF_MIN_MS;
      } catch (e) {
        if (this.stopping) break;
        this.metadataDown(e, backoff);
        await this.sleep(backoff);
        if (this.kickPending !== undefined) await this.repair();
        backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
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
        this.metadataDown(e, backoff);
        await this.sleep(backoff);
        if (this.kickPending !== undefined) await this.repair();
        backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
      }
    }
    this.status.state = 'stopped';
    this.writeStatus();
  }

  close(): void {
    this.rt.close();
  }
}

/** The agent socket: GET /v1/status and /ping now; room for a fast path (e.g. POST /v1/containers) later. */
export async function listenSocket(file: string, status: () => AgentStatus): Promise<Server> {
  const http = await import('node:http');
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
