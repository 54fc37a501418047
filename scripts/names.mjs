// The names the one executable answers to (a link per name in dist/bin).
// Keep in sync with the dispatch table in main.ts (a unit test checks).
export const ENTRY_NAMES = ['cattle-cni'];
