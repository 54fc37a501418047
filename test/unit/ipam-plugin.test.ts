// cattle-ipam in-process against a metadata service on loopback: the lookup
// paths (present, appears later, never, down, 5xx, garbage, slow), the fast
// path with no service at all, every cniVersion, and DEL/CHECK/STATUS/GC.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { macHintOf, plugin } from '../../ipam/cattle/plugin.ts';
import { processIO } from '../../lib/skel.ts';
import type { Result } from '../../lib/spec/result.ts';
import { SUPPORTED_VERSIONS } from '../../lib/spec/versions.ts';
import {
  answersWith, BASE_ENV, deadAddress, ipamConf, runIpam, sleep, startFakeServer, startMetadata, type TestMetadata,
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

describe('ADD from metadata', () => {
  it('finds the record by external_id: address, gateway net+1, routes via the gateway, DNS', async () => {
    const r = await runIpam('ADD', conf({ routes: [{ dst: '169.254.169.250/32' }, { dst: '10.0.0.0/8', gw: '10.42.0.254' }] }));
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(r.json, {
      cniVersion: '1.1.0',
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

  it('waits for a record added 300 ms after ADD started (long-poll) and returns promptly', async () => {
    const id = 'late-0001';
    const run = runIpam('ADD', conf(), { CNI_CONTAINERID: id });
    await sleep(300);
    const written = performance.now();
    await md.add({ externalId: id, ip: '10.42.5.6' });
    const r = await run;
    const lag = performance.now() - written;
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(r.json?.ips, [{ address: '10.42.5.6/16', gateway: '10.42.0.1' }]);
    assert.ok(lag < 400, `answered ${lag.toFixed(0)} ms after the record was written`);
  });

  it('a record that never appears: code 11 at the deadline, naming what was asked', async () => {
    const r = await runIpam('ADD', conf({ timeout: 1 }), { CNI_CONTAINERID: 'never-there', CNI_ARGS: 'RancherContainerUUID=u-none' });
    assert.equal(r.code, 1);
    assert.equal(r.json?.code, 11);
    assert.match(String(r.json?.msg), /no container with external_id never-there or uuid u-none .* in http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers after 1(\.\d)? s/);
    assert.match(String(r.json?.details), /never appeared/);
    assert.ok(r.ms >= 950 && r.ms < 2500, `took ${r.ms} ms`);
  });

  it('an answers file without any containers yet: waits for the list, no backoff delay', async () => {
    const m = await startMetadata({ '2015-12-19': { default: {} } });
    try {
      const run = runIpam('ADD', ipamConf({ metadataAddress: m.address, timeout: 5 }), { CNI_CONTAINERID: 'first-one' });
      await sleep(300);
      const written = performance.now();
      await m.add({ externalId: 'first-one', ip: '10.42.0.10' });
      const r = await run;
      assert.equal(r.code, 0, r.stdout);
      assert.ok(performance.now() - written < 300, 'long-polled, not backed off');
      const never = await runIpam('ADD', ipamConf({ metadataAddress: (await startEmpty()).address, timeout: 0.4 }));
      assert.match(String(never.json?.details), /no containers list \(404 Not found\)/);
    } finally {
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

  it('exposes primary_mac_address to the bridge through macHintOf', async () => {
    const result = (await plugin.add({
      command: 'ADD', containerId: BASE_ENV.CNI_CONTAINERID, netns: '', ifname: 'eth0', args: [], rawArgs: '', path: [],
      config: { cniVersion: '1.1.0', name: 'n', type: 'rancher-bridge', ipam: { type: 'cattle-ipam', metadataAddress: md.address } },
      stdin: Buffer.alloc(0), env: {},
    })) as Result;
    assert.equal(macHintOf(result), '02:42:0a:2a:03:04');
    assert.equal(macHintOf({}), undefined);
  });
});

describe('ADD when the service misbehaves', () => {
  it('service down: retried until the deadline, then code 11 with the connection error', async () => {
    const r = await runIpam('ADD', ipamConf({ metadataAddress: await deadAddress(), timeout: 0.8 }));
    assert.equal(r.json?.code, 11, r.stdout);
    assert.match(String(r.json?.details), /last error: cannot reach http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers: ECONNREFUSED/);
    assert.ok(r.ms < 2000, `took ${r.ms} ms`);
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

  it('500s until the deadline: code 11 quoting the HTTP status', async () => {
    const fake = await startFakeServer((_req, res) => res.writeHead(503).end('overloaded'));
    try {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, timeout: 0.6 }));
      assert.equal(r.json?.code, 11);
      assert.match(String(r.json?.details), /HTTP 503 from http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers: overloaded/);
      // Backoff, not a busy loop: a handful of requests in 0.6 s.
      assert.ok(fake.requests.length >= 2 && fake.requests.length <= 12, `${fake.requests.length} requests`);
    } finally {
      await fake.close();
    }
  });

  it('garbage JSON and wrong shapes are errors, never results', async () => {
    const bodies = ['<html>not json</html>', '{"containers": 1}', JSON.stringify([{ external_id: BASE_ENV.CNI_CONTAINERID, primary_ip: 42 }]),
      JSON.stringify([{ external_id: BASE_ENV.CNI_CONTAINERID, primary_ip: '10.42.300.1' }])];
    const expect = [/invalid JSON/, /unexpected answer .*must be array/, /invalid primary_ip "42"/, /invalid primary_ip "10\.42\.300\.1"/];
    for (const [i, body] of bodies.entries()) {
      const fake = await startFakeServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body));
      try {
        const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, timeout: 0.3 }));
        assert.equal(r.json?.code, 11, r.stdout);
        assert.match(String(r.json?.details), expect[i]!);
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
      assert.match(String(r.json?.details), /no answer from http:\/\/127\.0\.0\.1:\d+\/2015-12-19\/containers within \d+ ms/);
      assert.ok(r.ms < 1500, `took ${r.ms} ms`);
    } finally {
      await fake.close();
    }
  });

  it('a server without long-poll support is polled gently, not hammered', async () => {
    let added = false;
    setTimeout(() => {
      added = true;
    }, 400);
    const fake = await startFakeServer((req, res) => {
      if (req.url!.includes('/version')) return res.writeHead(200).end('"1"'); // answers at once, never waits
      res.writeHead(200).end(JSON.stringify(added ? [RECORD] : []));
    });
    try {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: fake.address, timeout: 3 }));
      assert.equal(r.code, 0, r.stdout);
      assert.ok(fake.requests.length < 30, `${fake.requests.length} requests`);
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

  it('CNI_ARGS IPAddress as CIDR or bare (with subnetPrefixSize), with the service down', async () => {
    for (const [arg, want] of [['10.42.7.8/24', '10.42.7.8/24'], ['10.42.7.8', '10.42.7.8/16']]) {
      const r = await runIpam('ADD', ipamConf({ metadataAddress: dead, subnetPrefixSize: '/16', timeout: 30 }), { CNI_ARGS: `IgnoreUnknown=1;DOCKER=true;IPAddress=${arg}` });
      assert.equal(r.code, 0, r.stdout);
      assert.equal((r.json?.ips as { address: string }[])[0]!.address, want);
      assert.ok(r.ms < 500, `took ${r.ms} ms`);
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

  it('STATUS answers within about 2 s even when the service never answers', async () => {
    const fake = await startFakeServer(() => {});
    try {
      const r = await runIpam('STATUS', ipamConf({ metadataAddress: fake.address, timeout: 30 }));
      assert.equal(r.json?.code, 50);
      assert.ok(r.ms < 2600, `took ${r.ms} ms`);
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
