// Entry point of the single executable: dispatch on the invoked name
// (dist/bin holds a link per name).
import { isSea } from 'node:sea';

import { CNI_PLUGINS, DELEGATING, setUpDelegation } from './cni-plugins.ts';
import { ENTRIES, entryName } from './entries.ts';
import { versionInfoJSON } from './lib/cni/versions.ts';
import { writeFdFully, writeStderrQuietly } from './lib/stdio.ts';

async function start(): Promise<number> {
  // In the executable argv is [exe, invoked name, ...args]; from source it is
  // [node, main.ts, name, ...args] so tests can run the sources directly.
  const fromSource = !isSea();
  const name = fromSource ? (process.argv[2] ?? 'cattle-cni') : entryName(process.argv0, process.argv[1]);
  const args = process.argv.slice(fromSource ? 3 : 2);
  // VERSION is asked often (every runtime probes it) and is the same for all
  // our plugins: answer before loading any plugin code. stdin is ignored.
  // Written to the descriptor: process.stdout on a pipe would load node:net and the stream stack (~2 ms).
  if (CNI_PLUGINS.has(name) && process.env.CNI_COMMAND === 'VERSION') {
    writeFdFully(1, `${JSON.stringify(versionInfoJSON())}\n`);
    return 0;
  }
  // When the per-host agent runs, it does the work, warm; this process only prints its answer.
  if (CNI_PLUGINS.has(name)) {
    const { forwardToAgent } = await import('./lib/fastpath/client.ts');
    const forwarded = forwardToAgent(name);
    if (forwarded !== undefined) return forwarded;
  }
  const load = Object.hasOwn(ENTRIES, name) ? ENTRIES[name as keyof typeof ENTRIES] : undefined;
  if (!load) {
    writeStderrQuietly(`cattle-cni: unknown program name "${name}"; link this executable as one of: ${Object.keys(ENTRIES).join(', ')}\n`);
    return 1;
  }
  if (DELEGATING.has(name)) await setUpDelegation();
  return (await load()).main(args);
}

start().then(
  (code) => finish(code),
  (e: unknown) => {
    writeStderrQuietly(`cattle-cni: ${e instanceof Error ? e.message : String(e)}\n`);
    finish(1);
  },
);

/**
 * One-shot commands exit as soon as they are done: waiting for the event loop
 * to wind down (libuv pool threads, closed handles) cost tens of milliseconds
 * per plugin run. Writes to pipes and files are synchronous on Linux, so
 * nothing printed is lost. Servers (metadata, cniglue watch) resolve only
 * when they shut down.
 */
function finish(code: number): never {
  process.exit(code);
}
