// Editing an environment file: add or replace, or remove, one host, network or
// container. A YAML file is edited as a document, so its comments and layout
// stay where they are; a JSON file is written out again. Each edit holds the
// file's edit lock and replaces the file atomically (files.ts), after checking
// that what it writes reads back.
import crypto from 'node:crypto';
import fs from 'node:fs';

import type { Document, YAMLSeq } from 'yaml';

import { AnswersError, isObj, isYamlFile, type Obj } from './answers.ts';
import {
  checkEnvironment, checkEnvironmentData, type Environment, type EnvironmentData, type EnvironmentList, findHost, parseEnvironmentText,
  readEnvironmentText,
} from './environment.ts';
import { replaceFile, withEditLock } from './files.ts';
import { type ContainerMatch, containerRecord, type ContainerSpec } from './records.ts';

export interface HostSpec {
  uuid?: string;
  name: string;
  /** Default: the name. */
  hostname?: string;
  agentIp: string;
  labels?: Record<string, string>;
}

export interface NetworkSpec {
  uuid?: string;
  name: string;
  /** File name → CNI config, as Rancher's network metadata carries it. */
  cniConfig?: Obj;
  isDefault?: boolean;
  hostPorts?: boolean;
  /** allow (default) or deny. */
  policyAction?: string;
}

export interface Match {
  uuid?: string;
  name?: string;
}

/** One edit's view of the file: its entries as they are, the valid ones, and the changes to make. */
interface Draft {
  data: EnvironmentData;
  env: Environment;
  push(list: EnvironmentList, record: Obj): void;
  replace(list: EnvironmentList, index: number, record: Obj): void;
  remove(list: EnvironmentList, indices: number[]): void;
  set(list: EnvironmentList, index: number, key: string, value: unknown): void;
}

const YAML_PARSE = { schema: 'core', merge: true, resolveKnownTags: false, uniqueKeys: true, prettyErrors: false, logLevel: 'error' } as const;
const YAML_WRITE = { lineWidth: 0, indentSeq: true } as const;
const NEW_FILE_COMMENT = ' cattle-metadata environment: hosts, networks, containers (README, "cattle-metadata")';

/**
 * Run `change` on the file's current content and write the result (unless `change` made no
 * change). A missing file starts empty. A file that cannot be read as an environment is not
 * touched: the error says what to fix.
 */
async function edit<T>(file: string, change: (d: Draft) => T): Promise<T> {
  return withEditLock(file, async () => {
    let text: string | undefined;
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const yaml = isYamlFile(file);
    const raw: Obj = text === undefined ? { hosts: [], networks: [], containers: [] } : asObj(await readEnvironmentText(text, file));
    const { data } = checkEnvironmentData(raw, file);
    // checkEnvironmentData made an empty list for each one the file lacks: the same arrays go into the file.
    const attach = (list: EnvironmentList): void => {
      if (!Array.isArray(raw[list])) raw[list] = data[list];
    };
    let doc: Document | undefined;
    const lib = yaml ? await import('yaml') : undefined;
    if (lib) {
      if (text === undefined || text.trim() === '') {
        doc = new lib.Document(raw, { aliasDuplicateObjects: false });
        doc.commentBefore = NEW_FILE_COMMENT;
      } else {
        doc = lib.parseDocument(text, YAML_PARSE);
      }
    }
    const seqOf = (list: EnvironmentList): YAMLSeq => {
      const node = doc!.get(list, true);
      if (lib!.isSeq(node)) return node;
      // Missing, null or an alias: the list written out as it reads now.
      const seq = doc!.createNode(data[list], { aliasDuplicateObjects: false }) as YAMLSeq;
      doc!.set(list, seq);
      return seq;
    };
    let changed = false;
    const node = (record: Obj): unknown => doc!.createNode(record, { aliasDuplicateObjects: false });
    const draft: Draft = {
      data,
      env: checkEnvironment(data),
      push(list, record) {
        changed = true;
        attach(list);
        if (doc) {
          const seq = seqOf(list);
          if (seq.items.length === 0) seq.flow = false;
          seq.items.push(node(record));
        }
        data[list].push(record);
      },
      replace(list, index, record) {
        changed = true;
        if (doc) seqOf(list).items[index] = node(record);
        data[list][index] = record;
      },
      remove(list, indices) {
        changed = true;
        for (const i of [...indices].sort((a, b) => b - a)) {
          if (doc) seqOf(list).items.splice(i, 1);
          data[list].splice(i, 1);
        }
      },
      set(list, index, key, value) {
        changed = true;
        const entry = data[list][index] as Obj;
        entry[key] = value;
        if (doc) {
          const seq = seqOf(list);
          if (lib!.isMap(seq.items[index])) doc.setIn([list, index, key], value);
          else seq.items[index] = node(entry);
        }
      },
    };
    const result = change(draft);
    if (!changed) return result;
    const out = doc ? doc.toString(YAML_WRITE) : `${JSON.stringify(raw, null, 2)}\n`;
    try {
      await parseEnvironmentText(out, file);
    } catch (e) {
      throw new AnswersError(`${file} left unchanged: the edited file would not read back (${(e as Error).message})`);
    }
    await replaceFile(file, out);
    return result;
  });
}

function asObj(raw: unknown): Obj {
  if (raw === null || raw === undefined) return {};
  if (!isObj(raw)) throw new AnswersError('an environment must be an object with hosts, networks and containers lists');
  return raw;
}

/** Indices of the file's entries in `list` that match (objects only). */
function indicesOf(entries: unknown[], test: (o: Obj) => boolean): number[] {
  const out: number[] = [];
  entries.forEach((e, i) => {
    if (isObj(e) && test(e)) out.push(i);
  });
  return out;
}

function describeMatch(what: string, m: Match): string {
  return m.uuid !== undefined ? `${what} with uuid "${m.uuid}"` : `${what} named "${m.name}"`;
}

function needMatch(what: string, m: Match): void {
  if (m.uuid === undefined && m.name === undefined) throw new AnswersError(`say which ${what} to remove: --uuid or --name`);
}

/**
 * Add a host, or replace the one with the same uuid (without --uuid: the same name, keeping its
 * uuid). Refused: an agent_ip another host has, a name another host has.
 */
export function addHost(file: string, spec: HostSpec): Promise<Obj> {
  return edit(file, (d) => {
    const hosts = d.data.hosts;
    const same = spec.uuid !== undefined ? indicesOf(hosts, (h) => h.uuid === spec.uuid) : indicesOf(hosts, (h) => h.name === spec.name);
    const at = same[0];
    const uuid = spec.uuid ?? (at !== undefined && typeof (hosts[at] as Obj).uuid === 'string' ? (hosts[at] as Obj).uuid as string : crypto.randomUUID());
    const others = (test: (h: Obj) => boolean): Obj | undefined => hosts.find((h, i) => i !== at && isObj(h) && h.uuid !== uuid && test(h)) as Obj | undefined;
    const ipTaken = others((h) => h.agent_ip === spec.agentIp);
    if (ipTaken) throw new AnswersError(`agent_ip ${spec.agentIp} is already the address of host ${String(ipTaken.name)} (${String(ipTaken.uuid)})`);
    const nameTaken = others((h) => h.name === spec.name);
    if (nameTaken) throw new AnswersError(`a host named "${spec.name}" already exists (${String(nameTaken.uuid)}): give its --uuid to replace it, or another --name`);
    const record: Obj = {
      uuid,
      name: spec.name,
      hostname: spec.hostname ?? spec.name,
      agent_ip: spec.agentIp,
      labels: spec.labels ?? {},
      state: 'active',
    };
    if (at !== undefined) {
      d.replace('hosts', at, record);
      d.remove('hosts', same.slice(1));
    } else {
      d.push('hosts', record);
    }
    return record;
  });
}

export interface Removed {
  removed: number;
  /** Containers removed with them (--with-containers). */
  containers: number;
}

/** Remove the hosts (or networks) that match; their containers too with `withContainers`, else refused while they have any. */
async function removeWithContainers(file: string, list: 'hosts' | 'networks', m: Match, withContainers: boolean): Promise<Removed> {
  const what = list === 'hosts' ? 'host' : 'network';
  needMatch(what, m);
  return edit(file, (d) => {
    const found = indicesOf(d.data[list], (o) => (m.uuid !== undefined ? o.uuid === m.uuid : o.name === m.name));
    if (found.length === 0) throw new AnswersError(`no ${describeMatch(what, m)} in ${file}`);
    const uuids = new Set(found.map((i) => (d.data[list][i] as Obj).uuid));
    const key = list === 'hosts' ? 'host_uuid' : 'network_uuid';
    const theirs = indicesOf(d.data.containers, (c) => c[key] !== undefined && uuids.has(c[key]));
    if (theirs.length > 0 && !withContainers) {
      const names = theirs.slice(0, 5).map((i) => String((d.data.containers[i] as Obj).uuid)).join(', ');
      throw new AnswersError(`${describeMatch(what, m)} has ${theirs.length} container(s) (${names}${theirs.length > 5 ? ', …' : ''}): remove them first, or pass --with-containers`);
    }
    d.remove('containers', theirs);
    d.remove(list, found);
    return { removed: found.length, containers: theirs.length };
  });
}

export function removeHost(file: string, m: Match, opts: { withContainers?: boolean } = {}): Promise<Removed> {
  return removeWithContainers(file, 'hosts', m, opts.withContainers ?? false);
}

/**
 * Add a network, or replace the one with the same uuid (without --uuid: the same name, keeping
 * its uuid). A new default network makes the others non-default (their uuids are returned).
 */
export function addNetwork(file: string, spec: NetworkSpec): Promise<{ network: Obj; undefaulted: string[] }> {
  return edit(file, (d) => {
    const nets = d.data.networks;
    const same = spec.uuid !== undefined ? indicesOf(nets, (n) => n.uuid === spec.uuid) : indicesOf(nets, (n) => n.name === spec.name);
    const at = same[0];
    const uuid = spec.uuid ?? (at !== undefined && typeof (nets[at] as Obj).uuid === 'string' ? (nets[at] as Obj).uuid as string : crypto.randomUUID());
    const nameTaken = nets.find((n, i) => i !== at && isObj(n) && n.uuid !== uuid && n.name === spec.name) as Obj | undefined;
    if (nameTaken) throw new AnswersError(`a network named "${spec.name}" already exists (${String(nameTaken.uuid)}): give its --uuid to replace it, or another --name`);
    const record: Obj = {
      uuid,
      name: spec.name,
      is_default: spec.isDefault ?? false,
      host_ports: spec.hostPorts ?? false,
      default_policy_action: spec.policyAction ?? 'allow',
      metadata: spec.cniConfig !== undefined ? { cniConfig: spec.cniConfig } : {},
    };
    const undefaulted: string[] = [];
    if (record.is_default === true) {
      for (const i of indicesOf(nets, (n) => n.is_default === true && n.uuid !== uuid)) {
        undefaulted.push(String((nets[i] as Obj).uuid));
        d.set('networks', i, 'is_default', false);
      }
    }
    if (at !== undefined) {
      d.replace('networks', at, record);
      d.remove('networks', same.slice(1));
    } else {
      d.push('networks', record);
    }
    return { network: record, undefaulted };
  });
}

export function removeNetwork(file: string, m: Match, opts: { withContainers?: boolean } = {}): Promise<Removed> {
  return removeWithContainers(file, 'networks', m, opts.withContainers ?? false);
}

/** The one valid network `wanted` names (uuid, else a unique name). */
function findNetwork(env: Environment, wanted: string): Obj {
  const byUuid = env.networks.find((n) => n.uuid === wanted);
  if (byUuid) return byUuid;
  const byName = env.networks.filter((n) => n.name === wanted);
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) throw new AnswersError(`--network-uuid ${wanted}: ${byName.length} networks have that name: give the uuid`);
  const known = env.networks.map((n) => `${String(n.uuid)} (${String(n.name)})`).join(', ') || 'none';
  throw new AnswersError(`--network-uuid ${wanted}: no network has that uuid or name (networks: ${known})`);
}

/**
 * Add a container record on a host of the file (uuid or name), or replace the one with the same
 * external_id or uuid. Its network: the one given, else the default network when there is one.
 * Refused: an unknown host or network, a primary_ip another container has on the same network.
 */
export function addEnvironmentContainer(file: string, spec: ContainerSpec & { hostUuid: string }): Promise<Obj> {
  return edit(file, (d) => {
    const host = findHost(d.env.hosts, spec.hostUuid);
    if ('error' in host) {
      const known = d.env.hosts.map((h) => `${String(h.uuid)} (${String(h.name)})`).join(', ') || 'none';
      throw new AnswersError(`--host-uuid ${spec.hostUuid}: ${host.error} (hosts: ${known})`);
    }
    let networkUuid: string | undefined;
    if (spec.networkUuid !== undefined) {
      networkUuid = findNetwork(d.env, spec.networkUuid).uuid as string;
    } else {
      const defaults = d.env.networks.filter((n) => n.is_default === true);
      if (defaults.length === 1) networkUuid = defaults[0]!.uuid as string;
    }
    const record = containerRecord({ ...spec, hostUuid: host.host.uuid as string, networkUuid });
    const containers = d.data.containers;
    // A pod's record may have no external id (cattle-metadata add-container --pod-name): uuid only then.
    const same = indicesOf(containers, (c) => (spec.externalId !== undefined && c.external_id === spec.externalId) || c.uuid === record.uuid);
    const clash = containers.find((c, i) => !same.includes(i) && isObj(c) && c.primary_ip === record.primary_ip && (c.network_uuid ?? undefined) === networkUuid) as Obj | undefined;
    if (clash) throw new AnswersError(`${String(record.primary_ip)} is already the primary_ip of container ${String(clash.name)} (${String(clash.uuid)}) on that network: remove it first`);
    if (same.length > 0) {
      d.replace('containers', same[0]!, record);
      d.remove('containers', same.slice(1));
    } else {
      d.push('containers', record);
    }
    return record;
  });
}

/** Remove matching container records; resolves to how many were removed. */
export async function removeEnvironmentContainer(file: string, m: ContainerMatch): Promise<number> {
  if (m.externalId === undefined && m.uuid === undefined && m.name === undefined) {
    throw new AnswersError('say which container to remove: --external-id, --uuid or --name');
  }
  return edit(file, (d) => {
    const found = indicesOf(d.data.containers, (c) => (m.externalId !== undefined && c.external_id === m.externalId)
      || (m.uuid !== undefined && c.uuid === m.uuid)
      || (m.name !== undefined && c.name === m.name));
    if (found.length > 0) d.remove('containers', found);
    return found.length;
  });
}
