// `cattle-cni add|check|del|gc|status <net> <netns>`: cnitool's commands with
// cnitool's environment and container ID, so entries made by one can be
// removed by the other. Extra: CNI_CACHE_DIR moves the result cache (tests).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { toCniError } from '../lib/cni/errors.ts';
import { versionAtLeast } from '../lib/cni/versions.ts';
import { cacheFilePath, DEFAULT_CACHE_DIR } from '../lib/runtime/cache.ts';
import type { NetworkList } from '../lib/runtime/conf.ts';
import { loadNetworkList } from '../lib/runtime/conf.ts';
import type { RuntimeConf, RuntimeOptions } from '../lib/runtime/runtime.ts';
import {
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  gcNetworkList,
  getCachedResult,
  statusNetworkList,
} from '../lib/runtime/runtime.ts';

export const CNITOOL_COMMANDS = ['add', 'check', 'del', 'gc', 'status'] as const;
export type CnitoolCommand = (typeof CNITOOL_COMMANDS)[number];

export const DEFAULT_NETCONFPATH = '/etc/cni/net.d';

const USAGE = `usage: cattle-cni add|check|del|gc|status <net> <netns-path>
  e.g. cattle-cni add cattle-bridge /var/run/netns/demo  (after: ip netns add demo)
environment: NETCONFPATH (default ${DEFAULT_NETCONFPATH}), CNI_PATH, CNI_ARGS, CAP_ARGS (JSON),
  CNI_IFNAME (default eth0), CNI_CACHE_DIR (default ${DEFAULT_CACHE_DIR})
`;

/** Exit status of a usage error (cli/main.ts: EXIT_USAGE); a failed command is 1. */
const EXIT_USAGE = 2;

/** A failure the user can act on: the message says what to do. */
class CnitoolFailure extends Error {}

/** ADD and CHECK need the namespace; DEL does not (it must succeed after the netns is gone). */
function requireNetns(netns: string): void {
  try {
    fs.statSync(netns);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const named = netns.startsWith('/var/run/netns/') || netns.startsWith('/run/netns/');
      const create = named ? `create it first (ip netns add ${path.basename(netns)})` : 'create it first';
      throw new CnitoolFailure(`network namespace ${netns} does not exist: ${create}, or give the path of an existing one (e.g. /proc/<pid>/ns/net)`);
    }
    throw new CnitoolFailure(`cannot use network namespace ${netns}: ${code ?? (e as Error).message}`);
  }
}

/**
 * CHECK compares with what ADD cached. Without a cached result (never added, or deleted since) the
 * plugins would only complain about a missing prevResult; say what is actually wrong instead.
 */
function requireAdded(list: NetworkList, rt: RuntimeConf, opts: RuntimeOptions, netnsArg: string): void {
  // Below 0.4.0 and with disableCheck, checkNetworkList answers by itself.
  if (!versionAtLeast(list.cniVersion, '0.4.0') || list.disableCheck) return;
  let cached: unknown;
  try {
    cached = getCachedResult(list, rt, opts);
  } catch {
    return; // an unreadable entry: checkNetworkList reports it
  }
  if (cached !== undefined) return;
  const file = cacheFilePath(opts.cacheDir ?? DEFAULT_CACHE_DIR, { network: list.name, containerId: rt.containerId, ifname: rt.ifname });
  throw new CnitoolFailure(`nothing was added for this container on network "${list.name}" (no cached result ${file}): `
    + `run "cattle-cni add ${list.name} ${netnsArg}" first`);
}

/** What the user can do about a plugin that is not where CNI_PATH says. */
function withHint(message: string, env: NodeJS.ProcessEnv): string {
  if (/failed to find plugin|no paths provided to find plugin/.test(message)) {
    const now = env.CNI_PATH ? `CNI_PATH is ${env.CNI_PATH}` : 'CNI_PATH is not set';
    return `${message} (${now}; set it to the plugin directories, e.g. CNI_PATH=/opt/cni/bin:/usr/lib/cni)`;
  }
  return message;
}

/** cnitool's container ID: "cnitool-" + hex of the first 10 bytes of sha512(absolute netns path). */
export function cnitoolContainerId(netnsPath: string): string {
  return `cnitool-${createHash('sha512').update(netnsPath).digest().subarray(0, 10).toString('hex')}`;
}

/** CNI_ARGS as cnitool reads it: "K=V" pairs split on ";", each with a non-empty key and value. */
export function parseCnitoolArgs(raw: string): [string, string][] {
  return raw
    .split(';')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const kv = pair.split('=');
      if (kv.length !== 2 || kv[0] === '' || kv[1] === '') throw new Error(`invalid CNI_ARGS pair ${JSON.stringify(pair)}`);
      return [kv[0]!, kv[1]!];
    });
}

function parseCapArgs(raw: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new Error(`CAP_ARGS is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('CAP_ARGS must be a JSON object');
  return v as Record<string, unknown>;
}

/** Runs one command; the result JSON (add) goes to stdout, errors to stderr. Returns the exit code. */
export function runCnitool(command: CnitoolCommand, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  if (args.length !== 2 || args.includes('')) {
    const got = args.length === 2 ? 'an empty argument' : `${args.length} argument${args.length === 1 ? '' : 's'}`;
    process.stderr.write(`cattle-cni ${command}: needs a network name and a netns path, got ${got}\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    const [network, netnsArg] = args as [string, string];
    const list = loadNetworkList(env.NETCONFPATH || DEFAULT_NETCONFPATH, network);
    const netns = path.resolve(netnsArg);
    if (command === 'add' || command === 'check') requireNetns(netns);
    const rt: RuntimeConf = {
      containerId: cnitoolContainerId(netns),
      netns,
      // Set but empty stays empty (and is refused), as in cnitool.
      ifname: env.CNI_IFNAME ?? 'eth0',
      args: env.CNI_ARGS ? parseCnitoolArgs(env.CNI_ARGS) : [],
      capabilityArgs: env.CAP_ARGS ? parseCapArgs(env.CAP_ARGS) : {},
    };
    const opts: RuntimeOptions = {
      path: (env.CNI_PATH ?? '').split(':').filter((dir) => dir !== ''),
      cacheDir: env.CNI_CACHE_DIR || undefined,
      env,
    };
    switch (command) {
      case 'add':
        process.stdout.write(`${JSON.stringify(addNetworkList(list, rt, opts), null, 4)}\n`);
        break;
      case 'check':
        requireAdded(list, rt, opts, netnsArg);
        checkNetworkList(list, rt, opts);
        break;
      case 'del':
        delNetworkList(list, rt, opts);
        break;
      case 'gc':
        // Like cnitool: no valid attachments, so every cached attachment of the network goes.
        gcNetworkList(list, undefined, opts);
        break;
      case 'status':
        statusNetworkList(list, opts);
        break;
    }
    return 0;
  } catch (e) {
    const message = e instanceof CnitoolFailure ? e.message : withHint(toCniError(e).message, env);
    process.stderr.write(`cattle-cni ${command}: ${message}\n`);
    return 1;
  }
}
