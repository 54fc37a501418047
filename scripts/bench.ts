// The benchmark command (run through scripts/bench.sh, inside a test-made
// host netns). Measures whole processes, side by side with the Go reference
// plugins in the same run, and writes docs/BENCHMARKS.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  type BenchRow,
  BIN, cleanEnv, fmtMs, median, NODE, peakRssKiB, podNetns, REF, ROOT, sh, timeRun, timeRunAsync } from './bench-lib.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 25);
const STORM = 50;

interface Section {
  title: string;
  rows: BenchRow[];
  notes?: string[];
}

function startup(): { section: Section; nodeStartMs: number } {
  const env = cleanEnv({ CNI_COMMAND: 'VERSION' });
  const ours: number[] = [];
  const node: number[] = [];
  const go: number[] = [];
  // Interleaved, after one warm-up each, so drift hits all three alike.
  timeRun(path.join(BIN, 'cattle-bridge'), [], env);
  timeRun(NODE, ['-e', '0'], env);
  timeRun(path.join(REF, 'bridge'), [], env);
  for (let i = 0; i < RUNS; i++) {
    ours.push(timeRun(path.join(BIN, 'cattle-bridge'), [], env).ms);
    node.push(timeRun(NODE, ['-e', '0'], env).ms);
    go.push(timeRun(path.join(REF, 'bridge'), [], env).ms);
  }
  const rss = (f: string, a: string[]) => median([0, 1, 2, 3, 4].map(() => peakRssKiB(f, a, env)));
  const oursRss = rss(path.join(BIN, 'cattle-bridge'), []);
  const nodeRss = rss(NODE, ['-e', '0']);
  const goRss = rss(path.join(REF, 'bridge'), []);
  const mo = median(ours);
  const mn = median(node);
  return {
    nodeStartMs: mn,
    section: {
      title: `Start-up: CNI_COMMAND=VERSION (median of ${RUNS})`,
      rows: [
        { name: 'wall time', ours: fmtMs(mo), reference: `node -e 0: ${fmtMs(mn)}; Go bridge: ${fmtMs(median(go))}`, note: `ours / bare Node = ${(mo / mn).toFixed(2)} (target ≤ 1.10)` },
        { name: 'peak RSS', ours: `${(oursRss / 1024).toFixed(1)} MiB`, reference: `node -e 0: ${(nodeRss / 1024).toFixed(1)} MiB; Go bridge: ${(goRss / 1024).toFixed(1)} MiB`, note: `ours / bare Node = ${(oursRss / nodeRss).toFixed(2)} (target ≤ 1.2)` },
      ],
    },
  };
}

interface PluginUnderTest {
  label: string;
  file: string;
  conf: (i: number) => object;
  args?: (i: number) => string;
}

function addDel(p: PluginUnderTest, runs: number): { add: number[]; del: number[]; rss: number[]; failures: string[] } {
  const add: number[] = [];
  const del: number[] = [];
  const rss: number[] = [];
  const failures: string[] = [];
  for (let i = 0; i < runs; i++) {
    const ns = podNetns();
    try {
      const env = cleanEnv({ CNI_CONTAINERID: `bench-${p.label}-${i}`, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: `${BIN}:${REF}`, CNI_ARGS: p.args?.(i) });
      const conf = JSON.stringify(p.conf(i));
      const a = i < 3
        ? { ms: 0, status: 0, stdout: '', stderr: '', rss: peakRssKiB(p.file, [], { ...env, CNI_COMMAND: 'ADD' }, conf) }
        : { ...timeRun(p.file, [], { ...env, CNI_COMMAND: 'ADD' }, conf), rss: 0 };
      if (a.status !== 0) failures.push(`ADD: ${a.stdout}${a.stderr}`);
      if (i < 3) rss.push(a.rss);
      else add.push(a.ms);
      const d = timeRun(p.file, [], { ...env, CNI_COMMAND: 'DEL' }, conf);
      if (d.status !== 0) failures.push(`DEL: ${d.stdout}${d.stderr}`);
      if (i >= 3) del.push(d.ms);
    } finally {
      ns.del();
    }
  }
  return { add, del, rss, failures };
}

let subnetCounter = 0;
function hostLocal(): object {
  const n = ++subnetCounter;
  return { type: 'host-local', ranges: [[{ subnet: `10.${100 + (n >> 8)}.${n & 255}.0/24` }]], dataDir: `/run/ccni-bench-ipam/${process.pid}-${n}` };
}

function bridgePair(): [PluginUnderTest, PluginUnderTest] {
  const ipamOurs = hostLocal();
  const ipamRef = hostLocal();
  return [
    { label: 'ours', file: path.join(BIN, 'cattle-bridge'), conf: () => ({ cniVersion: '1.0.0', name: 'bench', type: 'cattle-bridge', bridge: 'cbench0', isGateway: true, ipam: ipamOurs }) },
    { label: 'ref', file: path.join(REF, 'bridge'), conf: () => ({ cniVersion: '1.0.0', name: 'bench', type: 'bridge', bridge: 'rbench0', isGateway: true, ipam: ipamRef }) },
  ];
}

async function storm(p: PluginUnderTest, bridge: string): Promise<{ wallMs: number; failures: number; leftovers: number }> {
  const pods = Array.from({ length: STORM }, () => podNetns('ccni-bs'));
  const conf = JSON.stringify(p.conf(0));
  const envFor = (i: number, cmd: string) => cleanEnv({ CNI_COMMAND: cmd, CNI_CONTAINERID: `storm-${p.label}-${i}`, CNI_NETNS: pods[i]!.path, CNI_IFNAME: 'eth0', CNI_PATH: `${BIN}:${REF}` });
  try {
    const t0 = performance.now();
    const adds = await Promise.all(pods.map((_, i) => timeRunAsync(p.file, [], envFor(i, 'ADD'), conf)));
    const wallMs = performance.now() - t0;
    const dels = await Promise.all(pods.map((_, i) => timeRunAsync(p.file, [], envFor(i, 'DEL'), conf)));
    const failures = [...adds, ...dels].filter((r) => r.status !== 0).length;
    const ports = JSON.parse(sh('ip', ['-j', 'link', 'show', 'master', bridge]) || '[]') as unknown[];
    return { wallMs, failures, leftovers: ports.length };
  } finally {
    for (const ns of pods) ns.del();
    spawnDel(bridge);
  }
}

function spawnDel(link: string): void {
  try {
    sh('ip', ['link', 'del', link]);
  } catch {
    // not there
  }
}

function ratio(ours: number, nodeStart: number, ref: number): string {
  return ((ours - nodeStart) / ref).toFixed(2);
}

async function bridgeSection(nodeStartMs: number): Promise<Section> {
  const [ours, ref] = bridgePair();
  const o = addDel(ours, RUNS + 3);
  const r = addDel(ref, RUNS + 3);
  // The same plugin with our IPAM in-process (CNI_ARGS fast path): no second process at all.
  const inProcess = addDel({
    label: 'inproc', file: path.join(BIN, 'cattle-bridge'),
    conf: () => ({ cniVersion: '1.1.0', name: 'bench', type: 'cattle-bridge', bridge: 'cbench1', isGateway: true, ipam: { type: 'cattle-ipam', subnetPrefixSize: '/16' } }),
    args: (i) => `IgnoreUnknown=1;IPAddress=10.99.${i >> 8}.${(i & 255) + 1}/16`,
  }, RUNS + 3);
  spawnDel('cbench1');
  const [stormOurs, stormRef] = bridgePair();
  stormOurs.conf = () => ({ cniVersion: '1.0.0', name: 'storm', type: 'cattle-bridge', bridge: 'cstorm0', isGateway: true, ipam: hostLocal() });
  stormRef.conf = () => ({ cniVersion: '1.0.0', name: 'storm', type: 'bridge', bridge: 'rstorm0', isGateway: true, ipam: hostLocal() });
  const so = await storm(stormOurs, 'cstorm0');
  const sr = await storm(stormRef, 'rstorm0');
  spawnDel('cbench0');
  spawnDel('rbench0');
  const failures = [...o.failures, ...r.failures, ...inProcess.failures];
  return {
    title: `Bridge (cattle-bridge vs /usr/lib/cni/bridge, both with /usr/lib/cni/host-local; median of ${RUNS} fresh netns)`,
    rows: [
      { name: 'ADD wall', ours: fmtMs(median(o.add)), reference: fmtMs(median(r.add)), note: `(ours − Node start) / ref = ${ratio(median(o.add), nodeStartMs, median(r.add))} (target ≤ 1.0)` },
      { name: 'DEL wall', ours: fmtMs(median(o.del)), reference: fmtMs(median(r.del)), note: `(ours − Node start) / ref = ${ratio(median(o.del), nodeStartMs, median(r.del))} (target ≤ 1.0)` },
      { name: 'ADD peak RSS', ours: `${(median(o.rss) / 1024).toFixed(1)} MiB`, reference: `${(median(r.rss) / 1024).toFixed(1)} MiB` },
      { name: 'ADD / DEL wall, cattle-ipam in-process', ours: `${fmtMs(median(inProcess.add))} / ${fmtMs(median(inProcess.del))}`, reference: '(no Go equivalent)', note: `(ours − Node start) = ${fmtMs(median(inProcess.add) - nodeStartMs)} / ${fmtMs(median(inProcess.del) - nodeStartMs)}: the cost of our own work without a second process` },
      { name: `${STORM}-pod storm: ADD wall`, ours: fmtMs(so.wallMs), reference: fmtMs(sr.wallMs), note: `ours / ref = ${(so.wallMs / sr.wallMs).toFixed(2)} (target ≤ 1.5)` },
      { name: `${STORM}-pod storm: failures / leftovers`, ours: `${so.failures} / ${so.leftovers}`, reference: `${sr.failures} / ${sr.leftovers}`, note: 'target 0 / 0' },
    ],
    notes: failures.length ? [`failures: ${failures.slice(0, 3).join(' | ')}`] : undefined,
  };
}

async function optionalSection(file: string, fn: string, title: string): Promise<Section | undefined> {
  const full = path.join(ROOT, 'scripts', file);
  if (!fs.existsSync(full)) return undefined;
  const mod = (await import(full)) as Record<string, () => Promise<BenchRow[]>>;
  return { title, rows: await mod[fn]!() };
}

/** The document's head: title, method and machine. Printed once, then each section as it is measured. */
function renderHeader(): string {
  return [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (scripts/bench.sh + scripts/bench.ts). Whole-process wall time as a runtime',
    'sees it (fork + exec + work + exit), measured from a Node parent inside a test-made "host" netns, with',
    '`NODE_EXTRA_CA_CERTS` unset. Reference = Debian\'s `containernetworking-plugins` (Go), same run.',
    '',
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, kernel ${os.release()}, ${new Date().toISOString().slice(0, 10)};`,
    `ours = dist/bin (Node ${sh(NODE, ['--version']).trim()} SEA), reference plugins ${refVersion()}.`,
    '',
  ].join('\n');
}

function renderSections(sections: Section[]): string {
  const lines: string[] = [];
  for (const s of sections) {
    lines.push(`## ${s.title}`, '', '| measure | cattle-cni | reference | note |', '|---|---|---|---|');
    for (const r of s.rows) lines.push(`| ${r.name} | ${r.ours} | ${r.reference} | ${r.note ?? ''} |`);
    for (const n of s.notes ?? []) lines.push('', n);
    lines.push('');
  }
  return lines.join('\n');
}

function refVersion(): string {
  try {
    return sh('dpkg-query', ['-W', '-f', '${Version}', 'containernetworking-plugins']).trim();
  } catch {
    return '(version unknown)';
  }
}

async function mainBench(): Promise<void> {
  const only = process.argv[2];
  const sections: Section[] = [];
  const header = renderHeader();
  console.log(header);
  const { section, nodeStartMs } = startup();
  sections.push(section);
  console.log(renderSections([section]));
  if (!only || only === 'bridge') {
    const s = await bridgeSection(nodeStartMs);
    sections.push(s);
    console.log(renderSections([s]));
  }
  for (const [file, fn, title] of [
    ['bench-ptp.ts', 'benchPtp', 'Proxy-ARP point-to-point (cattle-ptp vs /usr/lib/cni/ptp, both with host-local)'],
    ['bench-ipam.ts', 'benchIpam', 'IPAM: time to IP when the record appears 300 ms after ADD started'],
    ['bench-fastpath.ts', 'benchFastpath', 'Fast path: the plugins through a cattle-net agent (metadata unreachable, no overlay) vs standalone vs the reference'],
    ['bench-fastpath.ts', 'benchFastpathSteps', 'Where the time goes: cattle-bridge ADD and DEL (host-local) by step, from its debug log (medians)'],
    ['bench-multihost.ts', 'benchMultihost', 'Multi-host: cattle-net VXLAN overlay on simulated hosts (netns on an underlay bridge)'],
  ] as const) {
    if (only && !file.includes(only)) continue;
    const s = await optionalSection(file, fn, title);
    if (s) {
      sections.push(s);
      console.log(renderSections([s]));
    }
  }
  fs.mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
  // What each change saved: measured by A/B runs when it landed, kept by hand beside this script.
  const changes = fs.readFileSync(path.join(ROOT, 'scripts', 'bench-changes.md'), 'utf8');
  fs.writeFileSync(path.join(ROOT, 'docs', 'BENCHMARKS.md'), `${header}\n${renderSections(sections)}\n${changes}`);
  fs.rmSync(`/run/ccni-bench-ipam`, { recursive: true, force: true });
}

await mainBench();
