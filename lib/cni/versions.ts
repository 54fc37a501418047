// CNI spec versions this project speaks, and version arithmetic.

import { CniError, ERR_INCOMPATIBLE_VERSION } from './errors.ts';

export const CURRENT_VERSION = '1.1.0';

export const SUPPORTED_VERSIONS: readonly string[] = Object.freeze([
  '0.1.0',
  '0.2.0',
  '0.3.0',
  '0.3.1',
  '0.4.0',
  '1.0.0',
  '1.1.0',
]);

export interface VersionInfo {
  cniVersion: string;
  supportedVersions: string[];
}

export function isSupportedVersion(v: string): boolean {
  return SUPPORTED_VERSIONS.includes(v);
}

/** Parses "X.Y.Z" (plain decimal numbers only). */
export function parseVersion(v: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) throw new CniError(ERR_INCOMPATIBLE_VERSION, `invalid version "${v}"`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  for (let i = 0; i < 3; i++) {
    if (pa[i] !== pb[i]) return pa[i] - pb[i];
  }
  return 0;
}

export function versionAtLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/** The VERSION command reply. A fresh object each call so callers cannot mutate shared state. */
export function versionInfoJSON(): VersionInfo {
  return { cniVersion: CURRENT_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}
