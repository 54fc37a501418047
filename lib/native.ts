// Loads the tiny C addon (netlink socket in a netns, setns, flock, unix sockets).
// Inside the single executable the addon is an embedded asset: it is written
// to an anonymous O_TMPFILE and dlopen'ed through /proc/self/fd, so nothing is
// left on disk. Outside it (tests run from source), it is loaded from the build.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sea from 'node:sea';

export interface Native {
  /** Netlink socket created inside the netns of nsFd (-1: current), bound to groups. */
  netlinkSocket(nsFd: number, protocol: number, groups: number, recvTimeoutMs: number): number;
  setns(fd: number, nstype: number): number;
  flock(fd: number, operation: number): number;
  gettid(): number;
  /** [pid, uid, gid] of a connected unix socket's peer (SO_PEERCRED). */
  peerCredentials(fd: number): [number, number, number];
  /** A blocking unix stream socket connected to path; reads and writes time out after timeoutMs (EAGAIN). */
  unixConnect(path: string, timeoutMs: number): number;
  /** posix_spawn with stdin and stdout as pipes: [pid, stdin fd, stdout fd]; inheritFds[i] is fd 3+i in the child. */
  spawnPiped(file: string, argv: string[], envp: string[], inheritFds: number[]): [number, number, number];
  /** waitpid(pid, WNOHANG): null while it runs, else [exit code, signal number] (-1 where not applicable). */
  reap(pid: number): [number, number] | null;
}

export const ADDON_ASSET = 'cattle_native.node';
// O_TMPFILE (includes O_DIRECTORY) | O_RDWR, x86_64/arm64 values.
const O_TMPFILE_RDWR = 0o20200000 | 0o2;

let loaded: Native | undefined;

export function native(): Native {
  loaded ??= sea.isSea() ? loadEmbedded() : loadFromDisk();
  return loaded;
}

function dlopen(file: string): Native {
  const mod = { exports: {} as Native };
  process.dlopen(mod, file);
  return mod.exports;
}

function loadFromDisk(): Native {
  const file = process.env.CATTLE_NATIVE_ADDON
    ?? path.join(import.meta.dirname, '..', 'native', 'build', 'Release', ADDON_ASSET);
  return dlopen(file);
}

function loadEmbedded(): Native {
  const bytes = new Uint8Array(sea.getAsset(ADDON_ASSET));
  // A noexec mount refuses dlopen: try several places, report them all.
  const dirs = [process.env.CNI_NATIVE_TMPDIR, '/run', '/dev/shm', os.tmpdir(), path.dirname(process.execPath)]
    .filter((d): d is string => !!d);
  const failures: string[] = [];
  for (const dir of dirs) {
    let fd = -1;
    try {
      fd = fs.openSync(dir, O_TMPFILE_RDWR, 0o700);
      fs.writeSync(fd, bytes);
      // The fd stays open for the life of the process: dlopen de-duplicates by
      // path string, so a reused /proc/self/fd/N could return another library.
      return dlopen(`/proc/self/fd/${fd}`);
    } catch (e) {
      if (fd >= 0) fs.closeSync(fd);
      failures.push(`${dir}: ${(e as Error).message}`);
    }
  }
  throw new Error(`cannot load the embedded native addon (${failures.join('; ')})`);
}
