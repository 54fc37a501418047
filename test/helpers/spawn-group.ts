// Running a command as its own process group, asynchronously, for the kill
// sweep and the fuzz suite: a hard timeout and a cap on the number of
// processes in the group (a plugin that delegates to itself forks without
// end), both enforced by SIGKILL to the whole group; processes of the group
// still alive after the leader exited are reported and killed. Everything is
// by process id / process group id, never by name.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

import { trackPid, untrackPid } from './harness.ts';

export interface GroupRunOptions {
  env: Record<string, string>;
  stdin?: string | Buffer;
  cwd?: string;
  /** SIGKILL the whole group after this long (default 20 s). */
  timeoutMs?: number;
  /** SIGKILL the whole group when it holds more processes than this (default 24). */
  maxProcs?: number;
  /** Keep at most this much of stdout and of stderr (default 1 MiB each). */
  maxOutputBytes?: number;
}

export interface GroupRunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Killed because it ran longer than timeoutMs. */
  timedOut: boolean;
  /** Killed because the group grew beyond maxProcs: how many processes were counted. */
  runaway?: number;
  /** Processes of the group still running after the leader exited (then killed). */
  stragglers: number;
  /** stdout or stderr was cut at maxOutputBytes. */
  truncated: boolean;
  ms: number;
}

const liveGroups = new Set<number>();
let exitHook = false;

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // the group is gone
  }
}

/** Kill every process group this module started and that may still run. */
export function killAllGroups(): void {
  for (const g of liveGroups) killGroup(g);
  liveGroups.clear();
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose process group is pgid (zombies excluded), from /proc. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...: comm may contain spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] !== 'Z' && Number(rest[2]) === pgid) out.push(Number(name));
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function runGroup(argv: string[], opts: GroupRunOptions): Promise<GroupRunResult> {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', killAllGroups);
  }
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const maxProcs = opts.maxProcs ?? 24;
  const cap = opts.maxOutputBytes ?? 1 << 20;
  const t0 = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { env: opts.env, cwd: opts.cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  const pgid = child.pid;
  if (pgid === undefined) {
    return new Promise((resolve) => child.on('error', (e) => resolve({
      code: null, signal: null, stdout: '', stderr: `spawn failed: ${e.message}`, timedOut: false, stragglers: 0, truncated: false, ms: 0,
    })));
  }
  liveGroups.add(pgid);
  trackPid(pgid);
  let timedOut = false;
  let runaway: number | undefined;
  let truncated = false;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let outBytes = 0;
  let errBytes = 0;
  child.stdout.on('data', (d: Buffer) => {
    if (outBytes < cap) out.push(d.subarray(0, cap - outBytes));
    else truncated = true;
    outBytes += d.length;
  });
  child.stderr.on('data', (d: Buffer) => {
    if (errBytes < cap) err.push(d.subarray(0, cap - errBytes));
    else truncated = true;
    errBytes += d.length;
  });
  child.stdin.on('error', () => {
    // the command exited without reading all of stdin: judged by its exit
  });
  child.stdin.end(opts.stdin ?? '');
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(pgid);
  }, timeoutMs);
  // Most runs end within a few hundred ms: only then start counting processes.
  let watchdog: NodeJS.Timeout | undefined;
  const startWatch = setTimeout(() => {
    watchdog = setInterval(() => {
      const n = groupMembers(pgid).length;
      if (n > maxProcs) {
        runaway = n;
        killGroup(pgid);
      }
    }, 100);
  }, 250);

  return new Promise((resolve) => {
    let code: number | null = null;
    let signal: NodeJS.Signals | null = null;
    let stragglers = 0;
    let exited: Promise<void> | undefined;
    child.on('exit', (c, s) => {
      code = c;
      signal = s;
      clearTimeout(timer);
      clearTimeout(startWatch);
      if (watchdog) clearInterval(watchdog);
      exited = (async () => {
        // A zombie child being reaped by init can linger a moment: look twice.
        for (let i = 0; i < 5 && groupAlive(pgid); i++) await sleep(20);
        if (groupAlive(pgid)) {
          stragglers = Math.max(1, groupMembers(pgid).length);
          killGroup(pgid);
        }
      })();
    });
    child.on('close', async () => {
      await exited;
      liveGroups.delete(pgid);
      untrackPid(pgid);
      resolve({
        code, signal, timedOut, runaway, stragglers, truncated,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - t0,
      });
    });
  });
}

/** A counting semaphore: at most n tasks at once. */
export function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    // A waiter inherits the slot of the task that finishes: never more than n.
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    else active++;
    try {
      return await fn();
    } finally {
      const next = queue.shift();
      if (next) next();
      else active--;
    }
  };
}
