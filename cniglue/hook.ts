// Hook mode (cniglue as an OCI hook of a patched Docker; README: Docker (cniglue)):
// the OCI runtime state on stdin, DOCKER_HOST_CONFIG naming the container's
// hostconfig.json (NetworkMode; PortBindings become the portMappings
// capability, ports.ts) and DOCKER_CONFIG its config.v2.json. `prestart` (or no
// argument) ADDs, `poststop` DELs and never fails the container's stop.
// Everything is read and checked before anything is changed.
import fs from 'node:fs';

import { openNetns } from '../lib/netns.ts';
import { cniArgsFor } from './args.ts';
import { glueAdd, glueDel, type GlueSettings } from './glue.ts';
import { formatPortMappings, type PortConversion, portMappingsFrom } from './ports.ts';
import { selectNetwork } from './select.ts';

export type HookPhase = 'prestart' | 'poststop';

export interface HookInput {
  containerId: string;
  /** The container's init process; 0 when the state has none (a stopped container). */
  pid: number;
  bundle?: string;
  labels: Record<string, string>;
  networkMode: string;
  /** HostConfig.PortBindings as Docker wrote them (ports.ts reads them once the container is to be networked); only when present. */
  portBindings?: unknown;
}

export class HookInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HookInputError';
  }
}

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseObject(text: string, what: string): Obj {
  if (text.trim() === '') throw new HookInputError(`${what} is empty`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new HookInputError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(v)) throw new HookInputError(`${what} must be a JSON object`);
  return v;
}

export type ReadFile = (file: string) => string;

function readNamedFile(env: NodeJS.ProcessEnv, variable: string, describes: string, read: ReadFile): { file: string; doc: Obj } {
  const file = env[variable];
  if (!file) throw new HookInputError(`${variable} is not set: it must name the container's ${describes}`);
  let text: string;
  try {
    text = read(file);
  } catch (e) {
    throw new HookInputError(`cannot read ${variable} file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return { file, doc: parseObject(text, `${variable} file ${file}`) };
}

/**
 * The hook's input, checked: OCI state (`id`, `pid`, `bundle` or the older
 * `bundlePath`), hostconfig.json (`NetworkMode`, `PortBindings`), config.v2.json (`ID`,
 * `Config.Labels`). prestart needs a live pid; poststop does not.
 */
export function parseHookInput(stdin: string, env: NodeJS.ProcessEnv, phase: HookPhase, read: ReadFile = (f) => fs.readFileSync(f, 'utf8')): HookInput {
  const state = parseObject(stdin, 'OCI state on stdin');
  const id = state.id;
  if (typeof id !== 'string' || id === '') throw new HookInputError("OCI state on stdin: 'id' must be a non-empty string");
  const pid = state.pid ?? 0;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 0) {
    throw new HookInputError(`OCI state on stdin: 'pid' must be a non-negative integer, got ${JSON.stringify(state.pid)}`);
  }
  if (phase === 'prestart' && pid === 0) throw new HookInputError("OCI state on stdin: prestart needs the container's 'pid'");
  const bundle = state.bundle ?? state.bundlePath;
  if (bundle !== undefined && typeof bundle !== 'string') throw new HookInputError("OCI state on stdin: 'bundle' must be a string");

  const host = readNamedFile(env, 'DOCKER_HOST_CONFIG', 'hostconfig.json', read);
  const mode = host.doc.NetworkMode ?? '';
  if (typeof mode !== 'string') throw new HookInputError(`DOCKER_HOST_CONFIG file ${host.file}: NetworkMode must be a string`);

  const conf = readNamedFile(env, 'DOCKER_CONFIG', 'config.v2.json', read);
  const cid = conf.doc.ID;
  if (typeof cid !== 'string' || !CONTAINER_ID_RE.test(cid)) {
    throw new HookInputError(`DOCKER_CONFIG file ${conf.file}: ID must be the container ID, got ${JSON.stringify(cid)}`);
  }
  if (cid !== id) throw new HookInputError(`DOCKER_CONFIG file ${conf.file} is for container ${cid}, the OCI state for ${id}`);
  const config = conf.doc.Config ?? {};
  if (!isObject(config)) throw new HookInputError(`DOCKER_CONFIG file ${conf.file}: Config must be an object`);
  const rawLabels = config.Labels ?? {};
  if (!isObject(rawLabels)) throw new HookInputError(`DOCKER_CONFIG file ${conf.file}: Config.Labels must be an object`);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawLabels)) {
    if (typeof v !== 'string') throw new HookInputError(`DOCKER_CONFIG file ${conf.file}: label ${k} must be a string`);
    labels[k] = v;
  }
  return {
    containerId: cid, pid, ...(bundle ? { bundle } : {}), labels, networkMode: mode,
    ...(host.doc.PortBindings !== undefined && host.doc.PortBindings !== null ? { portBindings: host.doc.PortBindings } : {}),
  };
}

function readStdin(): string {
  try {
    return fs.readFileSync(0, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') throw new HookInputError('stdin is not readable (non-blocking); pass the OCI state on stdin');
    throw e;
  }
}

function say(phase: HookPhase, text: string): void {
  process.stderr.write(`cniglue ${phase}: ${text}\n`);
}

/** Run the hook; the exit code. poststop always answers 0. */
export function runHook(phase: HookPhase, settings: GlueSettings, env: NodeJS.ProcessEnv = process.env): number {
  const failed = phase === 'poststop' ? 0 : 1;
  let input: HookInput;
  let network: string;
  let args: [string, string][];
  let ports: PortConversion;
  try {
    input = parseHookInput(readStdin(), env, phase);
    const sel = selectNetwork(input);
    if ('skip' in sel) {
      say(phase, `container ${input.containerId.slice(0, 12)} skipped: ${sel.skip}`);
      return 0;
    }
    network = sel.network;
    args = cniArgsFor(input.labels);
    try {
      ports = portMappingsFrom(input.portBindings);
    } catch (e) {
      throw new HookInputError(`DOCKER_HOST_CONFIG file ${env.DOCKER_HOST_CONFIG}: ${(e as Error).message}`);
    }
  } catch (e) {
    say(phase, `${(e as Error).message}; nothing was changed`);
    return failed;
  }
  const portMappings = ports.mappings;
  const published = portMappings.length > 0 ? { portMappings } : {};
  if (phase === 'prestart') {
    for (const why of ports.ignored) say(phase, `container ${input.containerId.slice(0, 12)}: port binding ${why}: not published`);
    const netns = `/proc/${input.pid}/ns/net`;
    try {
      openNetns(netns).close();
    } catch (e) {
      say(phase, `container ${input.containerId.slice(0, 12)}: ${(e as Error).message}; nothing was changed`);
      return failed;
    }
    try {
      const result = glueAdd({ network, containerId: input.containerId, netns, args, ...published }, settings);
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return 0;
    } catch (e) {
      const which = portMappings.length > 0 ? ` (ports ${formatPortMappings(portMappings)})` : '';
      say(phase, `container ${input.containerId.slice(0, 12)} network ${network}${which}: ${(e as Error).message}`);
      return failed;
    }
  }
  try {
    glueDel({ network, containerId: input.containerId, netns: '', args, ...published }, settings);
  } catch (e) {
    say(phase, `container ${input.containerId.slice(0, 12)} network ${network}: ${(e as Error).message} (ignored: poststop never fails)`);
  }
  return 0;
}
