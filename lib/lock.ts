// Cross-process lock: flock(2) on a file under /run. The lock is released by
// the kernel if the process dies, so a crashed plugin never wedges the node.
// A lock file may be removed by its holder (release({ remove: true })): a
// waiter that then wins the flock on the unlinked file sees that the path no
// longer names its file and starts over, so two holders can never coexist.
import fs from 'node:fs';
import path from 'node:path';

import { CniError, ERR_TRY_AGAIN_LATER } from './cni/errors.ts';
import { native } from './native.ts';
import { sleepMs } from './stdio.ts';

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const O_CLOEXEC = 0o2000000;

export const LOCK_DIR = process.env.CATTLE_CNI_LOCK_DIR ?? '/run/cattle-cni';

let waitLimitMs: number | undefined;

/**
 * For a process that serves many requests at once (the agent's fast path): a
 * blocking flock would stall all of them behind a lock held by another
 * process, so waits poll instead and give up after ms with "try again later".
 */
export function limitLockWaits(ms: number): void {
  waitLimitMs = ms;
}

export interface Lock {
  /** The locked file's descriptor: children that inherit it keep the lock while they run. */
  readonly fd: number;
  release(opts?: { remove?: boolean }): void;
}

/** Block until the named lock is held. Names are file names under LOCK_DIR. */
export function acquireLock(name: string): Lock {
  if (name.includes('/') || name.startsWith('.')) throw new Error(`invalid lock name: ${name}`);
  return lockFile(path.join(LOCK_DIR, name), { wait: true })!;
}

/**
 * Lock the file at `file` (created when missing, with its folder). With
 * wait: false, undefined when someone else holds it.
 */
export function lockFile(file: string, opts: { wait: boolean }): Lock | undefined {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const polling = opts.wait && waitLimitMs !== undefined;
  const deadline = polling ? Date.now() + waitLimitMs! : 0;
  for (;;) {
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | O_CLOEXEC, 0o600);
    try {
      native().flock(fd, opts.wait && !polling ? LOCK_EX : LOCK_EX | LOCK_NB);
    } catch (e) {
      fs.closeSync(fd);
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      if (!opts.wait) return undefined;
      if (Date.now() >= deadline) {
        throw new CniError(ERR_TRY_AGAIN_LATER, `${file} is held by another process`, `waited ${waitLimitMs} ms; retry the request`);
      }
      sleepMs(2);
      continue;
    }
    if (sameFile(fd, file)) return heldLock(fd, file);
    fs.closeSync(fd); // the holder removed it while we waited: lock the new one
  }
}

function sameFile(fd: number, file: string): boolean {
  try {
    return fs.fstatSync(fd).ino === fs.statSync(file).ino;
  } catch {
    return false;
  }
}

function heldLock(fd: number, file: string): Lock {
  let held = true;
  return {
    fd,
    release(opts = {}) {
      if (!held) return;
      held = false;
      try {
        if (opts.remove) fs.rmSync(file, { force: true });
        native().flock(fd, LOCK_UN);
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}

/** The names of the lock files in LOCK_DIR. */
export function lockNames(): string[] {
  try {
    return fs.readdirSync(LOCK_DIR, { withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name);
  } catch {
    return [];
  }
}

/** Remove a named lock's file unless someone holds it right now. */
export function removeIdleLock(name: string): void {
  lockFile(path.join(LOCK_DIR, name), { wait: false })?.release({ remove: true });
}

/** Hold the lock for the duration of fn (sync or async). */
export async function withLock<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const lock = acquireLock(name);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
