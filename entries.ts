// The names the one executable answers to, each imported lazily so that a
// plugin start evaluates only its own modules.
import path from 'node:path';

import { loadProgram } from './load-programs.ts';
import type { Entry, ProgramName } from './names.ts';

export const ENTRIES: Record<ProgramName, () => Promise<Entry>> = {
  'cattle-cni': () => import('./cli/main.ts'),
  'cattle-bridge': () => import('./plugins/bridge/bridge.ts'),
  'rancher-bridge': () => import('./plugins/bridge/bridge.ts'),
  'cattle-ptp': () => import('./plugins/ptp/ptp.ts'),
  'cattle-ipam': () => import('./ipam/cattle/plugin.ts'),
  'rancher-cni-ipam': () => import('./ipam/cattle/plugin.ts'),
  'cattle-metadata': () => loadProgram('cattle-metadata'),
  'cniglue': () => import('./cniglue/main.ts'),
  'cattle-net': () => loadProgram('cattle-net'),
};

/** Our IPAM programs; a main plugin calls them in-process (no second Node start). */
const IPAM_ENTRIES: readonly string[] = ['cattle-ipam', 'rancher-cni-ipam'];

/** Entries that must never run as IPAM: a loop back into a main plugin, or a server that never answers. */
export const NOT_IPAM: readonly string[] = Object.keys(ENTRIES).filter((n) => !IPAM_ENTRIES.includes(n));

/** Main plugins: they delegate to an IPAM plugin. */
export const DELEGATING: ReadonlySet<string> = new Set(['cattle-bridge', 'rancher-bridge', 'cattle-ptp']);

/** Before a main plugin runs: our IPAM in-process, our other programs refused as IPAM. */
export async function setUpDelegation(): Promise<void> {
  const { declareNotIpam, registerInProcessIpam } = await import('./lib/ipam.ts');
  const load = () => import('./ipam/cattle/plugin.ts').then((m) => m.plugin);
  for (const type of IPAM_ENTRIES) registerInProcessIpam(type, load);
  declareNotIpam(NOT_IPAM);
}

/** The CNI plugins among the entries: their VERSION answer is the same and needs none of their code. */
export const CNI_PLUGINS: ReadonlySet<string> = new Set(['cattle-bridge', 'rancher-bridge', 'cattle-ptp', 'cattle-ipam', 'rancher-cni-ipam']);

/** The entry for an invocation: the invoked file name (argv0), else argv[1] (`node main.ts name`). */
export function entryName(argv0: string, argv1: string | undefined): string {
  const invoked = path.basename(argv0);
  if (Object.hasOwn(ENTRIES, invoked)) return invoked;
  const second = argv1 ? path.basename(argv1) : '';
  return Object.hasOwn(ENTRIES, second) ? second : invoked;
}
