// Property-based fuzzing of the built executable (issue 11, B): valid-ish and
// hostile configurations, environments and CNI_ARGS (test/helpers/fuzz-arbitraries.ts)
// against cattle-bridge (and rancher-bridge), cattle-ptp and cattle-ipam (and
// rancher-cni-ipam), each in a test world; the property and the world are
// described in test/helpers/fuzz-runner.ts.
//
// CI runs FUZZ_RUNS cases per executable family (default 1100: the aliases get
// about a tenth of the bridge and ipam families, so each of cattle-bridge,
// cattle-ptp and cattle-ipam gets at least 1000 on average), FUZZ_JOBS at
// a time (default 2: two workers, each with its own world and seed), with a
// fixed seed (FUZZ_SEED; worker k uses seed + k). A failure prints the seed,
// fast-check's path, the shrunk counterexample and a shell line that replays
// it; FUZZ_REPLAY=<family>:<seed>:<path> runs exactly that case again.
// More cases on demand: npm run fuzz -- --runs 10000 (or node_modules/.bin/node scripts/fuzz.ts …).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Family } from '../helpers/fuzz-arbitraries.ts';
import { formatFailure, fuzzFamily } from '../helpers/fuzz-runner.ts';
import { makeNetns } from '../helpers/harness.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20251111);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1100);
const JOBS = Math.max(1, Number(process.env.FUZZ_JOBS ?? 2));
const REPLAY = process.env.FUZZ_REPLAY?.split(':');

// harness.makeNetns registers its after(cleanupAll) hook on the test running at
// its first call; called here first, the hook belongs to the file.
makeNetns('fz-init').destroy();

const FAMILIES: Family[] = ['bridge', 'ptp', 'ipam'];

for (const family of FAMILIES) {
  const replay = REPLAY && REPLAY[0] === family ? { seed: Number(REPLAY[1]), path: REPLAY.slice(2).join(':') } : undefined;
  const skip = REPLAY && !replay ? `FUZZ_REPLAY is for ${REPLAY[0]}` : false;
  test(`fuzz ${family}: exit 0, or 1 with one CNI error; ADD then DEL leaves nothing`, { skip }, async (t) => {
    const report = await fuzzFamily(family, { seed: SEED, runs: RUNS, jobs: JOBS, ...(replay ? { replay } : {}) });
    t.diagnostic(`fuzz ${family}: seed ${SEED} (workers: seed + 0..${JOBS - 1}), ${report.runs} runs, ${report.executed} cases executed `
      + `(exit 0: ${report.exit0}, exit 1: ${report.exit1}, ADD ok + DEL: ${report.added}), ${(report.ms / 1000).toFixed(1)} s`);
    for (const f of report.failures) t.diagnostic(formatFailure(family, f));
    assert.equal(report.failures.length, 0, report.failures.map((f) => formatFailure(family, f)).join('\n\n'));
  });
}
