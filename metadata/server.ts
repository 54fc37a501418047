// The metadata HTTP API (the rancher-metadata subset plugins and tools use) and
// the loopback reload listener.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { clientTree, lookupPath, resolveVersion } from './answers.ts';
import { CONTENT_TYPES, type Format, loadYaml, needsLoading, negotiate, renderError, renderValue } from './render.ts';
import type { AnswersStore, ReloadResult } from './store.ts';

/** rancher-metadata's long-poll limits: maxWait defaults to 60 s and is capped at 120 s. */
export const DEFAULT_MAX_WAIT_S = 60;
export const MAX_MAX_WAIT_S = 120;

export interface ServerOptions {
  store: AnswersStore;
  /** Trust X-Forwarded-For for the client address (behind a proxy). */
  xff?: boolean;
  log?: (line: string) => void;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** "169.254.169.250:80", "127.0.0.1:0", "[::1]:8080", ":80" (all addresses). */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`invalid listen address "${text}": expected ADDR:PORT, e.g. 169.254.169.250:80`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function formatAddress(a: AddressInfo | string | null): string {
  if (!a || typeof a === 'string') return String(a);
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** The caller's address as answers are keyed: IPv4-mapped IPv6 unwrapped, X-Forwarded-For with --xff. */
export function clientAddress(req: http.IncomingMessage, xff: boolean): string {
  if (xff) {
    const header = req.headers['x-forwarded-for'];
    const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim();
    if (first) return first;
  }
  const ip = req.socket.remoteAddress ?? '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** The value as Go's fmt.Sprint shows it: what a long-poll `value` is compared with. */
function sprint(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

function decodeSegment(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

export function createMetadataHandler(opts: ServerOptions): http.RequestListener {
  const { store } = opts;
  const xff = opts.xff ?? false;

  const send = (req: http.IncomingMessage, res: http.ServerResponse, status: number, body: string, format: Format): void => {
    res.writeHead(status, { 'Content-Type': CONTENT_TYPES[format], 'Content-Length': Buffer.byteLength(body), 'Access-Control-Allow-Origin': '*' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const fail = (req: http.IncomingMessage, res: http.ServerResponse, message: string, status: number, format: Format): void =>
    send(req, res, status, renderError(message, status, format), format);

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, format: Format): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      fail(req, res, 'Method not allowed', 405, format);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://metadata');
    const rawPath = (req.url ?? '/').split('?')[0]!;
    if (rawPath === '/favicon.ico') return fail(req, res, 'Not found', 404, 'text');
    const trimmed = rawPath.slice(1).replace(/\/+$/, '');
    if (trimmed === '') {
      // The index: every version we have, and `latest` even when the file has none by that name.
      const index: Record<string, string> = {};
      for (const v of Object.keys(store.answers)) index[v] = `/${v}`;
      index.latest ??= '/latest';
      return send(req, res, 200, renderValue(index, format), format);
    }
    let segments: string[];
    try {
      segments = trimmed.split('/').map(decodeSegment);
    } catch (e) {
      return fail(req, res, (e as Error).message, 400, format);
    }
    const [asked, ...path] = segments as [string, ...string[]];
    const ip = clientAddress(req, xff);
    const answer = (): { found: boolean; value?: unknown; badVersion?: boolean } => {
      const version = resolveVersion(store.answers, asked);
      if (version === undefined) return { found: false, badVersion: true };
      const tree = clientTree(store.answers, version, ip);
      if (!tree) return { found: false };
      const r = lookupPath(tree, path);
      return r.found ? { found: true, value: r.value } : { found: false };
    };
    const respond = (): void => {
      const a = answer();
      if (a.badVersion) return fail(req, res, 'Invalid version', 404, format);
      if (!a.found) return fail(req, res, 'Not found', 404, format);
      send(req, res, 200, renderValue(a.value, format), format);
    };

    const q = url.searchParams;
    if (q.get('wait') !== 'true' || !q.has('value')) return respond();
    if (resolveVersion(store.answers, asked) === undefined) return respond();

    // Long-poll: answer once the value differs from `value`, or after maxWait with what is there.
    const old = q.get('value') ?? '';
    const given = /^[+-]?\d+$/.test(q.get('maxWait') ?? '') ? Number(q.get('maxWait')) : 0;
    const maxWaitS = given === 0 ? DEFAULT_MAX_WAIT_S : Math.min(given, MAX_MAX_WAIT_S);
    const changed = (): boolean => {
      const a = answer();
      return a.found && sprint(a.value) !== old;
    };
    if (changed() || maxWaitS <= 0) return respond();
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      unsubscribe();
      clearTimeout(timer);
      if (!res.destroyed) respond();
    };
    const unsubscribe = store.onChange(() => {
      if (changed()) finish();
    });
    const timer = setTimeout(finish, maxWaitS * 1000);
    // A caller that gives up must not leave a waiter behind.
    res.on('close', () => {
      done = true;
      unsubscribe();
      clearTimeout(timer);
    });
  };

  return (req, res) => {
    const format = negotiate(req.headers.accept);
    if (!needsLoading(format)) return handle(req, res, format);
    // The first YAML request loads the YAML library; every later one is answered at once.
    loadYaml().then(
      () => handle(req, res, format),
      (e: unknown) => {
        opts.log?.(`cannot load YAML support: ${(e as Error).message}`);
        if (!res.headersSent) send(req, res, 500, 'cannot answer in YAML\n', 'text');
      },
    );
  };
}

/** The reload listener: POST /v1/reload reloads the answers file (200 "OK", or 500 with the error). */
export function createReloadHandler(reload: () => Promise<ReloadResult>): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string): void => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Access-Control-Allow-Origin': '*' });
      res.end(body);
    };
    if (path !== '/v1/reload') return reply(404, 'Not found\n');
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return reply(405, 'Method not allowed\n');
    }
    req.resume();
    void reload().then((r) => (r.ok ? reply(200, 'OK') : reply(500, r.error)));
  };
}

export interface RunningServer {
  server: http.Server;
  /** The bound address, e.g. 127.0.0.1:41234. */
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Listen with `handler` on `at`; errors such as EADDRNOTAVAIL come back with a hint. */
export function listen(handler: http.RequestListener, at: ListenAddress): Promise<RunningServer> {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const where = `${at.host}:${at.port}`;
      const hint = e.code === 'EADDRNOTAVAIL'
        ? ` (no interface has that address; for the Rancher address: ip addr add ${at.host}/32 dev lo)`
        : e.code === 'EADDRINUSE' ? ' (something else listens there)' : e.code === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : '';
      reject(new Error(`cannot listen on ${where}: ${e.code ?? e.message}${hint}`));
    });
    server.listen(at.port, at.host, () => {
      const info = server.address() as AddressInfo;
      resolve({
        server,
        address: formatAddress(info),
        port: info.port,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections(); // pending long-polls end now, not after maxWait
        }),
      });
    });
  });
}
