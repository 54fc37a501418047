// A small HTTP client for the Rancher metadata API: GET with its own timeout,
// a size cap and `Accept: application/json`, plus the `/version` long-poll.
// Mechanism only (no plugin knowledge). node:http is loaded on first use so a
// plugin that never asks (fast path, DEL) never pays for it.
import type { IncomingMessage } from 'node:http';

type Http = typeof import('node:http');

/** Answers larger than this are refused: a metadata reply is never trusted blindly. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** A request that got an HTTP answer other than 200. */
export class MetadataHttpError extends Error {
  readonly status: number;
  /** The start of the answer body (rancher-metadata explains its 404s there). */
  readonly body: string;

  constructor(status: number, url: string, body: string) {
    const snippet = body.trim().slice(0, 120);
    super(`HTTP ${status} from ${url}${snippet ? `: ${snippet}` : ''}`);
    this.name = 'MetadataHttpError';
    this.status = status;
    this.body = snippet;
  }
}

/** A request that got no (complete) answer within its timeout. */
export class MetadataTimeoutError extends Error {
  constructor(url: string, timeoutMs: number) {
    super(`no answer from ${url} within ${timeoutMs} ms`);
    this.name = 'MetadataTimeoutError';
  }
}

export interface GetOptions {
  /** Per-request timeout covering connect, headers and body. */
  timeoutMs: number;
}

// getBuiltinModule, not import(): an ESM namespace of node:http reads every export, and its
// lazy WebSocket getter loads undici (50–90 ms per plugin start).
function loadHttp(): Http {
  return process.getBuiltinModule('node:http');
}

/**
 * The base URL of a metadata service from an address as users write it:
 * `169.254.169.250`, `10.0.0.1:8080`, `[fd00::1]:80` or a full `http://…` URL.
 */
export function metadataBaseUrl(address: string): string {
  const a = address.trim().replace(/\/+$/, '');
  if (/^https?:\/\//i.test(a)) return a;
  // A bare IPv6 address needs brackets in a URL.
  if (a.includes(':') && !a.startsWith('[') && a.split(':').length > 2) return `http://[${a}]`;
  return `http://${a}`;
}

/** GET url; resolves to the body of a 200 answer, rejects with a readable Error otherwise. */
export async function httpGetText(url: string, opts: GetOptions): Promise<string> {
  const http = loadHttp();
  const timeoutMs = Math.max(1, Math.round(opts.timeoutMs));
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, body?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(body ?? '');
    };
    const req = http.get(url, { headers: { Accept: 'application/json' } }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          req.destroy();
          finish(new Error(`answer from ${url} is larger than ${MAX_BODY_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === 200) finish(undefined, body);
        else finish(new MetadataHttpError(res.statusCode ?? 0, url, body));
      });
      res.on('error', (e) => finish(new Error(`reading the answer from ${url} failed: ${e.message}`)));
    });
    // One timer for the whole exchange: a server that accepts and then stalls is as bad as none.
    const timer = setTimeout(() => {
      finish(new MetadataTimeoutError(url, timeoutMs));
      req.destroy();
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => finish(new Error(`cannot reach ${url}: ${e.code ?? e.message}`)));
  });
}

/** GET url and parse the JSON answer (garbage is an error naming the URL). */
export async function httpGetJson(url: string, opts: GetOptions): Promise<unknown> {
  const body = await httpGetText(url, opts);
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new Error(`invalid JSON from ${url}: ${JSON.stringify(body.slice(0, 80))}`);
  }
}

/** rancher-metadata caps a long-poll at 120 s; it reads maxWait as whole seconds. */
export const MAX_LONG_POLL_S = 120;

export interface LongPollOptions {
  /** How long the server may hold the request, in whole seconds (1..120). */
  maxWaitS: number;
  /** Client-side limit for the whole request; should exceed maxWaitS so the server answers first. */
  timeoutMs: number;
}

/**
 * Long-poll `url` (a metadata key such as /2015-12-19/version): the server answers when the value
 * differs from `current`, or with the unchanged value after maxWait. Resolves to the value then.
 */
export async function longPoll(url: string, current: string, opts: LongPollOptions): Promise<unknown> {
  const maxWait = Math.min(MAX_LONG_POLL_S, Math.max(1, Math.floor(opts.maxWaitS)));
  const sep = url.includes('?') ? '&' : '?';
  const pollUrl = `${url}${sep}wait=true&value=${encodeURIComponent(current)}&maxWait=${maxWait}`;
  return httpGetJson(pollUrl, { timeoutMs: opts.timeoutMs });
}
