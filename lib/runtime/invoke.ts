// Finding and running one plugin the way libcni's pkg/invoke does: env + stdin in,
// result or error JSON out. Synchronous on purpose: a runtime call is one exec.
import { spawnSync } from 'node:child_process';

import type { CniEnv } from '../cni/env.ts';
import { CniError, ERR_DECODE, ERR_INTERNAL } from '../cni/errors.ts';

/** What the runtime tells a plugin through CNI_* variables. */
/** What a runtime passes a plugin in CNI_* variables: the one shape of the CNI environment (lib/cni/env.ts). */
export type PluginCall = CniEnv;

export interface ExecOptions {
  /** Environment the CNI_* variables are added to (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Kill the plugin after this long (default: no limit, as libcni without a deadline). */
  timeoutMs?: number;
  /** Exec retries on ETXTBSY ("text file busy": the binary is being replaced) and the pause between them. */
  busyRetries?: number;
  busyDelayMs?: number;
  /** Receives what a plugin wrote to stderr (its logs); default: this process's stderr. */
  onStderr?: (text: string, pluginPath: string) => void;
}

/** A plugin that failed: its own CNI error, or what we could tell from exit status and output. */
export class PluginError extends CniError {
  readonly pluginPath: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderr: string;

  constructor(
    code: number,
    msg: string,
    details: string | undefined,
    failure: { pluginPath: string; exitCode: number | null; signal: string | null; stderr: string },
  ) {
    super(code, msg, details);
    this.name = 'PluginError';
    this.pluginPath = failure.pluginPath;
    this.exitCode = failure.exitCode;
    this.signal = failure.signal;
    this.stderr = failure.stderr;
  }
}

export { findInPath } from '../plugin-path.ts';

/** The caller's environment plus the six CNI_* variables (always set, possibly empty), which win. */
export function pluginEnv(call: PluginCall, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  env.CNI_COMMAND = call.command;
  env.CNI_CONTAINERID = call.containerId;
  env.CNI_NETNS = call.netns;
  env.CNI_ARGS = call.args;
  env.CNI_IFNAME = call.ifname;
  env.CNI_PATH = call.path.join(':');
  return env;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs the plugin with `stdin`; returns its stdout, or throws the plugin's error. */
export function execPlugin(pluginPath: string, stdin: string, call: PluginCall, opts: ExecOptions = {}): string {
  const env = pluginEnv(call, opts.env);
  const retries = opts.busyRetries ?? 5;
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync(pluginPath, [], {
      input: stdin,
      env,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: opts.timeoutMs,
      killSignal: 'SIGKILL',
    });
    let err = r.error as NodeJS.ErrnoException | undefined;
    // A plugin may exit without reading its stdin (VERSION, early failures): the plugin ran,
    // so its exit status and output count, not our failed write.
    if (err?.code === 'EPIPE' && (r.status !== null || r.signal !== null)) err = undefined;
    // The binary may be in the middle of being replaced: wait and try again, as libcni does.
    if (err?.code === 'ETXTBSY' && attempt < retries) {
      sleepSync(opts.busyDelayMs ?? 1000);
      continue;
    }
    const failure = { pluginPath, exitCode: r.status, signal: r.signal, stderr: r.stderr ?? '' };
    if (err && err.code === 'ETIMEDOUT') {
      throw new PluginError(ERR_INTERNAL, `plugin ${pluginPath} timed out after ${opts.timeoutMs} ms`, undefined, failure);
    }
    if (err) {
      throw new PluginError(ERR_INTERNAL, `failed to execute plugin ${pluginPath}`, err.message, failure);
    }
    if (r.status !== 0) throw pluginFailure(r.stdout, failure);
    if (failure.stderr !== '') (opts.onStderr ?? writeStderr)(failure.stderr, pluginPath);
    return r.stdout;
  }
}

function writeStderr(text: string): void {
  process.stderr.write(text);
}

function exitText(exitCode: number | null, signal: string | null): string {
  return signal ? `signal: ${signal}` : `exit status ${exitCode}`;
}

/** The error a failed plugin reported on stdout, or a description built from exit status and stderr. */
export function pluginFailure(
  stdout: string,
  failure: { pluginPath: string; exitCode: number | null; signal: string | null; stderr: string },
): PluginError {
  const how = exitText(failure.exitCode, failure.signal);
  if (stdout.trim() === '') {
    const stderr = failure.stderr.trim();
    const msg = stderr === ''
      ? `netplugin failed with no error message: ${how}`
      : `netplugin failed: ${JSON.stringify(stderr)}: ${how}`;
    return new PluginError(ERR_INTERNAL, msg, undefined, failure);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (e) {
    return new PluginError(
      ERR_DECODE,
      `netplugin failed but error parsing its diagnostic message ${JSON.stringify(stdout.trim())}: ${(e as Error).message}`,
      undefined,
      failure,
    );
  }
  const o = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const code = typeof o.code === 'number' ? o.code : undefined;
  const msg = typeof o.msg === 'string' ? o.msg : undefined;
  if (code === undefined && msg === undefined) {
    return new PluginError(
      ERR_DECODE,
      `netplugin failed (${how}) with output that is not a CNI error: ${JSON.stringify(stdout.trim())}`,
      undefined,
      failure,
    );
  }
  const details = typeof o.details === 'string' && o.details !== '' ? o.details : undefined;
  return new PluginError(code ?? ERR_INTERNAL, msg ?? `netplugin failed: ${how}`, details, failure);
}

/** Runs the plugin and reads its stdout as JSON (undefined when it printed nothing). */
export function execPluginJSON(pluginPath: string, conf: unknown, call: PluginCall, opts: ExecOptions = {}): unknown {
  const stdout = execPlugin(pluginPath, JSON.stringify(conf), call, opts);
  if (stdout.trim() === '') return undefined;
  try {
    return JSON.parse(stdout);
  } catch (e) {
    throw new CniError(ERR_DECODE, `plugin ${pluginPath} printed output that is not JSON`, (e as Error).message);
  }
}
