// Fuzz the built plugins on demand (issue 11, B): the property and the cases
// of test/integration/fuzz.test.ts, as many as you like.
//
//   node scripts/fuzz.ts --runs 10000            # per family: bridge, ptp, ipam
//   npm run fuzz -- --runs 10000 --families bridge --seed 42 --jobs 2
//   node scripts/fuzz.ts --keep-going --runs 5000 # do not stop: list every distinct violation
//   node scripts/fuzz.ts --replay bridge:20251111:24:24:11   # one counterexample again
//
// Needs root (namespaces) and a build (dist/bin, or CATTLE_CNI_BIN). Without
// --keep-going a violation is shrunk and printed with its seed and path, and
// the exit status is 1. --stats prints what the cases ran into (exit codes and
// the first words of the error messages), to see what the generators reach.
import { parseArgs } from 'node:util';

import type { Family } from '../test/helpers/fuzz-arbitraries.ts';
import { caseText, formatFailure, fuzzFamily, type FuzzReport } from '../test/helpers/fuzz-runner.ts';
import { cleanupAll } from '../test/helpers/harness.ts';
import { killAllGroups } from '../test/helpers/spawn-group.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string', default: process.env.FUZZ_SEED ?? String(Date.now() % 2 ** 31) },
    jobs: { type: 'string', default: '2' },
    families: { type: 'string', default: 'bridge,ptp,ipam' },
    'keep-going': { type: 'boolean', default: false },
    stats: { type: 'boolean', default: false },
    replay: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log('usage: node scripts/fuzz.ts [--runs N] [--seed S] [--jobs J] [--families bridge,ptp,ipam] [--keep-going] [--stats] [--replay family:seed:path]');
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  console.error('fuzz: needs root (it makes network namespaces)');
  process.exit(2);
}

const seed = Number(values.seed);
const runs = Number(values.runs);
const jobs = Math.max(1, Number(values.jobs));
let families = values.families.split(',').map((f) => f.trim()) as Family[];
let replay: { seed: number; path: string } | undefined;
if (values.replay) {
  const [family, s, ...p] = values.replay.split(':');
  families = [family as Family];
  replay = { seed: Number(s), path: p.join(':') };
}

process.on('SIGINT', () => {
  killAllGroups();
  cleanupAll();
  process.exit(130);
});

let failed = false;
console.log(`fuzz: seed ${seed} (worker k: seed + k), ${runs} cases per family, ${jobs} at a time${values['keep-going'] ? ', keep going' : ''}`);
for (const family of families) {
  const stats = new Map<string, number>();
  const report: FuzzReport = await fuzzFamily(family, {
    seed, runs, jobs, keepGoing: values['keep-going'], ...(replay ? { replay } : {}),
    progress: (line) => console.log(`  ${line}`),
    onCase: values.stats ? (c, o) => {
      let key = `exit ${o.code}`;
      if (o.code === 1) {
        try {
          const e = JSON.parse(o.stdout) as { code?: number; msg?: string };
          key += ` code ${e.code}: ${String(e.msg).replace(/\d+/g, 'N').slice(0, 90)}`;
        } catch {
          key += ' (no JSON)';
        }
      } else if (o.code === 0) key += ` ${c.command}${o.added ? ' (added)' : ''}`;
      stats.set(key, (stats.get(key) ?? 0) + 1);
    } : undefined,
  });
  console.log(`fuzz ${family}: ${report.runs} runs, ${report.executed} cases executed (exit 0: ${report.exit0}, exit 1: ${report.exit1}, `
    + `ADD ok + DEL: ${report.added}), ${(report.ms / 1000).toFixed(1)} s, ${(report.executed / (report.ms / 1000)).toFixed(1)} cases/s`);
  if (values.stats) {
    for (const [k, n] of [...stats].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`  ${String(n).padStart(6)}  ${k}`);
  }
  for (const f of report.failures) {
    failed = true;
    console.log(`\n${formatFailure(family, f)}\n`);
  }
  for (const [sig, d] of report.distinct) {
    failed = true;
    console.log(`\nfuzz ${family}: ${d.count}× ${sig}\n  example: ${caseText(d.example)}\n  violations:\n${d.violations.replace(/^/gm, '    ')}\n  by hand: ${d.reproduction}\n`);
  }
}
cleanupAll();
process.exit(failed ? 1 : 0);
