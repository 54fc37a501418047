// CNI error codes and the error type every layer throws.
// A CniError is what ends up on stdout as `{cniVersion, code, msg, details}`.

export const ERR_INCOMPATIBLE_VERSION = 1;
export const ERR_UNSUPPORTED_FIELD = 2;
export const ERR_UNKNOWN_CONTAINER = 3;
export const ERR_INVALID_ENV = 4;
export const ERR_IO = 5;
export const ERR_DECODE = 6;
export const ERR_INVALID_CONFIG = 7;
export const ERR_INVALID_NETNS = 8;
export const ERR_TRY_AGAIN_LATER = 11;
/** STATUS: the plugin cannot serve ADD requests right now. */
export const ERR_NOT_AVAILABLE = 50;
/** STATUS: existing containers may be degraded. */
export const ERR_DEGRADED = 51;
export const ERR_INTERNAL = 999;

export class CniError extends Error {
  readonly code: number;
  readonly msg: string;
  readonly details?: string;

  constructor(code: number, msg: string, details?: string, options?: { cause?: unknown }) {
    super(details ? `${msg}: ${details}` : msg, options);
    this.name = 'CniError';
    this.code = code;
    this.msg = msg;
    if (details) this.details = details;
  }
}

export interface CniErrorJSON {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** Any thrown value as a CniError; untyped errors become 999 with their message only (never a stack). */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof Error) {
    return new CniError(ERR_INTERNAL, e.message || e.name || 'internal error', undefined, { cause: e });
  }
  const text = typeof e === 'string' ? e : safeString(e);
  return new CniError(ERR_INTERNAL, text || 'internal error', undefined, { cause: e });
}

/** The error object printed on stdout. `details` is left out when empty. */
/** An error is read by people and logged by runtimes: input echoed into it (a 1 MiB cniVersion) is cut. */
export const MAX_ERROR_TEXT = 4096;

export function errorJSON(err: unknown, cniVersion: string): CniErrorJSON {
  const e = toCniError(err);
  const out: CniErrorJSON = { cniVersion, code: e.code, msg: capText(e.msg) };
  if (e.details) out.details = capText(e.details);
  return out;
}

function capText(s: string): string {
  return s.length <= MAX_ERROR_TEXT ? s : `${s.slice(0, MAX_ERROR_TEXT)}… (${s.length - MAX_ERROR_TEXT} more characters)`;
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return '';
  }
}
