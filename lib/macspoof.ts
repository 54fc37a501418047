// MAC spoof check for bridge ports (the reference's macspoofchk), in one
// nftables table of ours, bridge family:
//
//   table bridge cattle_cni_macspoof {
//     map ports { type ifname : verdict }             # host veth → its port chain
//     chain prerouting { type filter hook prerouting priority -300; iifname vmap @ports }
//     chain port-<hash> { ether saddr != <pod MAC> drop }   # one per attachment
//   }
//
// A port chain and its map element are named from the attachment (network,
// container, interface), so DEL and GC remove exactly theirs. Changes are one
// `nft -f -` transaction each (all or nothing, also when killed), made under a
// lock shared by every plugin process, so the table goes with its last port.
import { hashHex } from './hash.ts';
import { acquireLock } from './lock.ts';
import { nft, nftList } from './masq.ts';

export const MACSPOOF_TABLE = 'cattle_cni_macspoof';
const LOCK = 'nft-macspoof';
const T = `bridge ${MACSPOOF_TABLE}`;

export interface SpoofPort {
  network: string;
  containerId: string;
  ifname: string;
  /** The host veth (bridge port) the pod's frames come in on. */
  hostVeth: string;
}

export function spoofChainName(p: Omit<SpoofPort, 'hostVeth'>): string {
  return `port-${hashHex(`${p.network}\0${p.containerId}\0${p.ifname}`, 16)}`;
}

function quoted(s: string): string {
  if (!/^[\w.:@-]+$/.test(s)) throw new Error(`unexpected characters in nft name ${JSON.stringify(s)}`);
  return `"${s}"`;
}

/** Frames entering from the port with another source MAC than `mac` are dropped. Idempotent. */
export function setupSpoofCheck(p: SpoofPort, mac: string): void {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) throw new Error(`not a MAC address: ${mac}`);
  const chain = spoofChainName(p);
  const script = [
    `add table ${T}`,
    `add map ${T} ports { type ifname : verdict ; }`,
    `add chain ${T} prerouting { type filter hook prerouting priority -300 ; policy accept ; }`,
    // Flushed and written again: exactly one dispatch rule whoever came first.
    `flush chain ${T} prerouting`,
    `add rule ${T} prerouting iifname vmap @ports`,
    `add chain ${T} ${chain}`,
    `flush chain ${T} ${chain}`,
    `add rule ${T} ${chain} ether saddr != ${mac} drop`,
    `add element ${T} ports { ${quoted(p.hostVeth)} : jump ${chain} }`,
  ].join('\n') + '\n';
  const lock = acquireLock(LOCK);
  try {
    nft([], script);
  } finally {
    lock.release();
  }
}

interface TableView {
  chains: Set<string>;
  /** map element key (ifname) → the chain it jumps to */
  elements: Map<string, string>;
}

function readTable(): TableView | undefined {
  const out = nftList(['table', 'bridge', MACSPOOF_TABLE]);
  if (!out) return undefined;
  const view: TableView = { chains: new Set(), elements: new Map() };
  for (const o of out.nftables) {
    const chain = o.chain as { name?: string } | undefined;
    if (chain?.name?.startsWith('port-')) view.chains.add(chain.name);
    const map = o.map as { name?: string; elem?: unknown[] } | undefined;
    if (map?.name === 'ports') {
      for (const e of map.elem ?? []) {
        const [key, verdict] = e as [unknown, { jump?: { target?: string } } | undefined];
        if (typeof key === 'string' && verdict?.jump?.target) view.elements.set(key, verdict.jump.target);
      }
    }
  }
  return view;
}

/** Remove this attachment's chain and map element; with them the table, when it was the last port. Harmless when absent. */
export function teardownSpoofCheck(p: Omit<SpoofPort, 'hostVeth'>): void {
  const chain = spoofChainName(p);
  const lock = acquireLock(LOCK);
  let removedTable = false;
  try {
    const view = readTable();
    if (!view) {
      removedTable = true;
      return;
    }
    const others = [...view.chains].filter((c) => c !== chain);
    if (others.length === 0) {
      nft(['delete', 'table', 'bridge', MACSPOOF_TABLE]);
      removedTable = true;
      return;
    }
    const script: string[] = [];
    for (const [key, target] of view.elements) if (target === chain) script.push(`delete element ${T} ports { ${quoted(key)} }`);
    if (view.chains.has(chain)) script.push(`delete chain ${T} ${chain}`);
    if (script.length) nft([], script.join('\n') + '\n');
  } finally {
    // The lock file goes with the table: nothing of ours stays behind.
    lock.release({ remove: removedTable });
  }
}

/** CHECK: the port's chain exists and the port dispatches to it. */
export function spoofCheckPresent(p: SpoofPort): boolean {
  const view = readTable();
  const chain = spoofChainName(p);
  return !!view && view.chains.has(chain) && view.elements.get(p.hostVeth) === chain;
}
