// `cattle-metadata`: the Rancher metadata service (serve) and a small CLI to
// edit what it serves: container records in a classic answers file, or the
// hosts, networks and containers of an environment description.
import fs from 'node:fs';
import { isIP, isIPv4 } from 'node:net';

import { ensureRandomHashSeed } from '../lib/hash-seed.ts';
import type { ContainerSpec } from './records.ts';

const USAGE = `Usage:
  cattle-metadata [serve] (--answers FILE | --environment FILE [--self-host UUID|NAME])
                  [--listen ADDR:PORT] [--reload-listen ADDR:PORT|none] [--xff]
  cattle-metadata add-host --environment FILE --name NAME --agent-ip IPV4 [--uuid UUID]
                           [--hostname HOSTNAME] [--label KEY=VALUE]…
  cattle-metadata remove-host --environment FILE (--uuid UUID | --name NAME) [--with-containers]
  cattle-metadata add-network --environment FILE --name NAME [--uuid UUID] [--cni-config JSON|@FILE]
                              [--default] [--host-ports] [--policy-action allow|deny]
  cattle-metadata remove-network --environment FILE (--uuid UUID | --name NAME) [--with-containers]
  cattle-metadata add-container (--answers FILE | --environment FILE --host-uuid UUID|NAME)
                                (--external-id ID | --pod-namespace NS --pod-name NAME [--pod-uid UID])
                                --ip IP [--network-uuid UUID|NAME] [--state STATE]
                                [--mac MAC] [--uuid UUID] [--name NAME] [--dns IP,…]
                                [--dns-search DOMAIN,…] [--label KEY=VALUE]…
  cattle-metadata remove-container (--answers FILE | --environment FILE)
                                   (--external-id ID | --uuid UUID | --name NAME)

serve             answer the rancher-metadata API (JSON, or YAML when FILE ends in .yml/.yaml)
                  --answers        classic answers: {"<version>": {"default"|"<client IP>": {…}}}
                  --environment    an environment description (hosts, networks, containers…):
                                   every version's answers are derived from it
                  --self-host      with --environment: the host /self/host answers as (uuid or
                                   name), so every host can be given the same file
                  --listen         default 169.254.169.250:80 (the address cattle containers use)
                  --reload-listen  POST /v1/reload here; default 127.0.0.1:8112, "none" to disable
                  --xff            take the client address from X-Forwarded-For
                  The file is reloaded on SIGHUP, on POST /v1/reload and when it changes; each
                  reload bumps /<version>/version. A bad file is reported and the old answers
                  kept; invalid entries of an environment are reported and left out.
add-host          add (or replace: same uuid, else same name) a host of the environment
remove-host       remove a host (refused while containers are on it, unless --with-containers)
add-network       add (or replace) a network; --cni-config is its metadata.cniConfig, an object
                  of file name → CNI config ({"10-rancher.conf": {"type": "rancher-bridge", …}});
                  --default makes it the default network (and the others not)
remove-network    remove a network (refused while containers are on it, unless --with-containers)
add-container     add (or replace: same external id or uuid) a container record: in every
                  version's default containers (--answers), or on a host of the environment
                  (--environment; network: --network-uuid, else the default network)
                  --pod-namespace, --pod-name, --pod-uid: a Kubernetes pod's record, before its
                  sandbox (external) id exists; labels io.kubernetes.pod.namespace, .name, .uid
                  (what cattle-ipam matches K8S_POD_* against); uuid and name derived from
                  namespace/name unless given, so publishing the pod again replaces its record
remove-container  remove matching container records
Exit status: 0 done, 1 failed (or nothing to remove), 2 usage error.
`;

type Kind = 'value' | 'bool' | 'multi';
type Flags = Record<string, string | true | string[]>;

const SOURCE: Record<string, Kind> = { answers: 'value', environment: 'value' };
const CONTAINER: Record<string, Kind> = {
  'external-id': 'value', ip: 'value', mac: 'value', uuid: 'value', name: 'value', dns: 'value', 'dns-search': 'value', label: 'multi',
  'host-uuid': 'value', 'network-uuid': 'value', state: 'value', 'pod-namespace': 'value', 'pod-name': 'value', 'pod-uid': 'value',
};
const COMMAND_FLAGS: Record<string, Record<string, Kind>> = {
  serve: { ...SOURCE, 'self-host': 'value', listen: 'value', 'reload-listen': 'value', xff: 'bool' },
  'add-container': { ...SOURCE, ...CONTAINER },
  'remove-container': { ...SOURCE, 'external-id': 'value', uuid: 'value', name: 'value' },
  'add-host': { environment: 'value', uuid: 'value', name: 'value', hostname: 'value', 'agent-ip': 'value', label: 'multi' },
  'remove-host': { environment: 'value', uuid: 'value', name: 'value', 'with-containers': 'bool' },
  'add-network': {
    environment: 'value', uuid: 'value', name: 'value', 'cni-config': 'value', default: 'bool', 'host-ports': 'bool', 'policy-action': 'value',
  },
  'remove-network': { environment: 'value', uuid: 'value', name: 'value', 'with-containers': 'bool' },
};

class UsageError extends Error {}

/** Where the CLI writes (tests pass their own). */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

const PROCESS_IO: CliIO = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

export function parseFlags(args: string[], command = 'serve'): Flags {
  const known = COMMAND_FLAGS[command]!;
  const out: Flags = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new UsageError(`unexpected argument "${arg}"`);
    const [, name, inline] = m as unknown as [string, string, string | undefined];
    const kind = known[name];
    if (!kind) {
      const elsewhere = Object.entries(COMMAND_FLAGS).filter(([, f]) => f[name]).map(([c]) => c);
      throw new UsageError(elsewhere.length ? `--${name} is not an option of ${command} (it is one of ${elsewhere.join(', ')})` : `unknown option --${name}`);
    }
    if (kind === 'bool') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
    if (kind === 'multi') ((out[name] ??= []) as string[]).push(value);
    else if (out[name] !== undefined) throw new UsageError(`--${name} given twice`);
    else out[name] = value;
  }
  return out;
}

function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

function need(flags: Flags, name: string): string {
  const v = str(flags, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

function list(v: string | undefined): string[] | undefined {
  return v?.split(',').map((s) => s.trim()).filter(Boolean);
}

/** An identifier flag (uuid, name): usable as a path segment. */
async function ident(flags: Flags, name: string, required: boolean): Promise<string | undefined> {
  const v = required ? need(flags, name) : str(flags, name);
  if (v === undefined) return undefined;
  const { badIdentifier } = await import('./environment.ts');
  const bad = badIdentifier(v);
  if (bad) throw new UsageError(`--${name} ${bad}`);
  return v;
}

/** --label KEY=VALUE, repeated. */
function labels(flags: Flags): Record<string, string> | undefined {
  const given = flags.label;
  if (!Array.isArray(given)) return undefined;
  const out: Record<string, string> = {};
  for (const l of given) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label: expected KEY=VALUE, got "${l}"`);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

// The labels of Rancher's Kubernetes containers, which cattle-ipam matches CNI_ARGS K8S_POD_* against.
const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
const POD_NAME_LABEL = 'io.kubernetes.pod.name';
const POD_UID_LABEL = 'io.kubernetes.pod.uid';

interface Pod {
  namespace: string;
  name: string;
  uid?: string;
}

/** --pod-namespace and --pod-name (both or neither), --pod-uid only with them. */
async function pod(flags: Flags): Promise<Pod | undefined> {
  const namespace = await ident(flags, 'pod-namespace', false);
  const name = await ident(flags, 'pod-name', false);
  const uid = await ident(flags, 'pod-uid', false);
  if (namespace === undefined && name === undefined) {
    if (uid !== undefined) throw new UsageError('--pod-uid needs --pod-namespace and --pod-name');
    return undefined;
  }
  if (namespace === undefined || name === undefined) throw new UsageError('--pod-namespace and --pod-name go together');
  return { namespace, name, ...(uid !== undefined ? { uid } : {}) };
}

/** A uuid derived from the pod's namespace and name (SHA-1, in the form of a version 5 UUID): the same pod, the same record. */
function podUuid(p: Pod): string {
  const { createHash } = process.getBuiltinModule('node:crypto'); // a builtin loaded lazily (no dynamic import in the executable)
  const b = createHash('sha1').update(`${POD_NAMESPACE_LABEL}=${p.namespace}\n${POD_NAME_LABEL}=${p.name}`).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Which file: --answers (classic) or --environment; exactly one. */
function source(flags: Flags): { kind: 'answers' | 'environment'; file: string } {
  const answers = str(flags, 'answers');
  const environment = str(flags, 'environment');
  if (answers !== undefined && environment !== undefined) throw new UsageError('give --answers or --environment, not both');
  if (answers === undefined && environment === undefined) throw new UsageError('--answers or --environment is required');
  if ((answers ?? environment) === '') throw new UsageError(`--${answers !== undefined ? 'answers' : 'environment'} needs a file`);
  return answers !== undefined ? { kind: 'answers', file: answers } : { kind: 'environment', file: environment! };
}

export async function main(args: string[], io: CliIO = PROCESS_IO): Promise<number> {
  const [first, ...rest] = args;
  try {
    switch (first) {
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return 0;
      case 'add-container':
        return await addContainerCommand(parseFlags(rest, first), io);
      case 'remove-container':
        return await removeContainerCommand(parseFlags(rest, first), io);
      case 'add-host':
        return await addHostCommand(parseFlags(rest, first), io);
      case 'remove-host':
      case 'remove-network':
        return await removeHostOrNetworkCommand(first, parseFlags(rest, first), io);
      case 'add-network':
        return await addNetworkCommand(parseFlags(rest, first), io);
      case 'serve':
        return await serveCommand(parseFlags(rest, first));
      default:
        if (first === undefined) {
          io.err(USAGE);
          return 2;
        }
        if (!first.startsWith('--')) throw new UsageError(`unknown command "${first}"`);
        return await serveCommand(parseFlags(args));
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`cattle-metadata: ${e.message}\n${USAGE}`);
      return 2;
    }
    io.err(`cattle-metadata: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

async function addContainerCommand(flags: Flags, io: CliIO): Promise<number> {
  const src = source(flags);
  const ip = need(flags, 'ip');
  if (isIP(ip.split('/')[0]!) === 0) throw new UsageError(`--ip: not an IP address: ${ip}`);
  const mac = str(flags, 'mac');
  const { CONTAINER_STATES, MAC_RE } = await import('./environment.ts');
  if (mac !== undefined && !MAC_RE.test(mac)) throw new UsageError(`--mac: not a MAC address: ${mac}`);
  const dns = list(str(flags, 'dns'));
  const badDns = dns?.find((d) => isIP(d) === 0);
  if (badDns !== undefined) throw new UsageError(`--dns: not an IP address: ${badDns}`);
  const state = str(flags, 'state');
  if (state !== undefined && !CONTAINER_STATES.includes(state)) throw new UsageError(`--state: not a container state: ${state} (one of ${CONTAINER_STATES.join(', ')})`);
  const hostUuid = await ident(flags, 'host-uuid', src.kind === 'environment');
  const networkUuid = await ident(flags, 'network-uuid', false);
  const k8s = await pod(flags);
  // A pod's record may come before its sandbox exists: then it has no external id.
  const externalId = str(flags, 'external-id');
  if (externalId === '' || (externalId === undefined && k8s === undefined)) throw new UsageError('--external-id is required (or --pod-namespace and --pod-name)');
  const uuid = (await ident(flags, 'uuid', false)) ?? (k8s ? podUuid(k8s) : undefined);
  const name = (await ident(flags, 'name', false)) ?? (k8s ? `k8s_POD_${k8s.name}_${k8s.namespace}` : undefined);
  const dnsSearch = list(str(flags, 'dns-search'));
  const spec = {
    ...(externalId !== undefined ? { externalId } : {}),
    ip,
    ...(mac ? { mac } : {}),
    ...(uuid ? { uuid } : {}),
    ...(name ? { name } : {}),
    ...(dns ? { dns } : {}),
    ...(dnsSearch ? { dnsSearch } : {}),
    ...(state ? { state } : {}),
    ...(networkUuid ? { networkUuid } : {}),
  };
  let lbls = labels(flags);
  if (k8s) {
    lbls = { ...lbls, [POD_NAMESPACE_LABEL]: k8s.namespace, [POD_NAME_LABEL]: k8s.name, ...(k8s.uid !== undefined ? { [POD_UID_LABEL]: k8s.uid } : {}) };
  }
  if (lbls) Object.assign(spec, { labels: lbls });
  // Without an external id (a pod's record), the record is written without external_id (name given above).
  const full = spec as ContainerSpec;
  let record: unknown;
  if (src.kind === 'environment') {
    const { addEnvironmentContainer } = await import('./environment-edit.ts');
    record = await addEnvironmentContainer(src.file, { ...full, hostUuid: hostUuid! });
  } else {
    const { addContainer } = await import('./records.ts');
    record = await addContainer(src.file, { ...full, ...(hostUuid ? { hostUuid } : {}) });
  }
  io.out(`${JSON.stringify(record)}\n`);
  return 0;
}

async function removeContainerCommand(flags: Flags, io: CliIO): Promise<number> {
  const src = source(flags);
  const externalId = str(flags, 'external-id');
  const uuid = str(flags, 'uuid');
  const name = str(flags, 'name');
  const match = {
    ...(externalId ? { externalId } : {}),
    ...(uuid ? { uuid } : {}),
    ...(name ? { name } : {}),
  };
  let removed: number;
  if (src.kind === 'environment') {
    const { removeEnvironmentContainer } = await import('./environment-edit.ts');
    removed = await removeEnvironmentContainer(src.file, match);
  } else {
    const { removeContainer } = await import('./records.ts');
    removed = await removeContainer(src.file, match);
  }
  io.out(`removed ${removed} record(s)\n`);
  return removed > 0 ? 0 : 1;
}

async function addHostCommand(flags: Flags, io: CliIO): Promise<number> {
  const file = need(flags, 'environment');
  const agentIp = need(flags, 'agent-ip');
  if (!isIPv4(agentIp)) throw new UsageError(`--agent-ip: not an IPv4 address: ${agentIp}`);
  const name = (await ident(flags, 'name', true))!;
  const uuid = await ident(flags, 'uuid', false);
  const hostname = await ident(flags, 'hostname', false);
  const lbls = labels(flags);
  const { addHost } = await import('./environment-edit.ts');
  const record = await addHost(file, { name, agentIp, ...(uuid ? { uuid } : {}), ...(hostname ? { hostname } : {}), ...(lbls ? { labels: lbls } : {}) });
  io.out(`${JSON.stringify(record)}\n`);
  return 0;
}

async function addNetworkCommand(flags: Flags, io: CliIO): Promise<number> {
  const file = need(flags, 'environment');
  const name = (await ident(flags, 'name', true))!;
  const uuid = await ident(flags, 'uuid', false);
  const policyAction = str(flags, 'policy-action');
  const { POLICY_ACTIONS, badCniConfig } = await import('./environment.ts');
  if (policyAction !== undefined && !POLICY_ACTIONS.includes(policyAction)) throw new UsageError(`--policy-action: ${policyAction}: expected ${POLICY_ACTIONS.join(' or ')}`);
  let cniConfig: Record<string, unknown> | undefined;
  const given = str(flags, 'cni-config');
  if (given !== undefined) {
    let text = given;
    if (given.startsWith('@')) {
      try {
        text = fs.readFileSync(given.slice(1), 'utf8');
      } catch (e) {
        throw new UsageError(`--cni-config ${given}: cannot read: ${(e as Error).message}`);
      }
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`--cni-config: invalid JSON: ${(e as Error).message}`);
    }
    const bad = badCniConfig(parsed);
    if (bad) throw new UsageError(`--cni-config ${bad}`);
    cniConfig = parsed as Record<string, unknown>;
  }
  const { addNetwork } = await import('./environment-edit.ts');
  const { network, undefaulted } = await addNetwork(file, {
    name,
    ...(uuid ? { uuid } : {}),
    ...(cniConfig ? { cniConfig } : {}),
    ...(flags.default === true ? { isDefault: true } : {}),
    ...(flags['host-ports'] === true ? { hostPorts: true } : {}),
    ...(policyAction ? { policyAction } : {}),
  });
  for (const u of undefaulted) io.err(`cattle-metadata: network ${u} is no longer the default network\n`);
  io.out(`${JSON.stringify(network)}\n`);
  return 0;
}

async function removeHostOrNetworkCommand(command: 'remove-host' | 'remove-network', flags: Flags, io: CliIO): Promise<number> {
  const file = need(flags, 'environment');
  const uuid = str(flags, 'uuid');
  const name = str(flags, 'name');
  if (uuid !== undefined && name !== undefined) throw new UsageError('give --uuid or --name, not both');
  const what = command === 'remove-host' ? 'host' : 'network';
  if (uuid === undefined && name === undefined) throw new UsageError(`say which ${what} to remove: --uuid or --name`);
  const edit = await import('./environment-edit.ts');
  const remove = command === 'remove-host' ? edit.removeHost : edit.removeNetwork;
  const r = await remove(file, uuid !== undefined ? { uuid } : { name: name! }, { withContainers: flags['with-containers'] === true });
  io.out(`removed ${r.removed} ${what}(s)${r.containers ? ` and ${r.containers} container(s)` : ''}\n`);
  return 0;
}

async function serveCommand(flags: Flags): Promise<number> {
  ensureRandomHashSeed();
  const src = source(flags);
  const selfHost = str(flags, 'self-host');
  if (selfHost !== undefined && src.kind !== 'environment') throw new UsageError('--self-host needs --environment');
  if (selfHost === '') throw new UsageError('--self-host needs a uuid or name');
  const { serve } = await import('./serve.ts');
  const reload = str(flags, 'reload-listen') ?? '127.0.0.1:8112';
  return serve({
    ...(src.kind === 'answers' ? { answers: src.file } : { environment: src.file }),
    ...(selfHost !== undefined ? { selfHost } : {}),
    listen: str(flags, 'listen') ?? '169.254.169.250:80',
    reloadListen: reload === 'none' ? undefined : reload,
    xff: flags.xff === true,
  });
}
