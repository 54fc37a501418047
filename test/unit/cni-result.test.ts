import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Result } from '../../lib/cni/result.ts';
import { convertResult, formatResult, ipFamily, parseResult } from '../../lib/cni/result.ts';
import { SUPPORTED_VERSIONS } from '../../lib/cni/versions.ts';

/** Compares serialised JSON, so key order is part of the check. */
function assertJSON(actual: unknown, expected: unknown): void {
  assert.equal(JSON.stringify(actual), JSON.stringify(expected));
}

const FULL: Result = {
  interfaces: [
    { name: 'cni0', mac: '0a:58:0a:16:00:01' },
    { name: 'veth1a2b3c4d', mac: '6e:1f:aa:02:33:10' },
    {
      name: 'eth0',
      mac: '0a:58:0a:16:00:05',
      mtu: 1500,
      sandbox: '/var/run/netns/test',
      socketPath: '/run/vhost.sock',
      pciID: '0000:00:1f.6',
    },
  ],
  ips: [
    { interface: 2, address: '10.22.0.5/24', gateway: '10.22.0.1' },
    { interface: 2, address: '10.22.1.7/24' },
    { interface: 0, address: 'fd00::5/64', gateway: 'fd00::1' },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.22.0.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 },
    { dst: '10.99.0.0/16' },
    { dst: '::/0', gw: 'fd00::1' },
  ],
  dns: { nameservers: ['10.22.0.1'], domain: 'rancher.internal', search: ['svc.local'], options: ['ndots:5'] },
};

const INTERFACES_1_0 = [
  { name: 'cni0', mac: '0a:58:0a:16:00:01' },
  { name: 'veth1a2b3c4d', mac: '6e:1f:aa:02:33:10' },
  { name: 'eth0', mac: '0a:58:0a:16:00:05', sandbox: '/var/run/netns/test' },
];
const ROUTES_1_0 = [{ dst: '0.0.0.0/0', gw: '10.22.0.1' }, { dst: '10.99.0.0/16' }, { dst: '::/0', gw: 'fd00::1' }];
const DNS = { nameservers: ['10.22.0.1'], domain: 'rancher.internal', search: ['svc.local'], options: ['ndots:5'] };

const GOLDEN_1_1_0 =
  '{"cniVersion":"1.1.0","interfaces":[{"name":"cni0","mac":"0a:58:0a:16:00:01"},{"name":"veth1a2b3c4d","mac":"6e:1f:aa:02:33:10"},' +
  '{"name":"eth0","mac":"0a:58:0a:16:00:05","mtu":1500,"sandbox":"/var/run/netns/test","socketPath":"/run/vhost.sock","pciID":"0000:00:1f.6"}],' +
  '"ips":[{"interface":2,"address":"10.22.0.5/24","gateway":"10.22.0.1"},{"interface":2,"address":"10.22.1.7/24"},' +
  '{"interface":0,"address":"fd00::5/64","gateway":"fd00::1"}],' +
  '"routes":[{"dst":"0.0.0.0/0","gw":"10.22.0.1","mtu":1400,"advmss":1360,"priority":10,"table":100,"scope":0},' +
  '{"dst":"10.99.0.0/16"},{"dst":"::/0","gw":"fd00::1"}],' +
  '"dns":{"nameservers":["10.22.0.1"],"domain":"rancher.internal","search":["svc.local"],"options":["ndots:5"]}}';

const GOLDEN_1_0_0 = {
  cniVersion: '1.0.0',
  interfaces: INTERFACES_1_0,
  ips: [
    { interface: 2, address: '10.22.0.5/24', gateway: '10.22.0.1' },
    { interface: 2, address: '10.22.1.7/24' },
    { interface: 0, address: 'fd00::5/64', gateway: 'fd00::1' },
  ],
  routes: ROUTES_1_0,
  dns: DNS,
};

const golden0x = (version: string): unknown => ({
  cniVersion: version,
  interfaces: INTERFACES_1_0,
  ips: [
    { version: '4', interface: 2, address: '10.22.0.5/24', gateway: '10.22.0.1' },
    { version: '4', interface: 2, address: '10.22.1.7/24' },
    { version: '6', interface: 0, address: 'fd00::5/64', gateway: 'fd00::1' },
  ],
  routes: ROUTES_1_0,
  dns: DNS,
});

const goldenLegacy = (version: string): unknown => ({
  cniVersion: version,
  ip4: {
    ip: '10.22.0.5/24',
    gateway: '10.22.0.1',
    routes: [{ dst: '0.0.0.0/0', gw: '10.22.0.1' }, { dst: '10.99.0.0/16' }],
  },
  ip6: { ip: 'fd00::5/64', gateway: 'fd00::1', routes: [{ dst: '::/0', gw: 'fd00::1' }] },
  dns: DNS,
});

describe('formatResult: golden output per version', () => {
  it('1.1.0 keeps everything', () => {
    assert.equal(JSON.stringify(formatResult(FULL, '1.1.0')), GOLDEN_1_1_0);
  });
  it('1.0.0 drops the 1.1-only interface and route fields', () => {
    assertJSON(formatResult(FULL, '1.0.0'), GOLDEN_1_0_0);
  });
  for (const v of ['0.4.0', '0.3.1', '0.3.0']) {
    it(`${v} adds ips[].version and drops 1.1 fields`, () => {
      assertJSON(formatResult(FULL, v), golden0x(v));
    });
  }
  for (const v of ['0.2.0', '0.1.0']) {
    it(`${v} keeps the first IP per family as ip4/ip6 with routes split by family`, () => {
      assertJSON(formatResult(FULL, v), goldenLegacy(v));
    });
  }
  it('matches the fact sheet 0.2.0 example', () => {
    const r: Result = {
      ips: [{ interface: 2, address: '10.22.0.5/24', gateway: '10.22.0.1' }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.22.0.1' }],
    };
    assert.equal(
      JSON.stringify(formatResult(r, '0.2.0')),
      '{"cniVersion":"0.2.0","ip4":{"ip":"10.22.0.5/24","gateway":"10.22.0.1","routes":[{"dst":"0.0.0.0/0","gw":"10.22.0.1"}]},"dns":{}}',
    );
  });
});

describe('formatResult: rules', () => {
  it('empty dns: omitted in 1.x, {} in 0.x', () => {
    const r: Result = { ips: [{ address: '10.0.0.2/24' }], dns: {} };
    assert.equal(JSON.stringify(formatResult(r, '1.1.0')), '{"cniVersion":"1.1.0","ips":[{"address":"10.0.0.2/24"}]}');
    assert.equal(JSON.stringify(formatResult(r, '1.0.0')), '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}');
    assert.equal(
      JSON.stringify(formatResult(r, '0.4.0')),
      '{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.0.0.2/24"}],"dns":{}}',
    );
    assert.equal(JSON.stringify(formatResult(r, '0.2.0')), '{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24"},"dns":{}}');
  });

  it('dns with only empty lists counts as empty', () => {
    const r: Result = { dns: { nameservers: [], search: [], domain: '' } };
    assert.equal(JSON.stringify(formatResult(r, '1.1.0')), '{"cniVersion":"1.1.0"}');
  });

  it('empty result', () => {
    assert.equal(JSON.stringify(formatResult({}, '1.1.0')), '{"cniVersion":"1.1.0"}');
    assert.equal(JSON.stringify(formatResult({}, '0.3.1')), '{"cniVersion":"0.3.1","dns":{}}');
    assert.equal(JSON.stringify(formatResult({ interfaces: [], ips: [], routes: [] }, '1.0.0')), '{"cniVersion":"1.0.0"}');
  });

  it('always keeps "interface": 0 and "scope": 0', () => {
    const r: Result = { ips: [{ interface: 0, address: '10.0.0.2/24' }], routes: [{ dst: '10.0.0.0/8', scope: 0 }] };
    for (const v of ['1.1.0', '1.0.0', '0.4.0', '0.3.0']) {
      assert.ok(JSON.stringify(formatResult(r, v)).includes('"interface":0'), v);
    }
    assert.ok(JSON.stringify(formatResult(r, '1.1.0')).includes('"scope":0'));
  });

  it('legacy: no IP at all cannot be converted', () => {
    for (const v of ['0.1.0', '0.2.0']) {
      assert.throws(() => formatResult({ interfaces: [{ name: 'eth0' }] }, v), {
        msg: 'cannot convert: no valid IP addresses',
      });
      assert.throws(() => formatResult({}, v), { msg: 'cannot convert: no valid IP addresses' });
    }
  });

  it('legacy: routes of a family without an IP are dropped', () => {
    const r: Result = {
      ips: [{ address: '10.0.0.2/24' }],
      routes: [{ dst: '::/0', gw: 'fd00::1' }, { dst: '0.0.0.0/0', gw: '10.0.0.1', table: 5 }],
    };
    assert.equal(
      JSON.stringify(formatResult(r, '0.2.0')),
      '{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24","routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1"}]},"dns":{}}',
    );
  });

  it('legacy: IPv6 only', () => {
    assert.equal(
      JSON.stringify(formatResult({ ips: [{ address: 'fd00::5/64' }] }, '0.1.0')),
      '{"cniVersion":"0.1.0","ip6":{"ip":"fd00::5/64"},"dns":{}}',
    );
  });

  it('unknown target version is an error', () => {
    assert.throws(() => formatResult({}, '1.2.0'), { code: 1 });
    assert.throws(() => formatResult({}, ''), { code: 1 });
  });

  it('only model fields reach the output', () => {
    const r = { ips: [{ address: '10.0.0.2/24', extra: 1 }], bogus: true } as unknown as Result;
    assert.equal(JSON.stringify(formatResult(r, '1.1.0')), '{"cniVersion":"1.1.0","ips":[{"address":"10.0.0.2/24"}]}');
  });

  it('does not share arrays with the model', () => {
    const r: Result = { dns: { nameservers: ['1.1.1.1'] } };
    const out = formatResult(r, '1.1.0') as { dns: { nameservers: string[] } };
    out.dns.nameservers.push('x');
    assert.deepEqual(r.dns?.nameservers, ['1.1.1.1']);
  });
});

describe('round trips', () => {
  const WITHOUT_11: Result = {
    interfaces: INTERFACES_1_0,
    ips: FULL.ips,
    routes: ROUTES_1_0,
    dns: DNS,
  };
  const LEGACY: Result = {
    ips: [
      { address: '10.22.0.5/24', gateway: '10.22.0.1' },
      { address: 'fd00::5/64', gateway: 'fd00::1' },
    ],
    routes: ROUTES_1_0,
    dns: DNS,
  };
  const expected: Record<string, Result> = {
    '1.1.0': FULL,
    '1.0.0': WITHOUT_11,
    '0.4.0': WITHOUT_11,
    '0.3.1': WITHOUT_11,
    '0.3.0': WITHOUT_11,
    '0.2.0': LEGACY,
    '0.1.0': LEGACY,
  };

  for (const v of SUPPORTED_VERSIONS) {
    it(`model -> ${v} -> model`, () => {
      const json = JSON.parse(JSON.stringify(formatResult(FULL, v))) as unknown;
      assert.deepEqual(parseResult(json, '1.1.0'), expected[v]);
    });
    it(`${v} output is stable through parse and format`, () => {
      const once = formatResult(FULL, v);
      assertJSON(formatResult(parseResult(once, v), v), once);
    });
    it(`${v} without cniVersion is read as the fallback version`, () => {
      const json = { ...formatResult(FULL, v) };
      delete json.cniVersion;
      assert.deepEqual(parseResult(json, v), expected[v]);
    });
  }

  it('converts every version into every other version', () => {
    for (const from of SUPPORTED_VERSIONS) {
      for (const to of SUPPORTED_VERSIONS) {
        const out = convertResult(formatResult(FULL, from), from, to);
        assert.equal(out.cniVersion, to, `${from} -> ${to}`);
      }
    }
  });

  it('0.2.0 -> 1.1.0 concatenates ip4 and ip6 routes', () => {
    const legacy = {
      cniVersion: '0.2.0',
      ip4: { ip: '10.1.0.5/16', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0' }] },
      ip6: { ip: 'fd01::5/64', routes: [{ dst: '::/0', gw: 'fd01::1' }] },
      dns: { nameservers: ['10.1.0.1'] },
    };
    assert.equal(
      JSON.stringify(convertResult(legacy, '0.2.0', '1.1.0')),
      '{"cniVersion":"1.1.0","ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1"},{"address":"fd01::5/64"}],' +
        '"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0","gw":"fd01::1"}],"dns":{"nameservers":["10.1.0.1"]}}',
    );
  });
});

describe('parseResult', () => {
  it('null and undefined are empty results', () => {
    assert.deepEqual(parseResult(null, '1.1.0'), {});
    assert.deepEqual(parseResult(undefined, '0.2.0'), {});
  });

  it('a declared cniVersion wins over the fallback', () => {
    const r = parseResult({ cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24' } }, '1.1.0');
    assert.deepEqual(r, { ips: [{ address: '10.0.0.2/24' }] });
  });

  it('reads an IPAM-style result (no interfaces, no interface index)', () => {
    const r = parseResult(
      { cniVersion: '1.0.0', ips: [{ address: '10.22.0.5/24', gateway: '10.22.0.1' }], dns: {} },
      '1.0.0',
    );
    assert.deepEqual(r, { ips: [{ address: '10.22.0.5/24', gateway: '10.22.0.1' }] });
  });

  it('accepts the 0.3.0 "ip" spelling', () => {
    const r = parseResult({ cniVersion: '0.3.0', ip: [{ version: '4', address: '10.0.0.2/24' }] }, '0.3.0');
    assert.deepEqual(r, { ips: [{ address: '10.0.0.2/24' }] });
  });

  it('treats empty strings and nulls as unset and ignores unknown keys', () => {
    const r = parseResult(
      {
        cniVersion: '1.1.0',
        interfaces: [{ name: 'eth0', mac: '', sandbox: null, extra: 1 }],
        ips: [{ address: '10.0.0.2/24', gateway: '' }],
        routes: null,
        dns: { nameservers: [], domain: '' },
        foo: 'bar',
      },
      '1.1.0',
    );
    assert.deepEqual(r, { interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.2/24' }] });
  });

  it('rejects an unsupported result version', () => {
    assert.throws(() => parseResult({ cniVersion: '2.0.0' }, '1.1.0'), { code: 1 });
    assert.throws(() => parseResult({}, '9.0.0'), { code: 1 });
  });

  const bad: [string, unknown, string][] = [
    ['not an object', 'text', 'invalid result: result must be an object'],
    ['array', [], 'invalid result: result must be an object'],
    ['cniVersion type', { cniVersion: 1 }, 'invalid result: cniVersion must be a string'],
    ['interfaces type', { interfaces: {} }, 'invalid result: interfaces must be a list'],
    ['interface entry', { interfaces: ['eth0'] }, 'invalid result: interfaces[0] must be an object'],
    ['interface name', { interfaces: [{ mac: 'aa' }] }, 'invalid result: interfaces[0].name is required'],
    ['interface mtu', { interfaces: [{ name: 'e', mtu: '1500' }] }, 'invalid result: interfaces[0].mtu must be an integer between 0 and 4294967295'],
    ['ips type', { ips: 'x' }, 'invalid result: ips must be a list'],
    ['missing address', { ips: [{}] }, 'invalid result: ips[0].address is required'],
    ['address without prefix', { ips: [{ address: '10.0.0.1' }] }, 'invalid result: ips[0].address must be an IP address with prefix length, got "10.0.0.1"'],
    ['bad prefix', { ips: [{ address: '10.0.0.1/33' }] }, 'invalid result: ips[0].address must be an IP address with prefix length, got "10.0.0.1/33"'],
    ['bad gateway', { ips: [{ address: '10.0.0.1/8', gateway: '10.0.0.1/8' }] }, 'invalid result: ips[0].gateway must be an IP address, got "10.0.0.1/8"'],
    ['negative index', { ips: [{ address: '10.0.0.1/8', interface: -1 }] }, 'invalid result: ips[0].interface must be an integer between 0 and 4294967295'],
    ['route dst', { routes: [{ gw: '10.0.0.1' }] }, 'invalid result: routes[0].dst is required'],
    ['route scope', { routes: [{ dst: '10.0.0.0/8', scope: 300 }] }, 'invalid result: routes[0].scope must be an integer between 0 and 255'],
    ['dns type', { dns: [] }, 'invalid result: dns must be an object'],
    ['dns list', { dns: { nameservers: [1] } }, 'invalid result: dns.nameservers[0] must be a string'],
    ['dns domain', { dns: { domain: 5 } }, 'invalid result: dns.domain must be a string'],
  ];
  for (const [what, json, msg] of bad) {
    it(`rejects ${what} with code 6`, () => {
      assert.throws(() => parseResult(json, '1.1.0'), { code: 6, msg });
    });
  }

  it('rejects bad legacy shapes', () => {
    assert.throws(() => parseResult({ ip4: 'x' }, '0.2.0'), { code: 6, msg: 'invalid result: ip4 must be an object' });
    assert.throws(() => parseResult({ ip4: {} }, '0.2.0'), { code: 6, msg: 'invalid result: ip4.ip is required' });
    assert.throws(() => parseResult({ ip6: { ip: 'fd00::1/64', routes: [{}] } }, '0.1.0'), {
      code: 6,
      msg: 'invalid result: ip6.routes[0].dst is required',
    });
  });

  it('uses the label in messages', () => {
    assert.throws(() => parseResult({ ips: 1 }, '1.0.0', 'prevResult'), { code: 6, msg: 'invalid prevResult: ips must be a list' });
  });
});

describe('ipFamily', () => {
  it('classifies addresses with and without prefix', () => {
    assert.equal(ipFamily('10.0.0.1'), 4);
    assert.equal(ipFamily('10.0.0.1/8'), 4);
    assert.equal(ipFamily('fd00::1/64'), 6);
    assert.equal(ipFamily('::'), 6);
    assert.equal(ipFamily('nope'), 0);
    assert.equal(ipFamily(''), 0);
  });
});
