// The environment description: the hosts, networks and containers (and, when
// wanted, stacks and services) of one Rancher environment, in one JSON or YAML
// file that every host is given. Each host's answers are derived from it as
// Rancher's metadata generator derived them from cattle's objects, with `self`
// answered as the host named by `--self-host`:
//
//   default           containers, hosts, networks, services, stacks, self.host
//   <container IP>    self.container, self.host, self.service, self.stack (+ the defaults)
//
// per API version (2015-07-25, 2015-12-19, 2016-07-29). Entries that are not
// valid are left out and reported; only a file that is not an environment at
// all (unreadable, not an object, a list that is not a list) is refused.
import { isIP, isIPv4 } from 'node:net';

import { type Answers, AnswersError, DEFAULT_CLIENT, isObj, isYamlFile, KNOWN_VERSIONS, type Obj, parseYaml } from './answers.ts';

export const ENVIRONMENT_LISTS = ['hosts', 'networks', 'containers', 'stacks', 'services'] as const;
export type EnvironmentList = (typeof ENVIRONMENT_LISTS)[number];
const TOP_KEYS = new Set<string>(['environment', ...ENVIRONMENT_LISTS]);

/** The file's entries as they are (plain values), each list present (possibly empty). */
export type EnvironmentData = { environment: Obj } & Record<EnvironmentList, unknown[]>;

/** The valid entries, normalised (defaults filled in), and what was wrong with the others. */
export interface Environment {
  environment: Obj;
  hosts: Obj[];
  networks: Obj[];
  containers: Obj[];
  stacks: Obj[];
  services: Obj[];
  problems: string[];
}

/** Cattle's instance states: what a container's `state` may be. */
export const CONTAINER_STATES: readonly string[] = Object.freeze([
  'requested', 'creating', 'created', 'starting', 'running', 'restarting', 'stopping', 'stopped', 'updating-running',
  'updating-stopped', 'migrating', 'error', 'erroring', 'removing', 'removed', 'purging', 'purged',
]);
export const POLICY_ACTIONS: readonly string[] = Object.freeze(['allow', 'deny']);

// The Go types of go-rancher-metadata's records: a value of another type would make the agent's
// decoding of the whole list fail, so such an entry is left out. Other keys are passed through.
type FieldType = 'string' | 'bool' | 'int' | 'strings' | 'labels' | 'object' | 'list';
const HOST_FIELDS: Record<string, FieldType> = {
  uuid: 'string', name: 'string', hostname: 'string', agent_ip: 'string', agent_state: 'string', host_id: 'int',
  labels: 'labels', memory: 'int', milli_cpu: 'int', local_storage_mb: 'int', environment_uuid: 'string', state: 'string',
};
const NETWORK_FIELDS: Record<string, FieldType> = {
  uuid: 'string', name: 'string', environment_uuid: 'string', metadata: 'object', host_ports: 'bool', is_default: 'bool',
  policy: 'list', default_policy_action: 'string',
};
const CONTAINER_FIELDS: Record<string, FieldType> = {
  uuid: 'string', name: 'string', external_id: 'string', primary_ip: 'string', primary_mac_address: 'string', ips: 'strings',
  ports: 'strings', service_name: 'string', service_index: 'string', service_uuid: 'string', stack_name: 'string',
  stack_uuid: 'string', labels: 'labels', links: 'labels', create_index: 'int', host_uuid: 'string', state: 'string',
  health_state: 'string', start_count: 'int', memory_reservation: 'int', milli_cpu_reservation: 'int', dns: 'strings',
  dns_search: 'strings', health_check_hosts: 'strings', network_from_container_uuid: 'string', network_uuid: 'string',
  system: 'bool', environment_uuid: 'string', environment_name: 'string', health_check: 'object',
};
const STACK_FIELDS: Record<string, FieldType> = {
  uuid: 'string', name: 'string', environment_name: 'string', environment_uuid: 'string', system: 'bool',
};
const SERVICE_FIELDS: Record<string, FieldType> = {
  uuid: 'string', name: 'string', stack_name: 'string', stack_uuid: 'string', kind: 'string', hostname: 'string', vip: 'string',
  scale: 'int', create_index: 'int', external_ips: 'strings', sidekicks: 'strings', ports: 'strings', labels: 'labels',
  links: 'labels', metadata: 'object', token: 'string', fqdn: 'string', health_check: 'object', primary_service_name: 'string',
  lb_config: 'object', environment_uuid: 'string', environment_name: 'string', state: 'string', system: 'bool', selector: 'string',
};

const TYPE_TEXT: Record<FieldType, string> = {
  string: 'a string', bool: 'true or false', int: 'an integer', strings: 'a list of strings', labels: 'an object of strings',
  object: 'an object', list: 'a list',
};

/** A scalar where a string is expected: numbers and booleans read as their text (YAML `1.9`, `true`). */
function asText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') return String(v);
  return undefined;
}

/** The value as the field's type wants it, or undefined when it cannot be (null stays null: Go reads it as zero). */
function coerce(v: unknown, type: FieldType): { ok: true; value: unknown } | { ok: false } {
  if (v === null) return { ok: true, value: null };
  switch (type) {
    case 'string': {
      const s = typeof v === 'number' && Number.isFinite(v) ? String(v) : v;
      return typeof s === 'string' ? { ok: true, value: s } : { ok: false };
    }
    case 'bool':
      return typeof v === 'boolean' ? { ok: true, value: v } : { ok: false };
    case 'int':
      return Number.isSafeInteger(v) ? { ok: true, value: v } : { ok: false };
    case 'strings': {
      if (!Array.isArray(v)) return { ok: false };
      const out = v.map(asText);
      return out.every((s) => s !== undefined) ? { ok: true, value: out } : { ok: false };
    }
    case 'labels': {
      if (!isObj(v)) return { ok: false };
      const out: Record<string, string> = {};
      for (const [k, x] of Object.entries(v)) {
        const s = x === null ? '' : asText(x);
        if (s === undefined) return { ok: false };
        out[k] = s;
      }
      return { ok: true, value: out };
    }
    case 'object':
      return isObj(v) ? { ok: true, value: v } : { ok: false };
    case 'list':
      return Array.isArray(v) ? { ok: true, value: v } : { ok: false };
  }
}

class EntryError extends Error {}

/** A copy of the entry with its known fields type-checked; throws EntryError naming the first bad field. */
function typed(entry: unknown, fields: Record<string, FieldType>): Obj {
  if (!isObj(entry)) throw new EntryError('not an object');
  const out: Obj = {};
  for (const [k, v] of Object.entries(entry)) {
    const type = fields[k];
    if (type === undefined) {
      out[k] = v;
      continue;
    }
    const c = coerce(v, type);
    if (!c.ok) throw new EntryError(`${k} must be ${TYPE_TEXT[type]}`);
    out[k] = c.value;
  }
  return out;
}

function str(o: Obj, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A name or uuid usable as a path segment: not empty, no "/", no surrounding spaces. */
export function badIdentifier(v: string): string | undefined {
  if (v === '') return 'must not be empty';
  if (v.includes('/')) return 'must not contain "/"';
  if (v.trim() !== v) return 'must not start or end with spaces';
  return undefined;
}

export const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** A CIDR such as 10.42.0.0/16 (what Rancher's vxlan agent parses as bridgeSubnet). */
export function isCidr(v: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(v);
  if (!m) return false;
  const family = isIP(m[1]!);
  return family !== 0 && Number(m[2]) <= (family === 4 ? 32 : 128);
}

/** Why a network's `metadata.cniConfig` is unusable (an object of file name → CNI config object), else undefined. */
export function badCniConfig(v: unknown): string | undefined {
  if (!isObj(v)) return 'must be an object of file name → CNI config, e.g. {"10-rancher.conf": {"type": "rancher-bridge", …}}';
  for (const [fileName, conf] of Object.entries(v)) {
    if (!isObj(conf)) return `"${fileName}" must be a CNI config object`;
    if (conf.bridgeSubnet !== undefined && !(typeof conf.bridgeSubnet === 'string' && isCidr(conf.bridgeSubnet))) {
      return `"${fileName}".bridgeSubnet must be a CIDR such as 10.42.0.0/16`;
    }
  }
  return undefined;
}

/** The raw shape check: an object whose lists are lists. Throws AnswersError otherwise. */
export function checkEnvironmentData(raw: unknown, file: string): { data: EnvironmentData; problems: string[] } {
  const problems: string[] = [];
  if (raw === null || raw === undefined) raw = {};
  if (!isObj(raw)) throw new AnswersError(`${file}: an environment must be an object with hosts, networks and containers lists`);
  const keys = Object.keys(raw);
  if (keys.length > 0 && keys.every((k) => KNOWN_VERSIONS.includes(k) || k === 'latest')) {
    throw new AnswersError(`${file}: this is a classic answers file (keyed by API version): serve it with --answers`);
  }
  const data = { environment: {} } as EnvironmentData;
  if (raw.environment !== undefined && raw.environment !== null) {
    if (!isObj(raw.environment)) throw new AnswersError(`${file}: environment must be an object (uuid, name)`);
    data.environment = raw.environment;
  }
  for (const list of ENVIRONMENT_LISTS) {
    const v = raw[list];
    if (v !== undefined && v !== null && !Array.isArray(v)) throw new AnswersError(`${file}: ${list} must be a list`);
    data[list] = (v as unknown[] | null | undefined) ?? [];
  }
  for (const k of keys) if (!TOP_KEYS.has(k)) problems.push(`unknown key "${k}" ignored (expected environment, ${ENVIRONMENT_LISTS.join(', ')})`);
  return { data, problems };
}

/** The plain value of an environment file's text (JSON, or YAML for .yml/.yaml); errors name the file. */
export async function readEnvironmentText(text: string, file: string): Promise<unknown> {
  if (isYamlFile(file)) {
    try {
      return await parseYaml(text);
    } catch (e) {
      throw new AnswersError(`${file}: invalid YAML: ${(e as Error).message}`);
    }
  }
  try {
    return text.trim() === '' ? {} : JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new AnswersError(`${file}: invalid JSON: ${(e as Error).message}`);
  }
}

/** Parse and shape-check the text of an environment file. */
export async function parseEnvironmentText(text: string, file: string): Promise<{ data: EnvironmentData; problems: string[] }> {
  return checkEnvironmentData(await readEnvironmentText(text, file), file);
}

function label(list: string, i: number, entry: unknown): string {
  const id = isObj(entry) ? (str(entry, 'uuid') ?? str(entry, 'name')) : undefined;
  return `${list}[${i}]${id !== undefined ? ` (${id})` : ''}`;
}

/**
 * The valid entries of an environment, with Rancher's defaults filled in. Left out (and
 * reported): entries that are not objects, lack a uuid (stacks, services: a name), have a field
 * of the wrong type or a bad address, or repeat a uuid (the first one stays). Kept, and reported:
 * containers on a host or network the file does not have.
 */
export function checkEnvironment(data: EnvironmentData): Environment {
  const problems: string[] = [];
  const env = data.environment;
  const envUuid = str(env, 'uuid');
  const envName = str(env, 'name');
  for (const k of ['uuid', 'name']) if (env[k] !== undefined && typeof env[k] !== 'string') problems.push(`environment.${k} must be a string`);
  const withEnv = (o: Obj, name: boolean): void => {
    if (envUuid !== undefined) o.environment_uuid ??= envUuid;
    if (name && envName !== undefined) o.environment_name ??= envName;
  };

  const each = (list: EnvironmentList, fields: Record<string, FieldType>, check: (o: Obj) => Obj): Obj[] => {
    const out: Obj[] = [];
    data[list].forEach((entry, i) => {
      try {
        out.push(check(typed(entry, fields)));
      } catch (e) {
        if (!(e instanceof EntryError)) throw e;
        problems.push(`${label(list, i, entry)} left out: ${e.message}`);
      }
    });
    return out;
  };
  const unique = (list: string, key: string, entries: Obj[]): Obj[] => {
    const seen = new Set<string>();
    return entries.filter((o) => {
      const v = o[key];
      if (typeof v !== 'string' || v === '') return true;
      if (seen.has(v)) {
        problems.push(`${list}: ${key} "${v}" repeated, the later entry left out`);
        return false;
      }
      seen.add(v);
      return true;
    });
  };
  const needId = (o: Obj, key: string): string => {
    const v = o[key];
    if (typeof v !== 'string' || v === '') throw new EntryError(`${key} is required`);
    const bad = badIdentifier(v);
    if (bad) throw new EntryError(`${key} ${bad}`);
    return v;
  };

  let hosts = each('hosts', HOST_FIELDS, (h) => {
    needId(h, 'uuid');
    const ip = h.agent_ip;
    if (typeof ip !== 'string' || !isIPv4(ip)) throw new EntryError(ip === undefined || ip === null ? 'agent_ip is required' : `agent_ip is not an IPv4 address: ${String(ip)}`);
    h.name ??= h.hostname ?? h.uuid;
    h.hostname ??= h.name;
    h.labels ??= {};
    h.state ??= 'active';
    withEnv(h, false);
    return h;
  });
  hosts = unique('hosts', 'agent_ip', unique('hosts', 'uuid', hosts));

  let networks = each('networks', NETWORK_FIELDS, (n) => {
    needId(n, 'uuid');
    n.name ??= n.uuid;
    n.metadata ??= {};
    const cni = (n.metadata as Obj).cniConfig;
    if (cni !== undefined) {
      const bad = badCniConfig(cni);
      if (bad) throw new EntryError(`metadata.cniConfig ${bad}`);
    }
    n.is_default ??= false;
    n.host_ports ??= false;
    n.default_policy_action ??= 'allow';
    if (!POLICY_ACTIONS.includes(n.default_policy_action as string)) {
      throw new EntryError(`default_policy_action must be ${POLICY_ACTIONS.join(' or ')}`);
    }
    withEnv(n, false);
    return n;
  });
  networks = unique('networks', 'uuid', networks);
  const defaults = networks.filter((n) => n.is_default === true);
  if (defaults.length > 1) problems.push(`networks: ${defaults.length} networks are is_default (${defaults.map((n) => n.uuid).join(', ')}); Rancher has one`);

  let containers = each('containers', CONTAINER_FIELDS, (c) => {
    needId(c, 'uuid');
    const ip = c.primary_ip;
    if (ip !== undefined && ip !== null && ip !== '' && isIP(ip as string) === 0) throw new EntryError(`primary_ip is not an IP address: ${String(ip)}`);
    const badIp = (c.ips as string[] | null | undefined)?.find((x) => isIP(x) === 0);
    if (badIp !== undefined) throw new EntryError(`ips: not an IP address: ${badIp}`);
    const mac = c.primary_mac_address;
    if (typeof mac === 'string' && mac !== '') {
      if (!MAC_RE.test(mac)) throw new EntryError(`primary_mac_address is not a MAC address: ${mac}`);
      c.primary_mac_address = mac.toLowerCase();
    }
    const ext = str(c, 'external_id');
    c.name ??= ext !== undefined ? `r-${ext.slice(0, 12)}` : c.uuid;
    if (typeof ip === 'string' && ip !== '') c.ips ??= [ip];
    c.state ??= 'running';
    c.labels ??= {};
    c.ports ??= [];
    withEnv(c, true);
    return c;
  });
  containers = unique('containers', 'external_id', unique('containers', 'uuid', containers));
  const hostIds = new Set(hosts.map((h) => h.uuid));
  const networkIds = new Set(networks.map((n) => n.uuid));
  const containerIds = new Set(containers.map((c) => c.uuid));
  for (const c of containers) {
    const at = `containers: ${String(c.uuid)}`;
    if (typeof c.host_uuid === 'string' && c.host_uuid !== '' && !hostIds.has(c.host_uuid)) problems.push(`${at}: host_uuid "${c.host_uuid}" is not one of the hosts`);
    if (typeof c.network_uuid === 'string' && c.network_uuid !== '' && !networkIds.has(c.network_uuid)) problems.push(`${at}: network_uuid "${c.network_uuid}" is not one of the networks`);
    const from = c.network_from_container_uuid;
    if (typeof from === 'string' && from !== '' && !containerIds.has(from)) problems.push(`${at}: network_from_container_uuid "${from}" is not one of the containers`);
  }

  const stacks = each('stacks', STACK_FIELDS, (s) => {
    needId(s, 'name');
    if (s.services !== undefined) problems.push(`stacks: ${String(s.name)}: services are derived from the services and containers, the list given is ignored`);
    delete s.services;
    withEnv(s, true);
    return s;
  });
  const services = each('services', SERVICE_FIELDS, (s) => {
    needId(s, 'name');
    needId(s, 'stack_name');
    if (s.containers !== undefined) problems.push(`services: ${String(s.name)}: containers are derived from the containers' service_name, the list given is ignored`);
    delete s.containers;
    s.kind ??= 'service';
    s.labels ??= {};
    withEnv(s, true);
    return s;
  });

  return { environment: env, hosts, networks, containers, stacks: uniqueBy(stacks, stackKey, 'stacks', problems), services: uniqueBy(services, serviceKey, 'services', problems), problems };
}

const stackKey = (s: Obj): string => String(s.name).toLowerCase();
const serviceKey = (s: Obj): string => `${String(s.stack_name).toLowerCase()}/${String(s.name).toLowerCase()}`;

function uniqueBy(entries: Obj[], key: (o: Obj) => string, list: string, problems: string[]): Obj[] {
  const seen = new Set<string>();
  return entries.filter((o) => {
    const k = key(o);
    if (!seen.has(k)) return seen.add(k);
    problems.push(`${list}: "${k}" repeated, the later entry left out`);
    return false;
  });
}

/** The host `self` names (uuid first, then a unique name or hostname), or why there is none. */
export function findHost(hosts: readonly Obj[], wanted: string): { host: Obj } | { error: string } {
  const byUuid = hosts.find((h) => h.uuid === wanted);
  if (byUuid) return { host: byUuid };
  const byName = hosts.filter((h) => h.name === wanted || h.hostname === wanted);
  if (byName.length === 1) return { host: byName[0]! };
  if (byName.length > 1) return { error: `${byName.length} hosts are named "${wanted}" (${byName.map((h) => h.uuid).join(', ')}): give the uuid` };
  return { error: `no host has the uuid or name "${wanted}"` };
}

const lower = (v: unknown): unknown => (typeof v === 'string' ? v.toLowerCase() : v);

/** A container's ports as each version shows them (Rancher's generator). */
function versionPorts(ports: unknown, version: string, hostIp: string): unknown {
  if (!Array.isArray(ports)) return ports;
  return ports.map((p) => {
    if (typeof p !== 'string') return p;
    const parts = p.split(':');
    if (version === '2016-07-29') return parts.length === 3 ? p : `0.0.0.0:${p}`;
    if (parts.length === 3 && parts[0] !== '0.0.0.0') return p;
    return parts.length === 3 ? `${hostIp}${p.slice('0.0.0.0'.length)}` : `${hostIp}:${p}`;
  });
}

const RUNNING = new Set(['running', 'starting']);

/** Every version's answers for the host named `selfHost` (or none): what the store serves. */
export function deriveAnswers(env: Environment, selfHost?: string): { answers: Answers; problems: string[] } {
  const problems: string[] = [];
  let self: Obj | undefined;
  if (selfHost !== undefined) {
    const found = findHost(env.hosts, selfHost);
    if ('host' in found) self = found.host;
    else problems.push(`--self-host ${selfHost}: ${found.error}; /self/host is not answered`);
  }
  const hostsById = new Map(env.hosts.map((h) => [h.uuid as string, h]));
  const answers: Answers = {};
  for (const version of KNOWN_VERSIONS) {
    const v3 = version === '2016-07-29';
    const containers = env.containers.map((c) => {
      const hostIp = (hostsById.get(c.host_uuid as string)?.agent_ip as string | undefined) ?? '0.0.0.0';
      const out: Obj = { ...c, ports: versionPorts(c.ports, version, hostIp) };
      if (v3) for (const k of ['name', 'service_name', 'stack_name']) if (out[k] !== undefined) out[k] = lower(out[k]);
      return out;
    });
    const { services, stacks, containerService } = deriveServices(env, containers, version);
    const tree: Obj = { containers, hosts: env.hosts, networks: env.networks, services, stacks };
    if (self) tree.self = { host: self };
    const clients: Record<string, Obj> = { [DEFAULT_CLIENT]: tree };
    // Each container with an address answers `self` as itself (a running one wins an address).
    const byIp = new Map<string, Obj>();
    for (const c of containers) {
      const ip = c.primary_ip;
      if (typeof ip !== 'string' || ip === '') continue;
      const had = byIp.get(ip);
      if (!had || (!RUNNING.has(had.state as string) && RUNNING.has(c.state as string))) byIp.set(ip, c);
    }
    for (const [ip, c] of byIp) {
      const me: Obj = { container: c };
      const host = hostsById.get(c.host_uuid as string);
      if (host) me.host = host;
      const svc = containerService.get(c);
      if (svc) {
        me.service = svc.service;
        me.stack = svc.stack;
      }
      clients[ip] = { self: me };
    }
    answers[version] = clients;
  }
  return { answers, problems };
}

/**
 * Services (declared, or named by containers' stack_name and service_name) with their
 * containers, and stacks with their services; 2015-07-25 lists them by name, 2016-07-29 lowercases
 * names. Containers gain the declared uuids.
 */
function deriveServices(env: Environment, containers: Obj[], version: string): { services: Obj[]; stacks: Obj[]; containerService: Map<Obj, { service: Obj; stack: Obj }> } {
  const v1 = version === '2015-07-25';
  const v3 = version === '2016-07-29';
  const stacks = new Map<string, Obj>();
  for (const s of env.stacks) stacks.set(stackKey(s), { ...s });
  const stackOf = (name: unknown): Obj => {
    const key = String(name).toLowerCase();
    let s = stacks.get(key);
    if (!s) stacks.set(key, (s = { name, ...(env.environment.uuid !== undefined ? { environment_uuid: env.environment.uuid } : {}) }));
    return s;
  };
  const services = new Map<string, Obj>();
  for (const s of env.services) services.set(serviceKey(s), { ...s });
  const members = new Map<string, Obj[]>();
  for (const c of containers) {
    if (typeof c.service_name !== 'string' || c.service_name === '' || typeof c.stack_name !== 'string' || c.stack_name === '') continue;
    const key = serviceKey({ name: c.service_name, stack_name: c.stack_name });
    if (!services.has(key)) services.set(key, { name: c.service_name, stack_name: c.stack_name, kind: 'service', labels: {} });
    let list = members.get(key);
    if (!list) members.set(key, (list = []));
    list.push(c);
  }
  const containerService = new Map<Obj, { service: Obj; stack: Obj }>();
  const stackServices = new Map<Obj, Obj[]>();
  for (const [key, s] of services) {
    const stack = stackOf(s.stack_name);
    if (stack.uuid !== undefined) s.stack_uuid ??= stack.uuid;
    const cs = members.get(key) ?? [];
    for (const c of cs) {
      if (s.uuid !== undefined) c.service_uuid ??= s.uuid;
      if (stack.uuid !== undefined) c.stack_uuid ??= stack.uuid;
      containerService.set(c, { service: s, stack });
    }
    s.scale ??= cs.length;
    s.containers = v1 ? cs.map((c) => c.name) : cs;
    if (v3) {
      for (const k of ['name', 'stack_name', 'primary_service_name']) if (s[k] !== undefined) s[k] = lower(s[k]);
      if (Array.isArray(s.sidekicks)) s.sidekicks = s.sidekicks.map(lower);
      if (isObj(s.links)) s.links = Object.fromEntries(Object.entries(s.links).map(([k, v]) => [k.toLowerCase(), v]));
    }
    let list = stackServices.get(stack);
    if (!list) stackServices.set(stack, (list = []));
    list.push(s);
  }
  for (const stack of stacks.values()) {
    const list = stackServices.get(stack) ?? [];
    stack.services = v1 ? list.map((s) => s.name) : list;
    if (v3) stack.name = lower(stack.name);
  }
  return { services: [...services.values()], stacks: [...stacks.values()], containerService };
}

/** An environment file's text → the answers to serve and every problem found (for the store). */
export async function environmentAnswers(text: string | undefined, file: string, selfHost?: string): Promise<{ answers: Answers; warnings: string[] }> {
  const { data, problems } = text === undefined ? { data: emptyEnvironmentData(), problems: [] } : await parseEnvironmentText(text, file);
  const env = checkEnvironment(data);
  const derived = deriveAnswers(env, selfHost);
  return { answers: derived.answers, warnings: [...problems, ...env.problems, ...derived.problems] };
}

export function emptyEnvironmentData(): EnvironmentData {
  return { environment: {}, hosts: [], networks: [], containers: [], stacks: [], services: [] };
}
