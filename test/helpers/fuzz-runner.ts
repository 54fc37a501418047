// Runs fuzz cases (fuzz-arbitraries.ts) against the built executable in a
// test world and judges them (issue 11, B). Shared by
// test/integration/fuzz.test.ts (bounded, in CI) and scripts/fuzz.ts (on demand).
//
// A world: a "host" netns (the plugin runs there, through `ip netns exec`,
// with cwd = an empty directory of its own) with an uplink into a second
// netns and a default route through it (as cattle-ptp needs), two pod netns,
// and state, lock, host-local, log and cwd directories under one temporary
// root. The property of a case:
//   - the plugin exits 0, or 1 with stdout exactly one JSON object that is a
//     CNI error {cniVersion?, code: integer, msg: string, details?: string};
//     exit 0 prints nothing or one JSON object (ADD: a result);
//   - no stack trace on stdout or stderr, no death by a signal, no hang
//     (SIGKILL to the process group after 20 s), no runaway forking (more
//     than 24 processes in its process group), no process left running;
//   - if ADD succeeded, DEL of it (same environment and stdin) succeeds;
//   - afterwards nothing differs from the world's baseline: host links,
//     addresses, routes, rules (iptables/nft too when the configuration
//     mentions masquerading), the pods' links, files anywhere under the root
//     (cwd included), entries in /var/run/netns with the case's container id
//     in their name (other suites make namespaces meanwhile). Bridges (DEL
//     never removes a bridge, by design), files in the lock directory,
//     host-local's lock/last_reserved_ip and files under the log directory
//     are infrastructure: allowed, and removed after the case so that every
//     case starts from the baseline.
// A world with a violation is rebuilt before the next case.
import fs from 'node:fs';
import path from 'node:path';

import fc from 'fast-check';

import { tempDir } from './cni.ts';
import { confine, type Family, type FuzzCase, fuzzCase, HLDIR, isObject, LOGS, REFERENCE_DIR } from './fuzz-arbitraries.ts';
import { baseEnv, BIN, makeNetns, type TestNetns } from './harness.ts';
import { addedLinks, type Allowance, diffSnapshots, formatDiff, isClean, type Snapshot, snapshot } from './leftovers.ts';
import { type GroupRunResult, runGroup } from './spawn-group.ts';

export const CASE_TIMEOUT_MS = Number(process.env.FUZZ_CASE_TIMEOUT_MS ?? 20_000);
export const MAX_PROCS = 24;
const NETNS_DIR = '/var/run/netns';

export interface FuzzWorld {
  host: TestNetns;
  up: TestNetns;
  pods: [TestNetns, TestNetns];
  root: string;
  dirs: { state: string; lock: string; hl: string; cwd: string; logs: string };
  netnsFile: string;
  baseline: Snapshot;
  baselineFirewall: Snapshot;
  netnsEntries: Set<string>;
  destroy(): void;
}

let worldSeq = 0;

export async function makeFuzzWorld(): Promise<FuzzWorld> {
  const n = ++worldSeq;
  const host = makeNetns(`fz${n}-host`);
  const up = makeNetns(`fz${n}-up`);
  host.exec('ip', ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1', 'netns', up.path]);
  // No IPv6 link-local on the uplink: it would appear some time after the baseline.
  host.exec('ip', ['link', 'set', 'up0', 'addrgenmode', 'none']);
  up.exec('ip', ['link', 'set', 'up1', 'addrgenmode', 'none']);
  host.exec('ip', ['addr', 'add', '192.168.251.1/24', 'dev', 'up0']);
  host.exec('ip', ['link', 'set', 'up0', 'up']);
  up.exec('ip', ['link', 'set', 'up1', 'up']);
  host.exec('ip', ['route', 'add', 'default', 'via', '192.168.251.2', 'dev', 'up0']);
  const pods: [TestNetns, TestNetns] = [makeNetns(`fz${n}-pod`), makeNetns(`fz${n}-pod`)];
  const root = tempDir('ccni-fuzz-');
  const dirs = {
    state: path.join(root, 'state'), lock: path.join(root, 'lock'), hl: path.join(root, 'hl'),
    cwd: path.join(root, 'cwd'), logs: path.join(root, 'logs'),
  };
  for (const d of [dirs.cwd, dirs.logs]) fs.mkdirSync(d);
  const netnsFile = path.join(root, 'not-a-netns');
  fs.writeFileSync(netnsFile, 'plain file\n');
  const world: FuzzWorld = {
    host, up, pods, root, dirs, netnsFile,
    baseline: {},
    baselineFirewall: {},
    netnsEntries: new Set(),
    destroy() {
      for (const ns of [...pods, host, up]) ns.destroy();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  world.baselineFirewall = await snap(world, true);
  world.baseline = await snap(world, false);
  world.netnsEntries = new Set(netnsEntries());
  return world;
}

function snap(w: FuzzWorld, firewall: boolean): Promise<Snapshot> {
  return snapshot(w.host, { pods: w.pods, dirs: { root: w.root }, firewall });
}

function netnsEntries(): string[] {
  try {
    return fs.readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

const ALLOW: Allowance = {
  kinds: ['bridge'],
  files: [/^root:lock\//, /^root:hl\/(.*\/)?(lock|last_reserved_ip\.\d+)$/, /^root:logs\//],
};

// ---- resolving a case ----------------------------------------------------------

function noNul(s: string): string {
  return s.replace(/\0/g, '');
}

export interface Resolved {
  env: Record<string, string>;
  stdin: string;
}

export function resolveCase(c: FuzzCase, w: FuzzWorld): Resolved {
  const env: Record<string, string> = {
    ...baseEnv(),
    CATTLE_CNI_STATE_DIR: w.dirs.state,
    CATTLE_CNI_LOCK_DIR: w.dirs.lock,
    // Where a cattle-ipam without metadataAddress would go instead of 169.254.169.250: nothing listens there.
    RANCHER_METADATA_ADDRESS: '127.0.0.1:1',
  };
  const set = (k: string, v: string | undefined) => {
    if (v !== undefined) env[k] = noNul(v);
  };
  set('CNI_COMMAND', c.command);
  set('CNI_CONTAINERID', c.containerId);
  set('CNI_IFNAME', c.ifname);
  set('CNI_ARGS', c.cniArgs);
  set('CNI_NETNS', netnsPath(c.netns, w));
  set('CNI_PATH', cniPathValue(c.cniPath, w));
  let stdin: string;
  if ('json' in c.stdin) stdin = JSON.stringify(confine(c.stdin.json, w.dirs.hl)) ?? '';
  else stdin = c.stdin.raw; // confined when generated, with placeholders
  stdin = stdin.split(LOGS).join(w.dirs.logs).split(HLDIR).join(w.dirs.hl);
  return { env, stdin };
}

function netnsPath(n: FuzzCase['netns'], w: FuzzWorld): string | undefined {
  switch (n.kind) {
    case 'pod': return w.pods[0].path;
    case 'pod2': return w.pods[1].path;
    case 'host': return w.host.path;
    case 'self': return '/proc/self/ns/net';
    case 'file': return w.netnsFile;
    case 'dir': return w.root;
    case 'missing': return undefined;
    case 'empty': return '';
    case 'literal': {
      // Never another real netns: only these /proc and /var/run/netns paths get through unchanged.
      const ok = ['/proc/self/ns/mnt', '/proc/self/ns/uts', '/proc/self/fd/0', '/var/run/netns/'];
      if (/^\/*(proc|var\/run\/netns|run\/netns)(\/|$)/.test(n.value) && !ok.includes(n.value)) return `/nonexistent${n.value}`;
      return n.value;
    }
  }
}

function cniPathValue(p: FuzzCase['cniPath'], w: FuzzWorld): string | undefined {
  switch (p) {
    case 'default': return `${BIN}:${REFERENCE_DIR}`;
    case 'ours': return BIN;
    case 'reference': return REFERENCE_DIR;
    case 'missing': return undefined;
    case 'empty': return '';
    case 'nonexistent': return '/nonexistent-ccni-fuzz';
    case 'cwd': return w.dirs.cwd;
    case 'colons': return `::${BIN}::${REFERENCE_DIR}:`;
    case 'relative': return 'bin:lib/cni';
  }
}

// ---- judging ------------------------------------------------------------------

const STACK = [
  /^\s+at .+(\(.*:\d+:\d+\)|:\d+:\d+)$/m, // V8 frames
  /node:internal\//,
  /^(panic|fatal error): /m, /^goroutine \d+ \[/m, // Go
  /FATAL ERROR:|Segmentation fault|core dumped|Aborted/,
];

function shortText(s: string, n = 600): string {
  const t = s.length > n ? `${s.slice(0, n)}… (${s.length} bytes)` : s;
  return JSON.stringify(t);
}

/** Problems with one run's exit and output (empty: fine). */
export function judgeRun(label: string, command: string | undefined, r: GroupRunResult): string[] {
  const v: string[] = [];
  const out = r.stdout;
  const what = `${label}: exit ${r.code}${r.signal ? `, signal ${r.signal}` : ''}; stdout ${shortText(out)}; stderr ${shortText(r.stderr)}`;
  if (r.timedOut) v.push(`${label}: hang: no exit within ${CASE_TIMEOUT_MS / 1000} s (process group killed)`);
  if (r.runaway !== undefined) v.push(`${label}: runaway: ${r.runaway} processes in its process group (killed at ${MAX_PROCS})`);
  if (r.stragglers) v.push(`${label}: left ${r.stragglers} process(es) of its group running after it exited (killed)`);
  if (r.truncated) v.push(`${label}: more than 1 MiB of output`);
  if (r.timedOut || r.runaway !== undefined) return v;
  if (r.signal) v.push(`killed by ${r.signal}: ${what}`);
  else if (r.code !== 0 && r.code !== 1) v.push(`exit status neither 0 nor 1: ${what}`);
  for (const re of STACK) {
    if (re.test(out) || re.test(r.stderr)) {
      v.push(`stack trace or crash report on ${re.test(out) ? 'stdout' : 'stderr'}: ${what}`);
      break;
    }
  }
  if (r.code === 1) {
    const e = parseOneObject(out);
    if (!e) v.push(`exit 1 without exactly one JSON object on stdout: ${what}`);
    else {
      const problems: string[] = [];
      if (!Number.isInteger(e.code)) problems.push('code is not an integer');
      if (typeof e.msg !== 'string') problems.push('msg is not a string');
      if ('cniVersion' in e && typeof e.cniVersion !== 'string') problems.push('cniVersion is not a string');
      if ('details' in e && typeof e.details !== 'string') problems.push('details is not a string');
      const extra = Object.keys(e).filter((k) => !['cniVersion', 'code', 'msg', 'details'].includes(k));
      if (extra.length) problems.push(`unexpected keys ${extra.join(',')}`);
      if (problems.length) v.push(`exit 1 with a malformed CNI error (${problems.join('; ')}): ${what}`);
    }
  } else if (r.code === 0) {
    if (out.trim() !== '' && !parseOneObject(out)) v.push(`exit 0 with something other than one JSON object on stdout: ${what}`);
    if (command === 'ADD' && !parseOneObject(out)) v.push(`ADD exited 0 without a result: ${what}`);
  }
  return v;
}

function parseOneObject(text: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export interface CaseOutcome {
  violations: string[];
  /** exit code and stdout of the case's run, for statistics. */
  code: number | null;
  stdout: string;
  /** The case's ADD succeeded (and was deleted again). */
  added: boolean;
  /** The world had to be rebuilt (after a violation). */
  rebuilt: boolean;
  resolved: Resolved;
  /** The world the case ran in (before a rebuild), for reproduction lines. */
  world: FuzzWorld;
}

function runExeIn(w: FuzzWorld, exe: string, env: Record<string, string>, stdin: string): Promise<GroupRunResult> {
  return runGroup(['ip', 'netns', 'exec', w.host.name, path.join(BIN, exe)], { env, stdin, cwd: w.dirs.cwd, timeoutMs: CASE_TIMEOUT_MS, maxProcs: MAX_PROCS });
}

/** Run one case in the world, judge it, bring the world back to its baseline. */
export async function runCase(world: { current: FuzzWorld }, c: FuzzCase): Promise<CaseOutcome> {
  const w = world.current;
  const resolved = resolveCase(c, w);
  const { env, stdin } = resolved;
  const r = await runExeIn(w, c.exe, env, stdin);
  const violations = judgeRun(c.command ?? '(no CNI_COMMAND)', c.command, r);
  const added = c.command === 'ADD' && r.code === 0;
  if (added) {
    const d = await runExeIn(w, c.exe, { ...env, CNI_COMMAND: 'DEL' }, stdin);
    if (d.code !== 0) violations.push(`ADD succeeded but its DEL failed: exit ${d.code}${d.signal ? ` signal ${d.signal}` : ''}; stdout ${shortText(d.stdout)}; stderr ${shortText(d.stderr)}`);
    else violations.push(...judgeRun('DEL after ADD', 'DEL', d));
  }
  // The firewall only when the configuration can have touched it: iptables-save and nft cost a few ms each.
  const firewall = /ipMasq|hostNat/.test(stdin);
  const now = await snap(w, firewall);
  const diff = diffSnapshots(firewall ? { ...w.baseline, ...w.baselineFirewall } : w.baseline, now, ALLOW);
  if (!isClean(diff)) {
    violations.push(`left behind in the host netns, the pods or the directories (the run: exit ${r.code}, stdout ${shortText(r.stdout.trim(), 300)}):\n${formatDiff(diff)}`);
  }
  // Other suites and the demo make namespaces at the same time, under names of
  // their own: only a name with this case's container id in it counts.
  const id = c.containerId && c.containerId.length >= 8 ? c.containerId.slice(0, 40) : undefined;
  const newNetns = id === undefined ? [] : netnsEntries().filter((e) => !w.netnsEntries.has(e) && e.includes(id));
  if (newNetns.length) violations.push(`new entries in ${NETNS_DIR}: ${newNetns.join(', ')}`);
  let rebuilt = false;
  if (violations.length) {
    w.destroy();
    world.current = await makeFuzzWorld();
    rebuilt = true;
  } else {
    // Allowed residue goes, so the next case starts from the baseline.
    for (const br of addedLinks(w.baseline, now, ['bridge'])) w.host.exec('ip', ['link', 'del', br], { allowFail: true });
    for (const d of [w.dirs.lock, w.dirs.hl]) fs.rmSync(d, { recursive: true, force: true });
    for (const f of fs.readdirSync(w.dirs.logs)) fs.rmSync(path.join(w.dirs.logs, f), { recursive: true, force: true });
  }
  return { violations, code: r.code, stdout: r.stdout, added, rebuilt, resolved, world: w };
}

/** A shell line that replays a case by hand (host netns and pod paths as in the world that ran it). */
export function reproduction(c: FuzzCase, resolved: Resolved, w: FuzzWorld): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const env = Object.entries(resolved.env).filter(([k]) => k.startsWith('CNI_') || k.startsWith('CATTLE_') || k === 'RANCHER_METADATA_ADDRESS')
    .map(([k, v]) => `${k}=${q(v.length > 300 ? `${v.slice(0, 300)}…` : v)}`).join(' ');
  const stdin = resolved.stdin.length > 2000 ? `${resolved.stdin.slice(0, 2000)}… (${resolved.stdin.length} bytes)` : resolved.stdin;
  return `cd ${w.dirs.cwd} && printf %s ${q(stdin)} | env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ${env} ip netns exec ${w.host.name} ${path.join(BIN, c.exe)}`;
}

/** For a failure report: a case as JSON with long strings shortened. */
export function caseText(c: FuzzCase): string {
  return JSON.stringify(c, (_k, v: unknown) => (typeof v === 'string' && v.length > 300 ? `${v.slice(0, 120)}…(${v.length} chars: ${JSON.stringify(v.slice(0, 8))} …)` : v), 1);
}

// ---- a fuzz campaign --------------------------------------------------------------

export interface FuzzFailure {
  worker: number;
  seed: number;
  /** fast-check's replay path (with seed: FUZZ_REPLAY=<family>:<seed>:<path>). */
  path?: string;
  counterexample?: FuzzCase;
  violations: string;
  reproduction?: string;
  shrinks: number;
}

export interface FuzzReport {
  family: Family;
  seed: number;
  /** Cases executed (shrinking included). */
  executed: number;
  /** Cases fast-check counted as runs (shrinking excluded). */
  runs: number;
  exit0: number;
  exit1: number;
  added: number;
  failures: FuzzFailure[];
  /** keep-going mode: distinct violations → how often, and the smallest example. */
  distinct: Map<string, { count: number; example: FuzzCase; violations: string; reproduction: string }>;
  ms: number;
}

export interface FuzzOptions {
  seed: number;
  /** Cases per family, over all workers (each worker runs its share). */
  runs: number;
  /** Workers in parallel, each with its own world and seed (seed + worker index). */
  jobs: number;
  /** Do not stop at the first violation: collect distinct ones (no shrinking). */
  keepGoing?: boolean;
  /** Replay one worker: its seed and fast-check path. */
  replay?: { seed: number; path: string };
  progress?: (line: string) => void;
  /** Every case and its outcome (statistics). */
  onCase?: (c: FuzzCase, o: CaseOutcome) => void;
}

/** What distinguishes one defect from another, with the details that vary removed. */
function signature(c: FuzzCase, violations: string[]): string {
  const parts = violations.map((v) => {
    if (v.startsWith('left behind')) {
      const kinds = new Set(v.split('\n').slice(1).map((l) => {
        const m = /^([+-]) ([^:]+): (\S+)(.*)$/.exec(l);
        if (!m) return l;
        const [, sign, cat, first, rest] = m;
        if (cat === 'links') return `${sign}link ${/kind=(\S+)/.exec(rest!)?.[1]}`;
        if (cat === 'files') return `${sign}file ${first!.replace(/^root:/, '').split('/')[0]}/${/\.[a-z]+$/.exec(first!)?.[0] ?? ''}`;
        return `${sign}${cat.replace(/ .*/, '')}`;
      }));
      return `left behind: ${[...kinds].sort().join(', ')}`;
    }
    // "ADD: hang: …" → "hang"; "exit 1 without …: ADD: exit 1; …" → "exit 1 without …"
    const head = v.replace(/^[^:]{1,40}: (hang|runaway|left \d+ process|more than)/, '$1').split(':')[0]!;
    const code = /"code\\?":\s*(\d+)/.exec(v)?.[1];
    return code ? `${head} (code ${code})` : head;
  });
  return `${c.exe} ${c.command ?? '(unset)'}: ${[...new Set(parts)].join(' | ')}`;
}

export async function fuzzFamily(family: Family, opts: FuzzOptions): Promise<FuzzReport> {
  const t0 = performance.now();
  const report: FuzzReport = { family, seed: opts.seed, executed: 0, runs: 0, exit0: 0, exit1: 0, added: 0, failures: [], distinct: new Map(), ms: 0 };
  const workers = opts.replay ? 1 : opts.jobs;
  const perWorker = Math.ceil(opts.runs / workers);
  await Promise.all(Array.from({ length: workers }, async (_, k) => {
    const seed = opts.replay?.seed ?? opts.seed + k;
    const world = { current: await makeFuzzWorld() };
    let last: { c: FuzzCase; violations: string; reproduction: string } | undefined;
    let done = 0;
    try {
      const property = fc.asyncProperty(fuzzCase(family), async (c) => {
        const o = await runCase(world, c);
        report.executed++;
        opts.onCase?.(c, o);
        if (o.code === 0) report.exit0++;
        if (o.code === 1) report.exit1++;
        if (o.added) report.added++;
        if (++done % 250 === 0) opts.progress?.(`${family} worker ${k}: ${done} cases`);
        if (!o.violations.length) return;
        const violations = o.violations.join('\n');
        const repro = reproduction(c, o.resolved, o.world);
        if (opts.keepGoing) {
          const sig = signature(c, o.violations);
          const seen = report.distinct.get(sig);
          const size = JSON.stringify(c).length;
          if (!seen) opts.progress?.(`${family} worker ${k}: new violation: ${sig}`);
          if (!seen || size < JSON.stringify(seen.example).length) report.distinct.set(sig, { count: (seen?.count ?? 0) + 1, example: c, violations, reproduction: repro });
          else seen.count++;
          return;
        }
        last = { c, violations, reproduction: repro };
        throw new Error(violations);
      });
      const details = await fc.check(property, {
        seed,
        numRuns: perWorker,
        ...(opts.replay ? { path: opts.replay.path } : {}),
      });
      report.runs += details.numRuns;
      if (details.failed) {
        report.failures.push({
          worker: k, seed, path: details.counterexamplePath ?? undefined, counterexample: details.counterexample?.[0],
          violations: last?.violations ?? String(details.errorInstance), reproduction: last?.reproduction, shrinks: details.numShrinks,
        });
      }
    } finally {
      world.current.destroy();
    }
  }));
  report.ms = performance.now() - t0;
  return report;
}

export function formatFailure(family: Family, f: FuzzFailure): string {
  return [
    `fuzz ${family}: property violated (worker ${f.worker}, seed ${f.seed}, path ${f.path}, after ${f.shrinks} shrinks)`,
    `replay: FUZZ_REPLAY=${family}:${f.seed}:${f.path}`,
    `counterexample: ${f.counterexample ? caseText(f.counterexample) : '?'}`,
    `violations:\n${f.violations}`,
    `by hand (the world is gone by now: make a netns of that name and pods first): ${f.reproduction ?? '?'}`,
  ].join('\n');
}
