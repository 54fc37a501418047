// cniglue watcher logic against a fake Docker Engine API (an HTTP server on a
// unix socket, driven by the test) and a fake CNI runner: start-up reconcile,
// ADD/DEL from events, state files, retries, reconnects, and per-container
// serialization under many simultaneous starts. The real daemon and plugins
// are in test/integration/cniglue.test.ts.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { DockerClient, parseEvent, socketPathOf } from '../../cniglue/docker.ts';
import type { Attachment } from '../../cniglue/glue.ts';
import { Watcher } from '../../cniglue/watch.ts';
import type { OpKind, OpOutcome } from '../../cniglue/worker.ts';
import { tempDir } from './runtime-fakes.ts';

interface FakeContainer {
  id: string;
  running: boolean;
  pid: number;
  startedAt: string;
  networkMode: string;
  labels: Record<string, string>;
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
        HostConfig: { NetworkMode: c.networkMode }, Config: { Labels: c.labels },
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

  start(id: string, labels: Record<string, string>, opts: { networkMode?: string; quiet?: boolean } = {}): FakeContainer {
    const c: FakeContainer = this.containers.get(id) ?? { id, running: false, pid: 0, startedAt: '', networkMode: opts.networkMode ?? 'none', labels };
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

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface World {
  docker: FakeDocker;
  runner: FakeRunner;
  watcher: Watcher;
  stateDir: string;
  logs: string[];
  withEth0: Set<string>;
  running: Promise<void>;
}

const worlds: World[] = [];

async function world(setup: (d: FakeDocker) => void = () => {}, opts: { retries?: number } = {}): Promise<World> {
  const dir = tempDir('cglue-watch-');
  const docker = new FakeDocker(dir);
  await docker.listen();
  setup(docker);
  const runner = new FakeRunner();
  const stateDir = path.join(dir, 'state');
  const confRoot = path.join(dir, 'conf');
  fs.mkdirSync(path.join(confRoot, 'bridge.d'), { recursive: true });
  fs.writeFileSync(path.join(confRoot, 'bridge.d', '10.conf'), '{"name":"b","type":"x"}');
  const logs: string[] = [];
  const withEth0 = new Set<string>();
  const watcher = new Watcher({
    docker: new DockerClient(`unix://${docker.socket}`),
    runner: runner.run,
    glue: { confRoot, cniPath: ['/nonexistent'], cacheDir: path.join(dir, 'cache'), pluginTimeoutMs: 1000 },
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
  const w: World = { docker, runner, watcher, stateDir, logs, withEth0, running: watcher.run() };
  worlds.push(w);
  await until('subscription', () => docker.subscribers === 1);
  return w;
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
    const w = await world((d) => {
      a = d.start(hexId(1), labelled('10.42.0.1/16'), { quiet: true });
      b = d.start(hexId(2), labelled('10.42.0.2/16'), { quiet: true });
      plain = d.start(hexId(3), {}, { quiet: true });
      host = d.start(hexId(4), labelled('10.42.0.4/16'), { networkMode: 'host', quiet: true });
      stopped = d.start(hexId(5), labelled('10.42.0.5/16'), { quiet: true });
      d.stop(stopped.id, { quiet: true });
    });
    // b already has eth0 (networked before the watcher started)
    w.withEth0.add(`/proc/${b.pid}/ns/net`);
    await until('reconcile', () => w.logs.some((l) => l.includes(' add ')));
    await w.watcher.idle();
    assert.deepEqual(w.runner.calls.map((c) => [c.op, c.a.containerId]), [['add', a.id]]);
    assert.equal(w.runner.calls[0]!.a.netns, `/proc/${a.pid}/ns/net`);
    assert.equal(w.runner.calls[0]!.a.network, 'managed');
    assert.deepEqual(stateOf(w, a), { cniVersion: '0.1.0', ip4: { ip: '10.42.0.1/16' } });
    assert.equal(stateOf(w, b), undefined);
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
