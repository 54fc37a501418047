// Loads a program from programs.ts. From source this is a plain import; the
// build replaces this module with load-programs.sea.ts, which evaluates the
// programs bundle embedded in the executable.
import type { Entry } from './names.ts';
import type { ProgramBundleName } from './programs.ts';

export async function loadProgram(name: ProgramBundleName): Promise<Entry> {
  const { PROGRAMS } = await import('./programs.ts');
  return PROGRAMS[name]();
}
