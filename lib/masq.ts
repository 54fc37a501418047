// IP masquerade for pod addresses, one iptables chain per attachment (as the
// reference plugins do): POSTROUTING -s <pod> -j <chain>; the chain accepts
// traffic to the pod's own subnet and masquerades the rest (not multicast).
// iptables is executed with argv arrays, never through a shell.
import fs from 'node:fs';
import path from 'node:path';

import { childStdio } from './children.ts';
import { hashHex } from './hash.ts';
import { type Cidr, networkOf } from './ip.ts';

/** Chain names are limited to 28 characters. */
export function masqChainName(network: string, containerId: string, ifname: string): string {
  return `CCNI-${hashHex(`${network}\0${containerId}\0${ifname}`, 23)}`;
}

export function masqComment(network: string, containerId: string): string {
  return `cattle-cni name: "${network}" id: "${containerId}"`.slice(0, 255);
}

function findTool(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const f = path.join(d, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // keep looking
    }
  }
  throw new Error(`${name} not found in PATH (needed for ipMasq)`);
}

/** Run a tool, stdout as text. child_process is loaded on first use: most plugin runs execute nothing. */
function run(file: string, args: string[], stdio: 'pipe' | 'ignore' = 'pipe'): string {
  return process.getBuiltinModule('node:child_process').execFileSync(file, args, { encoding: 'utf8', stdio: childStdio(['ignore', stdio, stdio]) });
}

function xtables(family: 4 | 6, args: string[], allowFail = false): string {
  const tool = findTool(family === 4 ? 'iptables' : 'ip6tables');
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
    run(findTool(family === 4 ? 'iptables' : 'ip6tables'), ['-w', '5', '-t', 'nat', '-C', ...rule], 'ignore');
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
