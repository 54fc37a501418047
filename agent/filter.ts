// The members-only filter: VXLAN has no authentication, so UDP 4789 is
// accepted only from the current hosts' agent IPs (a named set, updated at
// every reconcile whose peers changed) and every other UDP 4789 packet is
// dropped and counted. nftables (table inet cattle_net) where `nft` exists,
// else an iptables chain. Tools are executed with argv arrays, never a shell;
// nft scripts go on stdin.
import path from 'node:path';

import { findTool } from '../lib/plugin-path.ts';
import { VXLAN_PORT } from './config.ts';

export const NFT_TABLE = 'cattle_net';
export const NFT_SET = 'members';
export const NFT_COUNTER = 'vxlan_dropped';
export const IPT_CHAIN = 'CATTLE-NET-VXLAN';

export type Backend = 'nft' | 'iptables';

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], input?: string): RunResult {
  const r = process.getBuiltinModule('node:child_process').spawnSync(file, args, { encoding: 'utf8', input: input ?? '', timeout: 15_000 });
  if (r.error) return { status: null, stdout: '', stderr: r.error.message };
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function must(file: string, args: string[], input?: string): string {
  const r = run(file, args, input);
  if (r.status !== 0) throw new Error(`${path.basename(file)} ${args.join(' ')}: ${(r.stderr || r.stdout).trim() || `exit ${r.status}`}`);
  return r.stdout;
}

/** The nft table, whole: replaced atomically (add + delete + define in one transaction). */
export function nftTableScript(members: readonly string[], underlayIface?: string): string {
  const iif = underlayIface !== undefined ? `iifname ${JSON.stringify(underlayIface)} ` : '';
  const elements = members.length ? ` elements = { ${[...members].sort().join(', ')} };` : '';
  return [
    `add table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    `  set ${NFT_SET} { type ipv4_addr;${elements} }`,
    `  counter ${NFT_COUNTER} { }`,
    '  chain input {',
    '    type filter hook input priority filter - 10; policy accept;',
    `    ${iif}udp dport ${VXLAN_PORT} ip saddr @${NFT_SET} accept`,
    `    ${iif}udp dport ${VXLAN_PORT} counter name ${NFT_COUNTER} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The member set replaced in one transaction. */
export function nftMembersScript(members: readonly string[]): string {
  const lines = [`flush set inet ${NFT_TABLE} ${NFT_SET}`];
  if (members.length) lines.push(`add element inet ${NFT_TABLE} ${NFT_SET} { ${[...members].sort().join(', ')} }`);
  return `${lines.join('\n')}\n`;
}

/** iptables-restore input for the chain (declaring it flushes it, in the same commit). */
export function iptablesScript(members: readonly string[], underlayIface?: string): string {
  const iif = underlayIface !== undefined ? `-i ${underlayIface} ` : '';
  return [
    '*filter',
    `:${IPT_CHAIN} - [0:0]`,
    ...[...members].sort().map((ip) => `-A ${IPT_CHAIN} ${iif}-s ${ip}/32 -j ACCEPT`),
    `-A ${IPT_CHAIN} ${iif}-j DROP`,
    'COMMIT',
    '',
  ].join('\n');
}

export interface FilterState {
  backend: Backend;
  members: number;
  /** Packets dropped since the filter was (re)made. */
  dropped?: number;
}

export class MembersFilter {
  readonly backend: Backend;
  private readonly tool: string;
  private readonly underlayIface: string | undefined;
  private members: string[] | undefined;

  constructor(underlayIface?: string, backend?: Backend) {
    const nft = findTool('nft');
    this.backend = backend ?? (nft ? 'nft' : 'iptables');
    const tool = this.backend === 'nft' ? nft : findTool('iptables');
    if (!tool) throw new Error('neither nft nor iptables found in PATH: cannot filter VXLAN sources (use --no-filter)');
    this.tool = tool;
    this.underlayIface = underlayIface;
  }

  /** Is the filter in the kernel as we made it? */
  present(): boolean {
    if (this.backend === 'nft') return run(this.tool, ['list', 'set', 'inet', NFT_TABLE, NFT_SET]).status === 0;
    return run(this.tool, ['-w', '5', '-C', 'INPUT', '-p', 'udp', '--dport', String(VXLAN_PORT), '-j', IPT_CHAIN]).status === 0;
  }

  /** Make the filter (again) with these members. */
  create(members: readonly string[]): void {
    if (this.backend === 'nft') {
      must(this.tool, ['-f', '-'], nftTableScript(members, this.underlayIface));
    } else {
      must(`${this.tool}-restore`, ['-w', '5', '--noflush'], iptablesScript(members, this.underlayIface));
      if (!this.present()) must(this.tool, ['-w', '5', '-I', 'INPUT', '-p', 'udp', '--dport', String(VXLAN_PORT), '-j', IPT_CHAIN]);
    }
    this.members = [...members].sort();
  }

  /** Members now: a transaction only when they changed (or the filter is missing, with check). */
  update(members: readonly string[], check: boolean): 'created' | 'updated' | 'unchanged' {
    const sorted = [...members].sort();
    if (this.members === undefined || (check && !this.present())) {
      this.create(sorted);
      return 'created';
    }
    if (sorted.length === this.members.length && sorted.every((m, i) => m === this.members![i])) return 'unchanged';
    if (this.backend === 'nft') must(this.tool, ['-f', '-'], nftMembersScript(sorted));
    else must(`${this.tool}-restore`, ['-w', '5', '--noflush'], iptablesScript(sorted, this.underlayIface));
    this.members = sorted;
    return 'updated';
  }

  /** Packets dropped (nft: the named counter; iptables: the chain's DROP rule). */
  dropped(): number | undefined {
    if (this.backend === 'nft') {
      const r = run(this.tool, ['-j', 'list', 'counter', 'inet', NFT_TABLE, NFT_COUNTER]);
      if (r.status !== 0) return undefined;
      try {
        const items = (JSON.parse(r.stdout) as { nftables?: { counter?: { packets?: number } }[] }).nftables ?? [];
        return items.find((i) => i.counter)?.counter?.packets;
      } catch {
        return undefined;
      }
    }
    const r = run(this.tool, ['-w', '5', '-L', IPT_CHAIN, '-n', '-v', '-x']);
    const drop = r.stdout.split('\n').find((l) => /\bDROP\b/.test(l));
    return drop ? Number(drop.trim().split(/\s+/)[0]) : undefined;
  }

  state(): FilterState {
    const s: FilterState = { backend: this.backend, members: this.members?.length ?? 0 };
    const d = this.dropped();
    if (d !== undefined) s.dropped = d;
    return s;
  }
}

/** Remove our filter (both kinds, whichever exists); returns what was removed. */
export function removeFilter(): string[] {
  const removed: string[] = [];
  const nft = findTool('nft');
  if (nft && run(nft, ['list', 'table', 'inet', NFT_TABLE]).status === 0) {
    must(nft, ['delete', 'table', 'inet', NFT_TABLE]);
    removed.push(`nftables table inet ${NFT_TABLE}`);
  }
  const ipt = findTool('iptables');
  if (ipt && run(ipt, ['-w', '5', '-n', '-L', IPT_CHAIN]).status === 0) {
    while (run(ipt, ['-w', '5', '-D', 'INPUT', '-p', 'udp', '--dport', String(VXLAN_PORT), '-j', IPT_CHAIN]).status === 0) { /* every jump */ }
    run(ipt, ['-w', '5', '-F', IPT_CHAIN]);
    must(ipt, ['-w', '5', '-X', IPT_CHAIN]);
    removed.push(`iptables chain ${IPT_CHAIN}`);
  }
  return removed;
}
