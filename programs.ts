// The long-running programs. They are a bundle of their own in the executable
// (an SEA asset, programs.cjs), so that a plugin start neither compiles nor
// deserialises the metadata server, its YAML library or the agent.
import type { Entry } from './names.ts';

export const PROGRAMS = {
  'cattle-metadata': () => import('./metadata/main.ts'),
  'cattle-net': () => import('./agent/main.ts'),
} satisfies Record<string, () => Promise<Entry>>;

export type ProgramBundleName = keyof typeof PROGRAMS;
