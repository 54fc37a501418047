// Benchmark rows for cattle-ptp: ADD and DEL wall time (median over fresh pod
// netns) and ADD peak RSS, ours (cattle-ptp + host-local) against the
// reference /usr/lib/cni/ptp + host-local, interleaved in one run.
//
// Called by scripts/bench.ts inside its host netns (BENCH_HOST_NETNS set).
// Run on its own (`node scripts/bench-ptp.ts`), it makes a host netns, runs
// itself inside it and removes it afterwards.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { type BenchRow, BIN, cleanEnv, fmtMs, median, NODE, peakRssKiB, podNetns, REF, timeRun } from './bench-lib.ts';

const RUNS = Math.max(20, Number(process.env.BENCH_RUNS ?? 25));
const RSS_RUNS = 3;
const IPAM_ROOT = '/run/ccni-bench-ipam';

interface Side {
  label: string;
  file: string;
  conf: object;
  add: number[];
  del: number[];
  rss: number[];
  failures: string[];
}

function side(label: string, file: string, type: string, subnet: string, dataDir: string): Side {
  const conf = { cniVersion: '1.0.0', name: 'benchptp', type, ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir } };
  return { label, file, conf, add: [], del: [], rss: [], failures: [] };
}

/** One ADD + DEL in a fresh pod netns; with `rss`, the ADD runs under /usr/bin/time instead of being timed. */
function once(s: Side, i: number, mode: 'time' | 'rss' | 'warm'): void {
  const ns = podNetns('ccni-bptp');
  try {
    const env = cleanEnv({ CNI_CONTAINERID: `bptp-${s.label}-${mode}-${i}`, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: `${BIN}:${REF}` });
    const conf = JSON.stringify(s.conf);
    if (mode === 'rss') {
      s.rss.push(peakRssKiB(s.file, [], { ...env, CNI_COMMAND: 'ADD' }, conf));
    } else {
      const a = timeRun(s.file, [], { ...env, CNI_COMMAND: 'ADD' }, conf);
      if (a.status !== 0) s.failures.push(`ADD: ${a.stdout}${a.stderr}`.trim());
      if (mode === 'time') s.add.push(a.ms);
    }
    const d = timeRun(s.file, [], { ...env, CNI_COMMAND: 'DEL' }, conf);
    if (d.status !== 0) s.failures.push(`DEL: ${d.stdout}${d.stderr}`.trim());
    if (mode === 'time') s.del.push(d.ms);
  } finally {
    ns.del();
  }
}

function measure(): BenchRow[] {
  const dirs = [`${IPAM_ROOT}/ptp-ours-${process.pid}`, `${IPAM_ROOT}/ptp-ref-${process.pid}`];
  const ours = side('ours', path.join(BIN, 'cattle-ptp'), 'cattle-ptp', '10.121.0.0/24', dirs[0]!);
  const ref = side('ref', path.join(REF, 'ptp'), 'ptp', '10.122.0.0/24', dirs[1]!);
  const nodeStart: number[] = [];
  const env = cleanEnv();
  try {
    once(ours, 0, 'warm');
    once(ref, 0, 'warm');
    timeRun(NODE, ['-e', '0'], env);
    // Interleaved, so drift on a noisy machine hits both alike.
    for (let i = 0; i < RUNS; i++) {
      once(ours, i, 'time');
      once(ref, i, 'time');
      nodeStart.push(timeRun(NODE, ['-e', '0'], env).ms);
    }
    for (let i = 0; i < RSS_RUNS; i++) {
      once(ours, i, 'rss');
      once(ref, i, 'rss');
    }
  } finally {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
  const ns = median(nodeStart);
  const ratio = (o: number[], r: number[]) => ((median(o) - ns) / median(r)).toFixed(2);
  const rows: BenchRow[] = [
    { name: 'ADD wall', ours: fmtMs(median(ours.add)), reference: fmtMs(median(ref.add)), note: `(ours − Node start ${fmtMs(ns)}) / ref = ${ratio(ours.add, ref.add)} (target ≤ 1.0); median of ${RUNS}` },
    { name: 'DEL wall', ours: fmtMs(median(ours.del)), reference: fmtMs(median(ref.del)), note: `(ours − Node start) / ref = ${ratio(ours.del, ref.del)} (target ≤ 1.0); median of ${RUNS}` },
    { name: 'ADD peak RSS', ours: `${(median(ours.rss) / 1024).toFixed(1)} MiB`, reference: `${(median(ref.rss) / 1024).toFixed(1)} MiB`, note: `median of ${RSS_RUNS}` },
    { name: 'failures', ours: String(ours.failures.length), reference: String(ref.failures.length), note: [...ours.failures, ...ref.failures].slice(0, 2).join(' | ').replace(/\|/g, '/').replace(/\n/g, ' ') || 'target 0' },
  ];
  return rows;
}

/** Outside the benchmark command: make a host netns, measure inside it, remove it. */
function inOwnHostNetns(): BenchRow[] {
  const host = `ccni-bptp-host-${process.pid}`;
  const run = (args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });
  if (run(['netns', 'add', host]).status !== 0) throw new Error(`cannot create netns ${host} (root needed)`);
  try {
    run(['netns', 'exec', host, 'ip', 'link', 'set', 'lo', 'up']);
    const env: Record<string, string> = cleanEnv({ BENCH_HOST_NETNS: host, CATTLE_CNI_BIN: process.env.CATTLE_CNI_BIN, BENCH_RUNS: process.env.BENCH_RUNS });
    const r = spawnSync('ip', ['netns', 'exec', host, process.execPath, import.meta.filename, '--json'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`bench-ptp in ${host} failed (${r.status})`);
    return JSON.parse(r.stdout) as BenchRow[];
  } finally {
    run(['netns', 'del', host]);
  }
}

export async function benchPtp(): Promise<BenchRow[]> {
  return process.env.BENCH_HOST_NETNS ? measure() : inOwnHostNetns();
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const rows = await benchPtp();
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify(rows));
  } else {
    console.log('| measure | cattle-ptp | reference ptp | note |\n|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.name} | ${r.ours} | ${r.reference} | ${r.note ?? ''} |`);
  }
}
