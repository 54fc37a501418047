// Benchmark: time-to-IP when the container's record reaches the metadata
// service T = 300 ms after ADD started, measured as (ADD finish − record
// written). Ours: the built cattle-ipam (long-poll on /version). Reference:
// rancher-cni-ipam's behaviour, a GET /containers every 500 ms, simulated here
// against the same service. Run alone: node scripts/bench-ipam.ts
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { addContainer } from '../metadata/records.ts';
import { createMetadataHandler, listen } from '../metadata/server.ts';
import { AnswersStore } from '../metadata/store.ts';

export interface BenchRow {
  name: string;
  ours: string;
  reference: string;
  note?: string;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = 21;
const RECORD_AFTER_MS = 300;
const OLD_POLL_MS = 500;

interface Service {
  address: string;
  file: string;
  close(): Promise<void>;
}

async function startService(): Promise<Service> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cattle-bench-ipam-'));
  const file = path.join(dir, 'answers.json');
  fs.writeFileSync(file, JSON.stringify({ '2015-12-19': { default: { containers: [] } } }));
  const store = new AnswersStore(file);
  const loaded = await store.reload();
  if (!loaded.ok) throw new Error(loaded.error);
  store.watch(() => {});
  const server = await listen(createMetadataHandler({ store }), { host: '127.0.0.1', port: 0 });
  return {
    address: server.address,
    file,
    close: async () => {
      store.unwatch();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Time from writing the record (at T) to the end of one ADD of `ipam` (the built executable). */
async function oursOnce(exe: string, svc: Service, id: string): Promise<number> {
  const conf = { cniVersion: '1.1.0', name: 'bench', type: 'rancher-bridge', ipam: { type: 'cattle-ipam', subnetPrefixSize: '/16', metadataAddress: svc.address, timeout: 10 } };
  // Only PATH: runtime variables such as NODE_EXTRA_CA_CERTS would add tens of ms to every start.
  const child = spawn(exe, [], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: '/var/run/netns/bench', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stdin.end(JSON.stringify(conf));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  await sleep(RECORD_AFTER_MS);
  await addContainer(svc.file, { externalId: id, ip: '10.42.200.1' });
  const written = performance.now();
  const code = await exited;
  const finished = performance.now();
  if (code !== 0) throw new Error(`cattle-ipam ADD failed (${code}): ${out}`);
  return finished - written;
}

function getContainers(address: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http.get(`http://${address}/2015-12-19/containers`, { headers: { Accept: 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    }).on('error', reject);
  });
}

/** The old loop: GET /containers, then sleep 500 ms, until the record is there. */
async function oldLoopOnce(svc: Service, id: string): Promise<number> {
  let written = 0;
  const writer = sleep(RECORD_AFTER_MS).then(async () => {
    await addContainer(svc.file, { externalId: id, ip: '10.42.200.2' });
    written = performance.now();
  });
  for (let i = 0; i < 60; i++) {
    const list = await getContainers(svc.address);
    if (Array.isArray(list) && list.some((c: { external_id?: string; primary_ip?: string }) => c.external_id === id && c.primary_ip)) break;
    await sleep(OLD_POLL_MS);
  }
  const finished = performance.now();
  await writer;
  return finished - written;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const ms = (v: number) => `${Math.round(v)} ms`;

export async function benchIpam(): Promise<BenchRow[]> {
  const bin = process.env.CATTLE_CNI_BIN ?? path.join(ROOT, 'dist', 'bin');
  const exe = path.join(bin, 'cattle-ipam');
  if (!fs.existsSync(exe)) throw new Error(`${exe} missing: build first (npm run build)`);
  const svc = await startService();
  try {
    await oursOnce(exe, svc, 'bench-warmup'); // first start pays for cold page cache
    const ours: number[] = [];
    const old: number[] = [];
    for (let i = 0; i < RUNS; i++) ours.push(await oursOnce(exe, svc, `bench-ours-${i}`));
    for (let i = 0; i < RUNS; i++) old.push(await oldLoopOnce(svc, `bench-old-${i}`));
    const note = `record written ${RECORD_AFTER_MS} ms after ADD start; ADD finish (process exit) − record written; ${RUNS} runs each; reference = 500 ms GET /containers loop (rancher-cni-ipam), simulated in-process against the same service`;
    return [
      { name: 'IPAM time-to-IP p50 (record appears during ADD)', ours: ms(percentile(ours, 50)), reference: ms(percentile(old, 50)), note },
      { name: 'IPAM time-to-IP p90 (record appears during ADD)', ours: ms(percentile(ours, 90)), reference: ms(percentile(old, 90)), note: `min/max ours ${ms(Math.min(...ours))}/${ms(Math.max(...ours))}, reference ${ms(Math.min(...old))}/${ms(Math.max(...old))}` },
    ];
  } finally {
    await svc.close();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = await benchIpam();
  for (const r of rows) console.log(`${r.name}: ours ${r.ours}, reference ${r.reference}${r.note ? ` (${r.note})` : ''}`);
}
