// The CNI plugins among the programs, and how they are wired: our IPAM runs
// in-process, our other programs are refused as IPAM. Used by main.ts for a
// plugin run and by the agent to run forwarded requests (the fast path) with
// the very same code.
import { PROGRAM_NAMES } from './names.ts';

/** The CNI plugins: their VERSION answer is the same and needs none of their code. */
export const CNI_PLUGINS: ReadonlySet<string> = new Set(['cattle-bridge', 'rancher-bridge', 'cattle-ptp', 'cattle-ipam', 'rancher-cni-ipam']);

/** Main plugins: they delegate to an IPAM plugin. */
export const DELEGATING: ReadonlySet<string> = new Set(['cattle-bridge', 'rancher-bridge', 'cattle-ptp']);

/** Our IPAM programs; a main plugin calls them in-process (no second Node start). */
const IPAM_PROGRAMS: readonly string[] = ['cattle-ipam', 'rancher-cni-ipam'];

/** Programs that must never run as IPAM: a loop back into a main plugin, or a server that never answers. */
export const NOT_IPAM: readonly string[] = PROGRAM_NAMES.filter((n) => !IPAM_PROGRAMS.includes(n));

let delegationReady = false;

/** Before a main plugin runs: our IPAM in-process, our other programs refused as IPAM. */
export async function setUpDelegation(): Promise<void> {
  if (delegationReady) return;
  const { declareNotIpam, registerInProcessIpam } = await import('./lib/ipam.ts');
  const load = () => import('./ipam/cattle/plugin.ts').then((m) => m.plugin);
  for (const type of IPAM_PROGRAMS) registerInProcessIpam(type, load);
  declareNotIpam(NOT_IPAM);
  delegationReady = true;
}

const SPECS: Record<string, () => Promise<import('./lib/skel.ts').PluginSpec>> = {
  'cattle-bridge': () => import('./plugins/bridge/bridge.ts').then((m) => m.plugin),
  'rancher-bridge': () => import('./plugins/bridge/bridge.ts').then((m) => m.plugin),
  'cattle-ptp': () => import('./plugins/ptp/ptp.ts').then((m) => m.plugin),
  'cattle-ipam': () => import('./ipam/cattle/plugin.ts').then((m) => m.plugin),
  'rancher-cni-ipam': () => import('./ipam/cattle/plugin.ts').then((m) => m.plugin),
};

/**
 * Run one plugin invocation inside this (long-running) process, as the
 * executable would: same harness, same validation; what it would print is
 * returned instead. For the agent's fast path.
 */
export async function runPluginInProcess(program: string, env: Record<string, string>, stdin: Buffer): Promise<{ exit: number; stdout: string; stderr: string }> {
  const spec = SPECS[program];
  if (!spec) throw new Error(`not a CNI plugin: ${program}`);
  if (DELEGATING.has(program)) await setUpDelegation();
  const { runPlugin } = await import('./lib/skel.ts');
  let stdout = '';
  let stderr = '';
  const exit = await runPlugin(await spec(), {
    env,
    stdinIsTTY: false,
    readStdin: () => stdin,
    writeStdout: (s) => (stdout += s),
    writeStderr: (s) => (stderr += s),
  });
  return { exit, stdout, stderr };
}
