// Cross-process lock: flock(2) on a file under /run. The lock is released by
// the kernel if the process dies, so a crashed plugin never wedges the node.
import fs from 'node:fs';
import path from 'node:path';
import { native } from './native.ts';

const LOCK_EX = 2;
const LOCK_UN = 8;

export const LOCK_DIR = process.env.CATTLE_CNI_LOCK_DIR ?? '/run/cattle-cni';

export interface Lock {
  release(): void;
}

/** Block until the named lock is held. Names are file names under LOCK_DIR. */
export function acquireLock(name: string): Lock {
  if (name.includes('/') || name.startsWith('.')) throw new Error(`invalid lock name: ${name}`);
  fs.mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
  const fd = fs.openSync(path.join(LOCK_DIR, name), fs.constants.O_RDWR | fs.constants.O_CREAT | 0o2000000, 0o600);
  try {
    native().flock(fd, LOCK_EX);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      try {
        native().flock(fd, LOCK_UN);
      } finally {
        fs.closeSync(fd);
      }
    },
  };
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
