// The demo (run through scripts/demo.sh, as root): the whole suite on an
// embedded default, without a Rancher server. A "host" netns with a default
// route runs cattle-metadata on 169.254.169.250 with cattle-assigned IPs for
// four "pods"; two pods are networked by cattle-bridge, two by cattle-ptp,
// all through cattle-ipam asking the metadata service. Then real pings and
// HTTP requests fill a reachability table, and everything is deleted again.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = process.env.CATTLE_CNI_BIN ?? path.join(ROOT, 'dist', 'bin');
const keep = process.argv.includes('--keep');
const tag = `${process.pid}`;
const HOST = `ccni-demo-host-${tag}`;
const WORLD = `ccni-demo-world-${tag}`;
const METADATA_IP = '169.254.169.250';
const STEPS = 9;
let stepNo = 0;

interface Pod {
  name: string;
  netns: string;
  id: string;
  plugin: 'cattle-bridge' | 'cattle-ptp';
  ip: string;
  mac?: string;
  gateway: string;
  result?: unknown;
}

const pods: Pod[] = [
  { name: 'web-1', netns: `ccni-demo-web1-${tag}`, id: 'demo-web-1', plugin: 'cattle-bridge', ip: '10.42.0.11', mac: '02:42:0a:2a:00:0b', gateway: '10.42.0.1' },
  { name: 'web-2', netns: `ccni-demo-web2-${tag}`, id: 'demo-web-2', plugin: 'cattle-bridge', ip: '10.42.0.12', mac: '02:42:0a:2a:00:0c', gateway: '10.42.0.1' },
  { name: 'db-1', netns: `ccni-demo-db1-${tag}`, id: 'demo-db-1', plugin: 'cattle-ptp', ip: '10.43.0.21', gateway: '169.254.1.1' },
  { name: 'db-2', netns: `ccni-demo-db2-${tag}`, id: 'demo-db-2', plugin: 'cattle-ptp', ip: '10.43.0.22', gateway: '169.254.1.1' },
];

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-demo-'));
const answers = path.join(work, 'answers.json');
let metadata: ChildProcess | undefined;

function step(text: string): void {
  stepNo += 1;
  console.log(`\n[${stepNo}/${STEPS}] ${text}`);
}

function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

function inNs(ns: string, cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function bridgeConf(): object {
  return {
    cniVersion: '1.1.0', name: 'demo-bridge', type: 'cattle-bridge', bridge: 'cattle0', bridgeSubnet: '10.42.0.0/16',
    isDefaultGateway: true, mtu: 1500, linkMTUOverhead: 50,
    ipam: { type: 'cattle-ipam', subnetPrefixSize: '/16', metadataAddress: METADATA_IP, timeout: 10 },
  };
}

function ptpConf(): object {
  return {
    cniVersion: '1.1.0', name: 'demo-ptp', type: 'cattle-ptp', mtu: 1500,
    ipam: { type: 'cattle-ipam', subnetPrefixSize: '/32', metadataAddress: METADATA_IP, timeout: 10 },
  };
}

function cni(cmd: string, pod: Pod): { ok: boolean; json: unknown; raw: string } {
  const conf = pod.plugin === 'cattle-bridge' ? bridgeConf() : ptpConf();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: cmd, CNI_CONTAINERID: pod.id, CNI_NETNS: `/var/run/netns/${pod.netns}`, CNI_IFNAME: 'eth0', CNI_PATH: BIN,
  };
  const r = spawnSync('ip', ['netns', 'exec', HOST, path.join(BIN, pod.plugin)], { env, input: JSON.stringify(conf), encoding: 'utf8', timeout: 30_000 });
  let json: unknown;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { ok: r.status === 0, json, raw: `${r.stdout}${r.stderr}`.trim() };
}

async function startMetadata(): Promise<void> {
  metadata = spawn('ip', ['netns', 'exec', HOST, path.join(BIN, 'cattle-metadata'), 'serve', '--answers', answers,
    '--listen', `${METADATA_IP}:80`, '--reload-listen', 'none'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('cattle-metadata did not start within 10 s')), 10_000);
    metadata!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.trim());
      }
    });
    metadata!.on('exit', (code) => reject(new Error(`cattle-metadata exited (${code})`)));
  });
  console.log(`    cattle-metadata (pid ${metadata.pid}) ${ready}`);
}

function httpFrom(ns: string, url: string): boolean {
  const node = process.execPath;
  const code = `require('http').get(${JSON.stringify(url)},{timeout:3000},(r)=>{process.exit(r.statusCode===200?0:1)}).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))`;
  return inNs(ns, node, ['-e', code]).ok;
}

function ping(ns: string, ip: string): boolean {
  return inNs(ns, 'ping', ['-c', '1', '-W', '2', ip]).ok;
}

function cleanup(): void {
  if (metadata?.pid) {
    try {
      process.kill(metadata.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  for (const ns of [...pods.map((p) => p.netns), HOST, WORLD]) spawnSync('ip', ['netns', 'del', ns]);
  fs.rmSync(work, { recursive: true, force: true });
}

async function demo(): Promise<boolean> {
  step(`host network namespace ${HOST} with a default route (via ${WORLD}) and ${METADATA_IP} on lo`);
  sh('ip', ['netns', 'add', HOST]);
  sh('ip', ['netns', 'add', WORLD]);
  sh('ip', ['-n', HOST, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', HOST, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'uplink', 'netns', WORLD]);
  sh('ip', ['-n', HOST, 'addr', 'add', '198.18.0.1/30', 'dev', 'uplink']);
  sh('ip', ['-n', WORLD, 'addr', 'add', '198.18.0.2/30', 'dev', 'uplink']);
  sh('ip', ['-n', HOST, 'link', 'set', 'uplink', 'up']);
  sh('ip', ['-n', WORLD, 'link', 'set', 'uplink', 'up']);
  sh('ip', ['-n', HOST, 'route', 'add', 'default', 'via', '198.18.0.2']);
  sh('ip', ['-n', HOST, 'addr', 'add', `${METADATA_IP}/32`, 'dev', 'lo']);

  step('cattle assigns addresses: four container records in the metadata answers file');
  fs.writeFileSync(answers, '{}\n');
  for (const p of pods) {
    const args = ['add-container', '--answers', answers, '--external-id', p.id, '--ip', p.ip, '--name', p.name];
    if (p.mac) args.push('--mac', p.mac);
    sh(path.join(BIN, 'cattle-metadata'), args);
    console.log(`    ${p.name.padEnd(6)} ${p.id.padEnd(11)} ${p.ip}${p.mac ? `  mac ${p.mac}` : ''}  (${p.plugin})`);
  }

  step(`cattle-metadata serving ${METADATA_IP}:80 inside ${HOST}`);
  await startMetadata();

  step('four pod network namespaces');
  for (const p of pods) sh('ip', ['netns', 'add', p.netns]);
  console.log(`    ${pods.map((p) => p.netns).join(' ')}`);

  step('CNI ADD: web-* through cattle-bridge, db-* through cattle-ptp; cattle-ipam asks the metadata service');
  let allOk = true;
  for (const p of pods) {
    const r = cni('ADD', p);
    p.result = r.json;
    allOk &&= r.ok;
    console.log(`    ${p.name}: ${r.ok ? 'ok' : 'FAILED'} ${r.ok ? summarise(r.json) : r.raw}`);
  }
  if (!allOk) return false;

  step('reachability, by real pings and HTTP requests from inside each pod');
  const header = ['from \\ to', ...pods.map((p) => p.name), 'gateway', 'metadata'];
  const rows: string[][] = [];
  for (const p of pods) {
    const row = [p.name];
    for (const q of pods) row.push(p === q ? '-' : ping(p.netns, q.ip) ? 'ok' : 'FAIL');
    row.push(p.plugin === 'cattle-bridge' ? (ping(p.netns, p.gateway) ? 'ok' : 'FAIL') : arpGateway(p) ? 'ok' : 'FAIL');
    row.push(httpFrom(p.netns, `http://${METADATA_IP}/2015-12-19/containers`) ? 'ok' : 'FAIL');
    rows.push(row);
  }
  printTable(header, rows);
  const reachable = rows.every((r) => r.slice(1).every((c) => c === 'ok' || c === '-'));
  console.log(`    reachability: ${reachable ? 'all ok' : 'FAILURES'}`);
  console.log('    (gateway: ping 10.42.0.1 for bridge pods; for ptp pods 169.254.1.1 must resolve by proxy ARP to the host veth)');

  if (keep) {
    step('kept for inspection (--keep)');
    console.log(`    ip netns exec ${pods[0]!.netns} ip addr; ip -n ${HOST} link show master cattle0; ip -n ${HOST} route`);
    console.log(`    clean up: kill ${metadata?.pid}; ${[...pods.map((p) => p.netns), HOST, WORLD].map((n) => `ip netns del ${n}`).join('; ')}`);
    metadata?.unref();
    return reachable;
  }

  step('CNI DEL for every pod');
  for (const p of pods) {
    const r = cni('DEL', p);
    console.log(`    ${p.name}: ${r.ok ? 'ok' : `FAILED ${r.raw}`}`);
    allOk &&= r.ok;
  }

  step('nothing left behind');
  const veths = JSON.parse(sh('ip', ['-j', '-n', HOST, 'link', 'show', 'type', 'veth'])) as { ifname: string }[];
  const leftover = veths.filter((l) => l.ifname !== 'uplink').map((l) => l.ifname);
  const podIfaces = pods.map((p) => (JSON.parse(sh('ip', ['-j', '-n', p.netns, 'link', 'show'])) as { ifname: string }[]).filter((l) => l.ifname !== 'lo').length);
  const hostRoutes = sh('ip', ['-n', HOST, 'route']).split('\n').filter((l) => /10\.4[23]\.0\.\d+ dev/.test(l));
  console.log(`    host veths left: ${leftover.length}; pod interfaces left: ${podIfaces.reduce((a, b) => a + b, 0)}; pod routes left on the host: ${hostRoutes.length}`);
  const clean = leftover.length === 0 && podIfaces.every((n) => n === 0) && hostRoutes.length === 0;
  console.log(`    leftovers: ${clean ? 'none' : 'FOUND'}`);

  step('stop cattle-metadata and remove the namespaces');
  return allOk && reachable && clean;
}

function arpGateway(p: Pod): boolean {
  ping(p.netns, pods.find((q) => q !== p && q.plugin === p.plugin)!.ip);
  const neigh = inNs(p.netns, 'ip', ['-j', 'neigh', 'show', '169.254.1.1']).out;
  try {
    const entries = JSON.parse(neigh) as { lladdr?: string }[];
    return entries.some((e) => e.lladdr === 'ee:ee:ee:ee:ee:ee');
  } catch {
    return false;
  }
}

function summarise(json: unknown): string {
  const r = json as { ips?: { address: string; gateway?: string }[]; interfaces?: { name: string; mac?: string; sandbox?: string }[] };
  const ip = r.ips?.[0];
  const iface = r.interfaces?.find((i) => i.sandbox);
  const host = r.interfaces?.find((i) => !i.sandbox && i.name !== 'cattle0');
  return `${ip?.address} gw ${ip?.gateway} ${iface?.name} ${iface?.mac} host side ${host?.name}`;
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `    ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`;
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

let ok = false;
try {
  ok = await demo();
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
} finally {
  if (!keep || !ok) cleanup();
}
console.log(ok ? '\ndemo: ok' : '\ndemo: FAILED');
process.exitCode = ok ? 0 : 1;
