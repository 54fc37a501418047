// Inside the executable: evaluate the programs bundle (SEA asset programs.cjs)
// on first use. It is self-contained CommonJS that needs only Node's built-in
// modules, so the SEA's require is all it gets.
import path from 'node:path';
import sea from 'node:sea';

import type { Entry } from './names.ts';
import type { ProgramBundleName, PROGRAMS } from './programs.ts';

export const PROGRAMS_ASSET = 'programs.cjs';

type Programs = typeof PROGRAMS;
let programs: Programs | undefined;

function evaluate(): Programs {
  // Loaded here, not at the top: a plugin start never needs it.
  const vm = process.getBuiltinModule('node:vm');
  const filename = path.join(path.dirname(process.execPath), PROGRAMS_ASSET);
  const source = sea.getAsset(PROGRAMS_ASSET, 'utf8');
  // The default loader lets a dynamic import('node:…') work here as in the main script.
  const wrapper = vm.runInThisContext(`(function (exports, require, module, __filename, __dirname) {${source}\n})`,
    { filename, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER });
  const module = { exports: {} as { PROGRAMS: Programs } };
  wrapper(module.exports, require, module, filename, path.dirname(filename));
  return module.exports.PROGRAMS;
}

export async function loadProgram(name: ProgramBundleName): Promise<Entry> {
  programs ??= evaluate();
  return programs[name]();
}
