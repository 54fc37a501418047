// Editing container records in an answers file (demos and tests): add or
// replace one in `default.containers` of every version, or remove it. The file
// is replaced atomically so a watching server never reads half of it.
import crypto from 'node:crypto';
import fs from 'node:fs';

import { type Answers, AnswersError, DEFAULT_CLIENT, emptyAnswers, isObj, isYamlFile, type Obj, parseAnswersText } from './answers.ts';
import { replaceFile, withEditLock } from './files.ts';
import { loadYaml, stringifyYaml } from './render.ts';

export interface ContainerSpec {
  externalId: string;
  /** Bare address; a CIDR's prefix is dropped (metadata carries addresses without one). */
  ip: string;
  mac?: string;
  uuid?: string;
  name?: string;
  dns?: string[];
  dnsSearch?: string[];
  labels?: Record<string, string>;
  hostUuid?: string;
  networkUuid?: string;
  /** Default running. */
  state?: string;
}

export interface ContainerMatch {
  externalId?: string;
  uuid?: string;
  name?: string;
}

async function readAnswers(file: string): Promise<Answers> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyAnswers();
    throw e;
  }
  return parseAnswersText(text, file);
}

/** Write via a temporary file in the same directory and rename over the target. */
export async function writeAnswers(file: string, answers: Answers): Promise<void> {
  let text: string;
  if (isYamlFile(file)) {
    await loadYaml();
    text = stringifyYaml(answers);
  } else {
    text = `${JSON.stringify(answers, null, 2)}\n`;
  }
  await replaceFile(file, text);
}

/** Every `default.containers` list of the file, each once (YAML aliases may share them). */
function containerLists(answers: Answers, create: boolean): unknown[][] {
  const lists = new Set<unknown[]>();
  for (const [version, clients] of Object.entries(answers)) {
    let defaults = clients[DEFAULT_CLIENT];
    if (!defaults) {
      if (!create) continue;
      defaults = clients[DEFAULT_CLIENT] = {};
    }
    let list = defaults.containers;
    if (list === undefined || list === null) {
      if (!create) continue;
      list = defaults.containers = [];
    }
    if (!Array.isArray(list)) throw new AnswersError(`"${version}".default.containers is not a list`);
    lists.add(list);
  }
  return [...lists];
}

export function containerRecord(spec: ContainerSpec): Obj {
  const ip = spec.ip.split('/')[0]!;
  const record: Obj = {
    name: spec.name ?? `r-${spec.externalId.slice(0, 12)}`,
    uuid: spec.uuid ?? crypto.randomUUID(),
    external_id: spec.externalId,
    primary_ip: ip,
    ips: [ip],
    state: spec.state ?? 'running',
    labels: spec.labels ?? {},
  };
  if (spec.hostUuid) record.host_uuid = spec.hostUuid;
  if (spec.networkUuid) record.network_uuid = spec.networkUuid;
  if (spec.mac) record.primary_mac_address = spec.mac.toLowerCase();
  if (spec.dns?.length) record.dns = spec.dns;
  if (spec.dnsSearch?.length) record.dns_search = spec.dnsSearch;
  return record;
}

function matches(c: unknown, m: ContainerMatch): boolean {
  if (!isObj(c)) return false;
  return (m.externalId !== undefined && c.external_id === m.externalId)
    || (m.uuid !== undefined && c.uuid === m.uuid)
    || (m.name !== undefined && c.name === m.name);
}

/** Add the record (replacing one with the same external_id or uuid) to every version's default containers. */
export function addContainer(file: string, spec: ContainerSpec): Promise<Obj> {
  return withEditLock(file, () => addContainerLocked(file, spec));
}

async function addContainerLocked(file: string, spec: ContainerSpec): Promise<Obj> {
  const answers = await readAnswers(file);
  if (Object.keys(answers).length === 0) Object.assign(answers, emptyAnswers());
  const record = containerRecord(spec);
  const same: ContainerMatch = { externalId: spec.externalId, uuid: record.uuid as string };
  for (const list of containerLists(answers, true)) {
    const kept = list.filter((c) => !matches(c, same));
    list.splice(0, list.length, ...kept, record);
  }
  await writeAnswers(file, answers);
  return record;
}

/** Remove matching records everywhere; resolves to how many were removed (per version). */
export async function removeContainer(file: string, match: ContainerMatch): Promise<number> {
  if (match.externalId === undefined && match.uuid === undefined && match.name === undefined) {
    throw new AnswersError('say which container to remove: --external-id, --uuid or --name');
  }
  return withEditLock(file, () => removeContainerLocked(file, match));
}

async function removeContainerLocked(file: string, match: ContainerMatch): Promise<number> {
  const answers = await readAnswers(file);
  let removed = 0;
  for (const list of containerLists(answers, false)) {
    const kept = list.filter((c) => !matches(c, match));
    removed += list.length - kept.length;
    list.splice(0, list.length, ...kept);
  }
  if (removed > 0) await writeAnswers(file, answers);
  return removed;
}
