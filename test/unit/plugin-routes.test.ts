// The plugins' pure decisions (gateways, container routes, link-local
// gateway), without a kernel.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseCidr } from '../../lib/ip.ts';
import { containerRoutes as bridgeRoutes, gatewayFor } from '../../plugins/bridge/routes.ts';
import { containerRoutes as ptpRoutes, GATEWAY4, gatewayOf, linkLocalOf, podIps } from '../../plugins/ptp/routes.ts';

const plain = { useBridgeIPAsGateway: false, isDefaultGateway: false };

test('bridge gateway: IPAM\'s, else network + 1; the bridge IPv4 with useBridgeIPAsGateway (IPv4 only)', () => {
  assert.equal(gatewayFor(plain, parseCidr('10.1.2.3/24'), undefined, undefined), '10.1.2.1');
  assert.equal(gatewayFor(plain, parseCidr('10.1.2.3/24'), '10.1.2.254', undefined), '10.1.2.254');
  assert.equal(gatewayFor(plain, parseCidr('fd00::5/64'), undefined, undefined), 'fd00::1');
  const rancher = { ...plain, useBridgeIPAsGateway: true };
  assert.equal(gatewayFor(rancher, parseCidr('10.42.3.4/16'), '10.42.0.9', '10.42.0.1'), '10.42.0.1');
  assert.equal(gatewayFor(rancher, parseCidr('fd00::5/64'), undefined, '10.42.0.1'), 'fd00::1');
});

test('bridge routes: IPAM routes get the gateway when they name none; isDefaultGateway adds one default per family', () => {
  const ipam = { ips: [{ address: '10.1.2.3/24' }, { address: 'fd00::3/64' }], routes: [{ dst: '192.168.0.0/16' }, { dst: '172.16.0.0/12', gw: '10.1.2.9' }] };
  assert.deepEqual(bridgeRoutes(plain, ipam, undefined), [
    { dst: '192.168.0.0/16', gw: '10.1.2.1' },
    { dst: '172.16.0.0/12', gw: '10.1.2.9' },
  ]);
  assert.deepEqual(bridgeRoutes({ ...plain, isDefaultGateway: true }, ipam, undefined).slice(2), [
    { dst: '0.0.0.0/0', gw: '10.1.2.1' },
    { dst: '::/0', gw: 'fd00::1' },
  ]);
  // An IPAM default route is kept, not doubled.
  const withDefault = { ...ipam, routes: [{ dst: '0.0.0.0/0', gw: '10.1.2.254' }] };
  assert.deepEqual(bridgeRoutes({ ...plain, isDefaultGateway: true }, withDefault, undefined), [
    { dst: '0.0.0.0/0', gw: '10.1.2.254' },
    { dst: '::/0', gw: 'fd00::1' },
  ]);
});

test('ptp: the link-local gateway is the EUI-64 address of the host veth MAC', () => {
  assert.equal(linkLocalOf('ee:ee:ee:ee:ee:ee'), 'fe80::ecee:eeff:feee:eeee');
  assert.equal(linkLocalOf('02:00:00:00:00:01'), 'fe80::ff:fe00:1');
  const conf = { hostVethMac: 'ee:ee:ee:ee:ee:ee' };
  assert.equal(gatewayOf(conf, 4), GATEWAY4);
  assert.equal(gatewayOf(conf, 6), 'fe80::ecee:eeff:feee:eeee');
});

test('ptp: pod addresses are narrowed to host prefixes; routes go via the gateway, per family the pod has', () => {
  const conf = { hostVethMac: 'ee:ee:ee:ee:ee:ee' };
  const ipam = {
    ips: [{ address: '10.42.0.5/16' }],
    routes: [{ dst: '10.0.0.0/8', gw: '10.42.0.1', mtu: 1400 }, { dst: 'fd00::/8' }, { dst: '0.0.0.0/0', gw: '10.42.0.1' }],
  };
  const ips = podIps(ipam);
  assert.deepEqual(ips.map((i) => i.host), ['10.42.0.5/32']);
  assert.deepEqual(ptpRoutes(conf, ipam, ips), [
    { dst: '0.0.0.0/0', gw: GATEWAY4 },
    { dst: '10.0.0.0/8', gw: GATEWAY4, mtu: 1400 },
  ]);
  const dual = { ips: [{ address: '10.42.0.5/16' }, { address: 'fd00::5/64' }] };
  assert.deepEqual(ptpRoutes(conf, dual, podIps(dual)).map((r) => r.dst), ['0.0.0.0/0', '::/0']);
  assert.deepEqual(podIps(dual).map((i) => i.host), ['10.42.0.5/32', 'fd00::5/128']);
});

test('DNS precedence (as the reference): the netconf\'s dns when it sets anything, else IPAM\'s', async () => {
  const { chooseDns } = await import('../../plugins/common.ts');
  const req = (dns?: object) => ({ config: { cniVersion: '1.0.0', name: 'n', type: 't', dns } }) as unknown as Parameters<typeof chooseDns>[0];
  const ipam = { ips: [], dns: { nameservers: ['10.0.0.53'] } };
  assert.deepEqual(chooseDns(req({ nameservers: ['1.1.1.1'] }), ipam), { nameservers: ['1.1.1.1'] });
  assert.deepEqual(chooseDns(req({ domain: 'conf.example' }), ipam), { domain: 'conf.example' });
  assert.deepEqual(chooseDns(req({ nameservers: [], search: [] }), ipam), { nameservers: ['10.0.0.53'] });
  assert.deepEqual(chooseDns(req(), ipam), { nameservers: ['10.0.0.53'] });
  assert.equal(chooseDns(req({}), { ips: [] }), undefined);
  assert.equal(chooseDns(req(), { ips: [], dns: {} }), undefined);
});
