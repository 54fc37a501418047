// Reading the environment from the metadata service: API 2016-07-29 as
// rancher/vxlan reads it, or 2015-12-19 (older rancher-metadata): `auto`
// (the default) takes 2016-07-29 and falls back to 2015-12-19 when the server
// answers 404 for 2016-07-29's /version (and back again the same way). Both
// versions name the fields the agent reads alike (self/host, hosts' uuid and
// agent_ip, networks' uuid and metadata.cniConfig, containers' host_uuid,
// network_uuid, primary_ip, state, network_from_container_uuid); 2016-07-29
// lower-cases names, which only appear in problem lines. Lists are read object
// by object and only those fields are kept.
import { httpGetJson, httpGetObjectList, longPoll, metadataBaseUrl, MetadataHttpError } from '../lib/metadata-client.ts';
import { METADATA_VERSION, METADATA_VERSION_OLD, type MetadataVersionChoice } from './config.ts';
import type { Environment, Obj } from './desired.ts';

const GET_TIMEOUT_MS = 10_000;

const HOST_FIELDS = ['uuid', 'name', 'hostname', 'agent_ip'];
const NETWORK_FIELDS = ['uuid', 'name', 'metadata'];
const CONTAINER_FIELDS = ['uuid', 'name', 'host_uuid', 'network_uuid', 'primary_ip', 'state', 'network_from_container_uuid'];

function pick(o: Obj, fields: readonly string[]): Obj {
  const out: Obj = {};
  for (const f of fields) if (Object.hasOwn(o, f)) out[f] = o[f];
  return out;
}

export class MetadataSource {
  private readonly root: string;
  private readonly choice: MetadataVersionChoice;
  /** The API version read now. */
  apiVersion: string;
  /** Called when `auto` switched versions (for the log). */
  onSwitch: ((from: string, to: string) => void) | undefined;

  constructor(address: string, choice: MetadataVersionChoice = 'auto') {
    this.root = metadataBaseUrl(address);
    this.choice = choice;
    this.apiVersion = choice === 'auto' ? METADATA_VERSION : choice;
  }

  get base(): string {
    return `${this.root}/${this.apiVersion}`;
  }

  /** `/version`; with `auto`, a 404 (the server does not serve this API version) tries the other one. */
  async version(): Promise<string> {
    try {
      return String(await httpGetJson(`${this.base}/version`, { timeoutMs: GET_TIMEOUT_MS }));
    } catch (e) {
      if (this.choice !== 'auto' || !(e instanceof MetadataHttpError) || e.status !== 404) throw e;
      const other = this.apiVersion === METADATA_VERSION ? METADATA_VERSION_OLD : METADATA_VERSION;
      let v: unknown;
      try {
        v = await httpGetJson(`${this.root}/${other}/version`, { timeoutMs: GET_TIMEOUT_MS });
      } catch {
        throw e; // neither: the first error tells more
      }
      const from = this.apiVersion;
      this.apiVersion = other;
      this.onSwitch?.(from, other);
      return String(v);
    }
  }

  /** Wait until the version differs from `current` (or maxWaitS passed); the version then. */
  async waitForChange(current: string, maxWaitS: number): Promise<string> {
    return String(await longPoll(`${this.base}/version`, current, { maxWaitS, timeoutMs: maxWaitS * 1000 + 10_000 }));
  }

  private async list(key: string, fields: readonly string[]): Promise<Obj[]> {
    const out: Obj[] = [];
    await httpGetObjectList(`${this.base}/${key}`, { timeoutMs: GET_TIMEOUT_MS }, (o) => out.push(pick(o, fields)));
    return out;
  }

  async environment(): Promise<Environment> {
    const base = this.base;
    const [self, hosts, networks, containers] = await Promise.all([
      httpGetJson(`${base}/self/host`, { timeoutMs: GET_TIMEOUT_MS }),
      this.list('hosts', HOST_FIELDS),
      this.list('networks', NETWORK_FIELDS),
      this.list('containers', CONTAINER_FIELDS),
    ]);
    if (typeof self !== 'object' || self === null || Array.isArray(self)) throw new Error(`${base}/self/host: not an object`);
    return { self: { host: self }, hosts, networks, containers };
  }
}
