// "What exists" in a test host netns, and what changed against a baseline:
// links, addresses, routes (every table), policy rules, iptables (v4 and v6)
// and the nftables ruleset, links of given pod namespaces, and the files under
// given directories. Used by the kill sweep and the fuzz suite to prove that a
// crashed, failed or deleted attachment left nothing behind.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import type { TestNetns } from './harness.ts';

/** One thing that exists; `dev` names the link it hangs off, when it does. */
export interface Entry {
  text: string;
  dev?: string;
  /** For links: the kind (bridge, veth, …). */
  kind?: string;
}

export type Category = 'links' | 'addrs' | 'routes' | 'rules' | 'iptables' | 'nft' | 'files' | `pod ${string}`;

export type Snapshot = Partial<Record<Category, Entry[]>>;

export interface SnapshotOptions {
  /** label → directory: every non-directory under it is listed as "label:relative/path". */
  dirs?: Record<string, string>;
  /** Netns whose links are captured too (as category "pod <name>"). */
  pods?: TestNetns[];
  /** iptables-save, ip6tables-save and nft (default true). */
  firewall?: boolean;
}

/** What a diff may ignore: infrastructure an attachment leaves by design. */
export interface Allowance {
  /** Links (and their addresses and routes) with these names. */
  devs?: (string | RegExp)[];
  /** Links of these kinds, e.g. "bridge" (and their addresses and routes). */
  kinds?: string[];
  /** Files ("label:relative/path") matching one of these. */
  files?: RegExp[];
}

export interface SnapshotDiff {
  added: Partial<Record<Category, Entry[]>>;
  removed: Partial<Record<Category, Entry[]>>;
}

const SEP = '@@ccni-snapshot@@';
// iptables' own chains, which iptables-nft creates on first use and never removes.
const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Capture the current state (one shell inside the host netns, files read in-process). */
export async function snapshot(host: TestNetns, opts: SnapshotOptions = {}): Promise<Snapshot> {
  const firewall = opts.firewall ?? true;
  const pods = opts.pods ?? [];
  const parts = [
    'ip -j -d addr show',
    'ip -j -4 route show table all',
    'ip -j -6 route show table all',
    'ip -j -4 rule show',
    'ip -j -6 rule show',
    firewall ? 'command -v iptables-save >/dev/null && iptables-save 2>/dev/null' : 'true',
    firewall ? 'command -v ip6tables-save >/dev/null && ip6tables-save 2>/dev/null' : 'true',
    firewall ? 'command -v nft >/dev/null && nft -j list ruleset 2>/dev/null' : 'true',
    ...pods.map((p) => `ip -n ${shellQuote(p.name)} -j link show`),
  ];
  const script = parts.map((p) => `${p}; echo; echo ${SEP}`).join('\n');
  const r = await run(['ip', 'netns', 'exec', host.name, 'sh', '-c', script]);
  if (r.code !== 0) throw new Error(`snapshot of ${host.name} failed (${r.code}): ${r.stderr}`);
  const out = r.stdout.split(`${SEP}\n`);
  const json = <T>(i: number): T[] => {
    const text = (out[i] ?? '').trim();
    if (!text) return [];
    try {
      return JSON.parse(text) as T[];
    } catch {
      throw new Error(`snapshot: unparsable output of "${parts[i]}": ${text.slice(0, 200)}`);
    }
  };
  const snap: Snapshot = {};
  const links: Entry[] = [];
  const addrs: Entry[] = [];
  for (const l of json<IpAddrLink>(0)) {
    const kind = l.linkinfo?.info_kind ?? l.link_type;
    links.push({ text: `${l.ifname} kind=${kind ?? '-'} master=${l.master ?? '-'} alias=${l.ifalias ?? '-'}`, dev: l.ifname, kind });
    for (const a of l.addr_info ?? []) addrs.push({ text: `${l.ifname} ${a.local}/${a.prefixlen}`, dev: l.ifname });
  }
  snap.links = links;
  snap.addrs = addrs;
  snap.routes = [...json<IpRoute>(1), ...json<IpRoute>(2)].map((rt) => ({
    text: `table=${rt.table ?? 'main'} ${rt.type ?? 'unicast'} ${rt.dst} via=${rt.gateway ?? '-'} dev=${rt.dev ?? '-'} proto=${rt.protocol ?? '-'} scope=${rt.scope ?? '-'}`,
    dev: rt.dev,
  }));
  snap.rules = [...json<Record<string, unknown>>(3), ...json<Record<string, unknown>>(4)].map((x) => ({ text: JSON.stringify(x) }));
  if (firewall) {
    snap.iptables = [...iptablesEntries('v4', out[5] ?? ''), ...iptablesEntries('v6', out[6] ?? '')];
    snap.nft = nftEntries((out[7] ?? '').trim());
  }
  pods.forEach((p, i) => {
    snap[`pod ${p.name}`] = json<IpAddrLink>(8 + i).map((l) => ({ text: `${l.ifname} kind=${l.linkinfo?.info_kind ?? l.link_type ?? '-'}`, dev: l.ifname }));
  });
  snap.files = Object.entries(opts.dirs ?? {}).flatMap(([label, dir]) => listFiles(dir).map((f) => ({ text: `${label}:${f}` })));
  return snap;
}

interface IpAddrLink {
  ifname: string;
  link_type?: string;
  master?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: { local: string; prefixlen: number }[];
}

interface IpRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  protocol?: string;
  scope?: string;
}

/** Non-builtin chains and every rule, counters dropped. */
function iptablesEntries(family: string, text: string): Entry[] {
  const entries: Entry[] = [];
  let table = '?';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line === 'COMMIT') continue;
    if (line.startsWith('*')) {
      table = line.slice(1);
      continue;
    }
    if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0]!;
      if (!BUILTIN_CHAINS.has(chain)) entries.push({ text: `${family} ${table} chain ${chain}` });
      continue;
    }
    entries.push({ text: `${family} ${table} ${line.replace(/^\[\d+:\d+\]\s*/, '')}` });
  }
  return entries;
}

/** Rules, sets, maps and chains (not iptables' builtin base chains); tables and counters dropped. */
function nftEntries(text: string): Entry[] {
  if (!text) return [];
  let doc: { nftables?: Record<string, Record<string, unknown>>[] };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return [{ text: `unparsable nft output: ${text.slice(0, 200)}` }];
  }
  const entries: Entry[] = [];
  for (const item of doc.nftables ?? []) {
    const [kind, body] = Object.entries(item)[0] ?? [];
    if (!kind || !body || kind === 'metainfo' || kind === 'table') continue;
    const { handle: _h, ...rest } = body;
    if (kind === 'chain') {
      if (rest.hook !== undefined && BUILTIN_CHAINS.has(String(rest.name))) continue;
      entries.push({ text: `chain ${rest.family} ${rest.table} ${rest.name}${rest.hook ? ` hook=${rest.hook}` : ''}` });
    } else if (kind === 'rule') {
      const expr = (rest.expr as Record<string, unknown>[] | undefined ?? []).filter((e) => !('counter' in e));
      entries.push({ text: `rule ${rest.family} ${rest.table} ${rest.chain} ${JSON.stringify(expr)}` });
    } else {
      entries.push({ text: `${kind} ${JSON.stringify(rest)}` });
    }
  }
  return entries;
}

/** Every non-directory under dir, relative, sorted; [] when dir is missing. */
export function listFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (rel: string) => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of names) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) walk(r);
      else found.push(r);
    }
  };
  walk('');
  return found.sort();
}

function allowed(e: Entry, cat: Category, allow: Allowance, allowedDevs: Set<string>): boolean {
  if (cat === 'files') return (allow.files ?? []).some((re) => re.test(e.text));
  if (e.dev !== undefined && !cat.startsWith('pod ') && allowedDevs.has(e.dev)) return true;
  return false;
}

function devMatches(name: string, allow: Allowance): boolean {
  return (allow.devs ?? []).some((d) => (typeof d === 'string' ? d === name : d.test(name)));
}

/** What is in `now` and not in `base` (added) and the reverse (removed), minus what `allow` permits. */
export function diffSnapshots(base: Snapshot, now: Snapshot, allow: Allowance = {}): SnapshotDiff {
  // Devices whose links, addresses and routes may come and go.
  const allowedDevs = new Set<string>();
  for (const snap of [base, now]) {
    for (const l of snap.links ?? []) {
      if (devMatches(l.dev!, allow) || (l.kind && (allow.kinds ?? []).includes(l.kind))) allowedDevs.add(l.dev!);
    }
  }
  const diff: SnapshotDiff = { added: {}, removed: {} };
  // Only what both captured (a snapshot may skip the firewall).
  const cats = (Object.keys(now) as Category[]).filter((c) => c in base);
  for (const cat of cats) {
    const b = new Set((base[cat] ?? []).map((e) => e.text));
    const n = new Set((now[cat] ?? []).map((e) => e.text));
    const added = (now[cat] ?? []).filter((e) => !b.has(e.text) && !allowed(e, cat, allow, allowedDevs));
    const removed = (base[cat] ?? []).filter((e) => !n.has(e.text) && !allowed(e, cat, allow, allowedDevs));
    if (added.length) diff.added[cat] = added;
    if (removed.length) diff.removed[cat] = removed;
  }
  return diff;
}

export function isClean(d: SnapshotDiff): boolean {
  return Object.keys(d.added).length === 0 && Object.keys(d.removed).length === 0;
}

export function formatDiff(d: SnapshotDiff): string {
  const lines: string[] = [];
  for (const [sign, side] of [['+', d.added], ['-', d.removed]] as const) {
    for (const [cat, entries] of Object.entries(side)) for (const e of entries ?? []) lines.push(`${sign} ${cat}: ${e.text}`);
  }
  return lines.join('\n');
}

/** Links of the given kinds that `now` has and `base` has not (e.g. bridges a test must remove itself). */
export function addedLinks(base: Snapshot, now: Snapshot, kinds: string[]): string[] {
  const had = new Set((base.links ?? []).map((l) => l.dev));
  return (now.links ?? []).filter((l) => !had.has(l.dev) && l.kind && kinds.includes(l.kind)).map((l) => l.dev!);
}
