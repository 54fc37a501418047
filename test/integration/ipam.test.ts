// cattle-ipam / rancher-cni-ipam as built, run as a runtime runs them (env +
// stdin), against the built cattle-metadata on loopback and stand-in servers
// that misbehave; the peak RSS of an ADD against a huge answer, in a netns of
// its own. Every process started here is stopped by PID.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { baseEnv, BIN, makeNetns, runExe, type TestNetns, trackPid, untrackPid } from '../helpers/harness.ts';
import { type MetadataProcess, startMetadataExe } from './metadata-exe.ts';

const VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const CID = 'f00dcafe0123456789abcdef';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
  /** performance.now() when the process exited. */
  endedAt: number;
  ms: number;
}

/** Run a plugin without blocking this process (stand-in servers here must keep answering). */
function runAsync(name: string, env: Record<string, string>, stdin: object): Promise<Run> {
  const t0 = performance.now();
  const child = spawn(path.join(BIN, name), [], { env: { ...baseEnv(), ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  trackPid(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(JSON.stringify(stdin));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      const endedAt = performance.now();
      clearTimeout(killer);
      untrackPid(child.pid);
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json, endedAt, ms: endedAt - t0 });
    });
  });
}

function env(command: string, extra: Record<string, string> = {}): Record<string, string> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: CID, CNI_NETNS: '/var/run/netns/cattle-ipam-it-none', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', ...extra };
}

/** Rancher's ipsec-template config (no cniVersion), pointed at `address`. */
function conf(address: string, ipam: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    bridge: 'docker0', bridgeSubnet: '10.42.0.0/16', hairpinMode: false, promiscMode: true, hostNat: true,
    ipam: { type: 'rancher-cni-ipam', subnetPrefixSize: '/16', logToFile: '', isDebugLevel: 'false', metadataAddress: address, ...ipam },
    isDebugLevel: 'false', isDefaultGateway: true, linkMTUOverhead: 98, mtu: 1500, name: 'rancher-cni-network', type: 'rancher-bridge',
    ...extra,
  };
}

interface Fake {
  address: string;
  hits: number;
  close(): Promise<void>;
}

async function fakeServer(handler: http.RequestListener): Promise<Fake> {
  const fake = { address: '', hits: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    fake.hits++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  return fake;
}

async function deadAddress(): Promise<string> {
  const f = await fakeServer(() => {});
  await f.close();
  return f.address;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cattle-ipam-it-'));
const answers = path.join(dir, 'answers.json');
let md: MetadataProcess;
let mdAddress: string;

before(async () => {
  fs.writeFileSync(answers, JSON.stringify({
    '2015-12-19': {
      default: {
        containers: [
          { name: 'web', uuid: 'u-web', external_id: CID, primary_ip: '10.42.36.71', primary_mac_address: '02:42:0a:2a:24:47', dns: ['169.254.169.250'], dns_search: ['rancher.internal'] },
          { name: 'byuuid', uuid: 'u-only', external_id: 'someone-else', primary_ip: '10.42.36.72' },
        ],
      },
    },
  }));
  md = await startMetadataExe(answers);
  mdAddress = md.url.replace('http://', '');
});
after(async () => {
  await md.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('ADD against cattle-metadata', () => {
  it('record present: both names, Rancher config as shipped, every cniVersion', async () => {
    for (const name of ['rancher-cni-ipam', 'cattle-ipam']) {
      const r = await runAsync(name, env('ADD'), conf(mdAddress, { routes: [{ dst: '169.254.169.250/32' }] }));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(r.json, {
        cniVersion: '0.1.0',
        ip4: { ip: '10.42.36.71/16', gateway: '10.42.0.1', routes: [{ dst: '169.254.169.250/32', gw: '10.42.0.1' }] },
        dns: { nameservers: ['169.254.169.250'], search: ['rancher.internal'] },
      });
    }
    for (const v of VERSIONS) {
      const r = await runAsync('cattle-ipam', env('ADD'), conf(mdAddress, {}, { cniVersion: v }));
      assert.equal(r.code, 0, `${v}: ${r.stdout}`);
      assert.equal(r.json?.cniVersion, v);
      const address = v < '0.3.0' ? (r.json?.ip4 as { ip: string }).ip : (r.json?.ips as { address: string }[])[0]!.address;
      assert.equal(address, '10.42.36.71/16');
    }
  });

  it('matches by RancherContainerUUID', async () => {
    const r = await runAsync('rancher-cni-ipam', env('ADD', { CNI_CONTAINERID: 'not-in-metadata', CNI_ARGS: 'IgnoreUnknown=1;RancherContainerUUID=u-only' }), conf(mdAddress));
    assert.equal(r.code, 0, r.stdout);
    assert.equal((r.json?.ip4 as { ip: string }).ip, '10.42.36.72/16');
  });

  it('a record added 300 ms after ADD started is picked up by the long-poll promptly', async () => {
    const id = 'late0000000001';
    const run = runAsync('cattle-ipam', env('ADD', { CNI_CONTAINERID: id }), conf(mdAddress, {}, { cniVersion: '1.1.0' }));
    await new Promise((r) => setTimeout(r, 300));
    const add = spawn(path.join(BIN, 'cattle-metadata'), ['add-container', '--answers', answers, '--external-id', id, '--ip', '10.42.8.9'], { env: baseEnv(), stdio: 'ignore' });
    trackPid(add.pid);
    const addDone = new Promise<number | null>((resolve) => add.on('close', (code) => {
      untrackPid(add.pid);
      resolve(code);
    }));
    const [r, addCode] = await Promise.all([run, addDone]);
    assert.equal(addCode, 0);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(r.json?.ips, [{ address: '10.42.8.9/16', gateway: '10.42.0.1' }]);
  });

  it('a record that never appears: code 11 at the deadline', async () => {
    const r = await runAsync('rancher-cni-ipam', env('ADD', { CNI_CONTAINERID: 'never0000000001' }), conf(mdAddress, { timeout: 1 }));
    assert.equal(r.code, 1);
    assert.equal(r.json?.code, 11);
    // The message says the deadline (1 s) ended it: no wall-clock threshold needed.
    assert.match(String(r.json?.msg), /no container with external_id never0000000001 and a primary_ip in http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers after 1(\.\d)? s/);
  });
});

describe('ADD when the service is down or misbehaves', () => {
  it('service down: code 11 within the deadline', async () => {
    const r = await runAsync('rancher-cni-ipam', env('ADD'), conf(await deadAddress(), { timeout: 1 }));
    assert.equal(r.json?.code, 11, r.stdout);
    assert.match(String(r.json?.details), /ECONNREFUSED/);
  });

  it('CNI_ARGS IPAddress with the service down: success, no request', async () => {
    const fake = await fakeServer((_req, res) => res.writeHead(500).end());
    try {
      const r = await runAsync('rancher-cni-ipam', env('ADD', { CNI_ARGS: 'IgnoreUnknown=1;DOCKER=true;RancherContainerUUID=u;LinkMTUOverhead=98;MACAddress=02:42:0a:2a:24:47;IPAddress=10.42.36.99/16' }), conf(fake.address));
      assert.equal(r.code, 0, r.stdout);
      assert.equal((r.json?.ip4 as { ip: string }).ip, '10.42.36.99/16');
      assert.equal(fake.hits, 0);
      const dead = await runAsync('rancher-cni-ipam', env('ADD', { CNI_ARGS: 'IPAddress=10.42.36.98' }), conf(await deadAddress()));
      assert.equal((dead.json?.ip4 as { ip: string }).ip, '10.42.36.98/16');
    } finally {
      await fake.close();
    }
  });

  it('500s, garbage, and slow answers', async () => {
    const cases: [string, http.RequestListener, RegExp][] = [
      ['500', (_q, s) => s.writeHead(500).end('internal'), /HTTP 500 from .*\/containers: internal/],
      ['garbage', (_q, s) => s.writeHead(200).end('not json at all'), /unexpected answer from .*\/containers: expected a JSON array, got "not json at all"/],
      ['slow', () => {}, /no answer from .*\/containers within \d+ ms/],
    ];
    for (const [what, handler, pattern] of cases) {
      const fake = await fakeServer(handler);
      try {
        const r = await runAsync('cattle-ipam', env('ADD'), conf(fake.address, { timeout: 1 }));
        assert.equal(r.json?.code, 11, `${what}: ${r.stdout}`);
        assert.match(String(r.json?.details), pattern, what);
      } finally {
        await fake.close();
      }
    }
  });
});

describe('other commands', () => {
  it('DEL succeeds with no service and no netns', async () => {
    const r = await runAsync('rancher-cni-ipam', env('DEL', { CNI_NETNS: '' }), conf(await deadAddress()));
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.stdout, '');
  });

  it('STATUS: 0 with the service up, 50 with it down; CHECK against prevResult', async () => {
    const up = await runAsync('cattle-ipam', env('STATUS'), conf(mdAddress, {}, { cniVersion: '1.1.0' }));
    assert.equal(up.code, 0, up.stdout);
    const down = await runAsync('cattle-ipam', env('STATUS'), conf(await deadAddress(), {}, { cniVersion: '1.1.0' }));
    assert.equal(down.json?.code, 50);
    const check = await runAsync('cattle-ipam', env('CHECK'), conf(mdAddress, {}, { cniVersion: '1.0.0', prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.42.36.71/16' }] } }));
    assert.equal(check.code, 0, check.stdout);
  });

  it('VERSION, and bad input gets a CNI error on stdout', () => {
    const v = runExe('rancher-cni-ipam', { env: { CNI_COMMAND: 'VERSION' } });
    assert.equal(v.code, 0);
    assert.deepEqual((v.json as { supportedVersions: string[] }).supportedVersions, VERSIONS);
    const garbage = runExe('rancher-cni-ipam', { env: env('ADD'), stdin: '{nope' });
    assert.equal(garbage.code, 1);
    assert.equal((garbage.json as { code: number }).code, 6);
    const noIpam = runExe('cattle-ipam', { env: env('ADD'), stdin: { name: 'n', type: 'rancher-bridge' } });
    assert.equal((noIpam.json as { code: number; msg: string }).code, 7);
    assert.match((noIpam.json as { msg: string }).msg, /IPAM config missing "ipam" key/);
  });
});

// A stand-in metadata service for the RSS test, run inside the test's netns. Under /normal it
// answers a small list with our record; under /huge a 50 MB list of other containers' records,
// as fast as the client reads, and reports on stdout whether the client hung up first.
const HUGE_SERVER = `
const http = require('node:http');
const CID = process.argv[2];
const record = (i) => ({ create_index: i, dns: ['169.254.169.250'], dns_search: ['web.rancher.internal', 'rancher.internal'],
  external_id: 'e'.repeat(56) + String(i).padStart(8, '0'), health_state: 'healthy', host_uuid: 'h-0001', hostname: 'web-' + i, ips: ['10.42.1.' + (i % 250)],
  labels: { 'io.rancher.container.ip': '10.42.1.' + (i % 250) + '/16', 'io.rancher.project.name': 'web', 'io.rancher.stack_service.name': 'web/web',
    'io.rancher.service.launch.config': 'io.rancher.service.primary.launch.config', 'io.rancher.cni.network': 'ipsec' },
  name: 'web-web-' + i, ports: ['0.0.0.0:8080:80/tcp'], primary_ip: '10.42.1.' + (i % 250), primary_mac_address: '02:42:0a:2a:01:01',
  service_name: 'web', stack_name: 'web', state: 'running', system: false, uuid: 'u-' + i });
const normal = JSON.stringify([record(1), { ...record(2), external_id: CID, primary_ip: '10.42.36.71' }, record(3)]);
const unit = Buffer.from(Array.from({ length: 40 }, (_, i) => JSON.stringify(record(i)) + ',').join(''));
const HUGE = 50 * 1024 * 1024;
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/normal/')) return res.writeHead(200, { 'Content-Type': 'application/json' }).end(normal);
  let sent = 0;
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.write('[');
  res.on('error', () => {});
  res.on('close', () => console.log(JSON.stringify({ closed: req.url, early: sent < HUGE })));
  const pump = () => {
    while (sent < HUGE) {
      sent += unit.length;
      if (!res.write(unit)) return void res.once('drain', pump);
    }
    res.end('{}]');
  };
  pump();
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
`;

interface HugeServer {
  port: number;
  /** The stdout lines so far, parsed. */
  lines: Record<string, unknown>[];
  /** Resolves with the lines saying that answers to `url` ended, once there are `count` of them. */
  closed(url: string, count: number): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

async function startHugeServer(ns: TestNetns): Promise<HugeServer> {
  const script = path.join(dir, 'huge-server.cjs');
  fs.writeFileSync(script, HUGE_SERVER);
  const child: ChildProcess = spawn('ip', ['netns', 'exec', ns.name, process.execPath, script, CID], { env: baseEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  trackPid(child.pid); // `ip netns exec` execs the command: this PID is the server's
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
      lines.push(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
      out = out.slice(nl + 1);
      waiters.splice(0).forEach((w) => w());
    }
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => {
    untrackPid(child.pid);
    resolve();
  }));
  const until = async <T>(pick: () => T | undefined): Promise<T> => {
    for (;;) {
      const found = pick();
      if (found !== undefined) return found;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  const ready = await until(() => lines.find((l) => 'port' in l));
  return {
    port: ready.port as number,
    lines,
    closed: (url, count) => until(() => {
      const done = lines.filter((l) => l.closed === url);
      return done.length >= count ? done : undefined;
    }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** ADD by the built cattle-ipam inside `ns`, under /usr/bin/time -v: the result and the peak RSS. */
function addMeasured(ns: TestNetns, address: string): { json: Record<string, unknown> | undefined; rssKb: number; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns.name, '/usr/bin/time', '-v', path.join(BIN, 'cattle-ipam')], {
    env: { ...baseEnv(), ...env('ADD') }, input: JSON.stringify(conf(address, { timeout: 30 }, { cniVersion: '1.1.0' })), encoding: 'utf8', timeout: 60_000,
  });
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  assert.ok(rss, `no RSS from /usr/bin/time: ${r.stderr}`);
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { json, rssKb: Number(rss[1]), stderr: r.stderr };
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

describe('a huge answer', () => {
  it('50 MB from the metadata service: code 11 naming the server and the cap, reading stopped, peak RSS within 1.2x a normal ADD', async (t) => {
    assert.ok(fs.existsSync('/usr/bin/time'), '/usr/bin/time missing: apt-get install time (scripts/ensure-deps.sh)');
    const ns = makeNetns('cipam-rss');
    const server = await startHugeServer(ns);
    try {
      const normalUrl = `http://127.0.0.1:${server.port}/normal`;
      const hugeUrl = `http://127.0.0.1:${server.port}/huge`;
      const normal: number[] = [];
      const huge: number[] = [];
      for (let i = 0; i < 3; i++) {
        const ok = addMeasured(ns, normalUrl);
        assert.deepEqual(ok.json?.ips, [{ address: '10.42.36.71/16', gateway: '10.42.0.1' }], ok.stderr);
        normal.push(ok.rssKb);
        const cut = addMeasured(ns, hugeUrl);
        assert.equal(cut.json?.code, 11, cut.stderr);
        assert.equal(cut.json?.msg, `the metadata service ${hugeUrl} sent an answer over the size cap`);
        assert.equal(cut.json?.details, `answer from ${hugeUrl}/2015-12-19/containers is larger than 16 MiB: stopped reading`);
        huge.push(cut.rssKb);
      }
      // The server's reports, all of them: it has printed everything once it is gone.
      await server.closed('/huge/2015-12-19/containers', 3);
      await server.stop();
      const closes = server.lines.filter((l) => l.closed === '/huge/2015-12-19/containers');
      assert.equal(closes.length, 3, 'one request per ADD: an answer over the cap is not asked for again');
      assert.ok(closes.every((l) => l.early === true), 'the plugin hung up before the 50 MB were sent');
      const ratio = median(huge) / median(normal);
      t.diagnostic(`peak RSS: normal ADD ${normal.join('/')} kB, 50 MB answer ${huge.join('/')} kB, ratio of medians ${ratio.toFixed(3)}`);
      assert.ok(ratio <= 1.2, `peak RSS ${median(huge)} kB against ${median(normal)} kB for a normal ADD: ${ratio.toFixed(3)}x`);
    } finally {
      await server.stop();
      ns.destroy();
    }
  });
});
