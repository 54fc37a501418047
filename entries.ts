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

/** The entry for an invocation: the invoked file name (argv0), else argv[1] (`node main.ts name`). */
export function entryName(argv0: string, argv1: string | undefined): string {
  const invoked = path.basename(argv0);
  if (Object.hasOwn(ENTRIES, invoked)) return invoked;
  const second = argv1 ? path.basename(argv1) : '';
  return Object.hasOwn(ENTRIES, second) ? second : invoked;
}
