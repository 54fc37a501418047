// The agent's status: written by the running agent (atomically: temporary file
// + rename) after every reconcile and every change of its metadata state, read
// by `cattle-net status`. Also what the agent socket answers.
import fs from 'node:fs';
import path from 'node:path';

import type { FilterState } from './filter.ts';

export interface ReconcileInfo {
  /** ISO time the reconcile ended. */
  at: string;
  durationMs: number;
  /** Metadata version this reconcile applied. */
  version: string;
  ok: boolean;
  changes: { fdbAdded: number; fdbRemoved: number; neighboursSet: number; neighboursRemoved: number };
  /** Full check against the kernel this time (start, periodic). */
  verified: boolean;
}

export interface AgentStatus {
  pid: number;
  startedAt: string;
  state: 'starting' | 'running' | 'metadata-unreachable' | 'stopped';
  vtep: string;
  bridge: string;
  vni: number;
  metadata: { address: string; reachable: boolean; lastError?: string; retryInMs?: number; since?: string };
  self?: { agentIp: string; vtepMac: string };
  /** Metadata version last applied. */
  version?: string;
  lastReconcile?: ReconcileInfo;
  peers: { ip: string; mac: string }[];
  counts: { fdb: number; neighbours: number };
  /** Permanent entries on the VTEP not made by cattle-net (left as they are), at the last read of the kernel. */
  foreign?: { fdb: number; neighbours: number };
  filter?: FilterState | { backend: 'off' };
  /** Records skipped (bad agent_ip, bad primary_ip…), from the last applied environment. */
  skipped: string[];
  /** Errors of the last reconcile (kernel, filter), and notes on repairs. */
  errors: string[];
  notes: string[];
}

export const STATUS_FILE = 'agent.status.json';
export const APPLIED_FILE = 'agent.applied.json';
export const LOCK_FILE = 'agent.lock';

/** Write JSON atomically (temporary name + rename) so a reader never sees half a file. */
export function writeJsonAtomic(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 1)}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

export function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Status as text for people. */
export function formatStatus(s: AgentStatus, running: boolean): string {
  const lines: string[] = [];
  lines.push(`cattle-net ${running ? `running (pid ${s.pid})` : `not running (last pid ${s.pid})`}, state ${s.state}, since ${s.startedAt}`);
  lines.push(`vtep ${s.vtep} (VNI ${s.vni}) on bridge ${s.bridge}${s.self ? `, agent IP ${s.self.agentIp}, VTEP MAC ${s.self.vtepMac}` : ''}`);
  const md = s.metadata;
  lines.push(`metadata ${md.address}: ${md.reachable ? 'reachable' : `UNREACHABLE${md.since ? ` since ${md.since}` : ''}${md.lastError ? `: ${md.lastError}` : ''}${md.retryInMs !== undefined ? ` (retry in ${md.retryInMs} ms)` : ''}`}`);
  lines.push(`version applied ${s.version ?? '(none)'}`);
  if (s.lastReconcile) {
    const r = s.lastReconcile;
    const c = r.changes;
    lines.push(`last reconcile ${r.at}, ${r.durationMs} ms, ${r.ok ? 'ok' : 'with errors'}${r.verified ? ', verified against the kernel' : ''}: fdb +${c.fdbAdded} -${c.fdbRemoved}, neighbours +${c.neighboursSet} -${c.neighboursRemoved}`);
  }
  lines.push(`entries: ${s.counts.fdb} fdb, ${s.counts.neighbours} neighbours${s.foreign && s.foreign.fdb + s.foreign.neighbours > 0 ? ` (and ${s.foreign.fdb} fdb, ${s.foreign.neighbours} neighbours not made by cattle-net, left as they are)` : ''}`);
  lines.push(`peers (${s.peers.length}): ${s.peers.map((p) => p.ip).join(', ') || '-'}`);
  if (s.filter) lines.push(`filter: ${s.filter.backend}${'members' in s.filter ? `, ${s.filter.members} members, ${s.filter.dropped ?? '?'} packets dropped` : ''}`);
  for (const e of s.errors) lines.push(`error: ${e}`);
  for (const n of s.notes) lines.push(`note: ${n}`);
  for (const k of s.skipped) lines.push(`skipped: ${k}`);
  return `${lines.join('\n')}\n`;
}
