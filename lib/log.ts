// Plugin logging to a file as JSON lines (config `logToFile`). Every record
// names the plugin, command, container and interface; steps are logged only
// with `isDebugLevel`. Logging never fails a plugin.
import fs from 'node:fs';
import { setNetlinkTrace } from './netlink/trace.ts';

export interface LogContext {
  plugin: string;
  command: string;
  containerId: string;
  ifname: string;
}

export class Logger {
  private readonly file?: string;
  private readonly debug: boolean;
  private readonly ctx: LogContext;
  private readonly started = performance.now();

  constructor(ctx: LogContext, file?: string, debug = false) {
    this.ctx = ctx;
    this.file = file || undefined;
    this.debug = debug && !!this.file;
    // Debug level records every kernel request too.
    if (this.debug) {
      setNetlinkTrace((op, dt, error) => this.write({ step: 'netlink', op, outcome: error ? 'error' : 'ok', durationMs: Math.round(dt * 100) / 100, ...(error ? { error: error.message } : {}) }));
    }
  }

  /** Run one named step; its duration is logged at debug level. */
  step<T>(step: string, fn: () => T): T {
    if (!this.debug) return fn();
    const t0 = performance.now();
    try {
      const out = fn();
      this.write({ step, outcome: 'ok', durationMs: ms(t0) });
      return out;
    } catch (e) {
      this.write({ step, outcome: 'error', durationMs: ms(t0), error: (e as Error).message });
      throw e;
    }
  }

  detail(step: string, fields: Record<string, unknown>): void {
    if (this.debug) this.write({ step, ...fields });
  }

  /** The final record of a command: always written when logging to a file. */
  finish(outcome: 'ok' | 'error', fields: Record<string, unknown> = {}): void {
    // processMs: since the process started, so start-up cost shows in the log too.
    this.write({ step: 'done', outcome, durationMs: ms(this.started), processMs: Math.round(performance.now()), startedAtMs: Math.round(this.started), ...fields });
  }

  private write(fields: Record<string, unknown>): void {
    if (!this.file) return;
    const record = { time: new Date().toISOString(), ...this.ctx, ...fields };
    try {
      fs.appendFileSync(this.file, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    } catch {
      // A full disk or a bad path must not turn into a failed pod start.
    }
  }
}

function ms(t0: number): number {
  return Math.round((performance.now() - t0) * 100) / 100;
}
