// CNI_ARGS: "K=V;K2=V2" pairs, Go-compatible rules.

import { CniError, ERR_INVALID_ENV } from './errors.ts';

export type ArgPair = [key: string, value: string];

export interface ParseArgsOptions {
  /** Skip malformed pairs instead of failing (teardown must not be blocked by a bad CNI_ARGS). */
  lenient?: boolean;
}

/** Ordered [key, value] pairs. Keys are case-sensitive; empty segments (e.g. a trailing ';') are ignored. */
export function parseCniArgs(raw: string, options: ParseArgsOptions = {}): ArgPair[] {
  const pairs: ArgPair[] = [];
  if (raw === '') return pairs;
  for (const segment of raw.split(';')) {
    if (segment === '') continue;
    const parts = segment.split('=');
    if (parts.length !== 2) {
      if (options.lenient) continue;
      throw new CniError(ERR_INVALID_ENV, `ARGS: invalid pair ${JSON.stringify(segment)}`);
    }
    pairs.push([parts[0], parts[1]]);
  }
  return pairs;
}

/** Value of the last occurrence of key (later pairs override earlier ones, as in Go). */
export function argValue(pairs: readonly ArgPair[], key: string): string | undefined {
  let value: string | undefined;
  for (const [k, v] of pairs) if (k === key) value = v;
  return value;
}

export function ignoreUnknownArgs(pairs: readonly ArgPair[]): boolean {
  const v = argValue(pairs, 'IgnoreUnknown');
  return v !== undefined && (v === '1' || v.toLowerCase() === 'true');
}

/** Rejects keys not in `known` unless IgnoreUnknown=1|true. IgnoreUnknown itself is always known. */
export function checkKnownArgs(pairs: readonly ArgPair[], known: readonly string[]): void {
  const unknown = pairs.map(([k]) => k).filter((k) => k !== 'IgnoreUnknown' && !known.includes(k));
  if (unknown.length === 0 || ignoreUnknownArgs(pairs)) return;
  throw new CniError(ERR_INVALID_ENV, `ARGS: unknown args [${[...new Set(unknown)].join(',')}]`);
}
