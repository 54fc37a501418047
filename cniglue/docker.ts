// A tiny Docker Engine API client over the daemon's unix socket, with Node's
// http module: what cniglue's watcher needs and nothing more (event stream,
// container list, container inspect). Unversioned paths: the daemon answers
// in its own API version, and the fields used here exist in all of them.
import http from 'node:http';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';
/** A plain request (not the event stream) never waits longer than this. */
const REQUEST_TIMEOUT_MS = 15_000;

/** The unix socket path of a DOCKER_HOST value (`unix:///path`, or a bare absolute path). */
export function socketPathOf(dockerHost: string | undefined): string {
  const host = dockerHost === undefined || dockerHost === '' ? DEFAULT_DOCKER_HOST : dockerHost;
  if (host.startsWith('unix://')) {
    const p = host.slice('unix://'.length);
    if (p.startsWith('/')) return p;
  } else if (host.startsWith('/')) {
    return host;
  }
  throw new Error(`unsupported DOCKER_HOST ${JSON.stringify(host)}: only unix:///path/to/docker.sock is supported`);
}

export class DockerApiError extends Error {
  readonly status: number;
  constructor(status: number, method: string, path: string, body: string) {
    let msg = body.trim();
    try {
      const o = JSON.parse(body) as { message?: unknown };
      if (typeof o.message === 'string') msg = o.message;
    } catch {
      // not JSON: keep the text
    }
    super(`docker ${method} ${path}: HTTP ${status}${msg ? `: ${msg}` : ''}`);
    this.name = 'DockerApiError';
    this.status = status;
  }
}

/** What the watcher reads from `GET /containers/{id}/json`. */
export interface ContainerInfo {
  id: string;
  name: string;
  running: boolean;
  pid: number;
  startedAt: string;
  networkMode: string;
  labels: Record<string, string>;
  /** HostConfig.PortBindings as Docker has it (ports.ts reads it); absent when Docker sent none. */
  portBindings?: unknown;
}

/** What the watcher reads from `GET /containers/json`. */
export interface ContainerSummary {
  id: string;
  state: string;
  labels: Record<string, string>;
}

/** A container event (type=container). */
export interface DockerEvent {
  action: string;
  id: string;
  attributes: Record<string, string>;
  timeNano?: number;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObject(v)) for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** The fields of an inspect answer the watcher uses. */
export function containerInfoFrom(doc: unknown): ContainerInfo {
  if (!isObject(doc)) throw new Error('docker inspect: answer is not a JSON object');
  const state = isObject(doc.State) ? doc.State : {};
  const host = isObject(doc.HostConfig) ? doc.HostConfig : {};
  const config = isObject(doc.Config) ? doc.Config : {};
  const id = str(doc.Id);
  if (id === '') throw new Error('docker inspect: answer has no Id');
  return {
    id,
    name: str(doc.Name).replace(/^\//, ''),
    running: state.Running === true,
    pid: typeof state.Pid === 'number' ? state.Pid : 0,
    startedAt: str(state.StartedAt),
    networkMode: str(host.NetworkMode),
    labels: stringMap(config.Labels),
    ...(host.PortBindings !== undefined && host.PortBindings !== null ? { portBindings: host.PortBindings } : {}),
  };
}

/** One line of the event stream, or undefined for anything that is not a container event with an ID. */
export function parseEvent(line: string): DockerEvent | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObject(doc)) return undefined;
  const actor = isObject(doc.Actor) ? doc.Actor : {};
  const type = str(doc.Type) || 'container';
  const id = str(actor.ID) || str(doc.id);
  const action = str(doc.Action) || str(doc.status);
  if (type !== 'container' || id === '' || action === '') return undefined;
  return {
    action,
    id,
    attributes: stringMap(actor.Attributes),
    ...(typeof doc.timeNano === 'number' ? { timeNano: doc.timeNano } : {}),
  };
}

/** An open event stream: `done` settles when it ends (daemon gone, close()). */
export interface EventStream {
  close(): void;
  done: Promise<void>;
}

export class DockerClient {
  readonly socketPath: string;

  constructor(dockerHost?: string) {
    this.socketPath = socketPathOf(dockerHost);
  }

  private request(method: string, path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, path, method, agent: false, timeout: REQUEST_TIMEOUT_MS, headers: { Host: 'docker' } }, (res) => {
        res.setEncoding('utf8');
        let body = '';
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`docker ${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  private async getJSON(path: string): Promise<unknown> {
    const r = await this.request('GET', path);
    if (r.status !== 200) throw new DockerApiError(r.status, 'GET', path, r.body);
    try {
      return JSON.parse(r.body);
    } catch (e) {
      throw new Error(`docker GET ${path}: answer is not JSON: ${(e as Error).message}`, { cause: e });
    }
  }

  async ping(): Promise<void> {
    const r = await this.request('GET', '/_ping');
    if (r.status !== 200) throw new DockerApiError(r.status, 'GET', '/_ping', r.body);
  }

  /** Every container (all=true: stopped ones too). */
  async listContainers(): Promise<ContainerSummary[]> {
    const doc = await this.getJSON('/containers/json?all=1');
    if (!Array.isArray(doc)) throw new Error('docker GET /containers/json: answer is not a list');
    return doc.filter(isObject).map((c) => ({ id: str(c.Id), state: str(c.State), labels: stringMap(c.Labels) })).filter((c) => c.id !== '');
  }

  /** The container, or undefined when Docker does not know it (404). */
  async inspect(id: string): Promise<ContainerInfo | undefined> {
    try {
      return containerInfoFrom(await this.getJSON(`/containers/${encodeURIComponent(id)}/json`));
    } catch (e) {
      if (e instanceof DockerApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  /**
   * Stream container events (start, die, destroy). `onOpen` runs once the daemon
   * has accepted the subscription, so work that lists containers afterwards
   * cannot miss an event that happened in between.
   */
  events(actions: readonly string[], onEvent: (e: DockerEvent) => void, onOpen: () => void): EventStream {
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'], event: actions }));
    const path = `/events?filters=${filters}`;
    let req: http.ClientRequest | undefined;
    let closed = false;
    const done = new Promise<void>((resolve, reject) => {
      req = http.request({ socketPath: this.socketPath, path, method: 'GET', agent: false, headers: { Host: 'docker' } }, (res) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            body += d;
          });
          res.on('end', () => reject(new DockerApiError(res.statusCode ?? 0, 'GET', '/events', body)));
          return;
        }
        onOpen();
        res.setEncoding('utf8');
        let pending = '';
        res.on('data', (chunk: string) => {
          pending += chunk;
          let nl: number;
          while ((nl = pending.indexOf('\n')) !== -1) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line === '') continue;
            const ev = parseEvent(line);
            if (ev) onEvent(ev);
          }
        });
        res.on('end', () => (closed ? resolve() : reject(new Error('docker event stream ended'))));
        res.on('error', (e) => (closed ? resolve() : reject(new Error(`docker event stream broke: ${e.message}`))));
        res.on('close', () => (closed ? resolve() : reject(new Error('docker event stream closed'))));
      });
      req.on('error', (e) => (closed ? resolve() : reject(e)));
      req.end();
    });
    return {
      close() {
        closed = true;
        req?.destroy();
      },
      done,
    };
  }
}
