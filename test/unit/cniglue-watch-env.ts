// Imported first by cniglue-watch.test.ts, before any cniglue module: lib/state.ts
// reads CATTLE_CNI_STATE_DIR once, when it loads, and the watcher tests leave
// plugin state records (what our plugins store per attachment) in a temp dir.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const PLUGIN_STATE_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'cglue-pstate-'));
process.env.CATTLE_CNI_STATE_DIR = PLUGIN_STATE_DIR;
process.on('exit', () => fs.rmSync(PLUGIN_STATE_DIR, { recursive: true, force: true }));
