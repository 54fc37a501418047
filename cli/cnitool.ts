// `cattle-cni add|check|del|gc|status <net> <netns>`: cnitool's commands with
// cnitool's environment and container ID, so entries made by one can be
// removed by the other. Extra: CNI_CACHE_DIR moves the result cache (tests).
import { createHash } from 'node:crypto';
import path from 'node:path';
import { toCniError } from '../lib/spec/errors.ts';
import { loadNetworkList } from '../lib/runtime/conf.ts';
import {
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  gcNetworkList,
  statusNetworkList,
} from '../lib/runtime/runtime.ts';
import type { RuntimeConf, RuntimeOptions } from '../lib/runtime/runtime.ts';

export const CNITOOL_COMMANDS = ['add', 'check', 'del', 'gc', 'status'] as const;
export type CnitoolCommand = (typeof CNITOOL_COMMANDS)[number];

export const DEFAULT_NETCONFPATH = '/etc/cni/net.d';

const USAGE = `usage: cattle-cni add|check|del|gc|status <net> <netns-path>
environment: NETCONFPATH (default ${DEFAULT_NETCONFPATH}), CNI_PATH, CNI_ARGS, CAP_ARGS (JSON),
  CNI_IFNAME (default eth0), CNI_CACHE_DIR (default /var/lib/cni)
`;

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
  if (args.length !== 2) {
    process.stderr.write(USAGE);
    return 1;
  }
  try {
    const [network, netnsArg] = args as [string, string];
    const list = loadNetworkList(env.NETCONFPATH || DEFAULT_NETCONFPATH, network);
    const netns = path.resolve(netnsArg);
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
    const err = toCniError(e);
    process.stderr.write(`cattle-cni ${command}: ${err.message}\n`);
    return 1;
  }
}
