// Starting a delegate (an IPAM plugin) cheaply: posix_spawn through the addon
// instead of child_process, whose fork copies this process's page tables
// (measured: 2 ms from a fresh plugin, 5 ms from the agent at 80 MiB RSS, and
// it blocks the event loop meanwhile). stdin is written whole, stdout read to
// EOF (through the event loop only in the agent), stderr inherited (the
// delegate's log, as the spec says).
import fs from 'node:fs';
import os from 'node:os';

import { native } from './native.ts';
import { readFdToEnd, sleepMs } from './stdio.ts';

export interface Finished {
  stdout: Buffer;
  /** Exit code, or null when killed by a signal. */
  status: number | null;
  signal: string | null;
}

/** Run file with env, stdin as given; fds become 3, 4, … in the child. */
export function runPiped(file: string, env: Record<string, string | undefined>, stdin: Buffer, inheritFds: number[] = []): Promise<Finished> {
  const envp = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  const [pid, stdinFd, stdoutFd] = native().spawnPiped(file, [file], envp, inheritFds);
  try {
    writeAll(stdinFd, stdin);
  } catch {
    // a delegate that exits without reading stdin is judged by its exit status
  } finally {
    fs.closeSync(stdinFd);
  }
  return readingAsync ? collectAsync(pid, stdoutFd) : collectBlocking(pid, stdoutFd);
}

let readingAsync = false;

/**
 * For a process that serves many requests at once (the agent's fast path):
 * delegates' output is read through the event loop. A one-shot plugin reads
 * it with blocking reads instead, as soon as it next yields to the event loop
 * (its kernel work done, it awaits the delegate): node:net's Socket would load
 * the stream stack, ~2 ms of every plugin start.
 */
export function readDelegatesAsync(): void {
  readingAsync = true;
}

function collectBlocking(pid: number, stdoutFd: number): Promise<Finished> {
  return new Promise((resolve, reject) => setImmediate(() => {
    try {
      let stdout: Buffer;
      try {
        stdout = readFdToEnd(stdoutFd);
      } finally {
        fs.closeSync(stdoutFd);
      }
      // stdout closes as the delegate exits: the exit status follows within moments
      // (a delegate that lingers after closing it is waited for with longer pauses).
      let r = native().reap(pid);
      for (let pauseMs = 0.05; r === null; pauseMs = Math.min(pauseMs * 2, 10)) {
        sleepMs(pauseMs);
        r = native().reap(pid);
      }
      resolve(finished(stdout, r));
    } catch (e) {
      reject(e);
    }
  }));
}

function finished(stdout: Buffer, r: [number, number]): Finished {
  return { stdout, status: r[0] >= 0 ? r[0] : null, signal: r[1] >= 0 ? signalName(r[1]) : null };
}

function collectAsync(pid: number, stdoutFd: number): Promise<Finished> {
  const { Socket } = process.getBuiltinModule('node:net');
  const out = new Socket({ fd: stdoutFd, readable: true, writable: false });
  const chunks: Buffer[] = [];
  out.on('data', (d: Buffer) => chunks.push(d));
  return new Promise((resolve) => {
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      const r = native().reap(pid);
      if (r === null) {
        setTimeout(finish, 1); // stdout closed a moment before the exit
        return;
      }
      settled = true;
      resolve(finished(Buffer.concat(chunks), r));
    };
    out.on('error', () => out.destroy());
    out.on('close', finish);
  });
}

function writeAll(fd: number, data: Buffer): void {
  for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off, data.length - off);
}

function signalName(n: number): string {
  return Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}
