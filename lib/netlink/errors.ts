// Kernel errors as typed errors carrying the errno name (EEXIST, ENODEV…).
import os from 'node:os';

let names: Map<number, string> | undefined;

export function errnoName(errno: number): string {
  if (!names) {
    names = new Map();
    for (const [name, num] of Object.entries(os.constants.errno)) if (!names.has(num)) names.set(num, name);
  }
  return names.get(errno) ?? `E${errno}`;
}

export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  /** What was being done, e.g. "add address 10.1.2.3/24 on eth0". */
  readonly operation: string;
  /** The kernel's extended-ack text, if any. */
  readonly kernelMessage?: string;

  constructor(operation: string, errno: number, kernelMessage?: string) {
    const code = errnoName(errno);
    super(`${operation}: ${code}${kernelMessage ? ` (${kernelMessage})` : ''}`);
    this.name = 'NetlinkError';
    this.errno = errno;
    this.code = code;
    this.operation = operation;
    this.kernelMessage = kernelMessage;
  }
}

export function isErrno(e: unknown, ...codes: string[]): boolean {
  return e instanceof Error && codes.includes((e as { code?: string }).code ?? '');
}

/**
 * A reply the decoder cannot read: a bad TLV, a fixed-size attribute of the
 * wrong length, a header shorter than its struct. `where` names the message
 * and the attribute path, e.g. "RTM_NEWLINK IFLA_LINKINFO/IFLA_INFO_DATA/IFLA_VXLAN_PORT".
 */
export class NetlinkDecodeError extends Error {
  readonly where: string;
  readonly detail: string;

  constructor(where: string, detail: string) {
    super(`${where}: ${detail}`);
    this.name = 'NetlinkDecodeError';
    this.where = where;
    this.detail = detail;
  }
}

/** Run fn; a kernel error with one of these codes means "already so" and is not an error. */
export function ignoreErrno(fn: () => void, ...codes: string[]): void {
  try {
    fn();
  } catch (e) {
    if (!isErrno(e, ...codes)) throw e;
  }
}
