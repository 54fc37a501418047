// Small per-attachment files under /run (tmpfs: gone after a reboot, like the
// namespaces they describe): the state record, its temporary twin and the
// attachment's lock, all named by one key. The record is written only while
// the attachment lock is held, so its temporary name needs no pid and DEL can
// always find (and remove) it.
import fs from 'node:fs';
import path from 'node:path';

import { hashHex } from './hash.ts';
import { type Lock, lockFile } from './lock.ts';

export const STATE_DIR = process.env.CATTLE_CNI_STATE_DIR ?? '/run/cattle-cni/state';

/** An attachment, as the spec names it: network, container, interface (per plugin). */
export interface AttachmentKey {
  plugin: string;
  network: string;
  containerId: string;
  ifname: string;
}

/** Every record carries its key, so GC can tell whose it is without the hash. */
export type StateRecord<T> = T & { key: AttachmentKey };

function base(k: AttachmentKey): string {
  return path.join(STATE_DIR, k.plugin, hashHex(`${k.network}\0${k.containerId}\0${k.ifname}`, 32));
}

const stateFile = (k: AttachmentKey) => `${base(k)}.json`;
const tmpFile = (k: AttachmentKey) => `${base(k)}.json.tmp`;
const lockPath = (k: AttachmentKey) => `${base(k)}.lock`;

/** ADD, DEL and GC of one attachment never interleave. */
export function lockAttachment(k: AttachmentKey): Lock {
  return lockFile(lockPath(k), { wait: true })!;
}

/** For GC: the lock only if nobody is working on the attachment right now. */
export function tryLockAttachment(k: AttachmentKey): Lock | undefined {
  return lockFile(lockPath(k), { wait: false });
}

/** Write atomically (temporary file + rename). Call with the attachment lock held. */
export function saveState<T extends object>(k: AttachmentKey, record: T): void {
  const file = stateFile(k);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(tmpFile(k), JSON.stringify({ ...record, key: k }), { mode: 0o600 });
  fs.renameSync(tmpFile(k), file);
}

export function loadState<T>(k: AttachmentKey): StateRecord<T> | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(k), 'utf8')) as StateRecord<T>;
  } catch {
    return undefined;
  }
}

/** The record and its temporary twin; the lock file goes when its holder releases it with remove. */
export function removeState(k: AttachmentKey): void {
  fs.rmSync(stateFile(k), { force: true });
  fs.rmSync(tmpFile(k), { force: true });
}

/** Every record of a plugin (GC); unreadable ones are skipped. */
export function listStates<T>(plugin: string): StateRecord<T>[] {
  const dir = path.join(STATE_DIR, plugin);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: StateRecord<T>[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    try {
      const r = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as StateRecord<T>;
      if (r && typeof r === 'object' && r.key && typeof r.key.containerId === 'string') out.push(r);
    } catch {
      // a record being replaced right now, or garbage: not ours to judge here
    }
  }
  return out;
}

/**
 * GC: remove the files of a plugin that no record explains (a temporary file
 * or a lock left by a process killed before its first record was written).
 * Files of an attachment someone holds the lock of are left alone.
 */
export function removeOrphanFiles(plugin: string): void {
  const dir = path.join(STATE_DIR, plugin);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const records = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length)));
  const leftovers = new Map<string, string[]>();
  for (const n of names) {
    const stem = n.replace(/\.json\.tmp$|\.json\.\d+\.tmp$|\.lock$/, '');
    if (stem === n || records.has(stem)) continue;
    leftovers.set(stem, [...(leftovers.get(stem) ?? []), n]);
  }
  for (const [stem, files] of leftovers) {
    const lock = lockFile(path.join(dir, `${stem}.lock`), { wait: false });
    if (!lock) continue;
    for (const f of files) if (!f.endsWith('.lock')) fs.rmSync(path.join(dir, f), { force: true });
    lock.release({ remove: true });
  }
}
