// Integration-test harness: fresh network namespaces, the built executable run
// exactly as a runtime runs it (env + stdin), and cleanup that also runs when a
// test fails. Tests may use `ip` to build and inspect; plugins never do.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after } from 'node:test';

import { fastPathEnv, stopAllAgents } from './fastpath-agents.ts';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const BIN = process.env.CATTLE_CNI_BIN ?? path.join(ROOT, 'dist', 'bin');

let counter = 0;
const namespaces = new Set<string>();
const pids = new Set<number>();
// Registered when this module loads, so the hook belongs to the test file's
// root: registered from inside a running test, node:test would run it when
// that test ends and delete namespaces that concurrent tests still use.
// Fast-path mode: the agents stop first (SIGTERM), and each must have served.
after(stopAllAgents);
after(cleanupAll);
process.on('exit', cleanupAll);

export function cleanupAll(): void {
  try {
    stopAllAgents();
  } catch {
    // reported by the after hook
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  pids.clear();
  // Deleting a netns destroys its veths (and their host peers).
  for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  namespaces.clear();
}

/** Track a process the test started, so cleanup stops it by PID. */
export function trackPid(pid: number | undefined): void {
  if (pid !== undefined) pids.add(pid);
}

export function untrackPid(pid: number | undefined): void {
  if (pid !== undefined) pids.delete(pid);
}

export function sh(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, timeout: 30_000 });
  if (!opts.allowFail && r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  }
  return r;
}

export interface TestNetns {
  name: string;
  path: string;
  /** Run a command inside this netns. */
  exec(cmd: string, args: string[], opts?: { input?: string; allowFail?: boolean }): SpawnSyncReturns<string>;
  /** `ip -j …` inside this netns, parsed. */
  ipJson<T = unknown>(...args: string[]): T;
  destroy(): void;
}

/** A fresh netns named <prefix>-<pid>-<n>, with lo up; removed after the test file. */
export function makeNetns(prefix: string): TestNetns {
  const name = `${prefix}-${process.pid}-${++counter}`;
  sh('ip', ['netns', 'add', name]);
  namespaces.add(name);
  const exec = (cmd: string, args: string[], opts = {}) => sh('ip', ['netns', 'exec', name, cmd, ...args], opts);
  exec('ip', ['link', 'set', 'lo', 'up']);
  return {
    name,
    path: `/var/run/netns/${name}`,
    exec,
    ipJson<T>(...args: string[]): T {
      const out = exec('ip', ['-j', ...args]).stdout.trim();
      return (out ? JSON.parse(out) : []) as T;
    },
    destroy() {
      sh('ip', ['netns', 'del', name], { allowFail: true });
      namespaces.delete(name);
    },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON when it is JSON. */
  json?: unknown;
  ms: number;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  stdin?: string | object;
  args?: string[];
  /** Run inside this netns (the test's "host"). */
  netns?: TestNetns;
  timeoutMs?: number;
}

/** A clean base environment: no Node-level variables leak in from the test runner. */
export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
}

/** Run dist/bin/<name> as a runtime does: env + stdin, result on stdout. */
export function runExe(name: string, opts: RunOptions = {}): RunResult {
  const exe = path.join(BIN, name);
  if (!fs.existsSync(exe)) throw new Error(`${exe} missing: run npm run build first`);
  const env: Record<string, string> = { ...baseEnv(), ...fastPathEnv(name, opts.netns?.name, BIN) };
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;
  const input = typeof opts.stdin === 'string' ? opts.stdin : opts.stdin === undefined ? '' : JSON.stringify(opts.stdin);
  const [cmd, args] = opts.netns
    ? ['ip', ['netns', 'exec', opts.netns.name, exe, ...(opts.args ?? [])]]
    : [exe, opts.args ?? []];
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { env, input, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000 });
  const ms = performance.now() - t0;
  let json: unknown;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json, ms };
}

/** Links in the root netns, for "left nothing behind" checks. */
export function rootLinkNames(): string[] {
  const out = sh('ip', ['-j', 'link', 'show']).stdout;
  return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname).sort();
}

/** Namespaces this test process made and still has (others may run tests in parallel). */
export function netnsNames(): string[] {
  return sh('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)
    .filter((n) => n.includes(`-${process.pid}-`)).sort();
}
