// cattle-ipam configuration: Rancher's forms of each field, defaults, and
// clear code-7 errors; the addresses a runtime can hand over.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { addressWithPrefix, DEFAULT_METADATA_ADDRESS, loadIpamConfig, requestedIps } from '../../ipam/cattle/config.ts';
import { parseCniArgs } from '../../lib/cni/args.ts';
import type { NetConf } from '../../lib/cni/config.ts';
import { CniError } from '../../lib/cni/errors.ts';
import type { CniRequest } from '../../lib/skel.ts';

function req(ipam: Record<string, unknown> | undefined, opts: { env?: Record<string, string>; args?: string; extra?: Record<string, unknown> } = {}): CniRequest {
  const config = { cniVersion: '0.1.0', name: 'rancher-cni-network', type: 'rancher-bridge', ...(ipam ? { ipam } : {}), ...opts.extra } as NetConf;
  return {
    command: 'ADD', containerId: 'c1', netns: '/x', ifname: 'eth0', args: parseCniArgs(opts.args ?? ''), rawArgs: opts.args ?? '', path: [],
    config, stdin: Buffer.alloc(0), env: opts.env ?? {},
  };
}

function configError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof CniError && e.code === 7 && pattern.test(e.message));
}

describe('loadIpamConfig', () => {
  it('the Rancher ipsec template section, with its string booleans', () => {
    const cfg = loadIpamConfig(req({ type: 'rancher-cni-ipam', subnetPrefixSize: '/16', logToFile: '/var/log/rancher-cni.log', isDebugLevel: 'false' }));
    assert.deepEqual(cfg, {
      type: 'rancher-cni-ipam', prefix: 16, routes: [], metadataAddress: DEFAULT_METADATA_ADDRESS, metadataVersion: '2015-12-19',
      timeoutMs: 30_000, logToFile: '/var/log/rancher-cni.log', isDebugLevel: false,
    });
  });

  it('subnetPrefixSize as "/24", "24" or 24; default 16', () => {
    for (const v of ['/24', '24', 24]) assert.equal(loadIpamConfig(req({ type: 't', subnetPrefixSize: v })).prefix, 24);
    assert.equal(loadIpamConfig(req({ type: 't' })).prefix, 16);
    configError(() => loadIpamConfig(req({ type: 't', subnetPrefixSize: '/abc' })), /ipam\.subnetPrefixSize/);
    configError(() => loadIpamConfig(req({ type: 't', subnetPrefixSize: 200 })), /ipam\.subnetPrefixSize/);
  });

  it('metadataAddress: config, else RANCHER_METADATA_ADDRESS, else 169.254.169.250', () => {
    assert.equal(loadIpamConfig(req({ type: 't', metadataAddress: '10.0.0.1:81' }, { env: { RANCHER_METADATA_ADDRESS: '10.9.9.9' } })).metadataAddress, '10.0.0.1:81');
    assert.equal(loadIpamConfig(req({ type: 't' }, { env: { RANCHER_METADATA_ADDRESS: '10.9.9.9' } })).metadataAddress, '10.9.9.9');
    assert.equal(loadIpamConfig(req({ type: 't' })).metadataAddress, '169.254.169.250');
    configError(() => loadIpamConfig(req({ type: 't', metadataAddress: 'https://md' })), /ipam\.metadataAddress.*only http:\/\//);
  });

  it('timeout in seconds (also as a string), metadataVersion, isDebugLevel as bool or string', () => {
    const cfg = loadIpamConfig(req({ type: 't', timeout: '2.5', metadataVersion: '2016-07-29', isDebugLevel: 'true' }));
    assert.equal(cfg.timeoutMs, 2500);
    assert.equal(cfg.metadataVersion, '2016-07-29');
    assert.equal(cfg.isDebugLevel, true);
    assert.equal(loadIpamConfig(req({ type: 't', isDebugLevel: true })).isDebugLevel, true);
    configError(() => loadIpamConfig(req({ type: 't', timeout: 0 })), /ipam\.timeout/);
    configError(() => loadIpamConfig(req({ type: 't', timeout: 'soon' })), /ipam\.timeout/);
    configError(() => loadIpamConfig(req({ type: 't', metadataVersion: '../x' })), /ipam\.metadataVersion/);
    configError(() => loadIpamConfig(req({ type: 't', isDebugLevel: 'maybe' })), /ipam\.isDebugLevel/);
  });

  it('routes (gw optional) and gateway are checked', () => {
    const cfg = loadIpamConfig(req({ type: 't', routes: [{ dst: '169.254.169.250/32' }, { dst: '0.0.0.0/0', gw: '10.42.0.1' }], gateway: '10.42.0.254' }));
    assert.deepEqual(cfg.routes, [{ dst: '169.254.169.250/32' }, { dst: '0.0.0.0/0', gw: '10.42.0.1' }]);
    assert.equal(cfg.gateway, '10.42.0.254');
    configError(() => loadIpamConfig(req({ type: 't', routes: [{ dst: '10.0.0.0' }] })), /ipam\.routes\[0\]\.dst/);
    configError(() => loadIpamConfig(req({ type: 't', routes: [{ dst: '10.0.0.0/8', gw: '10.1' }] })), /ipam\.routes\[0\]\.gw/);
    configError(() => loadIpamConfig(req({ type: 't', routes: [{ gw: '10.0.0.1' }] })), /ipam\.routes\.0|ipam\.routes\[0\]|dst/);
    configError(() => loadIpamConfig(req({ type: 't', gateway: 'gw' })), /ipam\.gateway/);
  });

  it('a missing ipam section is a config error', () => {
    configError(() => loadIpamConfig(req(undefined)), /IPAM config missing "ipam" key/);
  });
});

describe('requestedIps', () => {
  it('nothing given: undefined (ask metadata)', () => {
    assert.equal(requestedIps(req({ type: 't' }, { args: 'IgnoreUnknown=1;RancherContainerUUID=u' }), 16), undefined);
    assert.equal(requestedIps(req({ type: 't' }, { args: 'IPAddress=' }), 16), undefined);
  });

  it('CNI_ARGS IPAddress (cniglue) or IP; bare addresses get the prefix', () => {
    assert.deepEqual(requestedIps(req({ type: 't' }, { args: 'IPAddress=10.42.1.2/24' }), 16)?.addresses, [{ ip: '10.42.1.2', prefix: 24, family: 4 }]);
    assert.deepEqual(requestedIps(req({ type: 't' }, { args: 'IP=10.42.1.2' }), 16), { source: 'CNI_ARGS IP', addresses: [{ ip: '10.42.1.2', prefix: 16, family: 4 }] });
  });

  it('the ips capability and args.cni.ips, in that order, ahead of CNI_ARGS', () => {
    const r = req({ type: 't' }, { args: 'IPAddress=10.0.0.3/8', extra: { runtimeConfig: { ips: ['10.0.0.1/8'] }, args: { cni: { ips: ['10.0.0.2/8'] } } } });
    assert.equal(requestedIps(r, 16)?.source, 'runtimeConfig.ips');
    const a = req({ type: 't' }, { args: 'IPAddress=10.0.0.3/8', extra: { args: { cni: { ips: ['10.0.0.2/8'] } } } });
    assert.equal(requestedIps(a, 16)?.source, 'args.cni.ips');
  });

  it('bad addresses are config errors naming where they came from', () => {
    configError(() => addressWithPrefix('10.1.2', 16, 'CNI_ARGS IPAddress'), /invalid address in CNI_ARGS IPAddress/);
    configError(() => addressWithPrefix('10.1.2.3/33', 16, 'x'), /invalid address in x/);
    configError(() => addressWithPrefix(7, 16, 'runtimeConfig.ips'), /invalid address in runtimeConfig\.ips/);
    configError(() => addressWithPrefix('10.1.2.3', 64, 'x'), /too long for the IPv4 address/);
    assert.deepEqual(addressWithPrefix('fd00::5', 64, 'x'), { ip: 'fd00::5', prefix: 64, family: 6 });
  });
});
