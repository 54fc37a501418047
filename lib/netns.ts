// Network namespaces: open and validate a netns path, and run a synchronous
// function inside one. Thread rules (docs/ARCHITECTURE.md, "Namespaces and threads"): setns switches only
// the main thread, so the switched section must be synchronous, must not start
// async I/O, and must restore the original netns in `finally`.
import fs from 'node:fs';

import { native } from './native.ts';

const NSFS_MAGIC = 0x6e736673;
const CLONE_NEWNET = 0x40000000;
const SELF_NETNS = '/proc/thread-self/ns/net';

export class NetnsError extends Error {
  /** 'missing': the path does not exist; 'invalid': it exists but is not a netns. */
  readonly reason: 'missing' | 'invalid';
  readonly path: string;

  constructor(path: string, reason: 'missing' | 'invalid', detail: string) {
    super(`${reason === 'missing' ? 'network namespace not found' : 'not a network namespace'}: ${path} (${detail})`);
    this.name = 'NetnsError';
    this.reason = reason;
    this.path = path;
  }
}

/** An open network namespace; close() it when done. */
export interface Netns {
  readonly path: string;
  readonly fd: number;
  close(): void;
}

/** Open a netns path (/proc/<pid>/ns/net, /var/run/netns/<name>) after checking it is nsfs. */
export function openNetns(path: string): Netns {
  let type: number;
  try {
    type = fs.statfsSync(path).type;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new NetnsError(path, code === 'ENOENT' || code === 'ESRCH' ? 'missing' : 'invalid', code);
  }
  if (type !== NSFS_MAGIC) throw new NetnsError(path, 'invalid', 'not on nsfs');
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | 0o2000000 /* O_CLOEXEC */);
  } catch (e) {
    throw new NetnsError(path, 'missing', (e as NodeJS.ErrnoException).code ?? 'open failed');
  }
  // A /proc/<pid>/ns/* file of another type (mnt, uts…) is nsfs too. (A bind
  // mount shows its path here; setns then rejects a wrong type with EINVAL.)
  const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
  if (/^[a-z_]+:\[\d+\]$/.test(target) && !target.startsWith('net:[')) {
    fs.closeSync(fd);
    throw new NetnsError(path, 'invalid', `is ${target}`);
  }
  let closed = false;
  return {
    path,
    fd,
    close() {
      if (!closed) fs.closeSync(fd);
      closed = true;
    },
  };
}

/** Identity of the netns behind a path ("net:[4026531840]"); undefined if unreadable. */
export function netnsId(path: string): string | undefined {
  try {
    const st = fs.statSync(path);
    return `net:[${st.ino}]`;
  } catch {
    return undefined;
  }
}

export function currentNetnsId(): string {
  return fs.readlinkSync(SELF_NETNS);
}

let poolWarm = false;

/**
 * Run fn with the main thread inside the given netns, then switch back.
 * fn must be synchronous: a returned promise is rejected outright.
 */
export function withNetnsSync<T>(ns: Netns | number, fn: () => T): T {
  // libuv pool threads inherit the netns of the thread that creates them:
  // make sure they exist, created here in the original netns, before switching.
  if (!poolWarm) {
    // One thread is plenty for a plugin, and each extra one costs at exit.
    process.env.UV_THREADPOOL_SIZE ??= '1';
    fs.stat('/', () => {});
    poolWarm = true;
  }
  const targetFd = typeof ns === 'number' ? ns : ns.fd;
  const before = currentNetnsId();
  const saved = fs.openSync(SELF_NETNS, fs.constants.O_RDONLY | 0o2000000);
  try {
    native().setns(targetFd, CLONE_NEWNET);
    try {
      const result = fn();
      if (result && typeof (result as { then?: unknown }).then === 'function') {
        throw new Error('withNetnsSync: the function must be synchronous');
      }
      return result;
    } finally {
      native().setns(saved, CLONE_NEWNET);
      const after = currentNetnsId();
      if (after !== before) throw new Error(`netns not restored: ${after} instead of ${before}`);
    }
  } finally {
    fs.closeSync(saved);
  }
}
