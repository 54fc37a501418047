// The long-running programs. They are a bundle of their own in the executable
// (an SEA asset, programs.cjs), so that a plugin start neither compiles nor
// deserialises the metadata server, its YAML library or the agent.
import type { Entry } from './names.ts';

export const PROGRAMS = {
  'cattle-metadata': () => import('./metadata/main.ts'),
  // The agent serves the fast path with the very same plugin code.
  'cattle-net': async () => {
    const [agent, plugins] = await Promise.all([import('./agent/main.ts'), import('./cni-plugins.ts')]);
    return { main: (args: string[]) => agent.main(args, { programs: plugins.CNI_PLUGINS, run: plugins.runPluginInProcess }) };
  },
} satisfies Record<string, () => Promise<Entry>>;

export type ProgramBundleName = keyof typeof PROGRAMS;
