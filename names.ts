// The names the one executable answers to (a link per name in dist/bin). A
// leaf module: entries.ts maps each name to its program, and programs that
// need the list (cattle-cni names) read it here, so nothing imports entries.
export const PROGRAM_NAMES = [
  'cattle-cni', 'cattle-bridge', 'rancher-bridge', 'cattle-ptp', 'cattle-ipam', 'rancher-cni-ipam', 'cattle-metadata', 'cniglue', 'cattle-net',
] as const;

export type ProgramName = (typeof PROGRAM_NAMES)[number];

/** What every program module exports. */
export interface Entry {
  main(args: string[]): Promise<number>;
}
