// Run by the pinned Node (the executable's own V8) during the build: the code
// cache of main.cjs's top level, used by the executable until its runs have
// made a fuller one (lib/code-cache.ts).
import fs from 'node:fs';
import vm from 'node:vm';

import { wrapBundle } from '../lib/code-cache.ts';

const [bundle, out] = process.argv.slice(2);
if (!bundle || !out) throw new Error('usage: build-code-cache.ts BUNDLE OUT');
fs.writeFileSync(out, new vm.Script(wrapBundle(fs.readFileSync(bundle, 'utf8')), { filename: bundle }).createCachedData());
