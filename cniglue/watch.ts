// Watcher mode: Docker events → CNI, the answer to "trigger it from Docker
// events". Level-triggered per container: every event only says "look at this
// container again"; the watcher then compares what Docker reports (running?
// which start?) with what it has done, and does ADD or DEL to match. So events
// that pile up, arrive twice, or get lost while Docker restarts (a reconcile
// runs on every (re)connect) all end in the same state. One container is never
// worked on by two tasks at once; different containers proceed in parallel.
// What it did survives the watcher itself in the state folders (an attachment
// record next to the state files): a watcher killed with SIGKILL finds there,
// on restart, the containers it must still DEL.
import { Rtnetlink } from '../lib/netlink/rtnetlink.ts';
import { openNetns } from '../lib/netns.ts';
import { cniArgsFor } from './args.ts';
import { hasNetworkConfigs } from './configs.ts';
import type { ContainerInfo, DockerClient, EventStream } from './docker.ts';
import { attachmentFromCache, type GlueSettings, IFNAME, recoverResult } from './glue.ts';
import { formatPortMappings, type PortMapping, portMappingsFrom } from './ports.ts';
import { selectNetwork } from './select.ts';
import {
  type AttachmentRecord,
  containerDirs, errorState, readAttachmentRecord, readStateFile, removeAttachmentRecord, removeContainerState, removeStateFile,
  stateFileStarts, writeAttachmentRecord, writeStateFile } from './state.ts';
import type { OpRunner } from './worker.ts';

export const EVENT_ACTIONS = ['start', 'die', 'destroy'] as const;

export interface WatchOptions {
  docker: DockerClient;
  runner: OpRunner;
  glue: GlueSettings;
  stateDir: string;
  /** Failed ADDs are tried again this many times (network-manager: 15)… */
  retries: number;
  /** …this far apart (network-manager: 2 s). */
  retryIntervalMs: number;
  /** Reconnect backoff after the Docker connection fails. */
  backoffMinMs: number;
  backoffMaxMs: number;
  log: (line: string) => void;
  /** Is there an interface of this name in that netns? (default: netlink in the netns) */
  hasInterface?: (netnsPath: string, ifname: string) => boolean;
}

/** What the watcher did for a running container (as recorded in its state folder). */
type Networked = AttachmentRecord;

/** A container's network, CNI_ARGS and published ports, or why it is left alone. */
type Plan = { network: string; args: [string, string][]; portMappings?: PortMapping[]; portsIgnored?: string[] } | { skip: string };

/** Does the netns at `netnsPath` have a link called `ifname`? Throws when the netns is gone. */
export function netnsHasInterface(netnsPath: string, ifname: string): boolean {
  const ns = openNetns(netnsPath);
  try {
    // The socket is created inside the container's netns; this thread never switches.
    const rt = Rtnetlink.open({ netnsFd: ns.fd });
    try {
      return rt.linkByName(ifname) !== undefined;
    } finally {
      rt.close();
    }
  } finally {
    ns.close();
  }
}

function short(id: string): string {
  return id.slice(0, 12);
}

function quote(v: string): string {
  return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
}

/** The addresses of a result of any version, for the log. */
export function addressesOf(result: Record<string, unknown> | undefined): string[] {
  if (!result) return [];
  const out: string[] = [];
  for (const k of ['ip4', 'ip6']) {
    const v = result[k] as { ip?: unknown } | undefined;
    if (v && typeof v.ip === 'string') out.push(v.ip);
  }
  if (Array.isArray(result.ips)) for (const ip of result.ips as { address?: unknown }[]) if (typeof ip?.address === 'string') out.push(ip.address);
  return out;
}

/**
 * What the watcher does with a container. A container that only has a
 * NetworkMode (no Rancher label) is left to Docker unless that network has CNI
 * configurations. Throws for labels that cannot work (bad network name or
 * value) and for malformed PortBindings.
 */
function planFor(info: ContainerInfo, confRoot: string): Plan {
  const sel = selectNetwork(info);
  if ('skip' in sel) return sel;
  if (sel.source === 'network-mode' && !hasNetworkConfigs(confRoot, sel.network)) return { skip: `no CNI configuration for network ${sel.network}` };
  const ports = portMappingsFrom(info.portBindings);
  return {
    network: sel.network, args: cniArgsFor(info.labels),
    ...(ports.mappings.length > 0 ? { portMappings: ports.mappings } : {}),
    ...(ports.ignored.length > 0 ? { portsIgnored: ports.ignored } : {}),
  };
}

/** The published-ports part of a record or attachment (nothing when there are none). */
function portsOf(n: { portMappings?: PortMapping[] }): { portMappings?: PortMapping[] } {
  return n.portMappings && n.portMappings.length > 0 ? { portMappings: n.portMappings } : {};
}

/** Does a state file say the attachment is up (a result, not an error)? */
function isResult(state: unknown): boolean {
  return typeof state === 'object' && state !== null && !Array.isArray(state) && !('error' in state);
}

function sleep(ms: number, signal: { cancel?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.cancel = () => {
      clearTimeout(t);
      resolve();
    };
  });
}

export class Watcher {
  private readonly o: WatchOptions;
  private readonly hasInterface: (netnsPath: string, ifname: string) => boolean;
  private readonly networked = new Map<string, Networked>();
  /** Per container: the task working on it, and whether it must look again when done. */
  private readonly busy = new Map<string, { again: boolean; done: Promise<void> }>();
  private readonly retries = new Map<string, { startedAt: string; attempts: number; timer?: NodeJS.Timeout }>();
  /** Containers left alone, by the start they were looked at: a reconcile does not log them again. */
  private readonly skipped = new Map<string, string>();
  private stream: EventStream | undefined;
  private stopping = false;
  private readonly pause: { cancel?: () => void } = {};
  private connectedOnce = false;

  constructor(o: WatchOptions) {
    this.o = o;
    this.hasInterface = o.hasInterface ?? netnsHasInterface;
  }

  private line(action: string, fields: Record<string, string | number | undefined>): void {
    const parts = [new Date().toISOString(), action];
    for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== '') parts.push(`${k}=${quote(String(v))}`);
    this.o.log(parts.join(' '));
  }

  /** Follow Docker until stop(): subscribe, reconcile, handle events; reconnect with backoff. */
  async run(): Promise<void> {
    let backoff = this.o.backoffMinMs;
    let failures = 0;
    while (!this.stopping) {
      let opened = false;
      try {
        const stream = this.o.docker.events(EVENT_ACTIONS, (ev) => this.schedule(ev.id), () => {
          opened = true;
          backoff = this.o.backoffMinMs;
          this.line(this.connectedOnce ? 'reconnected' : 'connected', { docker: this.o.docker.socketPath, attempts: failures > 0 ? failures + 1 : undefined });
          this.connectedOnce = true;
          failures = 0;
          void this.reconcile();
        });
        this.stream = stream;
        await stream.done;
      } catch (e) {
        if (this.stopping) break;
        // One line when the connection goes (or the first attempt fails), not one per retry.
        if (opened || failures === 0) this.line('docker-unavailable', { docker: this.o.docker.socketPath, error: (e as Error).message, retry: 'with backoff' });
        failures++;
      } finally {
        this.stream = undefined;
      }
      if (this.stopping) break;
      await sleep(backoff, this.pause);
      backoff = Math.min(backoff * 2, this.o.backoffMaxMs);
    }
  }

  /** Stop following Docker and wait (up to `graceMs`) for work in progress. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.stream?.close();
    this.pause.cancel?.();
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
    const pending = [...this.busy.values()].map((b) => b.done);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Look at every running container, every container the watcher networked, and every state folder. */
  async reconcile(): Promise<void> {
    let list;
    let folders: string[];
    try {
      list = await this.o.docker.listContainers();
      folders = containerDirs(this.o.stateDir);
    } catch (e) {
      this.line('reconcile-failed', { error: (e as Error).message });
      return;
    }
    const ids = new Set<string>();
    for (const c of list) if (c.state === 'running') ids.add(c.id);
    for (const id of this.networked.keys()) ids.add(id);
    // A folder may be all that is left of a container that stopped or went while no watcher was looking.
    for (const id of folders) ids.add(id);
    this.line('reconcile', { containers: list.length, folders: folders.length, checking: ids.size });
    await Promise.allSettled([...ids].map((id) => this.schedule(id)));
  }

  /** Make the watcher look at a container; coalesces with work already under way for it. */
  schedule(id: string): Promise<void> {
    const cur = this.busy.get(id);
    if (cur) {
      cur.again = true;
      return cur.done;
    }
    const entry: { again: boolean; done: Promise<void> } = { again: true, done: Promise.resolve() };
    this.busy.set(id, entry);
    entry.done = (async () => {
      try {
        while (entry.again && !this.stopping) {
          entry.again = false;
          try {
            await this.evaluate(id);
          } catch (e) {
            this.line('error', { id: short(id), error: (e as Error).message });
          }
        }
      } finally {
        this.busy.delete(id);
      }
    })();
    return entry.done;
  }

  /** Wait until no container is being worked on (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.busy.size > 0) await Promise.allSettled([...this.busy.values()].map((b) => b.done));
  }

  private async evaluate(id: string): Promise<void> {
    const info = await this.o.docker.inspect(id);
    const done = this.networked.get(id);
    if (!info || !info.running) {
      this.clearRetry(id);
      this.skipped.delete(id);
      const last = done ?? this.recorded(id, info);
      if (last) await this.down(id, last, info ? 'stopped' : 'removed');
      removeContainerState(this.o.stateDir, id);
      return;
    }
    if (done && done.startedAt === info.startedAt) return;
    if (this.skipped.get(id) === info.startedAt) return;
    // Recorded by an earlier watcher for this start: up() adopts it (or ADDs what never got done).
    const last = done ?? this.recorded(id, info);
    if (last && last.startedAt !== info.startedAt) await this.down(id, last, 'restarted');
    await this.up(info);
  }

  /**
   * What an earlier watcher networked for a container: the record in its state
   * folder; for a folder without one (older versions wrote none) whose state
   * file holds a result, the network its labels select or, once Docker has
   * forgotten it, what its libcni cache entries name. Undefined when there is
   * nothing to DEL.
   */
  private recorded(id: string, info: ContainerInfo | undefined): Networked | undefined {
    const record = readAttachmentRecord(this.o.stateDir, id);
    if (record) return record;
    const startedAt = stateFileStarts(this.o.stateDir, id).at(-1);
    // An error state file: that ADD failed and was rolled back.
    if (startedAt === undefined || !isResult(readStateFile(this.o.stateDir, id, startedAt))) return undefined;
    let found: Pick<Networked, 'network' | 'args' | 'portMappings'> | undefined;
    if (info) {
      try {
        const plan = planFor(info, this.o.glue.confRoot);
        if (!('skip' in plan)) found = { network: plan.network, args: plan.args, ...portsOf(plan) };
      } catch {
        // labels that never worked: nothing was attached
      }
    } else {
      found = attachmentFromCache(id, this.o.glue);
    }
    return found && { startedAt, ...found };
  }

  /** DEL the attachment and forget it (also when DEL failed: it is logged, and retrying would not end). */
  private async down(id: string, n: Networked, reason: string): Promise<void> {
    const t0 = performance.now();
    const r = await this.o.runner('del', { network: n.network, containerId: id, netns: '', args: n.args, ...portsOf(n) });
    this.networked.delete(id);
    removeAttachmentRecord(this.o.stateDir, id);
    removeStateFile(this.o.stateDir, id, n.startedAt);
    this.line('del', {
      id: short(id), network: n.network, reason, result: r.ok ? 'ok' : 'error', error: r.ok ? undefined : r.error,
      ms: Math.round(performance.now() - t0),
    });
  }

  /** Keep what DEL will need, before the ADD: a watcher killed during it leaves the record behind. */
  private record(id: string, n: Networked): void {
    try {
      writeAttachmentRecord(this.o.stateDir, id, n);
    } catch (e) {
      this.line('error', { id: short(id), error: `attachment record: ${(e as Error).message}` });
    }
  }

  /**
   * A container that already has eth0 (networked by an earlier watcher or by
   * hand): remember it, and give it its record and, unless it has one, a state
   * file with the stored result (`{}` when nothing stored it).
   */
  private adopt(info: ContainerInfo, n: Networked): void {
    this.networked.set(info.id, n);
    this.clearRetry(info.id);
    this.record(info.id, n);
    let state: string | undefined;
    let ip: string | undefined;
    if (!isResult(readStateFile(this.o.stateDir, info.id, info.startedAt))) {
      const result = recoverResult({ network: n.network, containerId: info.id, netns: '', args: n.args, ...portsOf(n) }, this.o.glue);
      ip = addressesOf(result).join(',');
      try {
        state = writeStateFile(this.o.stateDir, info.id, info.startedAt, result ?? {});
      } catch (e) {
        this.line('error', { id: short(info.id), error: `state file: ${(e as Error).message}` });
      }
    }
    this.line('adopt', { id: short(info.id), name: info.name, network: n.network, reason: `${IFNAME} already present`, ip, state });
  }

  private fail(info: ContainerInfo, network: string | undefined, message: string, retry: boolean): void {
    writeStateFile(this.o.stateDir, info.id, info.startedAt, errorState(message));
    let attempt: number | undefined;
    if (retry) {
      const r = this.retries.get(info.id);
      const state = r && r.startedAt === info.startedAt ? r : { startedAt: info.startedAt, attempts: 0 };
      state.attempts++;
      attempt = state.attempts;
      if (state.attempts <= this.o.retries && !this.stopping) {
        clearTimeout(state.timer);
        state.timer = setTimeout(() => void this.schedule(info.id), this.o.retryIntervalMs);
        this.retries.set(info.id, state);
      } else {
        this.retries.delete(info.id);
      }
    }
    this.line('add', {
      id: short(info.id), name: info.name, network, result: 'error', error: message,
      attempt: attempt !== undefined ? `${attempt}/${this.o.retries + 1}` : undefined,
    });
  }

  private clearRetry(id: string): void {
    const r = this.retries.get(id);
    if (r) clearTimeout(r.timer);
    this.retries.delete(id);
  }

  private async up(info: ContainerInfo): Promise<void> {
    let plan: Plan;
    try {
      plan = planFor(info, this.o.glue.confRoot);
    } catch (e) {
      this.fail(info, undefined, (e as Error).message, false);
      return;
    }
    if ('skip' in plan) {
      this.skipped.set(info.id, info.startedAt);
      this.line('skip', { id: short(info.id), name: info.name, reason: plan.skip });
      return;
    }
    const { network, args } = plan;
    const ports = portsOf(plan);
    const netns = `/proc/${info.pid}/ns/net`;
    let present: boolean;
    try {
      present = this.hasInterface(netns, IFNAME);
    } catch (e) {
      // The process is gone already: its die event follows.
      this.line('skip', { id: short(info.id), name: info.name, reason: `netns unavailable: ${(e as Error).message}` });
      return;
    }
    const networked: Networked = { startedAt: info.startedAt, network, args, ...ports };
    if (present) {
      this.adopt(info, networked);
      return;
    }
    // Without configurations the ADD fails before any plugin runs, and a DEL could not run either.
    if (hasNetworkConfigs(this.o.glue.confRoot, network)) this.record(info.id, networked);
    const t0 = performance.now();
    const r = await this.o.runner('add', { network, containerId: info.id, netns, args, ...ports });
    if (!r.ok) {
      this.fail(info, network, r.error, true);
      return;
    }
    const published = ports.portMappings ? formatPortMappings(ports.portMappings) : undefined;
    const unpublished = plan.portsIgnored?.join('; ');
    this.networked.set(info.id, networked);
    this.clearRetry(info.id);
    let stateFile: string | undefined;
    try {
      stateFile = writeStateFile(this.o.stateDir, info.id, info.startedAt, r.result ?? {});
    } catch (e) {
      this.line('error', { id: short(info.id), error: `state file: ${(e as Error).message}` });
    }
    this.line('add', {
      id: short(info.id), name: info.name, network, result: 'ok', ip: addressesOf(r.result).join(','),
      ports: published, 'ports-ignored': unpublished, ms: Math.round(performance.now() - t0), state: stateFile,
    });
  }
}
