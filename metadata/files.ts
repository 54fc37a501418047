// Replacing a served file: editors of one file take turns (an flock on its
// directory, released by the kernel if the editor dies), and each writes a
// temporary file in the same directory and renames it over the target, so a
// watching server never reads half a file and no edit is lost to another.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { native } from '../lib/native.ts';

const LOCK_EX = 2;
const LOCK_UN = 8;

// Edits in this process take turns here first: the flock blocks the thread, so a second edit of
// the same directory in the same process must not reach it while the first one holds it.
const queues = new Map<string, Promise<unknown>>();

/** Run `fn` holding the edit lock of `file` (its directory must exist). */
export function withEditLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const dir = path.dirname(path.resolve(file));
  const run = (queues.get(dir) ?? Promise.resolve()).then(() => locked(dir, fn));
  const tail = run.catch(() => undefined);
  queues.set(dir, tail);
  void tail.then(() => {
    if (queues.get(dir) === tail) queues.delete(dir);
  });
  return run;
}

async function locked<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (e) {
    throw new Error(`cannot open ${dir}: ${(e as Error).message}`, { cause: e });
  }
  try {
    native().flock(fd, LOCK_EX);
    return await fn();
  } finally {
    try {
      native().flock(fd, LOCK_UN);
    } catch {
      // closing releases it anyway
    }
    fs.closeSync(fd);
  }
}

/** Write `text` via a temporary file in the same directory renamed over `file` (keeping its mode). */
export async function replaceFile(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  let mode = 0o644;
  try {
    mode = fs.statSync(file).mode & 0o777;
  } catch {
    // a new file
  }
  await fs.promises.writeFile(tmp, text, { mode });
  try {
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}
