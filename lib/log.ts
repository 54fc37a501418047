// Plugin logging to a file as JSON lines (config `logToFile`, an absolute
// path: the schemas refuse others). Every record names the plugin, command,
// container and interface; steps are logged only with `isDebugLevel`. The
// file is opened append-only and never through a symlink, and it is rotated
// at LOG_MAX_BYTES (one old file kept), so a debug level left on cannot fill
// the disk. Logging never fails a plugin.
import fs from 'node:fs';

import { nowMs } from './clock.ts';
import { type NetlinkTrace, netlinkTrace, setNetlinkTrace } from './netlink/trace.ts';

export interface LogContext {
  plugin: string;
  command: string;
  containerId: string;
  ifname: string;
}

/** Rotate when the file has grown past this: `<file>.1` keeps the previous part. */
export const LOG_MAX_BYTES = 10 * 1024 * 1024;
const O_NOFOLLOW = 0o400000;
const O_CLOEXEC = 0o2000000;

export class Logger {
  private readonly file?: string;
  private readonly debug: boolean;
  private readonly ctx: LogContext;
  private readonly started = nowMs();
  private fd: number | undefined;
  private trace: NetlinkTrace | undefined;

  constructor(ctx: LogContext, file?: string, debug = false) {
    this.ctx = ctx;
    this.file = file || undefined;
    this.debug = debug && !!this.file;
    // Debug level records every kernel request too.
    if (this.debug) {
      this.trace = (op, dt, error) => this.write({ step: 'netlink', op, outcome: error ? 'error' : 'ok', durationMs: Math.round(dt * 100) / 100, ...(error ? { error: error.message } : {}) });
      setNetlinkTrace(this.trace);
    }
  }

  /** Run one named step; its duration is logged at debug level. */
  step<T>(step: string, fn: () => T): T {
    if (!this.debug) return fn();
    const t0 = nowMs();
    try {
      const out = fn();
      this.stepDone(step, t0);
      return out;
    } catch (e) {
      this.stepDone(step, t0, { error: e });
      throw e;
    }
  }

  /** step() for an asynchronous step. */
  async stepAsync<T>(step: string, fn: () => Promise<T>): Promise<T> {
    if (!this.debug) return fn();
    const t0 = nowMs();
    try {
      const out = await fn();
      this.stepDone(step, t0);
      return out;
    } catch (e) {
      this.stepDone(step, t0, { error: e });
      throw e;
    }
  }

  private stepDone(step: string, t0: number, failed?: { error: unknown }): void {
    this.write(failed ? { step, outcome: 'error', durationMs: ms(t0), error: (failed.error as Error)?.message } : { step, outcome: 'ok', durationMs: ms(t0) });
  }

  detail(step: string, fields: Record<string, unknown>): void {
    if (this.debug) this.write({ step, ...fields });
  }

  /** The final record of a command: always written when logging to a file. */
  finish(outcome: 'ok' | 'error', fields: Record<string, unknown> = {}): void {
    // processMs: since the process started, so start-up cost shows in the log too.
    this.write({ step: 'done', outcome, durationMs: ms(this.started), processMs: Math.round(nowMs()), startedAtMs: Math.round(this.started), ...fields });
    // A long-running process (the agent's fast path) runs many commands: leave nothing open behind.
    if (this.trace && netlinkTrace() === this.trace) setNetlinkTrace(undefined);
    this.trace = undefined;
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already gone
      }
      this.fd = undefined;
    }
  }

  private write(fields: Record<string, unknown>): void {
    if (!this.file) return;
    const record = { time: new Date().toISOString(), ...this.ctx, ...fields };
    try {
      this.fd ??= openLog(this.file);
      fs.writeSync(this.fd, `${JSON.stringify(record)}\n`);
    } catch {
      // A full disk or a bad path must not turn into a failed pod start.
    }
  }
}

/** Open for appending (no symlink followed); a file past the cap becomes `<file>.1` first. */
function openLog(file: string): number {
  const flags = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | O_NOFOLLOW | O_CLOEXEC;
  const fd = fs.openSync(file, flags, 0o600);
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new Error(`${file} is not a regular file`);
  }
  if (st.size < LOG_MAX_BYTES) return fd;
  fs.closeSync(fd);
  // Concurrent plugins may both rotate: at worst one old part is lost, never the disk.
  fs.renameSync(file, `${file}.1`);
  return fs.openSync(file, flags, 0o600);
}

function ms(t0: number): number {
  return Math.round((nowMs() - t0) * 100) / 100;
}
