// A small HTTP client for the Rancher metadata API: GET with its own timeout,
// size caps and `Accept: application/json`, the `/version` long-poll, and
// lists read object by object. Mechanism only (no plugin knowledge).
// It speaks HTTP/1.0 over node:net, reading into one buffer per request:
// node:http allocates a buffer per read that lives until the next garbage
// collection, so a 32 MiB answer read through it cost ~40 MB RSS. node:net is
// loaded on first use: a plugin that never asks (fast path, DEL) never pays.

// Size caps: whatever a server sends, a plugin stays within ~1.2x its usual RSS (~47 MB).
/** A value answer (a /version string, an error page), buffered: real ones are a few dozen bytes. */
export const MAX_VALUE_BYTES = 64 * 1024;
/**
 * A list read with httpGetObjectList is never held whole, but reading it still costs V8 some
 * memory (~8 MB for 16 MiB). A real /containers record is ~1.7 KiB, so a 5000-container
 * environment answers ~8.6 MB, and 16 MiB is room for ~9,800 containers.
 */
export const MAX_LIST_BYTES = 16 * 1024 * 1024;
/** One object of such a list, held until it is complete: a real record is ~2 KiB. */
export const MAX_ITEM_BYTES = 64 * 1024;
/** The start of an error page, kept for MetadataHttpError (rancher-metadata explains its 404s there). */
const ERROR_BODY_BYTES = 4096;

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
  readonly timeoutMs: number;

  constructor(url: string, timeoutMs: number) {
    super(`no answer from ${url} within ${timeoutMs} ms`);
    this.name = 'MetadataTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/** An answer, or one element of a list, over its size cap: reading stopped there. */
export class MetadataTooLargeError extends Error {
  readonly capBytes: number;

  constructor(what: string, url: string, capBytes: number) {
    super(`${what} from ${url} is larger than ${sizeText(capBytes)}: stopped reading`);
    this.name = 'MetadataTooLargeError';
    this.capBytes = capBytes;
  }
}

function sizeText(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

export interface GetOptions {
  /** Per-request timeout covering connect, headers and body. */
  timeoutMs: number;
}

// getBuiltinModule, not import(): an ESM namespace import reads every export of the module.
function loadNet(): typeof import('node:net') {
  return process.getBuiltinModule('node:net');
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

/**
 * Where the body of a 200 answer goes as it arrives. A chunk is valid during the call only (the
 * read buffer is reused): a sink copies what it keeps. A throw stops the request with that error.
 */
interface BodySink<T> {
  write(chunk: Buffer): void;
  end(): T;
}

/** The first `keepBytes` of a body as text (all of it when it is no longer). */
function textSink(keepBytes: number): BodySink<string> {
  const chunks: Buffer[] = [];
  let kept = 0;
  return {
    write(chunk) {
      if (kept >= keepBytes) return;
      const part = Buffer.from(chunk.subarray(0, keepBytes - kept));
      chunks.push(part);
      kept += part.length;
    },
    end: () => Buffer.concat(chunks).toString('utf8'),
  };
}

/** Every read of a request lands in this much, reused. Not above MAX_ITEM_BYTES (see ObjectListReader). */
const READ_BUFFER_BYTES = 64 * 1024;
/** Status line and headers: rancher-metadata sends ~150 bytes. */
const MAX_HEAD_BYTES = 16 * 1024;

/**
 * One HTTP/1.0 answer as it arrives: the head (status line and headers), then the body, which goes
 * to `sink` for a 200 and is kept in part as the error page otherwise. HTTP/1.0 because then the
 * body ends at Content-Length or when the server closes: no chunked encoding to decode.
 */
class HttpAnswer<T> {
  private readonly url: string;
  private readonly maxBytes: number;
  private readonly sink: BodySink<T>;
  /** The head so far; undefined once it is complete. */
  private head: Buffer | undefined = Buffer.alloc(0);
  private status = 0;
  private errorPage: BodySink<string> | undefined;
  private bodyLength: number | undefined;
  private bodyBytes = 0;

  constructor(url: string, maxBytes: number, sink: BodySink<T>) {
    this.url = url;
    this.maxBytes = maxBytes;
    this.sink = sink;
  }

  get started(): boolean {
    return this.head === undefined || this.head.length > 0;
  }

  /** Takes what one read brought; true once a body of announced length is complete. */
  take(bytes: Buffer): boolean {
    if (this.head !== undefined) {
      const sofar = Buffer.concat([this.head, bytes]);
      const end = sofar.indexOf('\r\n\r\n');
      if (end < 0) {
        if (sofar.length > MAX_HEAD_BYTES) throw new MetadataTooLargeError('the headers of the answer', this.url, MAX_HEAD_BYTES);
        this.head = sofar;
        return false;
      }
      this.readHead(sofar.subarray(0, end).toString('latin1'));
      this.head = undefined;
      bytes = sofar.subarray(end + 4);
    }
    if (this.bodyLength !== undefined) bytes = bytes.subarray(0, this.bodyLength - this.bodyBytes);
    this.bodyBytes += bytes.length;
    // Counted as it arrives: a huge answer is cut here, never buffered first.
    if (this.bodyBytes > this.maxBytes) throw new MetadataTooLargeError('answer', this.url, this.maxBytes);
    if (bytes.length > 0) (this.errorPage ?? this.sink).write(bytes);
    return this.bodyLength !== undefined && this.bodyBytes === this.bodyLength;
  }

  /** The result once the body is complete or the server closed the connection. */
  end(): T {
    if (this.head !== undefined) throw new Error(`cannot reach ${this.url}: the connection closed before an answer`);
    if (this.bodyLength !== undefined && this.bodyBytes < this.bodyLength) {
      throw new Error(`reading the answer from ${this.url} failed: it ends after ${this.bodyBytes} of ${this.bodyLength} bytes`);
    }
    if (this.errorPage) throw new MetadataHttpError(this.status, this.url, this.errorPage.end());
    return this.sink.end();
  }

  private readHead(text: string): void {
    const [statusLine = '', ...headers] = text.split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
    if (!status) throw new Error(`unexpected answer from ${this.url}: not HTTP: ${JSON.stringify(statusLine.slice(0, 80))}`);
    this.status = Number(status[1]);
    if (this.status !== 200) this.errorPage = textSink(ERROR_BODY_BYTES);
    for (const line of headers) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!/^\d+$/.test(value)) throw new Error(`unexpected answer from ${this.url}: Content-Length ${JSON.stringify(value)}`);
        this.bodyLength = Number(value);
      } else if (name === 'transfer-encoding' && value.toLowerCase() !== 'identity') {
        throw new Error(`unexpected answer from ${this.url}: Transfer-Encoding ${value} to an HTTP/1.0 request`);
      }
    }
    // Announced too large: refused before reading any of it.
    if (this.bodyLength !== undefined && this.bodyLength > this.maxBytes) throw new MetadataTooLargeError('answer', this.url, this.maxBytes);
  }
}

/** GET url, feeding a 200 answer to `sink`, at most `maxBytes` of it; other answers are a MetadataHttpError. */
function get<T>(url: string, opts: GetOptions, maxBytes: number, sink: BodySink<T>): Promise<T> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.reject(new Error(`invalid URL ${url}`));
  }
  if (u.protocol !== 'http:') return Promise.reject(new Error(`only http:// is supported: ${url}`));
  const timeoutMs = Math.max(1, Math.round(opts.timeoutMs));
  const answer = new HttpAnswer(url, maxBytes, sink);
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, value?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value as T);
    };
    const done = (): void => {
      if (settled) return;
      try {
        finish(undefined, answer.end());
      } catch (e) {
        finish(e as Error);
      }
    };
    const socket = loadNet().connect({
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(u.port || 80),
      onread: {
        buffer,
        callback: (n: number): boolean => {
          if (settled) return false;
          try {
            if (answer.take(buffer.subarray(0, n))) done();
          } catch (e) {
            finish(e as Error);
          }
          return !settled;
        },
      },
    });
    // No half-close after the request: servers take a client's FIN as "gone" and drop a long-poll.
    socket.on('connect', () => socket.write(`GET ${u.pathname}${u.search} HTTP/1.0\r\nHost: ${u.host}\r\nAccept: application/json\r\n\r\n`));
    socket.on('end', done);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? e.message;
      finish(new Error(answer.started ? `reading the answer from ${url} failed: ${code}` : `cannot reach ${url}: ${code}`));
    });
    // One timer for the whole exchange: a server that accepts and then stalls is as bad as none.
    const timer = setTimeout(() => finish(new MetadataTimeoutError(url, timeoutMs)), timeoutMs);
  });
}

/** GET url; resolves to the body of a 200 answer (at most MAX_VALUE_BYTES), rejects with a readable Error otherwise. */
export function httpGetText(url: string, opts: GetOptions): Promise<string> {
  return get(url, opts, MAX_VALUE_BYTES, textSink(MAX_VALUE_BYTES));
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

export interface ListOptions extends GetOptions {
  /**
   * Only the objects whose JSON text contains one of these strings (an id as a JSON string, say)
   * are parsed and handed over; the others are skipped unparsed. Default: all.
   */
  mentioning?: string[];
}

/**
 * GET url whose answer is a JSON array of objects, handing each (mentioned) object to `onObject`
 * as soon as it is complete: the answer is never held whole (at most MAX_LIST_BYTES of it are
 * read, MAX_ITEM_BYTES per object). A throw from onObject stops the request with that error.
 */
export function httpGetObjectList(url: string, opts: ListOptions, onObject: (object: Record<string, unknown>) => void): Promise<void> {
  return get(url, opts, MAX_LIST_BYTES, new ObjectListReader(url, onObject, opts.mentioning));
}

// A list is cut into elements by regular expressions: irregexp matches in native code, where
// JavaScript doing the same per byte or per element gets hot, and V8's optimising compilers then
// cost several MB of RSS. Every character has one way to match (no ambiguity), so even a failed
// match costs linear time.
const JSON_STRING = String.raw`"[^"\\]*(?:\\.[^"\\]*)*"`; // runs of plain characters: no backtracking state per character
/** Brackets an element may nest (Rancher's records nest 2: the record and its labels or ports). */
const MAX_NESTING = 16;
function insidePattern(): string {
  let inside = String.raw`(?:[^"{}\[\]]|${JSON_STRING})*`;
  for (let i = 0; i < MAX_NESTING; i++) inside = String.raw`(?:[^"{}\[\]]|${JSON_STRING}|[{\[]${inside}[}\]])*`;
  return inside;
}
let patterns: { element: RegExp; objectRun: RegExp } | undefined;
function listPatterns(): { element: RegExp; objectRun: RegExp } {
  const inside = insidePattern();
  return {
    // One element (any value, for a clear error when it is not an object), then its "," or "]".
    element: new RegExp(String.raw`([{\[]${inside}[}\]]|${JSON_STRING}|[^"{}\[\],\s]+)[ \t\r\n]*([,\]])`, 'y'),
    // As many objects, each with its ",", as follow: skipped in one native call.
    objectRun: new RegExp(String.raw`(?:[ \t\r\n]*\{${inside}\}[ \t\r\n]*,)*`, 'y'),
  };
}
/** Whitespace, then the next character if there is one yet. */
const NEXT_CHAR = /[ \t\r\n]*([^ \t\r\n])?/y;
/** How a JSON value other than an object, array or string starts. */
const SCALAR_START = /[-0-9tfn]/;

// Where an ObjectListReader is in the answer.
const BEFORE_LIST = 0;
const LIST_START = 1; // after "[": an element or "]"
const IN_LIST = 2; // after an element's ",": an element
const AFTER_LIST = 3; // only whitespace may follow

/**
 * Reads a JSON array of objects arriving in chunks, holding only the bytes of the current
 * element. Bytes are read as latin1, one character each: JSON's structure is ASCII, so no UTF-8
 * sequence is mistaken for it, and a mentioned object is decoded as UTF-8 before JSON.parse.
 */
export class ObjectListReader implements BodySink<void> {
  private readonly url: string;
  private readonly onObject: (object: Record<string, unknown>) => void;
  private readonly mentioning: string[] | undefined;
  private where = BEFORE_LIST;
  /** Bytes not consumed yet (the start of an element), copied out of the read buffer. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** An element that did not end yet is looked at again once this much is pending, not at every read. */
  private retryAt = 0;

  constructor(url: string, onObject: (object: Record<string, unknown>) => void, mentioning?: string[]) {
    this.url = url;
    this.onObject = onObject;
    this.mentioning = mentioning;
  }

  end(): void {
    if (this.pendingBytes > 0) {
      this.retryAt = 0;
      this.write(Buffer.alloc(0));
    }
    if (this.where === AFTER_LIST) return;
    if (this.where === BEFORE_LIST) throw new Error(`invalid JSON from ${this.url}: an empty answer`);
    const rest = JSON.stringify(Buffer.concat(this.pending).toString('utf8').trim().slice(0, 80));
    throw new Error(`invalid JSON from ${this.url}: the list is cut short, or an element is malformed or nested deeper than ${MAX_NESTING} levels: ${rest}`);
  }

  write(bytes: Buffer): void {
    const size = this.pendingBytes + bytes.length;
    // Pending bytes are kept outside the JavaScript heap: a long element alive across many
    // garbage collections would make V8 grow its young generation.
    if (size < this.retryAt && size <= MAX_ITEM_BYTES) {
      this.pending.push(Buffer.from(bytes));
      this.pendingBytes = size;
      return;
    }
    const all = this.pendingBytes > 0 ? Buffer.concat([...this.pending, bytes]) : bytes;
    const text = all.toString('latin1');
    const mentioned = this.mentioning === undefined || this.mentioning.some((m) => text.includes(m));
    let pos = 0;
    for (let next = 0; pos < text.length; pos = next) {
      // Only an element begun in an earlier read can be over MAX_ITEM_BYTES: it is stepped over, and checked.
      const skippable = !mentioned && (pos > 0 || this.pendingBytes === 0) && this.where !== BEFORE_LIST && this.where !== AFTER_LIST;
      if (skippable) pos = this.skipObjects(text, pos);
      next = this.step(text, pos);
      if (next === pos) break; // the start of an element: wait for more
    }
    const rest = all.length - pos;
    if (rest > MAX_ITEM_BYTES) throw new MetadataTooLargeError('an element of the answer', this.url, MAX_ITEM_BYTES);
    this.pending = rest > 0 ? [Buffer.from(all.subarray(pos))] : [];
    this.pendingBytes = rest;
    this.retryAt = 2 * rest; // try again once it has doubled: a long element costs linear time
  }

  /** Past every complete object (with its ",") from pos on, in one native match. */
  private skipObjects(text: string, pos: number): number {
    const re = (patterns ??= listPatterns()).objectRun;
    re.lastIndex = pos;
    re.test(text);
    if (re.lastIndex > pos) this.where = IN_LIST;
    return re.lastIndex;
  }

  /** Consumes what it can from pos on: whitespace, a bracket, or a whole element with its "," or "]". */
  private step(text: string, pos: number): number {
    NEXT_CHAR.lastIndex = pos;
    const c = NEXT_CHAR.exec(text)![1];
    if (c === undefined) return text.length; // whitespace only, so far
    const at = NEXT_CHAR.lastIndex - 1;
    const what = (): string => JSON.stringify(text.slice(at, at + 80));
    if (this.where === BEFORE_LIST) {
      if (c !== '[') throw new Error(`unexpected answer from ${this.url}: expected a JSON array, got ${what()}`);
      this.where = LIST_START;
      return at + 1;
    }
    if (this.where === AFTER_LIST) throw new Error(`invalid JSON from ${this.url}: text after the end of the list: ${what()}`);
    if (c === ']' && this.where === LIST_START) {
      this.where = AFTER_LIST;
      return at + 1;
    }
    if (c === ',' || c === ']') throw new Error(`invalid JSON from ${this.url}: an empty element before ${what()}`);
    if (c !== '{' && c !== '[' && c !== '"' && !SCALAR_START.test(c)) throw new Error(`invalid JSON from ${this.url}: ${what()}`);
    const re = (patterns ??= listPatterns()).element;
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) return pos;
    const element = m[1]!;
    if (element.length > MAX_ITEM_BYTES) throw new MetadataTooLargeError('an element of the answer', this.url, MAX_ITEM_BYTES);
    if (c !== '{') throw new Error(`unexpected answer from ${this.url}: an element is not an object: ${what()}`);
    this.where = m[2] === ']' ? AFTER_LIST : IN_LIST;
    if (this.mentioning === undefined || this.mentioning.some((s) => element.includes(s))) this.onObject(this.parse(element));
    return re.lastIndex;
  }

  private parse(latin1: string): Record<string, unknown> {
    const text = /[^\x00-\x7f]/.test(latin1) ? Buffer.from(latin1, 'latin1').toString('utf8') : latin1;
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new Error(`invalid JSON from ${this.url}: ${JSON.stringify(text.slice(0, 80))}`);
    }
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
