// The fast path's server, run by the per-host agent: a unix socket (mode
// 0600, root peers only by SO_PEERCRED) that takes a plugin invocation from
// the forwarding client and runs it through a handler, warm. It judges only
// the envelope (size, shape, who, which netns, which build); the request
// itself is validated by the plugin harness exactly as in the executable.
// Requests for different attachments run concurrently; two for the same one
// (program, container, ifname) run one after the other.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { native } from '../native.ts';
import { exeIdentity, processSettings } from './client.ts';
import { type AgentLine, type ForwardRequest, HEARTBEAT_MS, MAX_REQUEST_BYTES, PROTOCOL_VERSION } from './protocol.ts';

export interface HandlerAnswer {
  exit: number;
  stdout: string;
  stderr: string;
}

export interface FastPathOptions {
  socket: string;
  /** The program names the handler runs. */
  programs: ReadonlySet<string>;
  handler(program: string, env: Record<string, string>, stdin: Buffer): Promise<HandlerAnswer>;
  /** One line per notable event (refused peers, bad requests), for the agent's log. */
  log(line: string): void;
}

export interface FastPathServer {
  /** Requests served since start (for status). */
  readonly served: number;
  /** Stop accepting; resolves when the requests in flight are answered. */
  close(): Promise<void>;
}

export async function listenFastPath(opts: FastPathOptions): Promise<FastPathServer> {
  fs.mkdirSync(path.dirname(opts.socket), { recursive: true, mode: 0o700 });
  // Only a socket is replaced (a stale one of a dead agent: the caller holds the agent lock).
  try {
    if (fs.lstatSync(opts.socket).isSocket()) fs.rmSync(opts.socket);
  } catch {
    // absent
  }
  const own = { netns: fs.readlinkSync('/proc/self/ns/net'), exe: exeIdentity(), settings: JSON.stringify(processSettings(process.env)) };
  const queues = new Map<string, Promise<void>>();
  const inFlight = new Set<Promise<void>>();
  let served = 0;
  let closing = false;

  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const done = serve(socket).catch((e: unknown) => {
      opts.log(`fast path: ${e instanceof Error ? e.message : String(e)}`);
      socket.destroy();
    });
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  });
  server.on('error', (e) => opts.log(`fast path: socket error: ${e.message}`));

  async function serve(socket: net.Socket): Promise<void> {
    socket.on('error', () => {}); // a client that went away: its answer is dropped
    const send = (line: AgentLine): void => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(line)}\n`);
    };
    const finish = (line: AgentLine): void => {
      send(line);
      socket.end();
      // A client still sending (an oversized request) is drained, then cut off.
      socket.resume();
      setTimeout(() => socket.destroy(), 2000).unref();
    };
    const peer = peerUid(socket);
    if (peer !== 0) {
      opts.log(`fast path: refused a peer with uid ${peer ?? 'unknown'} (root only)`);
      return finish({ error: 'refused: only root may use the cattle-net fast path' });
    }
    const text = await readRequestLine(socket);
    if (text === undefined) return finish({ error: `request larger than ${MAX_REQUEST_BYTES} bytes or not ended by a newline` });
    const parsed = parseRequest(text);
    if (typeof parsed === 'string') {
      opts.log(`fast path: bad request: ${parsed}`);
      return finish({ error: `bad request: ${parsed}` });
    }
    const reason = declineReason(parsed);
    if (reason) return finish({ declined: reason });
    send({ accepted: true });
    const heartbeat = setInterval(() => send({ heartbeat: true }), HEARTBEAT_MS);
    try {
      const answer = await inTurn(turnKey(parsed), () => opts.handler(parsed.program, parsed.env, Buffer.from(parsed.stdin, 'base64')));
      served++;
      finish({ done: true, ...answer });
    } finally {
      clearInterval(heartbeat);
    }
  }

  function declineReason(r: ForwardRequest): string | undefined {
    if (closing) return 'the agent is stopping';
    if (r.v !== PROTOCOL_VERSION) return `protocol version ${r.v}, the agent speaks ${PROTOCOL_VERSION}`;
    if (!opts.programs.has(r.program)) return `the agent does not run ${r.program}`;
    if (r.netns !== own.netns) return `another network namespace (${r.netns}; the agent serves ${own.netns})`;
    if (r.exe !== own.exe) return 'another build of the executable than the agent runs';
    if (JSON.stringify(processSettings(r.env)) !== own.settings) return 'other state or lock directories than the agent uses';
    if (Date.now() > r.notAfter) return 'the client has given up on it';
    return undefined;
  }

  /** Serialise per attachment; the chain entry is removed when its last request ends. */
  async function inTurn<T>(key: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (key === undefined) return fn();
    const before = queues.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    queues.set(key, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (queues.get(key) === tail) queues.delete(key);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  fs.chmodSync(opts.socket, 0o600);

  return {
    get served() {
      return served;
    },
    async close() {
      closing = true;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled([...inFlight]);
      fs.rmSync(opts.socket, { force: true });
      opts.log(`fast path: served ${served} requests; socket ${opts.socket} removed`);
    },
  };
}

function turnKey(r: ForwardRequest): string | undefined {
  const id = r.env.CNI_CONTAINERID;
  return id ? `${r.program}\0${id}\0${r.env.CNI_IFNAME ?? ''}` : undefined;
}

function peerUid(socket: net.Socket): number | undefined {
  // The descriptor of an accepted unix socket: libuv's handle exposes it.
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  try {
    return native().peerCredentials(fd)[1];
  } catch {
    return undefined;
  }
}

/** The first line, or undefined when it is too large or the peer ends without a newline. */
function readRequestLine(socket: net.Socket): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const end = (text: string | undefined): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      resolve(text);
    };
    const onData = (chunk: Buffer): void => {
      const nl = chunk.indexOf(10);
      if (nl >= 0) {
        chunks.push(chunk.subarray(0, nl));
        return end(Buffer.concat(chunks).toString('utf8'));
      }
      chunks.push(chunk);
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) end(undefined);
    };
    const onEnd = (): void => end(undefined);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
  });
}

/** The request, or what is wrong with it. */
function parseRequest(text: string): ForwardRequest | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'not an object';
  const r = raw as Record<string, unknown>;
  for (const k of ['program', 'netns', 'exe', 'stdin'] as const) if (typeof r[k] !== 'string') return `"${k}" must be a string`;
  if (typeof r.v !== 'number' || typeof r.notAfter !== 'number') return '"v" and "notAfter" must be numbers';
  const env = r.env;
  if (typeof env !== 'object' || env === null || Array.isArray(env)) return '"env" must be an object';
  for (const [k, v] of Object.entries(env)) if (typeof v !== 'string') return `env ${JSON.stringify(k)} must be a string`;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(r.stdin as string)) return '"stdin" must be base64';
  return r as unknown as ForwardRequest;
}
