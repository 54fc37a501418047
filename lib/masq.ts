// IP masquerade for pod addresses, one iptables chain per attachment (as the
// reference plugins do): POSTROUTING -s <pod> -j <chain>; the chain accepts
// traffic to the pod's own subnet and masquerades the rest (not multicast).
// iptables is executed with argv arrays, never through a shell.
import path from 'node:path';

import { childStdio } from './children.ts';
import { hashHex } from './hash.ts';
import { type Cidr, networkOf } from './ip.ts';
import { acquireLock } from './lock.ts';
import { findTool } from './plugin-path.ts';

/** Chain names are limited to 28 characters. */
export function masqChainName(network: string, containerId: string, ifname: string): string {
  return `CCNI-${hashHex(`${network}\0${containerId}\0${ifname}`, 23)}`;
}

export function masqComment(network: string, containerId: string): string {
  return `cattle-cni name: "${network}" id: "${containerId}"`.slice(0, 255);
}

/** The tool's path, or an error naming it. */
export function requireTool(name: string): string {
  const file = findTool(name);
  if (!file) throw new Error(`${name} not found in PATH`);
  return file;
}

/** Run a tool, stdout as text. child_process is loaded on first use: most plugin runs execute nothing. */
function run(file: string, args: string[], stdio: 'pipe' | 'ignore' = 'pipe'): string {
  return process.getBuiltinModule('node:child_process').execFileSync(file, args, { encoding: 'utf8', stdio: childStdio(['ignore', stdio, stdio]) });
}

/**
 * `nft` with argv (never a shell); a script, when given, goes on stdin (`-f -`)
 * and is applied as one transaction. Fails with nft's own message.
 */
export function nft(args: string[], script?: string): string {
  const file = requireTool('nft');
  const argv = script === undefined ? args : [...args, '-f', '-'];
  try {
    return process.getBuiltinModule('node:child_process').execFileSync(file, argv,
      { encoding: 'utf8', input: script, stdio: childStdio([script === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']) });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`nft ${argv.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}

/** `nft -j list …` parsed; undefined when the object does not exist. */
export function nftList(what: string[]): { nftables: Record<string, unknown>[] } | undefined {
  try {
    return JSON.parse(nft(['-j', 'list', ...what])) as { nftables: Record<string, unknown>[] };
  } catch (e) {
    if (/No such file or directory|does not exist/.test((e as Error).message)) return undefined;
    throw e;
  }
}

function xtables(family: 4 | 6, args: string[], allowFail = false): string {
  const tool = requireTool(family === 4 ? 'iptables' : 'ip6tables');
  try {
    return run(tool, ['-w', '5', '-t', 'nat', ...args]);
  } catch (e) {
    if (allowFail) return '';
    const err = e as { stderr?: string; message: string };
    throw new Error(`${path.basename(tool)} -t nat ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}

function chainExists(family: 4 | 6, chain: string): boolean {
  return xtables(family, ['-S', chain], true) !== '';
}

/** Create (or refresh) the chain and the POSTROUTING jumps for these pod addresses. */
export function setupMasq(chain: string, comment: string, addrs: Cidr[]): void {
  for (const family of [4, 6] as const) {
    const mine = addrs.filter((a) => a.family === family);
    if (mine.length === 0) continue;
    if (chainExists(family, chain)) xtables(family, ['-F', chain]);
    else xtables(family, ['-N', chain]);
    for (const a of mine) xtables(family, ['-A', chain, '-d', networkOf(a), '-j', 'ACCEPT', '-m', 'comment', '--comment', comment]);
    xtables(family, ['-A', chain, '!', '-d', family === 4 ? '224.0.0.0/4' : 'ff00::/8', '-j', 'MASQUERADE', '-m', 'comment', '--comment', comment]);
    for (const a of mine) {
      const jump = ['POSTROUTING', '-s', `${a.ip}/${family === 4 ? 32 : 128}`, '-j', chain, '-m', 'comment', '--comment', comment];
      if (!ruleExists(family, jump)) xtables(family, ['-A', ...jump]);
    }
  }
}

function ruleExists(family: 4 | 6, rule: string[]): boolean {
  try {
    run(requireTool(family === 4 ? 'iptables' : 'ip6tables'), ['-w', '5', '-t', 'nat', '-C', ...rule], 'ignore');
    return true;
  } catch {
    return false;
  }
}

/** Remove every POSTROUTING jump to the chain, then the chain. Missing pieces are fine. */
export function teardownMasq(chain: string): void {
  for (const family of [4, 6] as const) {
    if (!chainExists(family, chain)) continue;
    const rules = xtables(family, ['-S', 'POSTROUTING'], true).split('\n');
    for (const line of rules) {
      const argv = splitRule(line);
      if (argv[0] === '-A' && argv.includes(chain)) xtables(family, ['-D', ...argv.slice(1)], true);
    }
    xtables(family, ['-F', chain], true);
    xtables(family, ['-X', chain], true);
  }
}

/** Present for tests and CHECK: does POSTROUTING jump to this chain? */
export function masqPresent(chain: string, family: 4 | 6 = 4): boolean {
  return xtables(family, ['-S', 'POSTROUTING'], true).split('\n').some((l) => splitRule(l).includes(chain));
}

/** iptables -S output is shell-quoted only around comments: split respecting double quotes. */
export function splitRule(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line)) !== null) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}

// ---- nftables backend ---------------------------------------------------------
//
// One table of ours for every network and pod, holding sets of pod addresses
// rather than a chain per pod:
//
//   table inet cattle_cni_masq {
//     set pods4 { type ipv4_addr }                     # each element's comment names its attachment
//     set local4 { type ipv4_addr . ipv4_addr; flags interval }   # pod . its own subnet
//     (pods6, local6 likewise)
//     chain postrouting { type nat hook postrouting priority srcnat
//       ip saddr . ip daddr @local4 return; ip daddr 224.0.0.0/4 return; ip saddr @pods4 masquerade; (IPv6 likewise) }
//   }
//
// Elements carry the attachment's key as their comment, so DEL and GC delete
// exactly theirs; an address handed to another attachment changes owner in the
// same transaction that adds it. Every change is one `nft -f -` transaction,
// under a lock shared by all plugin processes; the table goes with its last pod.

export const MASQ_TABLE = 'cattle_cni_masq';
const MASQ_LOCK = 'nft-masq';
const MT = `inet ${MASQ_TABLE}`;

export interface MasqKey {
  network: string;
  containerId: string;
  ifname: string;
}

/** Element comment: network hash, then attachment hash (GC matches on the first, DEL on both). */
export function masqNftComment(k: MasqKey): string {
  return `ccni ${hashHex(k.network, 8)} ${hashHex(`${k.network}\0${k.containerId}\0${k.ifname}`, 16)}`;
}

export function hasTool(name: string): boolean {
  return findTool(name) !== undefined;
}

/** The reference's default: iptables, unless only nft is installed. */
export function masqBackend(configured: 'iptables' | 'nftables' | undefined): 'iptables' | 'nftables' {
  if (configured) return configured;
  return !hasTool('iptables') && hasTool('nft') ? 'nftables' : 'iptables';
}

const BASE = [
  `add table ${MT}`,
  `add set ${MT} pods4 { type ipv4_addr ; }`,
  `add set ${MT} pods6 { type ipv6_addr ; }`,
  `add set ${MT} local4 { type ipv4_addr . ipv4_addr ; flags interval ; }`,
  `add set ${MT} local6 { type ipv6_addr . ipv6_addr ; flags interval ; }`,
  `add chain ${MT} postrouting { type nat hook postrouting priority srcnat ; policy accept ; }`,
  // Flushed and written again: exactly these rules whoever came first.
  `flush chain ${MT} postrouting`,
  `add rule ${MT} postrouting ip saddr . ip daddr @local4 return`,
  `add rule ${MT} postrouting ip6 saddr . ip6 daddr @local6 return`,
  `add rule ${MT} postrouting ip daddr 224.0.0.0/4 return`,
  `add rule ${MT} postrouting ip6 daddr ff00::/8 return`,
  `add rule ${MT} postrouting ip saddr @pods4 masquerade`,
  `add rule ${MT} postrouting ip6 saddr @pods6 masquerade`,
];

/** Masquerade these pod addresses (leaving their own subnets alone), owned by this attachment. */
export function setupMasqNft(k: MasqKey, addrs: Cidr[]): void {
  const comment = masqNftComment(k);
  const lines = [...BASE];
  for (const a of addrs) {
    const f = a.family === 4 ? '4' : '6';
    const pod = `${a.ip} comment "${comment}"`;
    const local = `${a.ip} . ${networkOf(a)} comment "${comment}"`;
    // add (so it exists), delete, add with our comment: the element is ours whoever had it.
    for (const [set, el] of [[`pods${f}`, pod], [`local${f}`, local]] as const) {
      lines.push(`add element ${MT} ${set} { ${el} }`, `delete element ${MT} ${set} { ${el} }`, `add element ${MT} ${set} { ${el} }`);
    }
  }
  const lock = acquireLock(MASQ_LOCK);
  try {
    nft([], lines.join('\n') + '\n');
  } finally {
    lock.release();
  }
}

interface NftElement { set: string; key: string; comment?: string }

/** nft's JSON of a set element key, back in nft syntax. */
function renderKey(v: unknown): string {
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  const o = v as { concat?: unknown[]; prefix?: { addr: string; len: number }; range?: [unknown, unknown] };
  if (o.concat) return o.concat.map(renderKey).join(' . ');
  if (o.prefix) return `${o.prefix.addr}/${o.prefix.len}`;
  if (o.range) return `${renderKey(o.range[0])}-${renderKey(o.range[1])}`;
  throw new Error(`unexpected nft set element ${JSON.stringify(v)}`);
}

function masqElements(): NftElement[] | undefined {
  const out = nftList(['table', 'inet', MASQ_TABLE]);
  if (!out) return undefined;
  const list: NftElement[] = [];
  for (const o of out.nftables) {
    const set = o.set as { name?: string; elem?: unknown[] } | undefined;
    if (!set?.name) continue;
    for (const e of set.elem ?? []) {
      const wrapped = (e as { elem?: { val: unknown; comment?: string } }).elem;
      list.push(wrapped ? { set: set.name, key: renderKey(wrapped.val), comment: wrapped.comment } : { set: set.name, key: renderKey(e) });
    }
  }
  return list;
}

/** Delete the elements `drop` selects; the table (and the lock file) when nothing else is left. */
function removeMasqElements(drop: (e: NftElement) => boolean): void {
  const lock = acquireLock(MASQ_LOCK);
  let gone = false;
  try {
    const elements = masqElements();
    if (!elements) {
      gone = true;
      return;
    }
    const mine = elements.filter(drop);
    if (mine.length === elements.length) {
      nft(['delete', 'table', 'inet', MASQ_TABLE]);
      gone = true;
    } else if (mine.length) {
      nft([], mine.map((e) => `delete element ${MT} ${e.set} { ${e.key} }`).join('\n') + '\n');
    }
  } finally {
    lock.release({ remove: gone });
  }
}

/** DEL: this attachment's elements go. Harmless when none exist. */
export function teardownMasqNft(k: MasqKey): void {
  const comment = masqNftComment(k);
  removeMasqElements((e) => e.comment === comment);
}

/** GC: elements of this network whose attachment is not among `valid`. */
export function gcMasqNft(network: string, valid: MasqKey[]): void {
  const prefix = masqNftComment({ network, containerId: '', ifname: '' }).split(' ').slice(0, 2).join(' ') + ' ';
  const keep = new Set(valid.map(masqNftComment));
  removeMasqElements((e) => !!e.comment?.startsWith(prefix) && !keep.has(e.comment));
}

/** CHECK: the attachment has its pod addresses in the table. */
export function masqNftPresent(k: MasqKey): boolean {
  const comment = masqNftComment(k);
  return !!masqElements()?.some((e) => e.comment === comment && e.set.startsWith('pods'));
}
