// Benchmark rows for the fast path: a cattle-net agent in the bench host netns
// runs the plugins warm and the executables only forward. Side by side in one
// run, interleaved: the Go reference, our executable doing the work itself
// (standalone, CATTLE_CNI_AGENT_SOCKET=none) and through the agent; ADD and
// DEL medians for bridge and ptp, 50-pod storms ×3 rounds, the client's and
// the agent's memory, and what the fallback costs when no agent listens.
//
// Called by scripts/bench.ts inside its host netns (BENCH_HOST_NETNS set).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { type BenchRow, BIN, cleanEnv, fmtMs, median, NODE, peakRssKiB, podNetns, REF, sh, timeRun, timeRunAsync } from './bench-lib.ts';

const RUNS = Math.max(20, Number(process.env.BENCH_RUNS ?? 25));
const STORM = 50;
const ROUNDS = 3;
const IPAM_ROOT = '/run/ccni-bench-ipam';

type Mode = 'ref' | 'standalone' | 'fast';
const MODES: Mode[] = ['ref', 'standalone', 'fast'];

interface Agent {
  pid: number;
  socket: string;
  dir: string;
}

async function startAgent(): Promise<Agent> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-bench-agent-'));
  const socket = path.join(dir, 'agent.sock');
  const log = fs.openSync(path.join(dir, 'agent.log'), 'a');
  const child = spawn(path.join(BIN, 'cattle-net'), ['--socket', socket, '--run-dir', path.join(dir, 'run'), '--no-filter', '--metadata-address', '127.0.0.1:9'],
    { stdio: ['ignore', log, log], env: cleanEnv() });
  fs.closeSync(log);
  for (let i = 0; !fs.readFileSync(path.join(dir, 'agent.log'), 'utf8').includes('cattle-net: started'); i++) {
    if (i > 6000 || child.exitCode !== null) throw new Error(`cattle-net did not start: ${fs.readFileSync(path.join(dir, 'agent.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { pid: child.pid!, socket, dir };
}

async function stopAgent(a: Agent): Promise<void> {
  process.kill(a.pid, 'SIGTERM');
  for (let i = 0; i < 3000 && fs.existsSync(`/proc/${a.pid}`); i++) await new Promise((r) => setTimeout(r, 10));
  fs.rmSync(a.dir, { recursive: true, force: true });
}

function signedMs(x: number): string {
  return `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(1)} ms`;
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

interface Plugin {
  name: string;
  file(mode: Mode): string;
  conf(mode: Mode, tag: string): object;
  bridge?: (mode: Mode, tag: string) => string;
}

let subnet = 0;
function hostLocal(tag: string): object {
  const n = ++subnet;
  return { type: 'host-local', ranges: [[{ subnet: `10.${140 + (n >> 8)}.${n & 255}.0/24` }]], dataDir: `${IPAM_ROOT}/fast-${process.pid}-${tag}-${n}` };
}

function plugins(): Plugin[] {
  const ipam = new Map<string, object>();
  const once = (key: string) => {
    if (!ipam.has(key)) ipam.set(key, hostLocal(key));
    return ipam.get(key)!;
  };
  const brName = (mode: Mode, tag: string) => `${mode === 'ref' ? 'r' : mode === 'fast' ? 'f' : 's'}fp${tag}`.slice(0, 15);
  return [
    {
      name: 'bridge',
      file: (m) => (m === 'ref' ? path.join(REF, 'bridge') : path.join(BIN, 'cattle-bridge')),
      conf: (m, tag) => ({ cniVersion: '1.0.0', name: `fp${tag}`, type: m === 'ref' ? 'bridge' : 'cattle-bridge', bridge: brName(m, tag), isGateway: true, ipam: once(`br-${m}-${tag}`) }),
      bridge: brName,
    },
    {
      name: 'ptp',
      file: (m) => (m === 'ref' ? path.join(REF, 'ptp') : path.join(BIN, 'cattle-ptp')),
      conf: (m, tag) => ({ cniVersion: '1.0.0', name: `fpptp${tag}`, type: m === 'ref' ? 'ptp' : 'cattle-ptp', ipam: once(`ptp-${m}-${tag}`) }),
    },
  ];
}

function envFor(mode: Mode, agent: Agent, extra: Record<string, string>): Record<string, string> {
  return cleanEnv({ ...extra, CNI_PATH: `${BIN}:${REF}`, CATTLE_CNI_AGENT_SOCKET: mode === 'fast' ? agent.socket : 'none' });
}

/** ADD + DEL medians per mode, interleaved over fresh pod netns. */
function addDel(p: Plugin, agent: Agent, nodeStart: number[]): Record<Mode, { add: number[]; del: number[]; failures: string[] }> {
  const out = Object.fromEntries(MODES.map((m) => [m, { add: [] as number[], del: [] as number[], failures: [] as string[] }])) as Record<Mode, { add: number[]; del: number[]; failures: string[] }>;
  for (let i = -2; i < RUNS; i++) {
    // Bare Node start, interleaved with the runs it is compared with.
    const n = timeRun(NODE, ['-e', '0'], cleanEnv()).ms;
    if (i >= 0) nodeStart.push(n);
    for (const m of MODES) {
      const ns = podNetns('ccni-bfp');
      try {
        const env = envFor(m, agent, { CNI_CONTAINERID: `fp-${p.name}-${m}-${i}`, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0' });
        const conf = JSON.stringify(p.conf(m, 'a'));
        const a = timeRun(p.file(m), [], { ...env, CNI_COMMAND: 'ADD' }, conf);
        if (a.status !== 0) out[m].failures.push(`ADD: ${a.stdout}${a.stderr}`.trim());
        const d = timeRun(p.file(m), [], { ...env, CNI_COMMAND: 'DEL' }, conf);
        if (d.status !== 0) out[m].failures.push(`DEL: ${d.stdout}${d.stderr}`.trim());
        if (i >= 0) {
          out[m].add.push(a.ms);
          out[m].del.push(d.ms);
        }
      } finally {
        ns.del();
      }
    }
  }
  return out;
}

interface StormRound {
  add: number;
  del: number;
  failures: number;
  leftovers: number;
}

async function storm(p: Plugin, m: Mode, agent: Agent, round: number): Promise<StormRound> {
  const pods = Array.from({ length: STORM }, () => podNetns('ccni-bfs'));
  const tag = `s${round}`;
  const conf = JSON.stringify(p.conf(m, tag));
  const env = (i: number, cmd: string) => envFor(m, agent, { CNI_COMMAND: cmd, CNI_CONTAINERID: `fps-${p.name}-${m}-${round}-${i}`, CNI_NETNS: pods[i]!.path, CNI_IFNAME: 'eth0' });
  try {
    const t0 = performance.now();
    const adds = await Promise.all(pods.map((_, i) => timeRunAsync(p.file(m), [], env(i, 'ADD'), conf)));
    const add = performance.now() - t0;
    const t1 = performance.now();
    const dels = await Promise.all(pods.map((_, i) => timeRunAsync(p.file(m), [], env(i, 'DEL'), conf)));
    const del = performance.now() - t1;
    const veths = (JSON.parse(sh('ip', ['-j', 'link', 'show', 'type', 'veth']) || '[]') as unknown[]).length;
    return { add, del, failures: [...adds, ...dels].filter((r) => r.status !== 0).length, leftovers: veths };
  } finally {
    for (const ns of pods) ns.del();
    if (p.bridge) {
      try {
        sh('ip', ['link', 'del', p.bridge(m, tag)]);
      } catch {
        // not there
      }
    }
  }
}

/** What the client costs when nobody serves: no socket, a stale socket (refused), fast path off. */
function fallbackCost(agent: Agent): { missing: number; stale: number; off: number } {
  const stale = path.join(agent.dir, 'stale.sock');
  // A socket nobody listens on: bind it in a child that exits.
  sh(NODE, ['-e', `const s=require('net').createServer().listen(${JSON.stringify(stale)},()=>process.exit(0))`]);
  const cases = { off: 'none', missing: path.join(agent.dir, 'absent.sock'), stale };
  const t: Record<string, number[]> = { off: [], missing: [], stale: [] };
  // An ADD with an empty config: the quickest whole run that passes the client (and fails at once, in-process).
  for (let i = -2; i < RUNS * 2; i++) {
    for (const [k, socket] of Object.entries(cases)) {
      const r = timeRun(path.join(BIN, 'cattle-bridge'), [], cleanEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'x', CNI_NETNS: '/nonexistent', CNI_IFNAME: 'eth0', CNI_PATH: REF, CATTLE_CNI_AGENT_SOCKET: socket }), '');
      if (i >= 0) t[k]!.push(r.ms);
    }
  }
  return { missing: median(t.missing!) - median(t.off!), stale: median(t.stale!) - median(t.off!), off: median(t.off!) };
}

/**
 * Where an ADD and a DEL spend their time: the plugin's own per-step debug log
 * (logToFile + isDebugLevel), medians over a few runs, standalone and in the agent.
 */
function stepBreakdown(agent: Agent): BenchRow[] {
  const runs = Math.min(RUNS, 12);
  const log = path.join(agent.dir, 'steps.log');
  const steps: Record<'standalone' | 'fast', Map<string, number[]>> = { standalone: new Map(), fast: new Map() };
  const walls: Record<'standalone' | 'fast', { ADD: number[]; DEL: number[] }> = { standalone: { ADD: [], DEL: [] }, fast: { ADD: [], DEL: [] } };
  const ipam = hostLocal('steps');
  for (let i = 0; i < runs; i++) {
    for (const m of ['standalone', 'fast'] as const) {
      const ns = podNetns('ccni-bst');
      try {
        fs.rmSync(log, { force: true });
        const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'steps', type: 'cattle-bridge', bridge: 'cstep0', isGateway: true, ipam, logToFile: log, isDebugLevel: true });
        const env = envFor(m, agent, { CNI_CONTAINERID: `st-${m}-${i}`, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0' });
        for (const cmd of ['ADD', 'DEL'] as const) walls[m][cmd].push(timeRun(path.join(BIN, 'cattle-bridge'), [], { ...env, CNI_COMMAND: cmd }, conf).ms);
        for (const line of fs.readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
          const r = JSON.parse(line) as { command: string; step: string; op?: string; durationMs: number };
          if (r.step === 'netlink' && !/^(create|delete) /.test(r.op ?? '')) continue; // the slow kernel requests only
          const key = `${r.command} ${r.step === 'netlink' ? `kernel: ${r.op!.replace(/ veth\w+| \(peer \w+\)|#\d+/g, '').trim()}` : r.step === 'done' ? 'whole command (in the plugin)' : r.step}`;
          steps[m].set(key, [...(steps[m].get(key) ?? []), r.durationMs]);
        }
      } finally {
        ns.del();
      }
    }
  }
  try {
    sh('ip', ['link', 'del', 'cstep0']);
  } catch {
    // not there
  }
  const rows: BenchRow[] = [];
  for (const key of steps.standalone.keys()) {
    const a = steps.standalone.get(key)!;
    const f = steps.fast.get(key) ?? [];
    // The many sub-0.3 ms steps are left out; MTU detection (when mtu is absent) is shown: its cost is asked about.
    if (median(a) < 0.3 && (!f.length || median(f) < 0.3) && !key.includes('detect MTU')) continue;
    rows.push({ name: key, ours: `standalone ${fmtMs(median(a))}; fast path ${f.length ? fmtMs(median(f)) : '—'}`, reference: '', note: '' });
  }
  for (const cmd of ['ADD', 'DEL'] as const) {
    rows.push({ name: `${cmd} whole process (runtime's view)`, ours: `standalone ${fmtMs(median(walls.standalone[cmd]))}; fast path ${fmtMs(median(walls.fast[cmd]))}`, reference: '', note: 'process start, client, exit: the rest' });
  }
  return rows;
}

export async function benchFastpathSteps(): Promise<BenchRow[]> {
  fs.mkdirSync(IPAM_ROOT, { recursive: true });
  const agent = await startAgent();
  try {
    return stepBreakdown(agent);
  } finally {
    await stopAgent(agent);
  }
}

export async function benchFastpath(): Promise<BenchRow[]> {
  fs.mkdirSync(IPAM_ROOT, { recursive: true });
  const agent = await startAgent();
  const rows: BenchRow[] = [];
  try {
    const env = cleanEnv();
    for (const p of plugins()) {
      const starts: number[] = [];
      const r = addDel(p, agent, starts);
      const nodeStart = median(starts);
      const [ref, alone, fast] = [r.ref, r.standalone, r.fast];
      const ratio = (xs: number[], ys: number[]) => ((median(xs) - nodeStart) / median(ys)).toFixed(2);
      for (const op of ['add', 'del'] as const) {
        rows.push({
          name: `${p.name} ${op.toUpperCase()} (median of ${RUNS})`,
          ours: `standalone ${fmtMs(median(alone[op]))}; fast path ${fmtMs(median(fast[op]))}`,
          reference: fmtMs(median(ref[op])),
          note: `(ours − Node start ${fmtMs(nodeStart)}) / ref: standalone ${ratio(alone[op], ref[op])} (target ≤ 1.0); fast path − Node start = ${fmtMs(median(fast[op]) - nodeStart)} (target ≤ 5 ms)`,
        });
      }
      const failures = [...alone.failures, ...fast.failures, ...ref.failures];
      if (failures.length) rows.push({ name: `${p.name} failures`, ours: String(failures.length), reference: '', note: failures.slice(0, 2).join(' | ') });
    }
    // Storms, bridge: rounds interleaved by mode; the agent's RSS after its first and its last round.
    const bridge = plugins()[0]!;
    const rounds: Record<Mode, StormRound[]> = { ref: [], standalone: [], fast: [] };
    let agentRssFirst = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const m of MODES) {
        rounds[m].push(await storm(bridge, m, agent, round));
        if (m === 'fast' && round === 0) agentRssFirst = rssKiB(agent.pid);
      }
    }
    const agentRssLast = rssKiB(agent.pid);
    const walls = (xs: StormRound[], k: 'add' | 'del') => xs.map((x) => (x[k] / 1000).toFixed(2)).join(' / ');
    for (const k of ['add', 'del'] as const) {
      const med = (m: Mode) => median(rounds[m].map((x) => x[k]));
      rows.push({
        name: `${STORM}-pod storm ${k.toUpperCase()} wall, bridge, rounds 1/2/3 (s)`,
        ours: `standalone ${walls(rounds.standalone, k)}; fast path ${walls(rounds.fast, k)}`,
        reference: walls(rounds.ref, k),
        note: `median ours / ref: standalone ${(med('standalone') / med('ref')).toFixed(2)}, fast path ${(med('fast') / med('ref')).toFixed(2)} (target ≤ 1.5)`,
      });
    }
    const sum = (m: Mode, k: 'failures' | 'leftovers') => rounds[m].reduce((a, x) => a + x[k], 0);
    rows.push({ name: 'storm failures / leftovers (3 rounds)', ours: `standalone ${sum('standalone', 'failures')} / ${sum('standalone', 'leftovers')}; fast path ${sum('fast', 'failures')} / ${sum('fast', 'leftovers')}`, reference: `${sum('ref', 'failures')} / ${sum('ref', 'leftovers')}`, note: 'target 0 / 0' });
    // Memory: the forwarding client against bare Node; the agent after 1 and 3 storm rounds.
    const ns = podNetns('ccni-bfr');
    try {
      const e = envFor('fast', agent, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'fp-rss', CNI_NETNS: ns.path, CNI_IFNAME: 'eth0' });
      const conf = JSON.stringify(bridge.conf('fast', 'a'));
      const client = peakRssKiB(bridge.file('fast'), [], e, conf);
      timeRun(bridge.file('fast'), [], { ...e, CNI_COMMAND: 'DEL' }, conf);
      const bare = median([0, 1, 2].map(() => peakRssKiB(NODE, ['-e', '0'], env)));
      rows.push({ name: 'forwarding client peak RSS (ADD)', ours: `${(client / 1024).toFixed(1)} MiB`, reference: `node -e 0: ${(bare / 1024).toFixed(1)} MiB`, note: `client − bare Node = ${((client - bare) / 1024).toFixed(1)} MiB (target ≤ 5 MiB)` });
    } finally {
      ns.del();
    }
    rows.push({ name: 'agent RSS after storm round 1 / round 3', ours: `${(agentRssFirst / 1024).toFixed(1)} / ${(agentRssLast / 1024).toFixed(1)} MiB`, reference: '—', note: `ratio ${(agentRssLast / agentRssFirst).toFixed(2)} (target ≤ 1.1)` });
    const fb = fallbackCost(agent);
    rows.push({ name: 'client cost when no agent serves (median of ' + RUNS * 2 + ')', ours: `no socket ${signedMs(fb.missing)}; stale socket (refused) ${signedMs(fb.stale)}`, reference: `fast path off: ${fmtMs(fb.off)} per run`, note: 'target ≤ 1 ms' });
  } finally {
    await stopAgent(agent);
    fs.rmSync(IPAM_ROOT, { recursive: true, force: true });
  }
  return rows;
}
