// Plugin harness: turns one process invocation (env + stdin) into a typed request for a plugin,
// and guarantees the protocol's output rules (one JSON object on stdout, exit 0 or 1).

import { statSync } from 'node:fs';

import type { ArgPair } from './cni/args.ts';
import { parseCniArgs } from './cni/args.ts';
import type { NetConf } from './cni/config.ts';
import { parseConfig } from './cni/config.ts';
import { type CniEnv, parseEnv } from './cni/env.ts';
import { CniError, ERR_INVALID_NETNS, ERR_IO, errorJSON, toCniError } from './cni/errors.ts';
import type { Result } from './cni/result.ts';
import { formatResult } from './cni/result.ts';
import { CURRENT_VERSION, isSupportedVersion, SUPPORTED_VERSIONS, versionInfoJSON } from './cni/versions.ts';
import { fdIsTTY, processStdin, writeFdFully, writeStderrQuietly } from './stdio.ts';

export { readFdToEnd } from './stdio.ts';

export type PluginCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';

/** A plugin's request: the CNI environment (lib/cni/env.ts) with CNI_ARGS parsed, the config and stdin. */
export interface CniRequest extends Omit<CniEnv, 'command' | 'args'> {
  command: PluginCommand;
  args: ArgPair[];
  rawArgs: string;
  config: NetConf;
  /** The exact bytes received, for delegating to IPAM plugins. */
  stdin: Buffer;
  env: Record<string, string | undefined>;
}

export interface PluginSpec {
  name: string;
  version: string;
  about?: string;
  add(req: CniRequest): Promise<Result> | Result;
  del(req: CniRequest): Promise<void> | void;
  check?(req: CniRequest): Promise<void> | void;
  gc?(req: CniRequest): Promise<void> | void;
  status?(req: CniRequest): Promise<void> | void;
}

export interface PluginIO {
  env: Record<string, string | undefined>;
  readStdin(): Buffer;
  writeStdout(s: string): void;
  writeStderr(s: string): void;
  stdinIsTTY: boolean;
}

const OWN_NETNS = '/proc/self/ns/net';

export function usageText(spec: PluginSpec): string {
  const lines = [`CNI ${spec.name} plugin ${spec.version}`];
  if (spec.about) lines.push(spec.about);
  lines.push(
    'usage: run by a container runtime with CNI_COMMAND=ADD|DEL|CHECK|GC|STATUS|VERSION, the other CNI_* variables',
    '       in the environment and the network configuration as JSON on stdin',
    `CNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}`,
  );
  return lines.join('\n') + '\n';
}

/** Runs one invocation; resolves to the exit code (0 success, 1 error). Never rejects. */
export async function runPlugin(spec: PluginSpec, io: PluginIO): Promise<number> {
  const command = io.env.CNI_COMMAND ?? '';
  if (command === '') {
    // Run by hand: explain ourselves, never wait on stdin.
    io.writeStderr(usageText(spec));
    return 0;
  }
  if (command === 'VERSION') {
    // Runtimes probe every plugin with VERSION: answer without reading stdin.
    return emit(io, JSON.stringify(versionInfoJSON()) + '\n') ? 0 : 1;
  }

  let stdin: Buffer | undefined;
  let errorVersion: string | undefined;
  let output = '';
  try {
    const env = parseEnv(io.env);
    const pluginCommand = env.command as PluginCommand; // VERSION was answered above
    stdin = readStdin(io);
    const config = parseConfig(stdin, pluginCommand);
    errorVersion = config.cniVersion;
    // A malformed CNI_ARGS must not block teardown: only ADD and CHECK reject it.
    const lenient = pluginCommand !== 'ADD' && pluginCommand !== 'CHECK';
    const req: CniRequest = {
      command: pluginCommand,
      containerId: env.containerId,
      netns: env.netns,
      ifname: env.ifname,
      args: parseCniArgs(env.args, { lenient }),
      rawArgs: env.args,
      path: env.path,
      config,
      stdin,
      env: io.env,
    };
    if (pluginCommand === 'ADD' || pluginCommand === 'DEL') {
      checkNotOwnNetns(req.netns, io.env.CNI_NETNS_OVERRIDE);
    }
    output = await dispatch(spec, req);
  } catch (e) {
    const err = toCniError(e);
    if (io.env.CNI_DEBUG_STACK) writeStack(io, err);
    const version = errorVersion ?? (stdin ? declaredVersion(stdin) : undefined) ?? CURRENT_VERSION;
    emit(io, JSON.stringify(errorJSON(err, version)) + '\n');
    return 1;
  }
  // Written only after everything succeeded, so stdout never carries a result and an error.
  if (output !== '' && !emit(io, output)) return 1;
  return 0;
}

async function dispatch(spec: PluginSpec, req: CniRequest): Promise<string> {
  switch (req.command) {
    case 'ADD': {
      const result = (await spec.add(req)) ?? {};
      return JSON.stringify(formatResult(result, req.config.cniVersion)) + '\n';
    }
    case 'DEL':
      await spec.del(req);
      return '';
    case 'CHECK':
      await spec.check?.(req);
      return '';
    case 'GC':
      await spec.gc?.(req);
      return '';
    case 'STATUS':
      await spec.status?.(req);
      return '';
  }
}

function readStdin(io: PluginIO): Buffer {
  // A terminal is never a network configuration; reading it would block waiting for a human.
  if (io.stdinIsTTY) return Buffer.alloc(0);
  try {
    return io.readStdin();
  } catch (e) {
    throw new CniError(ERR_IO, 'error reading from stdin', e instanceof Error ? e.message : String(e), { cause: e });
  }
}

/** Go skel rule: ADD/DEL must not target the plugin's own netns (it would rewire the host). */
function checkNotOwnNetns(netns: string, override: string | undefined): void {
  if (netns === '') return;
  if (override !== undefined && (override === '1' || override.toLowerCase() === 'true')) return;
  let target, own;
  try {
    target = statSync(netns, { bigint: true });
    own = statSync(OWN_NETNS, { bigint: true });
  } catch {
    return; // a missing netns is for the plugin to judge (DEL must succeed without it)
  }
  if (target.ino === own.ino && target.dev === own.dev) {
    throw new CniError(ERR_INVALID_NETNS, "plugin's netns and netns from CNI_NETNS should not be the same", netns);
  }
}

/** cniVersion of a config that failed validation, when it is a version we can answer in. */
function declaredVersion(stdin: Buffer): string | undefined {
  try {
    const raw: unknown = JSON.parse(stdin.toString('utf8'));
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
    const v = (raw as Record<string, unknown>).cniVersion;
    if (v === undefined || v === '') return '0.1.0';
    return typeof v === 'string' && isSupportedVersion(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function writeStack(io: PluginIO, err: CniError): void {
  const source = err.cause instanceof Error ? err.cause : err;
  try {
    io.writeStderr(`${source.stack ?? String(source)}\n`);
  } catch {
    // diagnostics must never change the outcome
  }
}

function emit(io: PluginIO, s: string): boolean {
  try {
    io.writeStdout(s);
    return true;
  } catch (e) {
    try {
      io.writeStderr(`cannot write to stdout: ${e instanceof Error ? e.message : String(e)}\n`);
    } catch {
      // nothing left to report to
    }
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The real process

/** stdin/stdout/stderr of this process, using synchronous fd I/O so nothing is lost on exit. */
export function processIO(): PluginIO {
  return {
    env: process.env,
    stdinIsTTY: fdIsTTY(0),
    readStdin: processStdin,
    writeStdout: (s) => writeFdFully(1, s),
    writeStderr: writeStderrQuietly,
  };
}

/** Entry point for a plugin executable. */
export async function pluginMain(spec: PluginSpec): Promise<void> {
  process.exitCode = await runPlugin(spec, processIO());
}
