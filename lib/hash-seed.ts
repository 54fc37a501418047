// V8's string hash seed for long-running programs.
//
// The executable starts with --no-rehash-snapshot (scripts/build.mjs): V8 then
// keeps the hash seed baked into Node's start-up snapshot instead of drawing a
// random one and rehashing every table of the snapshot, ~3 ms of every start
// (measured). A one-shot plugin reads bounded input from its own caller, so a
// fixed seed costs it nothing. A server reads keys chosen by its clients (HTTP
// headers from pods, for the metadata server), and a known seed is the
// hash-flooding hole of CVE-2017-11499: servers replace themselves, once, with
// a process that draws its own seed.

/** The flag the executable's execArgv carries; the last of the pair on a command line wins. */
const FIXED_SEED = '--no-rehash-snapshot';
const RANDOM_SEED = '--rehash-snapshot';

/** Whether this process runs with the snapshot's fixed hash seed. */
export function hashSeedIsFixed(execArgv: readonly string[] = process.execArgv): boolean {
  return execArgv.findLast((f) => f === FIXED_SEED || f === RANDOM_SEED) === FIXED_SEED;
}

/**
 * Call first in a server command, before it opens anything: re-executes this
 * program (same PID, arguments and environment) with a random hash seed, or
 * returns when it already has one. The executable takes node options only from
 * a `--node-options=` argument (execArgvExtension "cli"), never from the
 * environment. The code cache in the executable was made without the flag and
 * V8 declines it then, which Node reports with a plain "Warning": silenced.
 */
export function ensureRandomHashSeed(): void {
  if (!hashSeedIsFixed()) return;
  if (!process.execve) throw new Error('cannot draw a random hash seed: this Node has no process.execve');
  process.execve(process.execPath, [process.argv0, ...process.argv.slice(2), `--node-options=${RANDOM_SEED} --disable-warning=Warning`], process.env);
}
