// Network configuration read from stdin, validated the way the Go skel does.

import type { CniCommand } from './env.ts';
import { CniError, ERR_DECODE, ERR_INCOMPATIBLE_VERSION, ERR_INVALID_CONFIG } from './errors.ts';
import type { Result } from './result.ts';
import { parseResult } from './result.ts';
import { isSupportedVersion, SUPPORTED_VERSIONS, versionAtLeast } from './versions.ts';

export interface IpamConf {
  type?: string;
  [key: string]: unknown;
}

export interface DnsConf {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface NetConf {
  /** Always set; a config without cniVersion is 0.1.0. */
  cniVersion: string;
  /** '' only when parsed for VERSION. */
  name: string;
  /** '' when absent. */
  type: string;
  ipam?: IpamConf;
  dns?: DnsConf;
  /** Raw previous result in the config's version; read it with prevResultOf. */
  prevResult?: unknown;
  runtimeConfig?: Record<string, unknown>;
  args?: Record<string, unknown>;
  capabilities?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Same rule as container IDs. */
const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Oldest config version allowed per command (anything else works from 0.1.0). */
const MIN_VERSION: Partial<Record<CniCommand, string>> = {
  CHECK: '0.4.0',
  GC: '1.1.0',
  STATUS: '1.1.0',
};

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseConfig(stdin: Buffer, command: CniCommand): NetConf {
  const text = stdin.toString('utf8').replace(/^\uFEFF/, '');
  if (text.trim() === '') {
    throw new CniError(ERR_DECODE, 'no network configuration on stdin');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CniError(ERR_DECODE, 'error decoding network config', e instanceof Error ? e.message : String(e));
  }
  if (!isPlainObject(raw)) {
    throw new CniError(ERR_DECODE, 'network config must be a JSON object', `got ${kindOf(raw)}`);
  }

  const conf: Record<string, unknown> = { ...raw };

  // Name first, as the Go skel does, so a nameless config is a config error whatever its version.
  if (command !== 'VERSION') {
    validateNetworkName(conf.name);
  } else if (conf.name !== undefined && typeof conf.name !== 'string') {
    throw new CniError(ERR_INVALID_CONFIG, 'network name must be a string');
  }
  conf.name ??= '';

  if (conf.type !== undefined && typeof conf.type !== 'string') {
    throw new CniError(ERR_INVALID_CONFIG, 'field "type" must be a string', `got ${kindOf(conf.type)}`);
  }
  conf.type ??= '';

  conf.cniVersion = configVersion(conf.cniVersion);
  checkVersionForCommand(conf.cniVersion as string, command);

  for (const key of ['ipam', 'dns', 'runtimeConfig', 'args', 'capabilities']) {
    if (conf[key] === null) {
      delete conf[key]; // JSON null means "not set"
    } else if (conf[key] !== undefined && !isPlainObject(conf[key])) {
      throw new CniError(ERR_INVALID_CONFIG, `field "${key}" must be an object`, `got ${kindOf(conf[key])}`);
    }
  }
  if (conf.ipam !== undefined) {
    const ipamType = (conf.ipam as IpamConf).type;
    if (ipamType !== undefined && typeof ipamType !== 'string') {
      throw new CniError(ERR_INVALID_CONFIG, 'field "ipam.type" must be a string', `got ${kindOf(ipamType)}`);
    }
  }
  if (conf.dns !== undefined) validateDns(conf.dns as Record<string, unknown>);

  return conf as NetConf;
}

export function validateNetworkName(name: unknown): void {
  if (name === undefined || name === null || name === '') {
    throw new CniError(ERR_INVALID_CONFIG, 'missing network name');
  }
  if (typeof name !== 'string') {
    throw new CniError(ERR_INVALID_CONFIG, 'network name must be a string', `got ${kindOf(name)}`);
  }
  if (!NETWORK_NAME_RE.test(name)) {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid characters found in network name', name);
  }
}

function configVersion(v: unknown): string {
  if (v === undefined || v === null || v === '') return '0.1.0';
  if (typeof v !== 'string') {
    throw new CniError(ERR_INVALID_CONFIG, 'field "cniVersion" must be a string', `got ${kindOf(v)}`);
  }
  if (!isSupportedVersion(v)) {
    throw new CniError(
      ERR_INCOMPATIBLE_VERSION,
      'incompatible CNI versions',
      `config is ${JSON.stringify(v)}, plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    );
  }
  return v;
}

function checkVersionForCommand(version: string, command: CniCommand): void {
  const min = MIN_VERSION[command];
  if (min !== undefined && !versionAtLeast(version, min)) {
    throw new CniError(
      ERR_INCOMPATIBLE_VERSION,
      `config version does not allow ${command}`,
      `config is ${JSON.stringify(version)}, ${command} needs ${min} or later`,
    );
  }
}

function validateDns(dns: Record<string, unknown>): void {
  for (const key of ['nameservers', 'search', 'options']) {
    const v = dns[key];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.every((s) => typeof s === 'string'))) {
      throw new CniError(ERR_INVALID_CONFIG, `field "dns.${key}" must be a list of strings`);
    }
  }
  if (dns.domain !== undefined && dns.domain !== null && typeof dns.domain !== 'string') {
    throw new CniError(ERR_INVALID_CONFIG, 'field "dns.domain" must be a string');
  }
}

/** A value the runtime passed for a declared capability, or undefined. */
export function runtimeConfigValue(conf: NetConf, key: string): unknown {
  const rc = conf.runtimeConfig;
  return isPlainObject(rc) ? rc[key] : undefined;
}

/** `args.cni` from the config (takes precedence over CNI_ARGS), or {} when absent or not an object. */
export function argsCni(conf: NetConf): Record<string, unknown> {
  const cni = isPlainObject(conf.args) ? conf.args.cni : undefined;
  return isPlainObject(cni) ? cni : {};
}

/** `prevResult` read into the result model, or undefined when the config has none. */
export function prevResultOf(conf: NetConf): Result | undefined {
  if (conf.prevResult === undefined || conf.prevResult === null) return undefined;
  return parseResult(conf.prevResult, conf.cniVersion);
}

/**
 * Accepts booleans and their string forms ("true"/"false"/"1"/"0", any case) plus numbers 1/0:
 * Rancher-generated files carry values such as `"isDebugLevel":"false"`.
 * Absent values (undefined, null, "") give undefined so callers can apply their own default.
 */
export function parseBool(v: unknown, field: string): boolean | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 1) return true;
  if (v === 0) return false;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0') return false;
  }
  throw new CniError(
    ERR_INVALID_CONFIG,
    `invalid value for "${field}"`,
    `expected a boolean (true/false/"true"/"false"/"1"/"0"), got ${describeValue(v)}`,
  );
}

export interface IntRange {
  min?: number;
  max?: number;
}

/**
 * Accepts integers and decimal integer strings ("1500"); absent values (undefined, null, "") give undefined.
 * Out-of-range and non-integer values are config errors naming the field.
 */
export function parseIntField(v: unknown, field: string, range: IntRange = {}): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  let n: number | undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v)) {
    n = v;
  } else if (typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) {
    const parsed = Number(v.trim());
    if (Number.isSafeInteger(parsed)) n = parsed;
  }
  if (n === undefined) {
    throw new CniError(ERR_INVALID_CONFIG, `invalid value for "${field}"`, `expected an integer, got ${describeValue(v)}`);
  }
  if ((range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max)) {
    throw new CniError(
      ERR_INVALID_CONFIG,
      `invalid value for "${field}"`,
      `${n} is out of range ${range.min ?? '-inf'}..${range.max ?? 'inf'}`,
    );
  }
  return n;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${describeValue(v)}`;
}

function describeValue(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}
