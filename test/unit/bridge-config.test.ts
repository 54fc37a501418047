// cattle-bridge configuration: how the ipam section decides between IPAM and
// an L2-only network, disableContainerInterface, and what an L2-only network
// does with the fields that act on addresses (as the reference bridge does).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseCniArgs } from '../../lib/cni/args.ts';
import type { NetConf } from '../../lib/cni/config.ts';
import { CniError } from '../../lib/cni/errors.ts';
import { NO_IPAM } from '../../lib/ipam.ts';
import type { CniRequest } from '../../lib/skel.ts';
import { ipamOf } from '../../plugins/attachment.ts';
import { loadBridgeConfig } from '../../plugins/bridge/config.ts';

function req(extra: Record<string, unknown>, command: CniRequest['command'] = 'ADD'): CniRequest {
  const config = { cniVersion: '1.0.0', name: 'l2net', type: 'cattle-bridge', ...extra } as NetConf;
  return {
    command, containerId: 'c1', netns: '/x', ifname: 'eth0', args: parseCniArgs(''), rawArgs: '', path: [],
    config, stdin: Buffer.alloc(0), env: {},
  };
}

function configError(fn: () => unknown, msg: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof CniError && e.code === 7 && msg.test(`${e.msg} ${e.details ?? ''}`));
}

describe('loadBridgeConfig: IPAM or L2 only', () => {
  it('an ipam type: addresses from IPAM', () => {
    const r = req({ ipam: { type: 'host-local', subnet: '10.1.0.0/24' } });
    const cfg = loadBridgeConfig(r);
    assert.equal(cfg.addressing, 'ipam');
    assert.equal(ipamOf(cfg, r).type, 'host-local');
  });

  it('no ipam, or ipam {}: an L2-only network, whose IPAM is none', () => {
    for (const extra of [{}, { ipam: {} }]) {
      const r = req(extra);
      const cfg = loadBridgeConfig(r);
      assert.equal(cfg.addressing, 'none', JSON.stringify(extra));
      assert.equal(ipamOf(cfg, r), NO_IPAM);
      assert.equal(cfg.disableContainerInterface, false);
    }
  });

  it('ipam settings without a type are a mistake, not an L2 network', () => {
    configError(() => loadBridgeConfig(req({ ipam: { subnet: '10.1.0.0/24' } })), /"ipam".*settings \(subnet\) but no type/);
    configError(() => loadBridgeConfig(req({ ipam: { type: '' } })), /"ipam\.type"/);
  });

  it('L2 only: isGateway, isDefaultGateway and ipMasq/hostNat do nothing, as in the reference', () => {
    const cfg = loadBridgeConfig(req({ isGateway: true, isDefaultGateway: true, ipMasq: true, hostNat: true }));
    assert.deepEqual([cfg.isGateway, cfg.isDefaultGateway, cfg.masquerade], [false, false, false]);
    // So vlan is not refused for a gateway there is none of.
    assert.equal(loadBridgeConfig(req({ vlan: 7, isGateway: true })).vlan, 7);
  });

  it('L2 only: Rancher\'s bridge address is refused (it would put an address on the bridge)', () => {
    configError(() => loadBridgeConfig(req({ bridgeSubnet: '10.42.0.0/16' })), /"bridgeSubnet".*L2-only/);
    configError(() => loadBridgeConfig(req({ ipam: {}, bridgeIP: '10.42.0.1' })), /"bridgeIP".*L2-only/);
  });

  it('macspoofchk, portIsolation, hairpinMode stay on in L2 (MAC and port settings)', () => {
    const cfg = loadBridgeConfig(req({ macspoofchk: true, portIsolation: 'true', hairpinMode: true }));
    assert.deepEqual([cfg.macspoofchk, cfg.portIsolation, cfg.hairpinMode], [true, true, true]);
  });
});

describe('loadBridgeConfig: disableContainerInterface', () => {
  it('a boolean (Rancher-style strings too), default false, allowed without IPAM', () => {
    assert.equal(loadBridgeConfig(req({ disableContainerInterface: true })).disableContainerInterface, true);
    assert.equal(loadBridgeConfig(req({ ipam: {}, disableContainerInterface: 'true' })).disableContainerInterface, true);
    configError(() => loadBridgeConfig(req({ disableContainerInterface: 'sometimes' })), /"disableContainerInterface"/);
  });

  it('with an ipam type it is code 7: IPAM cannot be used with it', () => {
    configError(() => loadBridgeConfig(req({ disableContainerInterface: true, ipam: { type: 'host-local' } })),
      /^IPAM cannot be used with disableContainerInterface ipam\.type is "host-local"/);
    for (const command of ['CHECK', 'STATUS'] as const) {
      configError(() => loadBridgeConfig(req({ disableContainerInterface: true, ipam: { type: 'host-local' } }, command)), /IPAM cannot be used/);
    }
    // Off, the same ipam section is fine.
    assert.equal(loadBridgeConfig(req({ disableContainerInterface: false, ipam: { type: 'host-local' } })).addressing, 'ipam');
  });

  it('DEL and GC of such a network still work: they only clean up (and release what IPAM may hold)', () => {
    for (const command of ['DEL', 'GC'] as const) {
      const cfg = loadBridgeConfig(req({ disableContainerInterface: true, ipam: { type: 'host-local' } }, command));
      assert.equal(cfg.addressing, 'ipam', command);
    }
  });
});

describe('loadBridgeConfig: result versions', () => {
  it('an L2-only ADD needs cniVersion 0.3.0+ (a 0.1.0/0.2.0 result holds only IPs); DEL of it is fine', () => {
    for (const cniVersion of ['0.1.0', '0.2.0']) {
      assert.throws(() => loadBridgeConfig(req({ cniVersion })), (e: unknown) => e instanceof CniError && e.code === 1 && /needs cniVersion 0\.3\.0/.test(e.msg));
      assert.equal(loadBridgeConfig(req({ cniVersion }, 'DEL')).addressing, 'none');
    }
    assert.equal(loadBridgeConfig(req({ cniVersion: '0.3.0' })).addressing, 'none');
  });
});
