// Driving a plugin the way a runtime does, for integration tests.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ownerMark } from '../../lib/hostveth.ts';
import { fastPathEnv } from './fastpath-agents.ts';
import { baseEnv, BIN, runExe, type RunResult, type TestNetns, trackPid, untrackPid } from './harness.ts';

/** The alias our plugins put on a host veth of this attachment. */
export function markOf(plugin: string, containerId: string, network: string, ifname = 'eth0'): string {
  return ownerMark(plugin, { containerId, ifname }, network);
}

export const CNI_PATH = `${BIN}:/usr/lib/cni`;

export interface Attach {
  plugin: string;
  host: TestNetns;
  conf: object;
  containerId: string;
  netns?: string;
  ifname?: string;
  args?: string;
  extraEnv?: Record<string, string>;
}

export function cniEnv(cmd: string, a: Attach): Record<string, string | undefined> {
  return {
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: a.containerId,
    CNI_NETNS: a.netns ?? '',
    CNI_IFNAME: a.ifname ?? 'eth0',
    CNI_PATH,
    CNI_ARGS: a.args,
    ...a.extraEnv,
  };
}

export function cni(cmd: 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION', a: Attach): RunResult {
  return runExe(a.plugin, { netns: a.host, env: cniEnv(cmd, a), stdin: a.conf });
}

/** Start a plugin without waiting (for concurrency tests). */
export function cniAsync(cmd: string, a: Attach): Promise<RunResult> {
  const env: Record<string, string> = { ...baseEnv(), ...fastPathEnv(a.plugin, a.host.name, BIN) };
  for (const [k, v] of Object.entries(cniEnv(cmd, a))) if (v !== undefined) env[k] = v;
  const t0 = performance.now();
  const child = spawn('ip', ['netns', 'exec', a.host.name, path.join(BIN, a.plugin)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  trackPid(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdin.end(JSON.stringify(a.conf));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      untrackPid(child.pid);
      let json: unknown;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json, ms: performance.now() - t0 });
    });
  });
}

/** The run succeeded (exit 0); the message shows what the plugin said otherwise. */
export function assertOk(r: { code: number | null; stdout: string; stderr: string }): void {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** The run failed with exactly one CNI error object of this code, whose msg + details match. */
export function assertCniError(r: { code: number | null; stdout: string }, code: number, msg: RegExp): void {
  assert.equal(r.code, 1, r.stdout);
  const e = JSON.parse(r.stdout) as { code: number; msg: string; details?: string };
  assert.equal(e.code, code, r.stdout);
  assert.match(`${e.msg} ${e.details ?? ''}`, msg);
}

/** The veth links in a netns, by name (except the given ones, e.g. an uplink). */
export function vethNames(ns: TestNetns, except: string[] = []): string[] {
  return links(ns).filter((l) => l.linkinfo?.info_kind === 'veth' && !except.includes(l.ifname)).map((l) => l.ifname);
}

/** host-local IPAM sections, each with a data dir of its own under `dataDir`. */
export function hostLocalIpam(dataDir: () => string): (ranges: string[], extra?: object) => Record<string, unknown> {
  let seq = 0;
  return (ranges, extra = {}) => ({ type: 'host-local', ranges: ranges.map((subnet) => [{ subnet }]), dataDir: path.join(dataDir(), `n${++seq}`), ...extra });
}

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return dir;
}

export interface IpLink {
  ifname: string;
  ifindex: number;
  mtu: number;
  address: string;
  flags: string[];
  master?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string; info_slave_kind?: string; info_slave_data?: Record<string, unknown>; info_data?: Record<string, unknown> };
}

export function links(ns: TestNetns): IpLink[] {
  return ns.ipJson<IpLink[]>('-d', 'link', 'show');
}

export function ping(from: TestNetns, ip: string): boolean {
  return from.exec('ping', ['-c', '1', '-W', '2', ip], { allowFail: true }).status === 0;
}

/**
 * The parts of a 0.3.0+ result whose shape depends on the version: ips[].version
 * only before 1.0.0, `"dns":{}` printed only before 1.0.0, interface mtu only in 1.1.0.
 */
export function assertCurrentShape(res: Record<string, unknown>, version: string, containerIface: number): void {
  const ips = res.ips as { version?: string; interface: number }[];
  const ifaces = res.interfaces as { mtu?: number }[];
  assert.equal(ips[0]!.interface, containerIface);
  if (version.startsWith('0.')) {
    assert.equal(ips[0]!.version, '4');
    assert.deepEqual(res.dns, {});
  } else {
    assert.equal(ips[0]!.version, undefined);
    assert.equal(res.dns, undefined);
  }
  assert.equal(ifaces[containerIface]!.mtu !== undefined, version === '1.1.0', `mtu only in 1.1.0 (${version})`);
}
