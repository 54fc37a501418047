// Reads and validates the CNI_* environment of one plugin invocation.

import { CniError, ERR_INVALID_ENV, ERR_UNKNOWN_CONTAINER } from './errors.ts';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';

export const CNI_COMMANDS: readonly CniCommand[] = Object.freeze(['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION']);

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** '' when not given (allowed for DEL, GC, STATUS). */
  netns: string;
  ifname: string;
  /** Raw CNI_ARGS; parse with parseCniArgs. */
  args: string;
  /** CNI_PATH split on ':' with empty entries removed. */
  path: readonly string[];
}

type EnvVar = 'CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME' | 'CNI_PATH';

// Required variables per command, in the order they are reported when missing.
// PATH for ADD/CHECK/DEL/STATUS is a Go skel addition we keep for compatibility.
const REQUIRED: Record<CniCommand, readonly EnvVar[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Linux IFNAMSIZ is 16 bytes including the terminating NUL. */
export const MAX_IFNAME_BYTES = 15;

export function isCniCommand(v: string): v is CniCommand {
  return (CNI_COMMANDS as readonly string[]).includes(v);
}

export function validateContainerId(id: string): void {
  if (id === '') throw new CniError(ERR_UNKNOWN_CONTAINER, 'missing containerID');
  if (!CONTAINER_ID_RE.test(id)) {
    throw new CniError(ERR_INVALID_ENV, 'invalid characters in containerID', id);
  }
}

export function validateIfName(name: string): void {
  if (name === '') throw new CniError(ERR_INVALID_ENV, 'interface name is empty');
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_IFNAME_BYTES) {
    throw new CniError(
      ERR_INVALID_ENV,
      'interface name is too long',
      `interface name "${name}" is ${bytes} bytes, at most ${MAX_IFNAME_BYTES} allowed`,
    );
  }
  if (name === '.' || name === '..') {
    throw new CniError(ERR_INVALID_ENV, 'interface name is . or ..', name);
  }
  if (/[/:\s\u0085]/u.test(name)) {
    throw new CniError(ERR_INVALID_ENV, 'interface name contains / or : or whitespace characters', JSON.stringify(name));
  }
}

/**
 * Validates the environment for the command in CNI_COMMAND. Empty values count as missing.
 * Variables a command does not require are passed through unvalidated (GC/STATUS get dummies from some runtimes).
 */
export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const get = (k: string): string => env[k] ?? '';
  const command = get('CNI_COMMAND');
  if (command === '') {
    throw new CniError(ERR_INVALID_ENV, 'required env variables [CNI_COMMAND] missing');
  }
  if (!isCniCommand(command)) {
    throw new CniError(ERR_INVALID_ENV, `unknown CNI_COMMAND: ${command}`);
  }

  const required = REQUIRED[command];
  const missing = required.filter((k) => get(k) === '');
  if (missing.length > 0) {
    throw new CniError(ERR_INVALID_ENV, `required env variables [${missing.join(',')}] missing`);
  }

  const containerId = get('CNI_CONTAINERID');
  const ifname = get('CNI_IFNAME');
  if (required.includes('CNI_CONTAINERID')) validateContainerId(containerId);
  if (required.includes('CNI_IFNAME')) validateIfName(ifname);

  return {
    command,
    containerId,
    netns: get('CNI_NETNS'),
    ifname,
    args: get('CNI_ARGS'),
    path: get('CNI_PATH')
      .split(':')
      .filter((p) => p !== ''),
  };
}
