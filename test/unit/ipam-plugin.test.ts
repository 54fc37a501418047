// cattle-ipam in-process against a metadata service on loopback: the lookup
// paths (present, appears later, never, down, 5xx, garbage, slow, invalid
// record, oversized answer), the fast path with no service at all, every
// cniVersion, and DEL/CHECK/STATUS/GC. Timing is proven by what the server saw
// and what the plugin logged, never by the clock.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { plugin } from '../../ipam/cattle/plugin.ts';
import type { Result } from '../../lib/cni/result.ts';
import { SUPPORTED_VERSIONS } from '../../lib/cni/versions.ts';
import { MAX_ITEM_BYTES, MAX_LIST_BYTES } from '../../lib/metadata-client.ts';
import { processIO } from '../../lib/skel.ts';
import { createMetadataHandler } from '../../metadata/server.ts';
import {
  answersWith, BASE_ENV, deadAddress, ipamConf, type PluginRun, runIpam, startFakeServer, startMetadata, tempDir, type TestMetadata,
} from './metadata-fixtures.ts';

const RECORD = {
  name: 'web-1',
  uuid: '5e4d3c2b-aaaa-bbbb-cccc-000000000001',
  external_id: BASE_ENV.CNI_CONTAINERID,
  primary_ip: '10.42.3.4',
  primary_mac_address: '02:42:0A:2A:03:04',
  dns: ['169.254.169.250'],
  dns_search: ['web.rancher.internal', 'rancher.internal'],
};

let md: TestMetadata;
const empties: TestMetadata[] = [];
async function startEmpty(): Promise<TestMetadata> {
  const m = await startMetadata({ '2015-12-19': { default: {} } });
  empties.push(m);
  return m;
}
before(async () => {
  md = await startMetadata(answersWith([{ name: 'other', uuid: 'u-other', external_id: 'other', primary_ip: '10.42.9.9' }, RECORD]));
});
after(async () => {
  await md.close();
});

const conf = (ipam: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
  ipamConf({ subnetPrefixSize: '/16', metadataAddress: md.address, ...ipam }, extra);

interface Watched {
  address: string;
  /** Every request's URL, in order. */
  requests: string[];
  /** Resolves once a request whose URL matches has arrived (at once if one already has). */
  seen(url: RegExp): Promise<void>;
  close(): Promise<void>;
}

/** A second front door to a test metadata service's answers that records what is asked. */
async function watch(m: TestMetadata): Promise<Watched> {
  const handler = createMetadataHandler({ store: m.store, xff: false });
  const waiters: { url: RegExp; resolve: () => void }[] = [];
  const fake = await startFakeServer((req, res) => {
    for (const w of waiters.filter((x) => x.url.test(req.url ?? ''))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
    handler(req, res);
  });
  return {
    address: fake.address,
    requests: fake.requests,
    seen: (url) => (fake.requests.some((u) => url.test(u)) ? Promise.resolve() : new Promise((resolve) => waiters.push({ url, resolve }))),
    close: fake.close,
  };
}

type LogLine = Record<string, unknown> & { step: string };

/** runIpam with the plugin's debug log on: what the lookup did, step by step. */
async function runLogged(command: string, c: Record<string, unknown>, env: Record<string, string> = {}): Promise<PluginRun & { log: LogLine[] }> {
  const dir = tempDir('cattle-ipam-log-');
  const file = path.join(dir, 'ipam.log');
  try {
    const ipam = { ...(c.ipam as Record<string, unknown>), logToFile: file, isDebugLevel: true };
    const r = await runIpam(command, { ...c, ipam }, env);
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    return { ...r, log: text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The pauses the lookup took before retrying, in ms, from its debug log. */
function pauses(log: LogLine[]): number[] {
  return log.filter((l) => l.step === 'backing off').map((l) => l.ms as number);
}

/**
 * No two of `tries` requests without a pause between them, each pause twice
 * the one before — until the deadline cuts one short; from then on (a loaded
 * machine may fit one more try) every pause is cut too.
 */
function assertBackoff(log: LogLine[], tries: number): void {
  const waited = pauses(log);
  assert.ok(tries <= waited.length + 1, `${tries} tries, pauses ${waited.join(',')}`);
  const firstCut = waited.findIndex((ms, i) => ms !== 50 * 2 ** i);
  const full = firstCut < 0 ? waited : waited.slice(0, firstCut);
  full.forEach((ms, i) => assert.equal(ms, 50 * 2 ** i));
  for (const [i, ms] of waited.slice(full.length).entries()) {
    assert.ok(ms < 50 * 2 ** (full.length + i), `pause ${full.length + i} (${ms} ms) is cut by the deadline, not longer: ${waited.join(',')}`);
  }
}

describe('ADD from metadata', () => {
  it('finds the record by external_id: address, gateway net+1, routes via the gateway, DNS', async () => {
    const r = await runIpam('ADD', conf({ routes: [{ dst: '169.254.169.250/32' }, { dst: '10.0.0.0/8', gw: '10.42.0.254' }] }));
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(r.json, {
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eth0', mac: '02:42:0a:2a:03:04' }],
      ips: [{ address: '10.42.3.4/16', gateway: '10.42.0.1' }],
      routes: [{ dst: '169.254.169.250/32', gw: '10.42.0.1' }, { dst: '10.0.0.0/8', gw: '10.42.0.254' }],
      dns: { nameservers: ['169.254.169.250'], search: ['web.rancher.internal', 'rancher.internal'] },
    });
  });

  it('matches by RancherContainerUUID when the external_id differs', async () => {
    const r = await runIpam('ADD', conf(), { CNI_CONTAINERID: 'unknown-id', CNI_ARGS: `IgnoreUnknown=1;RancherContainerUUID=${RECORD.uuid}` });
    assert.equal(r.code, 0, r.stdout);
    assert.equal((r.json?.ips as { address: string }[])[0]!.address, '10.42.3.4/16');
  });

  it('a configured gateway wins; the prefix comes from subnetPrefixSize in every form', async () => {
    for (const size of ['/24', '24', 24]) {
      const r = await runIpam('ADD', conf({ subnetPrefixSize: size, gateway: '10.42.3.1' }));
      assert.equal(r.code, 0, r.stdout);
      assert.deepEqual(r.json?.ips, [{ address: '10.42.3.4/24', gateway: '10.42.3.1' }]);
    }
  });

  it('prints every cniVersion in its own shape', async () => {
    for (const v of SUPPORTED_VERSIONS) {
      const r = await runIpam('ADD', conf({}, { cniVersion: v }));
      assert.equal(r.code, 0, `${v}: ${r.stdout}`);
      assert.equal(r.json?.cniVersion, v);
      if (v === '0.1.0' || v === '0.2.0') {
        assert.deepEqual(r.json?.ip4, { ip: '10.42.3.4/16', gateway: '10.42.0.1' });
        assert.deepEqual(r.json?.dns, { nameservers: ['169.254.169.250'], search: ['web.rancher.internal', 'rancher.internal'] });
      } else {
        const ip = (r.json?.ips as Record<string, unknown>[])[0]!;
        assert.equal(ip.address, '10.42.3.4/16');
        assert.equal(ip.version, v.startsWith('0.') ? '4' : undefined);
      }
    }
    // Rancher's own files have no cniVersion at all (= 0.1.0).
    const bare = conf();
    delete bare.cniVersion;
    const r = await runIpam('ADD', bare);
    assert.equal(r.json?.cniVersion, '0.1.0');
  });

  it('waits for a record added after ADD started: the long-poll wakes it when the record is written', async () => {
    const w = await watch(md);
    try {
      const id = 'late-0001';
      let settled = false;
      const run = runIpam('ADD', conf({ metadataAddress: w.address }), { CNI_CONTAINERID: id }).finally(() => {
        settled = true;
      });
      await w.seen(/\/version\?wait=true/); // the plugin now waits for the next change
      assert.equal(settled, false, 'waiting, not done');
      const before = w.requests.length;
      await md.add({ externalId: id, ip: '10.42.5.6' });
      const r = await run;
      assert.equal(r.code, 0, r.stdout);
      assert.deepEqual(r.json?.ips, [{ address: '10.42.5.6/16', gateway: '10.42.0.1' }]);
      // Woken by the change, not by a timer or a retry: after it, one look at the list and done.
      assert.deepEqual(w.requests.slice(before), ['/2015-12-19/containers']);
    } finally {
      await w.close();
    }
  });

  it('a record that never appears: code 11 at the deadline, naming what was asked', async () => {
    const w = await watch(md);
    try {
      const r = await runIpam('ADD', conf({ metadataAddress: w.address, timeout: 1 }), { CNI_CONTAINERID: 'never-there', CNI_ARGS: 'RancherContainerUUID=u-none' });
      assert.equal(r.code, 1);
      assert.equal(r.json?.code, 11);
      assert.match(String(r.json?.msg), /no container with external_id never-there or uuid u-none .* in http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers after [\d.]+ s/);
      assert.match(String(r.json?.details), /never appeared; 0 metadata change\(s\) seen/);
      // It waited for a change, and only as long as the 1 s deadline allowed.
      assert.ok(w.requests.some((u) => /^\/2015-12-19\/version\?wait=true&value=[^&]+&maxWait=1$/.test(u)), w.requests.join(' '));
    } finally {
      await w.close();
    }
  });

  it('an answers file without any containers yet: waits for the list with the long-poll, no backoff', async () => {
    const m = await startMetadata({ '2015-12-19': { default: {} } });
    const w = await watch(m);
    try {
      const logged = runLogged('ADD', ipamConf({ metadataAddress: w.address, timeout: 30 }), { CNI_CONTAINERID: 'first-one' });
      await w.seen(/\/version\?wait=true/);
      const before = w.requests.length;
      await m.add({ externalId: 'first-one', ip: '10.42.0.10' });
      const r = await logged;
      assert.equal(r.code, 0, r.stdout);
      // A missing list is "not there yet": looked, read the version, looked again, then waited.
      assert.deepEqual(w.requests.slice(0, before).map((u) => u.replace(/\?.*/, '?…')),
        ['/2015-12-19/containers', '/2015-12-19/version', '/2015-12-19/containers', '/2015-12-19/version?…']);
      assert.deepEqual(w.requests.slice(before), ['/2015-12-19/containers']);
      assert.deepEqual(pauses(r.log), [], 'long-polled, never backed off');
      const never = await runIpam('ADD', ipamConf({ metadataAddress: (await startEmpty()).address, timeout: 0.4 }));
      assert.match(String(never.json?.details), /no containers list \(404 Not found\)/);
    } finally {
      await w.close();
      await m.close();
      await Promise.all(empties.map((e) => e.close()));
    }
  });

  it('a record without primary_ip does not match', async () => {
    const m = await startMetadata(answersWith([{ external_id: 'no-ip', primary_ip: '' }]));
    try {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: m.address, timeout: 0.5 }), { CNI_CONTAINERID: 'no-ip' });
      assert.equal(r.json?.code, 11);
    } finally {
      await m.close();
    }
  });

  it('gives primary_mac_address in the result\'s interfaces (the spec\'s channel for a MAC)', async () => {
    const result = (await plugin.add({
      command: 'ADD', containerId: BASE_ENV.CNI_CONTAINERID, netns: '', ifname: 'eth0', args: [], rawArgs: '', path: [],
      config: { cniVersion: '1.1.0', name: 'n', type: 'rancher-bridge', ipam: { type: 'cattle-ipam', metadataAddress: md.address } },
      stdin: Buffer.alloc(0), env: {},
    })) as Result;
    assert.deepEqual(result.interfaces, [{ name: 'eth0', mac: '02:42:0a:2a:03:04' }]);
  });
});

describe('ADD when the service misbehaves', () => {
  it('service down: retried until the deadline, then code 11 with the connection error', async () => {
    const r = await runLogged('ADD', ipamConf({ metadataAddress: await deadAddress(), timeout: 0.8 }));
    assert.equal(r.json?.code, 11, r.stdout);
    assert.match(String(r.json?.details), /last error: cannot reach http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers: ECONNREFUSED/);
    const tries = r.log.filter((l) => l.step === 'metadata request failed').length;
    assert.ok(pauses(r.log).length >= 1, `retried: ${r.log.map((l) => `${l.step} ${String(l.error ?? l.ms ?? '')}`).join('; ')}`);
    assertBackoff(r.log, tries);
  });

  it('500s then recovery: succeeds once the service answers', async () => {
    let n = 0;
    const fake = await startFakeServer((_req, res) => {
      if (++n <= 3) {
        res.writeHead(500).end('boom');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify([RECORD]));
    });
    try {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, timeout: 5 }));
      assert.equal(r.code, 0, r.stdout);
      assert.equal(n, 4);
    } finally {
      await fake.close();
    }
  });

  it('500s until the deadline: code 11 quoting the HTTP status; every retry after a doubling pause', async () => {
    const fake = await startFakeServer((_req, res) => res.writeHead(503).end('overloaded'));
    try {
      const r = await runLogged('ADD', ipamConf({ metadataAddress: fake.address, timeout: 0.6 }));
      assert.equal(r.json?.code, 11);
      assert.match(String(r.json?.details), /HTTP 503 from http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers: overloaded/);
      // Backoff, not a busy loop: a pause before every retry, each twice the one before.
      assertBackoff(r.log, fake.requests.length);
    } finally {
      await fake.close();
    }
  });

  it('garbage answers are errors, never results: retried, then code 11', async () => {
    const cases: [string, RegExp][] = [
      ['<html>not json</html>', /unexpected answer from .*\/containers: expected a JSON array, got "<html>not json<\/html>"/],
      ['{"containers": 1}', /expected a JSON array, got "\{\\"containers\\": 1\}"/],
      ['[1, 2]', /an element is not an object/],
      [`[${JSON.stringify(RECORD)},]`, /invalid JSON from .*: an empty element before "\]"/],
      [`[${JSON.stringify(RECORD)}`, /the list is cut short/],
    ];
    for (const [body, pattern] of cases) {
      const fake = await startFakeServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body));
      try {
        const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, timeout: 0.3 }));
        assert.equal(r.json?.code, 11, r.stdout);
        assert.match(String(r.json?.details), pattern);
      } finally {
        await fake.close();
      }
    }
  });

  it('a slow answer within the request timeout is waited for', async () => {
    const fake = await startFakeServer((_req, res) => {
      setTimeout(() => res.writeHead(200).end(JSON.stringify([RECORD])), 300);
    });
    try {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, timeout: 3 }));
      assert.equal(r.code, 0, r.stdout);
    } finally {
      await fake.close();
    }
  });

  it('a service that never answers is bounded by the deadline', async () => {
    const fake = await startFakeServer(() => {
      // accept and say nothing
    });
    try {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, timeout: 0.7 }));
      assert.equal(r.json?.code, 11);
      const m = /no answer from http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers within (\d+) ms/.exec(String(r.json?.details));
      assert.ok(m, String(r.json?.details));
      // The request's own timeout (5 s) was cut to what the 0.7 s deadline left.
      assert.ok(Number(m[1]) <= 700, `request timeout ${m[1]} ms`);
    } finally {
      await fake.close();
    }
  });

  it('a server without long-poll support is polled gently, not hammered', async () => {
    let polls = 0;
    const fake = await startFakeServer((req, res) => {
      if (req.url!.includes('/version')) {
        if (req.url!.includes('wait=true')) polls++;
        return res.writeHead(200).end('"1"'); // answers at once, never waits
      }
      res.writeHead(200).end(JSON.stringify(polls >= 3 ? [RECORD] : []));
    });
    try {
      const r = await runLogged('ADD', ipamConf({ metadataAddress: fake.address, timeout: 30 }));
      assert.equal(r.code, 0, r.stdout);
      // Each long-poll came back at once with the same value: a pause before the next, longer each time.
      assert.deepEqual(pauses(r.log), [50, 100, 200]);
      assert.equal(fake.requests.length, 9, fake.requests.join(' '));
    } finally {
      await fake.close();
    }
  });
});

const CID = BASE_ENV.CNI_CONTAINERID;
const WHO = `container ${CID} (name web-1, uuid ${RECORD.uuid})`;

/** A stand-in whose /containers list is `containers`, for one test. */
async function serving(containers: unknown[]) {
  const body = JSON.stringify(containers);
  return startFakeServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body));
}

describe('a record with invalid data: code 7 at once, naming the container and the field', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['primary_ip', { primary_ip: '10.42.300.1' }, /^"10\.42\.300\.1" is not an IP address/],
    ['primary_ip', { primary_ip: '10.42.3.4/16' }, /^"10\.42\.3\.4\/16" is a CIDR; metadata carries bare addresses/],
    ['primary_ip', { primary_ip: 42 }, /^"42" is not an IP address/],
    ['primary_ip', { primary_ip: { v4: '10.42.3.4' } }, /^primary_ip must be string,null/],
    ['primary_mac_address', { primary_mac_address: '02:42:zz:03:04:05' }, /^"02:42:zz:03:04:05" is not a MAC address/],
    ['dns', { dns: ['169.254.169.250', 'ns1'] }, /^"ns1" is not an IP address/],
    ['dns', { dns: 'x' }, /^dns must be array,null/],
    ['dns_search', { dns_search: [{}] }, /^dns_search\/0 must be string/],
  ];
  for (const [field, change, details] of cases) {
    it(`${field} ${JSON.stringify(change[field])}`, async () => {
      const fake = await serving([{ name: 'other', external_id: 'other', primary_ip: '10.42.9.9' }, { ...RECORD, ...change }]);
      try {
        const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, timeout: 30 }));
        assert.equal(r.json?.code, 7, r.stdout);
        assert.equal(r.json?.msg, `invalid field "${field}" in the metadata record of ${WHO}`);
        assert.match(String(r.json?.details), details);
        assert.match(String(r.json?.details), /\(in http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers\)$/);
        assert.equal(fake.requests.length, 1, 'not retried: waiting does not fix it');
      } finally {
        await fake.close();
      }
    });
  }

  it('found by uuid, named by its uuid; CHECK says the same', async () => {
    const fake = await serving([{ uuid: 'u-bad', primary_ip: '10.42.300.1' }]);
    try {
      const env = { CNI_CONTAINERID: 'docker-id', CNI_ARGS: 'RancherContainerUUID=u-bad' };
      const add = await runIpam('ADD', ipamConf({ metadataAddress: fake.address }), env);
      assert.equal(add.json?.code, 7, add.stdout);
      assert.equal(add.json?.msg, 'invalid field "primary_ip" in the metadata record of container u-bad');
      const check = await runIpam('CHECK', ipamConf({ metadataAddress: fake.address }, { prevResult: { ips: [{ address: '10.42.3.4/16' }] } }), env);
      assert.equal(check.json?.code, 7, check.stdout);
    } finally {
      await fake.close();
    }
  });

  it("other containers' records are not ours: broken ones, and mentions of our id, do not matter", async () => {
    const fake = await serving([
      { external_id: 'other', primary_ip: { v4: 1 }, dns: 5 },
      { external_id: 'another', primary_ip: 'not an ip', labels: { 'io.example.peer': CID } },
      RECORD,
    ]);
    try {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address }));
      assert.equal(r.code, 0, r.stdout);
      assert.deepEqual(r.json?.ips, [{ address: '10.42.3.4/16', gateway: '10.42.0.1' }]);
    } finally {
      await fake.close();
    }
  });
});

/**
 * A /containers answer of `bytes` (records of other containers, as a large environment sends),
 * streamed as fast as the client reads. `closedEarly` resolves true when the client hung up first.
 */
async function streaming(bytes: number, record: Record<string, unknown> = { ...RECORD, external_id: 'someone-else', uuid: 'u-else' }) {
  let closedEarly!: (early: boolean) => void;
  const hungUp = new Promise<boolean>((resolve) => (closedEarly = resolve));
  const unit = Buffer.from(`${JSON.stringify(record)},`);
  const chunk = Buffer.concat(Array.from({ length: Math.ceil(65536 / unit.length) }, () => unit));
  const fake = await startFakeServer((_req, res: http.ServerResponse) => {
    let sent = 0;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write('[');
    res.on('error', () => {});
    res.on('close', () => closedEarly(sent < bytes));
    const pump = (): void => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end('{}]');
    };
    pump();
  });
  return { fake, hungUp };
}

describe('an answer over its size cap: code 11 at once, naming the server and the cap', () => {
  it(`a list of 50 MB: reading stops at ${MAX_LIST_BYTES / 1048576} MiB`, async () => {
    const { fake, hungUp } = await streaming(50 * 1024 * 1024);
    try {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, timeout: 30 }));
      assert.equal(r.json?.code, 11, r.stdout);
      assert.match(String(r.json?.msg), /^the metadata service http:\/\/127\.0\.0\.1:\d+ sent an answer over the size cap$/);
      assert.match(String(r.json?.details), /^answer from http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers is larger than 16 MiB: stopped reading$/);
      assert.equal(fake.requests.length, 1, 'not retried: the same answer would cost the same again');
      assert.equal(await hungUp, true, 'the plugin hung up before the server had sent it all');
    } finally {
      await fake.close();
    }
  });

  it(`one record over ${MAX_ITEM_BYTES / 1024} KiB`, async () => {
    const { fake, hungUp } = await streaming(50 * 1024 * 1024, { external_id: 'big', labels: { blob: 'x'.repeat(MAX_ITEM_BYTES) } });
    try {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, timeout: 30 }));
      assert.equal(r.json?.code, 11, r.stdout);
      assert.match(String(r.json?.details), /^an element of the answer from http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers is larger than 64 KiB: stopped reading$/);
      assert.equal(fake.requests.length, 1);
      assert.equal(await hungUp, true);
    } finally {
      await fake.close();
    }
  });

  it('a list of a large environment below the cap is read: 5000 containers, ours the last', async () => {
    const others = Array.from({ length: 4999 }, (_, i) => ({ ...RECORD, name: `web-${i}`, uuid: `u-${i}`, external_id: `e-${i}`, primary_ip: `10.42.${i >> 8}.${i & 255}` }));
    const fake = await serving([...others, RECORD]);
    try {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address }));
      assert.equal(r.code, 0, r.stdout);
      assert.deepEqual(r.json?.ips, [{ address: '10.42.3.4/16', gateway: '10.42.0.1' }]);
    } finally {
      await fake.close();
    }
  });
});

describe('fast path: no metadata request at all', () => {
  let dead: string;
  before(async () => {
    dead = await deadAddress();
  });

  it('CNI_ARGS IPAddress as CIDR or bare (with subnetPrefixSize): the service is not asked', async () => {
    const fake = await startFakeServer((_req, res) => res.writeHead(500).end());
    try {
      for (const [arg, want] of [['10.42.7.8/24', '10.42.7.8/24'], ['10.42.7.8', '10.42.7.8/16']]) {
        const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, subnetPrefixSize: '/16', timeout: 30 }), { CNI_ARGS: `IgnoreUnknown=1;DOCKER=true;IPAddress=${arg}` });
        assert.equal(r.code, 0, r.stdout);
        assert.equal((r.json?.ips as { address: string }[])[0]!.address, want);
      }
      assert.equal(fake.requests.length, 0);
    } finally {
      await fake.close();
    }
  });

  it('runtimeConfig.ips beats args.cni.ips beats CNI_ARGS', async () => {
    const base = ipamConf({ metadataAddress: dead });
    const withArgs = { ...base, args: { cni: { ips: ['10.1.0.2/24'] } } };
    const withBoth = { ...withArgs, runtimeConfig: { ips: ['10.2.0.2/24', 'fd00::2/64'] } };
    const env = { CNI_ARGS: 'IPAddress=10.3.0.2/24' };
    assert.equal(((await runIpam('ADD', base, env)).json?.ips as { address: string }[])[0]!.address, '10.3.0.2/24');
    assert.equal(((await runIpam('ADD', withArgs, env)).json?.ips as { address: string }[])[0]!.address, '10.1.0.2/24');
    const both = await runIpam('ADD', withBoth, env);
    assert.deepEqual(both.json?.ips, [{ address: '10.2.0.2/24', gateway: '10.2.0.1' }, { address: 'fd00::2/64', gateway: 'fd00::1' }]);
  });

  it('a bad address is a config error (7), not a lookup', async () => {
    const r = await runIpam('ADD', ipamConf({ metadataAddress: dead }), { CNI_ARGS: 'IPAddress=10.1.2' });
    assert.equal(r.json?.code, 7);
    assert.match(String(r.json?.details), /not an IP address or CIDR: 10\.1\.2/);
  });
});

describe('DEL, CHECK, STATUS, GC', () => {
  it('DEL succeeds without contacting anything', async () => {
    const fake = await startFakeServer((_req, res) => res.writeHead(500).end());
    try {
      const r = await runIpam('DEL', ipamConf({ metadataAddress: fake.address }), { CNI_NETNS: '' });
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.stdout, '');
      assert.equal(fake.requests.length, 0);
    } finally {
      await fake.close();
    }
  });

  it('CHECK passes while the record maps to prevResult, fails when it does not', async () => {
    const prev = { cniVersion: '1.1.0', ips: [{ address: '10.42.3.4/16', gateway: '10.42.0.1' }] };
    const ok = await runIpam('CHECK', conf({}, { prevResult: prev }));
    assert.equal(ok.code, 0, ok.stdout);
    const moved = await runIpam('CHECK', conf({}, { prevResult: { ...prev, ips: [{ address: '10.42.3.5/16' }] } }));
    assert.equal(moved.code, 1);
    assert.match(String(moved.json?.msg), /address 10\.42\.3\.4\/16 is not in prevResult/);
    const none = await runIpam('CHECK', conf());
    assert.equal(none.json?.code, 7);
    // With the address given by the runtime, CHECK needs no service either.
    const given = await runIpam('CHECK', ipamConf({ metadataAddress: await deadAddress() }, { prevResult: { ips: [{ address: '10.9.0.9/16' }] } }), { CNI_ARGS: 'IPAddress=10.9.0.9/16' });
    assert.equal(given.code, 0, given.stdout);
  });

  it('CHECK of a record that is gone fails with 11', async () => {
    const prev = { cniVersion: '1.1.0', ips: [{ address: '10.42.3.4/16' }] };
    const r = await runIpam('CHECK', conf({ timeout: 0.5 }, { prevResult: prev }), { CNI_CONTAINERID: 'gone' });
    assert.equal(r.json?.code, 11);
    assert.match(String(r.json?.details), /absent/);
  });

  it('STATUS: ok with the service up, 50 when it is down, ok with the ips capability', async () => {
    assert.equal((await runIpam('STATUS', conf())).code, 0);
    const dead = await deadAddress();
    const down = await runIpam('STATUS', ipamConf({ metadataAddress: dead }));
    assert.equal(down.json?.code, 50);
    assert.match(String(down.json?.details), /ECONNREFUSED/);
    const wrongVersion = await runIpam('STATUS', conf({ metadataVersion: '1999-01-01' }));
    assert.equal(wrongVersion.json?.code, 50);
    assert.match(String(wrongVersion.json?.details), /Invalid version/);
    const caps = await runIpam('STATUS', ipamConf({ metadataAddress: dead }, { capabilities: { ips: true } }));
    assert.equal(caps.code, 0, caps.stdout);
  });

  it('STATUS asks with its own 2 s timeout, not the lookup deadline, when the service never answers', async () => {
    const fake = await startFakeServer(() => {});
    try {
      const r = await runIpam('STATUS', ipamConf({ metadataAddress: fake.address, timeout: 30 }));
      assert.equal(r.json?.code, 50);
      assert.match(String(r.json?.details), /no answer from http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/version within 2000 ms/);
    } finally {
      await fake.close();
    }
  });

  it('GC succeeds', async () => {
    const r = await runIpam('GC', ipamConf({ metadataAddress: await deadAddress() }));
    assert.equal(r.code, 0, r.stdout);
  });
});

describe('plugin identity', () => {
  it('VERSION answers without stdin; the entry point is exported', async () => {
    const r = await runIpam('VERSION', {});
    assert.equal(r.code, 0);
    assert.deepEqual((r.json as { supportedVersions: string[] }).supportedVersions, [...SUPPORTED_VERSIONS]);
    assert.equal(plugin.name, 'cattle-ipam');
    assert.equal(typeof processIO, 'function');
  });
});
