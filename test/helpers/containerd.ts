// A private containerd for one test file: its own root, state, socket dir,
// config file and log under a directory the test owns, started as a child
// process of the test (never the machine's containerd, never its socket) and
// stopped by its PID. The CRI plugin and every snapshotter but "native" are
// disabled: tests drive it with `ctr`, which needs neither.
//
// oom_score_adj: on these machines the test runs without CAP_SYS_RESOURCE, so
// nothing may lower an oom_score_adj. Only the CRI plugin asks runc for a
// value of its own (kubelet's), which is what CRI's `restrict_oom_score_adj =
// true` is for; `ctr run` puts no oomScoreAdj in the spec, and the shim only
// raises its own (containerd's + 1, always allowed), so with CRI disabled
// nothing here can fail on it. `oom_score = 0` keeps containerd's own as it is.
import { type ChildProcess, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { baseEnv, trackPid, untrackPid } from './harness.ts';

export interface Containerd {
  pid: number;
  /** The gRPC socket (pass as `ctr -a`). */
  socket: string;
  /** The directory everything lives in. */
  dir: string;
  /** containerd's state dir (shims keep their bundles under it). */
  state: string;
  log: string;
  /** `ctr -a <socket> -n <namespace> …`, synchronously. */
  ctr(args: string[], opts?: { allowFail?: boolean; timeoutMs?: number; namespace?: string }): SpawnSyncReturns<string>;
  /** SIGTERM by PID, then SIGKILL when it has not exited within the deadline. Idempotent. */
  stop(deadlineMs?: number): Promise<void>;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** The tail of its log, for failure messages. */
  logTail(lines?: number): string;
}

const toml = (s: string) => JSON.stringify(s);

/** The config file: everything under `dir`, nothing on TCP, no debug or metrics listener. */
export function containerdConfig(dir: string): string {
  return [
    'version = 2',
    `root = ${toml(path.join(dir, 'root'))}`,
    `state = ${toml(path.join(dir, 'state'))}`,
    `temp = ${toml(path.join(dir, 'tmp'))}`,
    'oom_score = 0',
    'disabled_plugins = [',
    '  "io.containerd.grpc.v1.cri",',
    '  "io.containerd.snapshotter.v1.aufs",',
    '  "io.containerd.snapshotter.v1.btrfs",',
    '  "io.containerd.snapshotter.v1.devmapper",',
    '  "io.containerd.snapshotter.v1.overlayfs",',
    '  "io.containerd.snapshotter.v1.zfs",',
    '  "io.containerd.tracing.processor.v1.otlp",',
    '  "io.containerd.internal.v1.tracing",',
    ']',
    '',
    '[grpc]',
    `  address = ${toml(path.join(dir, 'run', 'containerd.sock'))}`,
    '[ttrpc]',
    '  address = ""',
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    '',
    '[plugins]',
    '  [plugins."io.containerd.internal.v1.opt"]',
    `    path = ${toml(path.join(dir, 'opt'))}`,
    '',
  ].join('\n');
}

/** Waits until `file` exists: an fs.watch event on its directory, checked once more after the watch is set up. */
function waitForFile(file: string, child: ChildProcess, deadlineMs: number, what: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const dir = path.dirname(file);
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      watcher.close();
      clearTimeout(timer);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const watcher = fs.watch(dir, () => { if (fs.existsSync(file)) finish(); });
    const onExit = (code: number | null, signal: string | null) => finish(new Error(`containerd exited (${code ?? signal}) before ${file} appeared\n${what()}`));
    child.on('exit', onExit);
    const timer = setTimeout(() => finish(new Error(`${file} did not appear within ${deadlineMs} ms\n${what()}`)), deadlineMs);
    if (fs.existsSync(file)) finish();
  });
}

/**
 * Starts containerd with its own directory tree under `dir` (which must exist) and resolves
 * when it answers on its socket. On failure it is stopped again before the promise rejects.
 */
export async function startContainerd(dir: string, opts: { namespace: string; deadlineMs?: number }): Promise<Containerd> {
  for (const d of ['root', 'state', 'tmp', 'run', 'opt']) fs.mkdirSync(path.join(dir, d), { recursive: true, mode: 0o700 });
  const config = path.join(dir, 'config.toml');
  fs.writeFileSync(config, containerdConfig(dir));
  const socket = path.join(dir, 'run', 'containerd.sock');
  const log = path.join(dir, 'containerd.log');
  const logFd = fs.openSync(log, 'a');
  const child = spawn('containerd', ['--config', config, '--log-level', 'info'], {
    env: { ...baseEnv(), TMPDIR: path.join(dir, 'tmp') },
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new Error('containerd did not start (spawn failed)');
  trackPid(pid);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  child.on('error', () => { /* reported through exit / the socket wait */ });
  const logTail = (lines = 30) => {
    try {
      return fs.readFileSync(log, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  let stopped: Promise<void> | undefined;
  const stop = (deadlineMs = 30_000): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), deadlineMs); });
        if (await Promise.race([exited, late]) === 'late') {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
          await exited;
        }
        clearTimeout(timer);
      }
      untrackPid(pid);
    })();
    return stopped;
  };
  const ctr: Containerd['ctr'] = (args, o = {}) => {
    const r = spawnSync('ctr', ['-a', socket, '-n', o.namespace ?? opts.namespace, ...args], {
      env: baseEnv(), encoding: 'utf8', timeout: o.timeoutMs ?? 60_000,
    });
    if (!o.allowFail && r.status !== 0) {
      throw new Error(`ctr ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim()}${r.error ? ` ${r.error.message}` : ''}\n--- containerd log (tail) ---\n${logTail(15)}`);
    }
    return r;
  };
  try {
    await waitForFile(socket, child, opts.deadlineMs ?? 60_000, () => `--- containerd log (tail) ---\n${logTail()}`);
    // The socket exists once containerd listens; `ctr version` proves it serves.
    const v = ctr(['version'], { allowFail: true, timeoutMs: 30_000 });
    if (v.status !== 0) throw new Error(`containerd does not answer on ${socket}: ${(v.stderr || v.stdout).trim()}\n${logTail()}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid, socket, dir, state: path.join(dir, 'state'), log, ctr, stop, exited, logTail };
}
