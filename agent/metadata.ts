// Reading the environment from the metadata service (API 2016-07-29): self,
// hosts, networks and containers; lists are read object by object and only
// the fields the agent decides on are kept.
import { httpGetJson, httpGetObjectList, longPoll, metadataBaseUrl } from '../lib/metadata-client.ts';
import { METADATA_VERSION } from './config.ts';
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
  readonly base: string;

  constructor(address: string) {
    this.base = `${metadataBaseUrl(address)}/${METADATA_VERSION}`;
  }

  async version(): Promise<string> {
    return String(await httpGetJson(`${this.base}/version`, { timeoutMs: GET_TIMEOUT_MS }));
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
    const [self, hosts, networks, containers] = await Promise.all([
      httpGetJson(`${this.base}/self/host`, { timeoutMs: GET_TIMEOUT_MS }),
      this.list('hosts', HOST_FIELDS),
      this.list('networks', NETWORK_FIELDS),
      this.list('containers', CONTAINER_FIELDS),
    ]);
    if (typeof self !== 'object' || self === null || Array.isArray(self)) throw new Error(`${this.base}/self/host: not an object`);
    return { self: { host: self }, hosts, networks, containers };
  }
}
