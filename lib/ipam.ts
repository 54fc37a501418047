// IPAM delegation (spec: "Delegated plugins"). The IPAM plugin named by
// ipam.type is found in CNI_PATH and executed with the caller's environment
// and the same config on stdin. When the type is one of ours and lives in
// this executable, it is called in-process instead: no second Node start.
import path from 'node:path';

import { inheritedFds } from './children.ts';
import { CniError, ERR_INTERNAL, ERR_INVALID_CONFIG } from './cni/errors.ts';
import { parseResult, type Result } from './cni/result.ts';
import { findInPath } from './plugin-path.ts';
import type { CniRequest, PluginCommand, PluginSpec } from './skel.ts';
import { runPiped } from './spawn.ts';

/** How deep delegates may nest (a plugin → its IPAM → …): a cycle stops here, not in a fork bomb. */
export const MAX_DELEGATION_DEPTH = 3;
const DEPTH_ENV = 'CATTLE_CNI_DELEGATION_DEPTH';

const inProcess = new Map<string, () => Promise<PluginSpec>>();
const notIpam = new Set<string>();

/** Declare an IPAM type that this executable implements itself. */
export function registerInProcessIpam(type: string, load: () => Promise<PluginSpec>): void {
  inProcess.set(type, load);
}

/** Declare types that must never be run as IPAM (the executable's own non-IPAM programs). */
export function declareNotIpam(types: readonly string[]): void {
  for (const t of types) notIpam.add(t);
}

/** Fail early (code 7) on an IPAM type that is missing, not an IPAM plugin, or delegated too deep. */
function checkIpamType(req: CniRequest): void {
  ipamType(req);
}

function ipamType(req: CniRequest): string {
  const type = req.config.ipam?.type;
  if (typeof type !== 'string' || type === '') throw new CniError(ERR_INVALID_CONFIG, 'ipam.type is missing', 'the plugin needs an IPAM plugin to get addresses');
  if (notIpam.has(type) || path.basename(type) !== type) {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "ipam.type"', `"${type}" is not an IPAM plugin`);
  }
  const depth = delegationDepth(req);
  if (depth >= MAX_DELEGATION_DEPTH) {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "ipam.type"',
      `"${type}" would be delegate number ${depth + 1} in a row (at most ${MAX_DELEGATION_DEPTH}): the IPAM configuration loops back into a main plugin`);
  }
  return type;
}

function delegationDepth(req: CniRequest): number {
  const n = Number(req.env[DEPTH_ENV] ?? 0);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

export function hasIpam(req: CniRequest): boolean {
  return typeof req.config.ipam?.type === 'string' && req.config.ipam.type !== '';
}

/** Run the IPAM plugin's ADD and return its result. */
export async function ipamAdd(req: CniRequest): Promise<Result> {
  return (await invokeIpam('ADD', req)) ?? {};
}

/**
 * Start IPAM ADD now and collect it later: an executed delegate then runs
 * while this process does its kernel work. The promise never rejects; the
 * outcome carries the error.
 */
function startIpamAdd(req: CniRequest): Promise<IpamOutcome> {
  return ipamAdd(req).then((result) => ({ result }), (error: unknown) => ({ error }));
}

async function ipamDel(req: CniRequest): Promise<void> {
  await invokeIpam('DEL', req);
}

async function ipamCheck(req: CniRequest): Promise<void> {
  await invokeIpam('CHECK', req);
}

async function ipamGc(req: CniRequest): Promise<void> {
  await invokeIpam('GC', req);
}

async function ipamStatus(req: CniRequest): Promise<void> {
  await invokeIpam('STATUS', req);
}

// ---- one attachment's IPAM, or none ------------------------------------------

/** What IPAM ADD gave: the result, or the error (collected later, so the promise never rejects). */
export interface IpamOutcome {
  result?: Result;
  error?: unknown;
}

/**
 * Every IPAM command of one request, as one object: the delegate named by
 * ipam.type, or none at all (NO_IPAM). A caller holds one and never asks which.
 */
export interface Ipam {
  /** The delegate's type; undefined for none. */
  readonly type: string | undefined;
  /** Fail early (code 7) on a type that cannot be run: missing, not an IPAM plugin, nested too deep. */
  validate(): void;
  /** ADD, started now and collected later: an executed delegate runs while the caller works. */
  start(): Promise<IpamOutcome>;
  del(): Promise<void>;
  check(): Promise<void>;
  gc(): Promise<void>;
  status(): Promise<void>;
}

/** The IPAM plugin named by the request's ipam.type (in-process for ours, executed otherwise). */
export function delegatedIpam(req: CniRequest): Ipam {
  return {
    get type() {
      return typeof req.config.ipam?.type === 'string' ? req.config.ipam.type : undefined;
    },
    validate: () => checkIpamType(req),
    start: () => startIpamAdd(req),
    del: () => ipamDel(req),
    check: () => ipamCheck(req),
    gc: () => ipamGc(req),
    status: () => ipamStatus(req),
  };
}

/**
 * No IPAM (an L2-only network): nothing is allocated, released, checked or
 * asked, and no plugin ever runs. ADD's outcome carries no result.
 */
export const NO_IPAM: Ipam = Object.freeze({
  type: undefined,
  validate: () => undefined,
  start: () => Promise.resolve({}),
  del: () => Promise.resolve(),
  check: () => Promise.resolve(),
  gc: () => Promise.resolve(),
  status: () => Promise.resolve(),
});

async function invokeIpam(command: PluginCommand, req: CniRequest): Promise<Result | undefined> {
  const type = ipamType(req);
  const load = inProcess.get(type);
  if (load) return callInProcess(await load(), command, req);
  return execIpam(findInPath(type, req.path), command, req);
}

async function callInProcess(spec: PluginSpec, command: PluginCommand, req: CniRequest): Promise<Result | undefined> {
  const sub: CniRequest = { ...req, command, env: { ...req.env, CNI_COMMAND: command } };
  switch (command) {
    case 'ADD': return spec.add(sub);
    case 'DEL': await spec.del(sub); return undefined;
    case 'CHECK': await spec.check?.(sub); return undefined;
    case 'GC': await spec.gc?.(sub); return undefined;
    case 'STATUS': await spec.status?.(sub); return undefined;
  }
}

/** Execute the delegate without blocking, so the caller can do kernel work meanwhile. */
async function execIpam(file: string, command: PluginCommand, req: CniRequest): Promise<Result | undefined> {
  const name = path.basename(file);
  let run;
  try {
    // Our lock travels with it (lib/children.ts): an orphaned delegate still holds it.
    run = await runPiped(file, { ...req.env, CNI_COMMAND: command, [DEPTH_ENV]: String(delegationDepth(req) + 1) }, req.stdin, inheritedFds());
  } catch (e) {
    throw new CniError(ERR_INTERNAL, `cannot run IPAM plugin ${name}: ${(e as Error).message}`);
  }
  return delegateOutcome(name, command, req, run.stdout.toString('utf8').trim(), run.status, run.signal);
}

function delegateOutcome(name: string, command: PluginCommand, req: CniRequest, out: string, status: number | null, signal: string | null): Result | undefined {
  if (status !== 0) throw delegateError(name, command, out, status, signal);
  if (command !== 'ADD') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch {
    throw new CniError(ERR_INTERNAL, `IPAM plugin ${name} returned invalid JSON`, out.slice(0, 200));
  }
  return parseResult(json, req.config.cniVersion, `IPAM plugin ${name} result`);
}

function delegateError(name: string, command: string, out: string, status: number | null, signal: string | null): CniError {
  if (out) {
    try {
      const e = JSON.parse(out) as { code?: unknown; msg?: unknown; details?: unknown };
      if (typeof e.code === 'number' && typeof e.msg === 'string') {
        return new CniError(e.code, e.msg, typeof e.details === 'string' ? e.details : undefined);
      }
    } catch {
      // fall through: not a CNI error object
    }
  }
  const how = signal ? `was killed by ${signal}` : `exited with code ${status}`;
  return new CniError(ERR_INTERNAL, `IPAM plugin ${name} ${command} failed`, `${how}${out ? `; output: ${out.slice(0, 200)}` : ', no error on stdout'}`);
}
