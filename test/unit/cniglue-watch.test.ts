// cniglue watcher logic against a fake Docker Engine API (an HTTP server on a
// unix socket, driven by the test) and a fake CNI runner: start-up reconcile,
// ADD/DEL from events, state files, retries, reconnects, and per-container
// serialization under many simultaneous starts, and what a watcher finds on
// disk from one that was killed. The real daemon and plugins are in
// test/integration/cniglue.test.ts.
import './cniglue-watch-env.ts'; // first: before lib/state.ts reads CATTLE_CNI_STATE_DIR

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';

import { DockerClient, parseEvent, socketPathOf } from '../../cniglue/docker.ts';
import type { Attachment } from '../../cniglue/glue.ts';
import { type AttachmentRecord, RECORD_FILE, writeAttachmentRecord, writeStateFile } from '../../cniglue/state.ts';
import { Watcher } from '../../cniglue/watch.ts';
import type { OpKind, OpOutcome } from '../../cniglue/worker.ts';
import { writeCacheEntry } from '../../lib/runtime/cache.ts';
import { saveState } from '../../lib/state.ts';
import { tempDir } from './runtime-fakes.ts';

interface FakeContainer {
  id: string;
  running: boolean;
  pid: number;
  startedAt: string;
  networkMode: string;
  labels: Record<string, string>;
  /** HostConfig.PortBindings (`-p`). */
  portBindings?: unknown;
}

/** Just enough of the Engine API for the watcher. */
class FakeDocker {
  readonly socket: string;
  readonly containers = new Map<string, FakeContainer>();
  private readonly server: http.Server;
  private streams = new Set<http.ServerResponse>();
  eventFilters: string[] = [];
  private nextPid = 1000;
  /** While down, every request fails as if the daemon were restarting. */
  down = false;
  private clock = 0;

  constructor(dir: string) {
    this.socket = path.join(dir, 'docker.sock');
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.socket, resolve));
  }

  close(): Promise<void> {
    this.dropStreams();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Like a daemon restart: every event stream ends. */
  dropStreams(): void {
    for (const s of this.streams) s.destroy();
    this.streams.clear();
  }

  get subscribers(): number {
    return this.streams.size;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://docker');
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (this.down) return json(500, { message: 'daemon restarting' });
    if (url.pathname === '/_ping') return void res.end('OK');
    if (url.pathname === '/containers/json') {
      return json(200, [...this.containers.values()].map((c) => ({ Id: c.id, State: c.running ? 'running' : 'exited', Labels: c.labels })));
    }
    const m = /^\/containers\/([^/]+)\/json$/.exec(url.pathname);
    if (m) {
      const c = this.containers.get(decodeURIComponent(m[1]!));
      if (!c) return json(404, { message: `No such container: ${m[1]}` });
      return json(200, {
        Id: c.id, Name: `/${c.id.slice(0, 6)}`,
        State: { Running: c.running, Pid: c.running ? c.pid : 0, StartedAt: c.startedAt },
        HostConfig: { NetworkMode: c.networkMode, PortBindings: c.portBindings ?? null }, Config: { Labels: c.labels },
      });
    }
    if (url.pathname === '/events') {
      this.eventFilters.push(url.searchParams.get('filters') ?? '');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      this.streams.add(res);
      res.on('close', () => this.streams.delete(res));
      return;
    }
    json(404, { message: 'page not found' });
  }

  private emit(action: string, c: FakeContainer): void {
    const line = JSON.stringify({ status: action, id: c.id, Type: 'container', Action: action, Actor: { ID: c.id, Attributes: c.labels }, timeNano: Date.now() * 1e6 });
    // Split each event over two writes: the client must reassemble lines.
    const cut = Math.floor(line.length / 2);
    for (const s of this.streams) {
      s.write(line.slice(0, cut));
      s.write(`${line.slice(cut)}\n`);
    }
  }

  start(id: string, labels: Record<string, string>, opts: { networkMode?: string; quiet?: boolean; portBindings?: unknown } = {}): FakeContainer {
    const c: FakeContainer = this.containers.get(id)
      ?? { id, running: false, pid: 0, startedAt: '', networkMode: opts.networkMode ?? 'none', labels, ...(opts.portBindings !== undefined ? { portBindings: opts.portBindings } : {}) };
    c.running = true;
    c.pid = this.nextPid++;
    c.startedAt = new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ++this.clock)).toISOString();
    this.containers.set(id, c);
    if (!opts.quiet) this.emit('start', c);
    return c;
  }

  stop(id: string, opts: { quiet?: boolean } = {}): void {
    const c = this.containers.get(id)!;
    c.running = false;
    if (!opts.quiet) this.emit('die', c);
  }

  remove(id: string, opts: { quiet?: boolean } = {}): void {
    const c = this.containers.get(id)!;
    this.containers.delete(id);
    if (!opts.quiet) this.emit('destroy', c);
  }
}

interface RunnerCall { op: OpKind; a: Attachment }

/** Records calls, checks that no container ever has two operations at once. */
class FakeRunner {
  calls: RunnerCall[] = [];
  active = new Map<string, number>();
  overlaps: string[] = [];
  maxConcurrent = 0;
  delayMs = (): number => 5;
  failNext = new Map<string, string>();

  readonly run = async (op: OpKind, a: Attachment): Promise<OpOutcome> => {
    const n = (this.active.get(a.containerId) ?? 0) + 1;
    if (n > 1) this.overlaps.push(a.containerId);
    this.active.set(a.containerId, n);
    let total = 0;
    for (const v of this.active.values()) total += v;
    this.maxConcurrent = Math.max(this.maxConcurrent, total);
    this.calls.push({ op, a });
    await new Promise((r) => setTimeout(r, this.delayMs()));
    this.active.set(a.containerId, this.active.get(a.containerId)! - 1);
    const err = this.failNext.get(a.containerId);
    if (op === 'add' && err !== undefined) {
      this.failNext.delete(a.containerId);
      return { ok: false, error: err };
    }
    if (op === 'add') {
      const ip = a.args.find(([k]) => k === 'IPAddress')?.[1];
      return { ok: true, result: { cniVersion: '0.1.0', ip4: { ip } } };
    }
    return { ok: true };
  };

  ops(id: string): string[] {
    return this.calls.filter((c) => c.a.containerId === id).map((c) => c.op);
  }
}

/** 64 hex digits whose first 12 (the short ID in logs) differ per n. */
const hexId = (n: number) => `${n.toString(16).padStart(12, '0')}${'c'.repeat(52)}`;
const labelled = (ip: string) => ({ 'io.rancher.cni.network': 'managed', 'io.rancher.container.ip': ip });
/** CNI_ARGS the watcher sends for labelled(ip). */
const argsFor = (ip: string): [string, string][] => [['IgnoreUnknown', '1'], ['DOCKER', 'true'], ['IPAddress', ip]];
/** The name inside managed.d's configuration. */
const MANAGED_LIST = 'm';
const netnsOf = (c: FakeContainer) => `/proc/${c.pid}/ns/net`;
const short = (id: string) => id.slice(0, 12);

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What is there before the watcher starts: the place to leave what an earlier watcher left. */
interface Prepared {
  stateDir: string;
  cacheDir: string;
  confRoot: string;
  /** `/proc/<pid>/ns/net` of the containers that have eth0. */
  withEth0: Set<string>;
}

interface World extends Prepared {
  docker: FakeDocker;
  runner: FakeRunner;
  watcher: Watcher;
  logs: string[];
  running: Promise<void>;
}

const worlds: World[] = [];

/**
 * A fake Docker and a watcher following it. `setup` runs before the watcher
 * starts: containers that exist already, which of them have eth0, what is on disk.
 */
async function world(setup: (d: FakeDocker, pre: Prepared) => void = () => {}, opts: { retries?: number } = {}): Promise<World> {
  const dir = tempDir('cglue-watch-');
  const docker = new FakeDocker(dir);
  await docker.listen();
  const confRoot = path.join(dir, 'conf');
  fs.mkdirSync(path.join(confRoot, 'bridge.d'), { recursive: true });
  fs.writeFileSync(path.join(confRoot, 'bridge.d', '10.conf'), '{"name":"b","type":"x"}');
  // The labelled containers' network; its list name is what libcni cache entries and plugin state are keyed by.
  fs.mkdirSync(path.join(confRoot, 'managed.d'), { recursive: true });
  fs.writeFileSync(path.join(confRoot, 'managed.d', '10.conf'), `{"name":"${MANAGED_LIST}","type":"rancher-bridge"}`);
  const pre: Prepared = { stateDir: path.join(dir, 'state'), cacheDir: path.join(dir, 'cache'), confRoot, withEth0: new Set() };
  setup(docker, pre);
  const runner = new FakeRunner();
  const logs: string[] = [];
  const { stateDir, cacheDir, withEth0 } = pre;
  const watcher = new Watcher({
    docker: new DockerClient(`unix://${docker.socket}`),
    runner: runner.run,
    glue: { confRoot, cniPath: ['/nonexistent'], cacheDir, pluginTimeoutMs: 1000 },
    stateDir,
    retries: opts.retries ?? 2,
    retryIntervalMs: 50,
    backoffMinMs: 20,
    backoffMaxMs: 100,
    log: (l) => logs.push(l),
    hasInterface: (netns) => {
      if (!/^\/proc\/\d+\/ns\/net$/.test(netns)) throw new Error(`bad netns ${netns}`);
      return withEth0.has(netns);
    },
  });
  const w: World = { ...pre, docker, runner, watcher, logs, running: watcher.run() };
  worlds.push(w);
  await until('subscription', () => docker.subscribers === 1);
  return w;
}

/** Wait for the n-th reconcile (1: at start-up) and for all the work it started. */
async function reconciled(w: World, n = 1): Promise<void> {
  await until(`reconcile ${n}`, () => w.logs.filter((l) => / reconcile /.test(l)).length >= n);
  await w.watcher.idle();
}

afterEach(async () => {
  for (const w of worlds.splice(0)) {
    await w.watcher.stop(2000);
    await w.running;
    await w.docker.close();
  }
});

after(() => {
  // nothing else: temp dirs go with runtime-fakes' after()
});

function stateOf(w: World, c: FakeContainer): unknown {
  const f = path.join(w.stateDir, c.id, c.startedAt);
  return fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : undefined;
}

function recordOf(w: World, id: string): unknown {
  const f = path.join(w.stateDir, id, RECORD_FILE);
  return fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : undefined;
}

function hasFolder(w: World, id: string): boolean {
  return fs.existsSync(path.join(w.stateDir, id));
}

/** What a watcher leaves for a container it networked: its record (unless `record` is false) and the state file. */
function leftBehind(pre: Prepared, id: string, rec: AttachmentRecord, state: unknown, record = true): void {
  if (record) writeAttachmentRecord(pre.stateDir, id, rec);
  writeStateFile(pre.stateDir, id, rec.startedAt, state);
}

/** The libcni cache entry an ADD through managed.d leaves. */
function cached(pre: Prepared, id: string, args: [string, string][], result: Record<string, unknown>): void {
  writeCacheEntry(pre.cacheDir, {
    network: MANAGED_LIST, containerId: id, ifname: 'eth0', config: Buffer.from('{}'), netns: '/proc/1/ns/net', cniArgs: args, capabilityArgs: {}, result,
  });
}

function delsOf(w: World): [string, Attachment][] {
  return w.runner.calls.filter((c) => c.op === 'del').map((c) => [c.a.containerId, c.a]);
}

describe('docker.ts helpers', () => {
  it('reads DOCKER_HOST unix URLs only', () => {
    assert.equal(socketPathOf(undefined), '/var/run/docker.sock');
    assert.equal(socketPathOf(''), '/var/run/docker.sock');
    assert.equal(socketPathOf('unix:///tmp/d.sock'), '/tmp/d.sock');
    assert.throws(() => socketPathOf('tcp://127.0.0.1:2375'), /only unix:/);
  });

  it('parses container events, old and new field names', () => {
    assert.deepEqual(parseEvent('{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"a":"b","n":1}}}'),
      { action: 'start', id: 'abc', attributes: { a: 'b' } });
    assert.deepEqual(parseEvent('{"status":"die","id":"abc"}'), { action: 'die', id: 'abc', attributes: {} });
    assert.equal(parseEvent('{"Type":"network","Action":"connect","Actor":{"ID":"n"}}'), undefined);
    assert.equal(parseEvent('not json'), undefined);
  });
});

describe('Watcher', () => {
  it('subscribes to start/die/destroy container events', async () => {
    const w = await world();
    assert.deepEqual(JSON.parse(w.docker.eventFilters[0]!), { type: ['container'], event: ['start', 'die', 'destroy'] });
  });

  it('at start-up networks running containers without eth0, adopts those with it, leaves the rest', async () => {
    let a!: FakeContainer, b!: FakeContainer, plain!: FakeContainer, host!: FakeContainer, stopped!: FakeContainer;
    const w = await world((d, pre) => {
      a = d.start(hexId(1), labelled('10.42.0.1/16'), { quiet: true });
      b = d.start(hexId(2), labelled('10.42.0.2/16'), { quiet: true });
      plain = d.start(hexId(3), {}, { quiet: true });
      host = d.start(hexId(4), labelled('10.42.0.4/16'), { networkMode: 'host', quiet: true });
      stopped = d.start(hexId(5), labelled('10.42.0.5/16'), { quiet: true });
      d.stop(stopped.id, { quiet: true });
      // b already has eth0 (networked before the watcher started)
      pre.withEth0.add(netnsOf(b));
    });
    await reconciled(w);
    assert.deepEqual(w.runner.calls.map((c) => [c.op, c.a.containerId]), [['add', a.id]]);
    assert.equal(w.runner.calls[0]!.a.netns, `/proc/${a.pid}/ns/net`);
    assert.equal(w.runner.calls[0]!.a.network, 'managed');
    assert.deepEqual(stateOf(w, a), { cniVersion: '0.1.0', ip4: { ip: '10.42.0.1/16' } });
    assert.deepEqual(stateOf(w, b), {}, 'adopted: nothing stored its result, but it gets a state file');
    assert.ok(w.logs.some((l) => l.includes(`adopt id=${b.id.slice(0, 12)} `)));
    assert.ok(w.logs.some((l) => l.includes(`skip id=${plain.id.slice(0, 12)}`) && /none/.test(l)));
    assert.ok(w.logs.some((l) => l.includes(`skip id=${host.id.slice(0, 12)}`) && /host/.test(l)));
    // the adopted container is DELed when it stops
    w.docker.stop(b.id);
    await until('DEL of adopted', () => w.runner.ops(b.id).includes('del'));
  });

  it('ADD on start, DEL (no netns) on die with the state file removed, state dir gone on destroy', async () => {
    const w = await world();
    const c = w.docker.start(hexId(10), { ...labelled('10.42.1.10/16'), 'io.rancher.container.uuid': 'u-1' });
    await until('ADD', () => stateOf(w, c) !== undefined);
    assert.deepEqual(w.runner.calls[0]!.a.args, [['IgnoreUnknown', '1'], ['DOCKER', 'true'], ['RancherContainerUUID', 'u-1'], ['IPAddress', '10.42.1.10/16']]);
    const line = w.logs.find((l) => l.includes(' add '))!;
    assert.match(line, /^\S+Z add id=00000000000a .*network=managed result=ok ip=10\.42\.1\.10\/16 ms=\d+ state=/);
    w.docker.stop(c.id);
    await until('DEL', () => w.runner.ops(c.id).includes('del'));
    await w.watcher.idle();
    const del = w.runner.calls.find((x) => x.op === 'del')!;
    assert.equal(del.a.netns, '');
    assert.deepEqual(del.a.args, w.runner.calls[0]!.a.args);
    assert.equal(stateOf(w, c), undefined);
    w.docker.remove(c.id);
    await until('destroy handled', () => !fs.existsSync(path.join(w.stateDir, c.id)));
    assert.deepEqual(w.runner.ops(c.id), ['add', 'del'], 'no second DEL on destroy');
  });

  it('a restart (new StartedAt) DELs the old attachment and ADDs again', async () => {
    const w = await world();
    const c = w.docker.start(hexId(11), labelled('10.42.1.11/16'));
    await until('ADD', () => w.runner.ops(c.id).length === 1);
    await w.watcher.idle();
    const first = c.startedAt;
    // die and start arrive back to back; either way the end state is one attachment for the new start
    w.docker.stop(c.id);
    w.docker.start(c.id, c.labels);
    await until('re-ADD', () => stateOf(w, c) !== undefined && w.runner.ops(c.id).length === 3);
    await w.watcher.idle();
    assert.deepEqual(w.runner.ops(c.id), ['add', 'del', 'add']);
    assert.ok(!fs.existsSync(path.join(w.stateDir, c.id, first)), 'old start\'s state file removed');
  });

  it('a failed ADD writes {"error": …} and is retried until it works', async () => {
    const w = await world();
    w.runner.failNext.set(hexId(12), 'IPAM plugin returned missing IPv4 config');
    const c = w.docker.start(hexId(12), labelled('10.42.1.12/16'));
    await until('error state', () => stateOf(w, c) !== undefined);
    assert.deepEqual(stateOf(w, c), { error: "Couldn't bring up network: IPAM plugin returned missing IPv4 config" });
    assert.ok(w.logs.some((l) => / add .*result=error .*attempt=1\/3/.test(l)));
    await until('retry succeeded', () => (stateOf(w, c) as { ip4?: unknown } | undefined)?.ip4 !== undefined);
    assert.deepEqual(w.runner.ops(c.id), ['add', 'add']);
  });

  it('a labelled network with a bad name or bad label value fails once, without retries', async () => {
    const w = await world();
    const c = w.docker.start(hexId(13), { 'io.rancher.cni.network': '../etc' });
    await until('error state', () => stateOf(w, c) !== undefined);
    assert.match((stateOf(w, c) as { error: string }).error, /^Couldn't bring up network: invalid network name/);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(w.runner.calls, []);
  });

  it('a labelled network without configurations: its failed ADD leaves no record, so its stop DELs nothing and the folder goes', async () => {
    const w = await world(undefined, { retries: 0 });
    w.runner.failNext.set(hexId(16), 'couldn\'t find any CNI network configurations for network "nowhere"');
    const c = w.docker.start(hexId(16), { 'io.rancher.cni.network': 'nowhere' });
    await until('error state', () => stateOf(w, c) !== undefined);
    await w.watcher.idle();
    assert.equal(recordOf(w, c.id), undefined);
    w.docker.stop(c.id);
    await until('folder gone', () => !hasFolder(w, c.id));
    await w.watcher.idle();
    assert.deepEqual(w.runner.ops(c.id), ['add']);
  });

  it('a NetworkMode network without configurations is left to Docker; with some it is networked', async () => {
    const w = await world();
    const mine = w.docker.start(hexId(14), {}, { networkMode: 'bridge' });
    const theirs = w.docker.start(hexId(15), {}, { networkMode: 'mynet' });
    await until('ADD', () => w.runner.ops(mine.id).length === 1);
    await w.watcher.idle();
    assert.equal(w.runner.calls[0]!.a.network, 'bridge');
    assert.deepEqual(w.runner.ops(theirs.id), []);
    assert.ok(w.logs.some((l) => l.includes(`skip id=${theirs.id.slice(0, 12)}`) && /no CNI configuration for network mynet/.test(l)));
    // A later reconcile (reconnect) looks again but does not repeat itself for the same start.
    await w.watcher.reconcile();
    assert.equal(w.logs.filter((l) => l.includes(`skip id=${theirs.id.slice(0, 12)}`)).length, 1);
    assert.deepEqual(w.runner.ops(mine.id), ['add']);
  });

  it('after the connection drops it reconnects and reconciles what it missed', async () => {
    const w = await world();
    const keep = w.docker.start(hexId(20), labelled('10.42.2.20/16'));
    const gone = w.docker.start(hexId(21), labelled('10.42.2.21/16'));
    await until('ADDs', () => w.runner.calls.length === 2);
    await w.watcher.idle();
    w.docker.down = true;
    w.docker.dropStreams();
    await until('disconnect noticed', () => w.logs.some((l) => l.includes('docker-unavailable')));
    // While nobody listens: one container stops and is removed, another starts.
    w.docker.stop(gone.id, { quiet: true });
    w.docker.remove(gone.id, { quiet: true });
    const late = w.docker.start(hexId(22), labelled('10.42.2.22/16'), { quiet: true });
    await new Promise((r) => setTimeout(r, 100)); // a few failed reconnect attempts: one log line only
    assert.equal(w.logs.filter((l) => l.includes('docker-unavailable')).length, 1);
    w.docker.down = false;
    await until('reconnect', () => w.logs.some((l) => / reconnected /.test(l)));
    await until('reconciled', () => w.runner.ops(late.id).includes('add') && w.runner.ops(gone.id).includes('del'));
    await w.watcher.idle();
    assert.deepEqual(w.runner.ops(keep.id), ['add']);
    assert.ok(!fs.existsSync(path.join(w.stateDir, gone.id)));
  });

  it('at start-up, the folder of a container removed while no watcher ran is DELed with its recorded network and args, then removed', async () => {
    const id = hexId(30);
    const args = argsFor('10.42.4.30/16');
    const w = await world((_d, pre) => {
      leftBehind(pre, id, { startedAt: '2025-12-31T23:00:00.000000001Z', network: 'managed', args }, { cniVersion: '0.1.0', ip4: { ip: '10.42.4.30/16' } });
    });
    await reconciled(w);
    assert.deepEqual(delsOf(w), [[id, { network: 'managed', containerId: id, netns: '', args }]]);
    assert.ok(!hasFolder(w, id), 'folder removed');
    assert.ok(w.logs.some((l) => l.includes(`del id=${short(id)} `) && /reason=removed result=ok/.test(l)));
    assert.ok(w.logs.some((l) => / reconcile .*folders=1 /.test(l)));
  });

  it('at start-up, a container stopped while no watcher ran is DELed and its folder removed; a running one keeps its own', async () => {
    let stopped!: FakeContainer, running!: FakeContainer;
    const w = await world((d, pre) => {
      stopped = d.start(hexId(31), labelled('10.42.4.31/16'), { quiet: true });
      running = d.start(hexId(32), labelled('10.42.4.32/16'), { quiet: true });
      for (const c of [stopped, running]) {
        leftBehind(pre, c.id, { startedAt: c.startedAt, network: 'managed', args: argsFor(c.labels['io.rancher.container.ip']!) }, { cniVersion: '0.1.0', ip4: { ip: c.labels['io.rancher.container.ip'] } });
      }
      pre.withEth0.add(netnsOf(running));
      d.stop(stopped.id, { quiet: true });
    });
    await reconciled(w);
    assert.deepEqual(delsOf(w), [[stopped.id, { network: 'managed', containerId: stopped.id, netns: '', args: argsFor('10.42.4.31/16') }]]);
    assert.ok(!hasFolder(w, stopped.id));
    assert.deepEqual(w.runner.ops(running.id), [], 'running with eth0: adopted, not ADDed again');
    assert.deepEqual(stateOf(w, running), { cniVersion: '0.1.0', ip4: { ip: '10.42.4.32/16' } }, 'its state file kept as it was');
    // The adopted one is DELed like any other once it stops.
    w.docker.stop(running.id);
    await until('DEL of adopted', () => w.runner.ops(running.id).includes('del'));
    await w.watcher.idle();
    assert.ok(!hasFolder(w, running.id));
  });

  it('at start-up, a container restarted while no watcher ran has its old start DELed, then the new one ADDed', async () => {
    let c!: FakeContainer;
    let first = '';
    const w = await world((d, pre) => {
      c = d.start(hexId(33), labelled('10.42.4.33/16'), { quiet: true });
      first = c.startedAt;
      leftBehind(pre, c.id, { startedAt: first, network: 'managed', args: argsFor('10.42.4.33/16') }, { cniVersion: '0.1.0', ip4: { ip: '10.42.4.33/16' } });
      d.stop(c.id, { quiet: true });
      d.start(c.id, c.labels, { quiet: true });
    });
    await reconciled(w);
    assert.deepEqual(w.runner.ops(c.id), ['del', 'add']);
    assert.ok(w.logs.some((l) => l.includes(`del id=${short(c.id)} `) && /reason=restarted/.test(l)));
    assert.deepEqual(fs.readdirSync(path.join(w.stateDir, c.id)).sort(), [RECORD_FILE, c.startedAt].sort(), 'the old start\'s state file is gone');
    assert.deepEqual(recordOf(w, c.id), { startedAt: c.startedAt, network: 'managed', args: argsFor('10.42.4.33/16') });
  });

  it('an adopted container gets its record and a state file: the libcni cached result, else what the plugin stored, else {}', async () => {
    let fromCache!: FakeContainer, fromPlugin!: FakeContainer, unknown!: FakeContainer, known!: FakeContainer;
    const w = await world((d, pre) => {
      fromCache = d.start(hexId(40), labelled('10.42.5.40/16'), { quiet: true });
      fromPlugin = d.start(hexId(41), labelled('10.42.5.41/16'), { quiet: true });
      unknown = d.start(hexId(42), labelled('10.42.5.42/16'), { quiet: true });
      known = d.start(hexId(43), labelled('10.42.5.43/16'), { quiet: true });
      for (const c of [fromCache, fromPlugin, unknown, known]) pre.withEth0.add(netnsOf(c));
      cached(pre, fromCache.id, argsFor('10.42.5.40/16'), { cniVersion: '0.1.0', ip4: { ip: '10.42.5.40/16', gateway: '10.42.0.1' } });
      saveState({ plugin: 'cattle-bridge', network: MANAGED_LIST, containerId: fromPlugin.id, ifname: 'eth0' },
        { netns: 'x', hostVeth: `vethr${fromPlugin.id.slice(0, 10)}`, result: { ips: [{ address: '10.42.5.41/16', gateway: '10.42.0.1' }] } });
      // An earlier watcher's state file (without a record) is the agent's already: left as it is.
      writeStateFile(pre.stateDir, known.id, known.startedAt, { cniVersion: '0.1.0', ip4: { ip: '10.42.5.43/16' } });
    });
    await reconciled(w);
    assert.deepEqual(w.runner.calls, [], 'all adopted, nothing run');
    assert.deepEqual((stateOf(w, fromCache) as { ip4: unknown }).ip4, { ip: '10.42.5.40/16', gateway: '10.42.0.1' });
    assert.deepEqual((stateOf(w, fromPlugin) as { ip4: unknown }).ip4, { ip: '10.42.5.41/16', gateway: '10.42.0.1' });
    assert.deepEqual(stateOf(w, unknown), {});
    assert.deepEqual(stateOf(w, known), { cniVersion: '0.1.0', ip4: { ip: '10.42.5.43/16' } });
    for (const c of [fromCache, fromPlugin, unknown, known]) {
      assert.deepEqual(recordOf(w, c.id), { startedAt: c.startedAt, network: 'managed', args: argsFor(c.labels['io.rancher.container.ip']!) });
    }
    assert.ok(w.logs.some((l) => l.includes(`adopt id=${short(fromCache.id)} `) && l.includes('ip=10.42.5.40/16')));
    // A later watcher can DEL them from the record alone: even once Docker has forgotten them.
    await w.watcher.stop(2000);
    await w.running;
    for (const c of [fromCache, fromPlugin, unknown, known]) w.docker.remove(c.id, { quiet: true });
    const again = new Watcher({
      docker: new DockerClient(`unix://${w.docker.socket}`), runner: w.runner.run,
      glue: { confRoot: w.confRoot, cniPath: ['/nonexistent'], cacheDir: w.cacheDir, pluginTimeoutMs: 1000 },
      stateDir: w.stateDir, retries: 0, retryIntervalMs: 50, backoffMinMs: 20, backoffMaxMs: 100, log: (l) => w.logs.push(l),
      hasInterface: () => false,
    });
    // The world's cleanup stops this one now.
    w.watcher = again;
    w.running = again.run();
    await until('second reconcile', () => w.logs.filter((l) => / reconcile /.test(l)).length === 2);
    await again.idle();
    assert.deepEqual(delsOf(w).map(([id, a]) => [id, a.network, a.args]).sort(),
      [fromCache, fromPlugin, unknown, known].map((c) => [c.id, 'managed', argsFor(c.labels['io.rancher.container.ip']!)]).sort());
    for (const c of [fromCache, fromPlugin, unknown, known]) assert.ok(!hasFolder(w, c.id));
  });

  it('folders an older watcher left without a record: DEL with the network from the labels, or from the libcni cache once the container is gone', async () => {
    let stopped!: FakeContainer;
    const goneCached = hexId(51);
    const goneBare = hexId(52);
    const cachedArgs = argsFor('10.42.6.51/16');
    const w = await world((d, pre) => {
      stopped = d.start(hexId(50), { ...labelled('10.42.6.50/16'), 'io.rancher.container.uuid': 'u-50' }, { quiet: true });
      d.stop(stopped.id, { quiet: true });
      leftBehind(pre, stopped.id, { startedAt: stopped.startedAt, network: '', args: [] }, { cniVersion: '0.1.0', ip4: { ip: '10.42.6.50/16' } }, false);
      leftBehind(pre, goneCached, { startedAt: '2025-12-31T23:00:00.000000051Z', network: '', args: [] }, { cniVersion: '0.1.0', ip4: { ip: '10.42.6.51/16' } }, false);
      cached(pre, goneCached, cachedArgs, { cniVersion: '0.1.0', ip4: { ip: '10.42.6.51/16' } });
      // Failed for good and never cached: nothing to DEL, the folder just goes.
      leftBehind(pre, goneBare, { startedAt: '2025-12-31T23:00:00.000000052Z', network: '', args: [] }, { error: "Couldn't bring up network: boom" }, false);
    });
    await reconciled(w);
    assert.deepEqual(delsOf(w).sort(), [
      [stopped.id, { network: 'managed', containerId: stopped.id, netns: '', args: [['IgnoreUnknown', '1'], ['DOCKER', 'true'], ['RancherContainerUUID', 'u-50'], ['IPAddress', '10.42.6.50/16']] }],
      [goneCached, { network: 'managed', containerId: goneCached, netns: '', args: cachedArgs }],
    ].sort());
    for (const id of [stopped.id, goneCached, goneBare]) assert.ok(!hasFolder(w, id), `folder of ${short(id)} removed`);
  });

  it('after a reconnect, the same: folders of containers that went or stopped meanwhile are DELed and removed, one started with eth0 is adopted', async () => {
    const w = await world(undefined, { retries: 0 });
    // Failed ADDs: the watcher keeps nothing in memory for them, only their folders.
    w.runner.failNext.set(hexId(60), 'no address');
    w.runner.failNext.set(hexId(61), 'no address');
    const gone = w.docker.start(hexId(60), labelled('10.42.7.60/16'));
    const stopped = w.docker.start(hexId(61), labelled('10.42.7.61/16'));
    await until('error states', () => stateOf(w, gone) !== undefined && stateOf(w, stopped) !== undefined);
    await w.watcher.idle();
    w.docker.down = true;
    w.docker.dropStreams();
    await until('disconnect noticed', () => w.logs.some((l) => l.includes('docker-unavailable')));
    w.docker.remove(gone.id, { quiet: true });
    w.docker.stop(stopped.id, { quiet: true });
    const late = w.docker.start(hexId(62), labelled('10.42.7.62/16'), { quiet: true });
    w.withEth0.add(netnsOf(late));
    w.docker.down = false;
    await reconciled(w, 2);
    assert.deepEqual(w.runner.ops(gone.id), ['add', 'del']);
    assert.deepEqual(w.runner.ops(stopped.id), ['add', 'del']);
    assert.deepEqual(delsOf(w).map(([id, a]) => [id, a.args]).sort(), [[gone.id, argsFor('10.42.7.60/16')], [stopped.id, argsFor('10.42.7.61/16')]].sort());
    assert.ok(!hasFolder(w, gone.id) && !hasFolder(w, stopped.id));
    assert.deepEqual(w.runner.ops(late.id), []);
    assert.deepEqual(stateOf(w, late), {});
    assert.deepEqual(recordOf(w, late.id), { startedAt: late.startedAt, network: 'managed', args: argsFor('10.42.7.62/16') });
  });

  it('-p: HostConfig.PortBindings go as portMappings to ADD, into the record, and to the DEL on stop and on a restart', async () => {
    const w = await world();
    const portBindings = { '80/tcp': [{ HostIp: '', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }], '81/tcp': [{ HostIp: '', HostPort: '' }] };
    const portMappings = [
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
    ];
    const c = w.docker.start(hexId(70), labelled('10.42.7.70/16'), { portBindings });
    await until('ADD', () => stateOf(w, c) !== undefined);
    await w.watcher.idle();
    assert.deepEqual(w.runner.calls[0]!.a.portMappings, portMappings);
    assert.deepEqual((recordOf(w, c.id) as AttachmentRecord).portMappings, portMappings, 'kept for the DEL of a later watcher');
    const line = w.logs.find((l) => l.includes(` add id=${short(c.id)} `))!;
    assert.match(line, /result=ok ip=10\.42\.7\.70\/16 ports=127\.0\.0\.1:5353:53\/udp,8080:80\/tcp ports-ignored="81\/tcp: no host port/);
    // A restart: the old start's DEL and the new ADD carry them both.
    w.docker.stop(c.id, { quiet: true });
    w.docker.start(c.id, c.labels);
    await until('re-ADD', () => w.runner.ops(c.id).length === 3);
    await w.watcher.idle();
    w.docker.stop(c.id);
    await until('DEL', () => w.runner.ops(c.id).length === 4);
    await w.watcher.idle();
    assert.deepEqual(w.runner.ops(c.id), ['add', 'del', 'add', 'del']);
    for (const call of w.runner.calls) assert.deepEqual(call.a.portMappings, portMappings, call.op);
    // Without -p nothing is sent.
    const plain = w.docker.start(hexId(71), labelled('10.42.7.71/16'));
    await until('ADD of the plain one', () => stateOf(w, plain) !== undefined);
    assert.equal('portMappings' in w.runner.calls.at(-1)!.a, false);
    assert.equal('portMappings' in (recordOf(w, plain.id) as object), false);
  });

  it('-p: malformed PortBindings fail the container once, without an ADD', async () => {
    const w = await world();
    const c = w.docker.start(hexId(72), labelled('10.42.7.72/16'), { portBindings: { '80/icmp': [{ HostPort: '8080' }] } });
    await until('error state', () => stateOf(w, c) !== undefined);
    assert.match((stateOf(w, c) as { error: string }).error, /^Couldn't bring up network: PortBindings "80\/icmp": protocol "icmp"/);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(w.runner.calls, []);
  });

  it('-p after a SIGKILL: a removed container is DELed with the ports of its record, or of its libcni cache entry without one', async () => {
    const recorded = hexId(73);
    const cachedOnly = hexId(74);
    const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }];
    const args = argsFor('10.42.7.73/16');
    const cachedArgs = argsFor('10.42.7.74/16');
    const w = await world((_d, pre) => {
      leftBehind(pre, recorded, { startedAt: '2025-12-31T23:00:00.000000073Z', network: 'managed', args, portMappings }, { cniVersion: '0.1.0', ip4: { ip: '10.42.7.73/16' } });
      leftBehind(pre, cachedOnly, { startedAt: '2025-12-31T23:00:00.000000074Z', network: '', args: [] }, { cniVersion: '0.1.0', ip4: { ip: '10.42.7.74/16' } }, false);
      writeCacheEntry(pre.cacheDir, {
        network: MANAGED_LIST, containerId: cachedOnly, ifname: 'eth0', config: Buffer.from('{}'), netns: '/proc/1/ns/net', cniArgs: cachedArgs,
        capabilityArgs: { portMappings }, result: { cniVersion: '0.1.0', ip4: { ip: '10.42.7.74/16' } },
      });
    });
    await reconciled(w);
    assert.deepEqual(delsOf(w).sort(), [
      [recorded, { network: 'managed', containerId: recorded, netns: '', args, portMappings }],
      [cachedOnly, { network: 'managed', containerId: cachedOnly, netns: '', args: cachedArgs, portMappings }],
    ].sort());
    for (const id of [recorded, cachedOnly]) assert.ok(!hasFolder(w, id), `folder of ${short(id)} removed`);
  });

  it('20 containers at once: each gets its own ADD with its own address, never two operations on one container', async () => {
    const w = await world();
    w.runner.delayMs = () => 5 + Math.floor(Math.random() * 30);
    const cs: FakeContainer[] = [];
    for (let i = 0; i < 20; i++) cs.push(w.docker.start(hexId(100 + i), labelled(`10.42.3.${i + 1}/16`)));
    // events for the same containers again while the ADDs run: they must coalesce, not double up
    for (const c of cs.slice(0, 10)) w.docker.start(c.id, c.labels); // a second start event (and StartedAt) for half of them
    await until('all networked', () => cs.every((c) => (stateOf(w, c) as { ip4?: unknown } | undefined)?.ip4 !== undefined), 10_000);
    await w.watcher.idle();
    assert.deepEqual(w.runner.overlaps, []);
    assert.ok(w.runner.maxConcurrent > 1, 'different containers proceed in parallel');
    cs.forEach((c, i) => {
      const adds = w.runner.calls.filter((x) => x.op === 'add' && x.a.containerId === c.id);
      assert.ok(adds.length >= 1);
      for (const add of adds) assert.deepEqual(add.a.args.at(-1), ['IPAddress', `10.42.3.${i + 1}/16`]);
      assert.deepEqual((stateOf(w, c) as { ip4: unknown }).ip4, { ip: `10.42.3.${i + 1}/16` });
    });
  });
});
